"""The first run: a project, an AK/SK and a local cluster on an empty store, and the 0600
``bootstrap.json`` that hands them to the operator."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from mrs_jobs.secretbox import SecretBox
from mrs_jobs.services.cluster_admin import ClusterAdmin
from mrs_jobs.services.credentials import CredentialService
from mrs_jobs.services.projects import ProjectService
from mrs_jobs.store import Store

__all__ = ["Bootstrap", "bootstrap", "update_bootstrap_endpoint", "write_bootstrap_file"]


@dataclass(frozen=True)
class Bootstrap:
    project_id: str
    cluster_id: str
    ak: str
    sk: str
    created: bool


def bootstrap(
    store: Store,
    box: SecretBox | None,
    *,
    max_running: int,
    max_queued: int,
    parallelism: int,
    output_roots: list[str] | None = None,
) -> Bootstrap | None:
    """On an empty store create a project, an AK/SK and a local cluster; else None."""
    projects = ProjectService(store)
    if projects.count() > 0:
        return None
    project_id = projects.create_project("default")
    ak, sk = CredentialService(store, box).create_aksk(project_id, "admin")
    cluster_id = ClusterAdmin(store).create_cluster(
        project_id,
        "local",
        components=["Spark", "Hive", "Hadoop", "Flink"],
        config={
            "spark_master": f"local[{parallelism}]",
            **({"output_roots": list(output_roots)} if output_roots else {}),
        },
        max_running=max_running,
        max_queued=max_queued,
    )
    return Bootstrap(project_id, cluster_id, ak, sk, created=True)


def write_bootstrap_file(path: Path, endpoint: str, boot: Bootstrap) -> None:
    """bootstrap.json, mode 0600 from the first byte (it holds the SK)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "endpoint": endpoint,
        "project_id": boot.project_id,
        "cluster_id": boot.cluster_id,
        "ak": boot.ak,
        "sk": boot.sk,
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)


def update_bootstrap_endpoint(path: Path, endpoint: str) -> dict[str, str] | None:
    """Keep bootstrap.json's endpoint current when the service restarts on another port."""
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    if data.get("endpoint") != endpoint:
        data["endpoint"] = endpoint
        write_bootstrap_file(
            path,
            endpoint,
            Bootstrap(data["project_id"], data["cluster_id"], data["ak"], data["sk"], False),
        )
    return data
