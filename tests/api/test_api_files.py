"""The MRS v2 files API (``GET /v2/{project_id}/clusters/{cluster_id}/files``): a listing
under the cluster's roots with the SDK's FileStatusV2 fields, paging and sorting, and every
refusal (outside the roots, symlinks out of them, the service's files, other projects)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from api_helpers import assert_error, other_project

FIELDS = {
    "path_suffix": str,
    "owner": str,
    "group": str,
    "permission": str,
    "replication": int,
    "block_size": int,
    "length": int,
    "type": str,
    "children_num": int,
    "access_time": int,
    "modification_time": int,
}


def files_url(api, cluster_id: str | None = None, project_id: str | None = None) -> str:  # type: ignore[no-untyped-def]
    return f"/v2/{project_id or api.project_id}/clusters/{cluster_id or api.cluster_id}/files"


@pytest.fixture
def root(api, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """An input root holding a.txt (3 bytes), bb.txt (10 bytes, older), sub/ (2 entries)."""
    base = tmp_path / "root"
    (base / "sub").mkdir(parents=True)
    (base / "a.txt").write_bytes(b"abc")
    (base / "bb.txt").write_bytes(b"0123456789")
    os.utime(base / "bb.txt", (1_700_000_000, 1_700_000_000))
    (base / "sub" / "x").write_text("x")
    (base / "sub" / "y").write_text("y")
    api.clusters.update_cluster(api.cluster_id, settings={"input_roots": [str(base)]})
    return base


def listing(api, **params):  # type: ignore[no-untyped-def]
    r = api.client.get(files_url(api), params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"total_count", "files"}
    return body["total_count"], body["files"]


def test_a_root_directory_lists_one_level_with_the_sdk_fields(api, root: Path) -> None:  # type: ignore[no-untyped-def]
    total, found = listing(api, path=str(root), order="asc")
    assert total == 3
    assert [f["path_suffix"] for f in found] == ["a.txt", "bb.txt", "sub"]
    for f in found:
        assert set(f) == set(FIELDS)
        assert all(isinstance(f[k], t) for k, t in FIELDS.items()), f
    a, bb, sub = found
    assert (a["type"], a["length"], a["replication"], a["children_num"]) == ("FILE", 3, 1, 0)
    assert a["permission"] == format((root / "a.txt").stat().st_mode & 0o7777, "o")
    assert bb["modification_time"] == 1_700_000_000_000
    assert (sub["type"], sub["length"], sub["children_num"], sub["block_size"]) == (
        "DIRECTORY",
        0,
        2,
        0,
    )
    assert a["owner"] and a["group"]


def test_a_file_lists_itself(api, root: Path) -> None:  # type: ignore[no-untyped-def]
    total, found = listing(api, path=f"file://{root}/a.txt")
    assert total == 1 and found[0]["path_suffix"] == "" and found[0]["length"] == 3


def test_sorting_and_paging(api, root: Path) -> None:  # type: ignore[no-untyped-def]
    names = lambda found: [f["path_suffix"] for f in found]  # noqa: E731
    assert names(listing(api, path=str(root))[1]) == ["sub", "bb.txt", "a.txt"]  # desc default
    assert names(listing(api, path=str(root), sort_key="length", order="asc")[1]) == [
        "sub",
        "a.txt",
        "bb.txt",
    ]
    by_time = listing(api, path=str(root), sort_key="modification_time", order="asc")[1]
    assert names(by_time)[0] == "bb.txt"
    total, page2 = listing(api, path=str(root), order="asc", limit="2", offset="2")
    assert total == 3 and names(page2) == ["sub"]
    total, page1 = listing(api, path=str(root), order="asc", limit="2", offset="0")
    assert names(page1) == ["a.txt", "bb.txt"]
    assert listing(api, path=str(root), offset="5")[1] == []


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"path": "relative/dir"},
        {"offset": "-1"},
        {"offset": "x"},
        {"limit": "0"},
        {"limit": "1001"},
        {"order": "up"},
        {"sort_key": "owner"},
        {"unknown": "1"},
        {"path": "/a/.hidden"},
        {"path": "/a/b*c"},
        {"path": "hdfs://nn/tmp"},
        {"path": "http://example.com/x"},
    ],
)
def test_bad_parameters_are_400(api, root: Path, params: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    query = {"path": str(root), **params} if params else {}
    r = api.client.get(files_url(api), params=query)
    assert_error(r, 400, "12000002")


def test_outside_the_roots_is_refused(api, root: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "elsewhere").mkdir()
    for path in ("/etc", str(tmp_path / "elsewhere"), f"{root}/sub/x/../../../elsewhere"):
        msg = assert_error(api.client.get(files_url(api), params={"path": path}), 400, "12000002")
        assert "not under an allowed input root" in msg or "'.'" in msg, msg
    for path in ("/", f"{root}/.."):  # "/" holds the service's files; ".." is MRS's refusal
        assert_error(api.client.get(files_url(api), params={"path": path}), 400, "12000002")
    msg = assert_error(
        api.client.get(files_url(api), params={"path": f"{root}/missing"}), 400, "12000002"
    )
    assert "does not exist" in msg


def test_symlinks_out_of_the_roots_are_not_followed(api, root: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "key.pem").write_text("TOP-SECRET-CONTENT")
    (root / "out").symlink_to(outside)
    (root / "out-file").symlink_to(outside / "key.pem")
    (root / "dangling").symlink_to(tmp_path / "nothing")
    (root / "in").symlink_to(root / "sub")
    total, found = listing(api, path=str(root), order="asc")
    assert [f["path_suffix"] for f in found] == ["a.txt", "bb.txt", "in", "sub"]
    assert found[2]["type"] == "DIRECTORY" and found[2]["children_num"] == 2
    for path in (f"{root}/out", f"{root}/out/key.pem", f"{root}/out-file"):
        r = api.client.get(files_url(api), params={"path": path})
        msg = assert_error(r, 400, "12000002")
        assert "not under an allowed input root" in msg and "TOP-SECRET" not in msg


def test_the_service_data_directory_is_never_listed(api, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = Path(settings.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    (data / "secret.key").write_text("k")
    api.clusters.update_cluster(api.cluster_id, settings={"input_roots": [str(data.parent)]})
    msg = assert_error(api.client.get(files_url(api), params={"path": str(data)}), 400, "12000002")
    assert "service's own files" in msg
    (tmp_path / "link-to-data").symlink_to(data)
    r = api.client.get(files_url(api), params={"path": str(tmp_path / "link-to-data")})
    assert_error(r, 400, "12000002")


def test_a_cluster_without_roots_lists_nothing(api) -> None:  # type: ignore[no-untyped-def]
    msg = assert_error(api.client.get(files_url(api), params={"path": "/tmp"}), 400, "12000002")
    assert "no input roots" in msg


def test_another_projects_cluster_is_refused(api, root: Path) -> None:  # type: ignore[no-untyped-def]
    other = other_project(api)
    api.clusters.update_cluster(other.cluster_id, settings={"input_roots": [str(root)]})
    r = api.client.get(files_url(api, other.cluster_id), params={"path": str(root)})
    assert_error(r, 400, "12000003")
    r = api.client.get(files_url(api, project_id=other.project_id), params={"path": str(root)})
    assert_error(r, 403, "12000052")
    r = other.client.get(
        files_url(api, other.cluster_id, other.project_id), params={"path": str(root)}
    )
    assert r.status_code == 200 and r.json()["total_count"] == 3


def test_unauthenticated_is_refused(api, root: Path) -> None:  # type: ignore[no-untyped-def]
    r = api.client.get(files_url(api), params={"path": str(root)}, auth=None)
    assert_error(r, 401, "APIGW.0301")


# -- object stores ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3():  # type: ignore[no-untyped-def]
    from support_s3 import running_s3

    with running_s3("files-api") as store:
        yield store


def test_object_store_listing_with_the_clusters_keys(api, s3) -> None:  # type: ignore[no-untyped-def]
    bucket = s3.new_bucket("files")
    c = s3.client()
    c.put_object(Bucket=bucket, Key="data/a.csv", Body=b"1,2\n")
    c.put_object(Bucket=bucket, Key="data/big.csv", Body=b"x" * 100)
    c.put_object(Bucket=bucket, Key="data/part/p0", Body=b"p")
    c.put_object(Bucket=bucket, Key="data/part/p1", Body=b"p")
    url = files_url(api)
    msg = assert_error(
        api.client.get(url, params={"path": f"obs://{bucket}/data"}), 400, "12000002"
    )
    assert "names no object store" in msg
    # The cluster's endpoint without its keys: the store refuses anonymous access, in a 400.
    api.clusters.update_cluster(api.cluster_id, settings={"fs.obs.endpoint": s3.endpoint})
    msg = assert_error(
        api.client.get(url, params={"path": f"obs://{bucket}/data"}), 400, "12000002"
    )
    api.clusters.update_cluster(api.cluster_id, settings=s3.props())
    total, found = listing(api, path=f"obs://{bucket}/data", order="asc")
    assert total == 3
    assert [f["path_suffix"] for f in found] == ["a.csv", "big.csv", "part"]
    a, big, part = found
    assert (a["type"], a["length"], a["permission"]) == ("FILE", 4, "666")
    assert a["modification_time"] > 0 and set(a) == set(FIELDS)
    assert (part["type"], part["children_num"]) == ("DIRECTORY", 2)
    by_size = listing(api, path=f"s3a://{bucket}/data/", sort_key="length", limit="1")[1]
    assert [f["path_suffix"] for f in by_size] == ["big.csv"]
    assert listing(api, path=f"obs://{bucket}/data/a.csv")[1][0]["path_suffix"] == ""
    msg = assert_error(
        api.client.get(url, params={"path": f"obs://{bucket}/nothing"}), 400, "12000002"
    )
    assert "does not exist" in msg
    for bad in (f"obs://{bucket}/../x", "obs://AK:SK@bucket/x", f"obs://{bucket}/a*b"):
        msg = assert_error(api.client.get(url, params={"path": bad}), 400, "12000002")
        assert "SK@" not in msg
    for r in (api.client.get(url, params={"path": f"obs://{bucket}/data"}),):
        assert s3.secret_key not in r.text and s3.access_key not in r.text
