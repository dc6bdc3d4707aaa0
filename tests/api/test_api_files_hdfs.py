"""hdfs:// through the files API: a cluster with a Hadoop configuration lists its HDFS (the
NameNode of its own hdfs-site.xml, over WebHDFS) with paging and sorting; a cluster without
one, or a path naming another file system, is a 400 that says why. The NameNode is a local
HTTP server replaying recorded WebHDFS exchanges."""

from __future__ import annotations

from pathlib import Path

from api_helpers import assert_error
from support_recorded import Replay, load, serve, write_conf


def files_url(api) -> str:  # type: ignore[no-untyped-def]
    return f"/v2/{api.project_id}/clusters/{api.cluster_id}/files"


def test_a_clusters_hdfs_is_listed_through_its_own_namenode(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    replay = Replay(
        load("webhdfs/liststatus_dir.json"),
        load("webhdfs/liststatus_dir.json"),
        load("webhdfs/not_found.json"),
    )
    with serve(replay) as base:
        host_port = base.removeprefix("http://")
        conf = write_conf(
            tmp_path / "hadoop",
            {"fs.defaultFS": "hdfs://nn.example:8020"},
            {"dfs.namenode.http-address": host_port},
        )
        api.clusters.update_cluster(api.cluster_id, settings={"hadoop_conf_dir": conf})
        r = api.client.get(
            files_url(api),
            params={"path": "hdfs:///user/etl/data", "sort_key": "length", "order": "asc"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total_count"] == 3
        assert [f["path_suffix"] for f in body["files"]] == [
            "staging",
            "part-00001.csv",
            "part-00000.csv",
        ]
        assert body["files"][0]["children_num"] == 4
        r = api.client.get(
            files_url(api),
            params={"path": "hdfs://nn.example:8020/user/etl/data", "offset": "2", "limit": "2"},
        )
        assert r.status_code == 200, r.text
        assert [f["path_suffix"] for f in r.json()["files"]] == ["part-00000.csv"]
        msg = assert_error(
            api.client.get(files_url(api), params={"path": "hdfs:///user/etl/missing"}),
            400,
            "12000002",
        )
        assert "does not exist" in msg
        msg = assert_error(
            api.client.get(files_url(api), params={"path": "hdfs://other:8020/user"}),
            400,
            "12000002",
        )
        assert "another file system" in msg
    replay.done()


def test_a_cluster_without_a_hadoop_configuration_has_no_hdfs(api) -> None:  # type: ignore[no-untyped-def]
    msg = assert_error(
        api.client.get(files_url(api), params={"path": "hdfs:///user"}), 400, "12000002"
    )
    assert "hadoop_conf_dir" in msg
