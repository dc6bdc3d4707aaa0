"""hdfs:// listings over WebHDFS: the cluster's Hadoop configuration names the NameNodes
(plain, HA, HTTPS; Kerberos refused), LISTSTATUS answers map field for field to FileStatusV2,
a standby is skipped, and errors are the user's to read. The NameNode is a real local HTTP
server replaying recorded WebHDFS exchanges (tests/fixtures/recorded/webhdfs)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support_recorded import Replay, load, serve, write_conf

from mrs_jobs.storage.files import ListingTooLarge
from mrs_jobs.storage.hadoopconf import HdfsConfig, HdfsConfigError, hdfs_config
from mrs_jobs.storage.hdfsfiles import HdfsError, HdfsListing, hdfs_path


def test_a_plain_namenode_from_fs_default_fs_and_its_http_address(tmp_path: Path) -> None:
    conf = write_conf(
        tmp_path,
        {"fs.defaultFS": "hdfs://nn1.example:8020"},
        {"dfs.namenode.http-address": "nn1.example:50070"},
    )
    assert hdfs_config(conf) == HdfsConfig(
        "nn1.example:8020", ("http://nn1.example:50070/webhdfs/v1",)
    )
    # Without an http-address: the NameNode's host and Hadoop 3's default web port.
    conf = write_conf(tmp_path / "d", {"fs.defaultFS": "hdfs://nn2:8020"}, {})
    assert hdfs_config(conf).webhdfs_urls == ("http://nn2:9870/webhdfs/v1",)


def test_an_ha_nameservice_lists_its_namenodes_in_order_and_https_policy(tmp_path: Path) -> None:
    conf = write_conf(
        tmp_path,
        {"fs.defaultFS": "hdfs://ns1"},
        {
            "dfs.nameservices": "ns1",
            "dfs.ha.namenodes.ns1": "nn1,nn2",
            "dfs.http.policy": "HTTPS_ONLY",
            "dfs.namenode.https-address.ns1.nn1": "a.example:9871",
            "dfs.namenode.https-address.ns1.nn2": "b.example:9871",
        },
    )
    found = hdfs_config(conf)
    assert found.authority == "ns1"
    assert found.webhdfs_urls == (
        "https://a.example:9871/webhdfs/v1",
        "https://b.example:9871/webhdfs/v1",
    )


@pytest.mark.parametrize(
    ("core", "hdfs", "words"),
    [
        (
            {"fs.defaultFS": "hdfs://nn:8020", "hadoop.security.authentication": "kerberos"},
            {},
            "Kerberos",
        ),
        ({"fs.defaultFS": "file:///"}, {}, "names no HDFS"),
        ({}, {}, "names no HDFS"),
        (
            {"fs.defaultFS": "hdfs://ns1"},
            {"dfs.nameservices": "ns1", "dfs.ha.namenodes.ns1": "nn1"},
            "dfs.namenode.http-address.ns1.nn1",
        ),
        (
            {"fs.defaultFS": "hdfs://nn:8020"},
            {"dfs.namenode.http-address": "0.0.0.0:9870"},
            "no host",
        ),
    ],
)
def test_a_configuration_without_a_usable_hdfs_says_what_to_set(
    tmp_path: Path, core: dict[str, str], hdfs: dict[str, str], words: str
) -> None:
    with pytest.raises(HdfsConfigError, match=words):
        hdfs_config(write_conf(tmp_path, core, hdfs))


def test_hdfs_paths_must_name_the_clusters_own_file_system() -> None:
    config = HdfsConfig("nn:8020", ("http://nn:9870/webhdfs/v1",))
    assert hdfs_path("hdfs:///user/etl", config) == "/user/etl"
    assert hdfs_path("hdfs://nn:8020/user/etl", config) == "/user/etl"
    assert hdfs_path("hdfs://nn:8020", config) == "/"
    with pytest.raises(HdfsError, match="another file system"):
        hdfs_path("hdfs://evil.example:8020/user", config)
    with pytest.raises(HdfsError, match="no query"):
        hdfs_path("hdfs:///user?op=DELETE", config)


def _listing(base: str) -> HdfsListing:
    return HdfsListing(HdfsConfig("nn:8020", (base + "/webhdfs/v1",)))


def test_a_directory_maps_field_for_field() -> None:
    replay = Replay(load("webhdfs/liststatus_dir.json"))
    with serve(replay) as base:
        rows = _listing(base).entries("/user/etl/data")
    replay.done()
    assert [r.path_suffix for r in rows] == ["part-00000.csv", "part-00001.csv", "staging"]
    first, _, staging = rows
    assert first.to_mrs() == {
        "path_suffix": "part-00000.csv",
        "owner": "etl",
        "group": "hadoop",
        "permission": "644",
        "replication": 3,
        "block_size": 134217728,
        "length": 24930,
        "type": "FILE",
        "children_num": 0,
        "access_time": 1764460805000,
        "modification_time": 1764460800000,
    }
    assert (staging.type, staging.children_num, staging.length) == ("DIRECTORY", 4, 0)


def test_a_file_lists_itself_and_errors_are_readable() -> None:
    replay = Replay(
        load("webhdfs/liststatus_file.json"),
        load("webhdfs/not_found.json"),
        load("webhdfs/access_denied.json"),
    )
    with serve(replay) as base:
        listing = _listing(base)
        (only,) = listing.entries("/user/etl/data/part-00000.csv")
        assert (only.path_suffix, only.length) == ("", 24930)
        with pytest.raises(FileNotFoundError):
            listing.entries("/user/etl/missing")
        with pytest.raises(HdfsError, match="AccessControlException: Permission denied"):
            listing.entries("/user/secret")
    replay.done()


def test_a_standby_namenode_is_skipped_for_the_active_one() -> None:
    standby, active = (
        Replay(load("webhdfs/standby.json")),
        Replay(load("webhdfs/liststatus_dir.json")),
    )
    with serve(standby) as first, serve(active) as second:
        config = HdfsConfig("ns1", (first + "/webhdfs/v1", second + "/webhdfs/v1"))
        rows = HdfsListing(config).entries("/user/etl/data")
    standby.done()
    active.done()
    assert len(rows) == 3


def test_no_namenode_answering_is_an_error_naming_each() -> None:
    with serve(Replay()) as base:
        port = urlsplit(base).port
    # The server is gone: nothing listens on that port any more.
    config = HdfsConfig("nn:8020", (f"http://127.0.0.1:{port}/webhdfs/v1",))
    with pytest.raises(HdfsError, match=f"127.0.0.1:{port}: ConnectError"):
        HdfsListing(config).entries("/x")


def test_a_path_is_percent_encoded_and_huge_answers_are_refused(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    exchange = load("webhdfs/not_found.json")
    exchange["request"]["path"] = "/webhdfs/v1/user/a%20b/%C3%A9"
    replay = Replay(exchange)
    with serve(replay) as base:
        with pytest.raises(FileNotFoundError):
            _listing(base).entries("/user/a b/é")
    replay.done()
    monkeypatch.setattr("mrs_jobs.storage.hdfsfiles.MAX_ANSWER_BYTES", 100)
    replay = Replay(load("webhdfs/liststatus_dir.json"))
    with serve(replay) as base, pytest.raises(ListingTooLarge):
        _listing(base).entries("/user/etl/data")
