"""A cluster's presto_* settings (domain/clusterconfig.py): the coordinator's forms, the
dialects, and what is refused when the cluster is saved."""

from __future__ import annotations

import pytest

from mrs_jobs.domain.clusterconfig import settings_of, validate_cluster_config
from mrs_jobs.errors import InvalidParameter


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("trino.example:8080", "http://trino.example:8080"),
        ("http://10.0.0.5:8080/", "http://10.0.0.5:8080"),
        ("https://trino.example:8443", "https://trino.example:8443"),
        ("https://gateway.example/trino/", "https://gateway.example/trino"),
        ("", ""),
    ],
)
def test_the_coordinator_is_kept_as_a_url(given: str, kept: str) -> None:
    config = validate_cluster_config("local", {"presto_coordinator": given})
    assert settings_of("local", config).presto_coordinator == kept


def test_defaults_and_the_other_kinds() -> None:
    settings = settings_of("local", {})
    assert (settings.presto_dialect, settings.presto_user, settings.presto_catalog) == (
        "trino",
        "",
        "",
    )
    yarn = {"hadoop_conf_dir": "/etc/hadoop", "presto_coordinator": "p:8080"}
    assert settings_of("yarn", validate_cluster_config("yarn", yarn)).presto_coordinator


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"presto_coordinator": "ftp://p:21"}, "presto_coordinator"),
        ({"presto_coordinator": "p"}, "presto_coordinator"),
        ({"presto_coordinator": "http://a b:80"}, "presto_coordinator"),
        ({"presto_dialect": "Trino"}, "presto_dialect"),
        ({"presto_catalog": "a;b"}, "presto_catalog"),
        ({"presto_schema": "tiny"}, "needs presto_catalog"),
        (
            {"presto_coordinator": "p:8080", "presto_password_file": "/etc/pw"},
            "needs an https:// presto_coordinator",
        ),
        (
            {"presto_coordinator": "https://p:8443", "presto_password_file": "pw"},
            "absolute path",
        ),
        ({"presto_ca_file": "ca.pem"}, "absolute path"),
    ],
)
def test_mistakes_are_refused_when_saved(config: dict, words: str) -> None:
    with pytest.raises(InvalidParameter, match=words):
        validate_cluster_config("local", config)
