"""objectstore: URI parsing, credential rules, Spark settings, and fetch() against a moto S3 server.

The moto server runs in-process on a free loopback port with IAM authentication switched on, so
a wrong secret key is really refused (moto accepts anything otherwise).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support_s3 import S3Store as Store
from support_s3 import running_s3

from mrs_jobs.storage.objectstore import (
    ObjectStoreError,
    ObjectURI,
    S3Credentials,
    fetch,
    is_object_uri,
    parse_uri,
    redact,
    resolve_credentials,
    secret_env,
    spark_conf,
)

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    with running_s3("objstore") as s3:
        yield s3


@pytest.fixture
def bucket(store: Store) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    store.client().create_bucket(Bucket=name)
    return name


# ------------------------------------------------------------------------------ URIs


def test_parse_uri_forms():
    ref = parse_uri("obs://my-bucket/jobs/app.py")
    assert ref == ObjectURI("obs", "my-bucket", "jobs/app.py")
    assert ref.path == "my-bucket/jobs/app.py"
    assert ref.name == "app.py"
    assert str(ref) == "obs://my-bucket/jobs/app.py"
    assert parse_uri("S3A://bkt//a///b/") == ObjectURI("s3a", "bkt", "a/b")
    root = parse_uri("s3://bkt")
    assert (root.key, root.path, root.name) == ("", "bkt", "bkt")
    assert parse_uri("s3://bkt/").key == ""
    assert is_object_uri("obs://x/y") and is_object_uri("S3://x") and is_object_uri("s3a://x")
    assert not is_object_uri("hdfs://nn/x") and not is_object_uri("/tmp/x")


@pytest.mark.parametrize(
    "uri",
    [
        "obs://bkt/a/../b",
        "obs://bkt/./b",
        "http://bkt/a",
        "obs://b/x",  # bucket name too short
        "obs://bk t/x",
        "obs://bkt/a\nb",
        "/local/path",
    ],
)
def test_parse_uri_refusals(uri: str):
    with pytest.raises(ObjectStoreError):
        parse_uri(uri)


def test_credentials_in_uri_refused_without_echo():
    with pytest.raises(ObjectStoreError) as ei:
        parse_uri("s3a://AKIDEXAMPLE:TOPSECRETVALUE@bucket/key")
    assert "TOPSECRETVALUE" not in str(ei.value)
    assert "AKIDEXAMPLE" not in str(ei.value)


# ----------------------------------------------------------------------- credentials


def test_endpoint_forms_and_region():
    c = resolve_credentials({"fs.obs.endpoint": "http://127.0.0.1:9000"})
    assert c.endpoint_url == "http://127.0.0.1:9000"
    assert c.region == "us-east-1"
    assert c.anonymous and c.source == "anonymous"
    c = resolve_credentials({"fs.obs.endpoint": "obs.cn-north-4.myhuaweicloud.com"})
    assert c.endpoint_url == "https://obs.cn-north-4.myhuaweicloud.com"
    assert c.region == "cn-north-4"
    c = resolve_credentials({"fs.s3a.endpoint": "https://minio.local:9443/"})
    assert c.endpoint_url == "https://minio.local:9443"
    c = resolve_credentials(
        {"fs.s3a.endpoint": "s3.eu-west-1.amazonaws.com", "fs.s3a.endpoint.region": "x-1"}
    )
    assert c.region == "x-1"
    assert resolve_credentials({}).endpoint_url is None


@pytest.mark.parametrize(
    "endpoint",
    ["ftp://h:1", "http://h:1/path", "http://user:pw@h:1", "h h", "http://h:99999", "http://"],
)
def test_bad_endpoints(endpoint: str):
    with pytest.raises(ObjectStoreError) as ei:
        resolve_credentials({"fs.obs.endpoint": endpoint})
    assert "pw" not in str(ei.value)


def test_job_properties_over_cluster_defaults():
    defaults = {
        "fs.obs.endpoint": "http://10.0.0.1:9000",
        "fs.obs.access.key": "CLUSTERAK",
        "fs.obs.secret.key": "CLUSTERSK",
    }
    # Nothing from the job: the cluster's endpoint and keys.
    c = resolve_credentials({}, defaults)
    assert (c.endpoint_url, c.access_key, c.secret_key) == (
        "http://10.0.0.1:9000",
        "CLUSTERAK",
        "CLUSTERSK",
    )
    assert c.source == "cluster defaults"
    # The job's own keys, the cluster's endpoint.
    c = resolve_credentials({"fs.obs.access.key": "JOBAK", "fs.obs.secret.key": "JOBSK"}, defaults)
    assert (c.endpoint_url, c.access_key, c.secret_key, c.source) == (
        "http://10.0.0.1:9000",
        "JOBAK",
        "JOBSK",
        "job properties",
    )
    # s3a spellings work; obs wins over s3a within one layer.
    c = resolve_credentials(
        {
            "fs.s3a.access.key": "S3AAK",
            "fs.s3a.secret.key": "S3ASK",
            "fs.obs.access.key": "OBSAK",
            "fs.obs.secret.key": "OBSSK",
        }
    )
    assert (c.access_key, c.secret_key) == ("OBSAK", "OBSSK")
    # Same endpoint spelled differently still counts as the cluster's.
    c = resolve_credentials({"fs.s3a.endpoint": "http://10.0.0.1:9000/"}, defaults)
    assert c.access_key == "CLUSTERAK"


def test_cluster_keys_never_sent_to_a_job_chosen_endpoint():
    defaults = {
        "fs.obs.endpoint": "http://10.0.0.1:9000",
        "fs.obs.access.key": "CLUSTERAK",
        "fs.obs.secret.key": "CLUSTERSK",
    }
    c = resolve_credentials({"fs.obs.endpoint": "http://evil.example:80"}, defaults)
    assert c.anonymous and c.access_key is None and c.secret_key is None
    assert c.endpoint_url == "http://evil.example:80"


def test_half_a_key_pair_refused():
    with pytest.raises(ObjectStoreError) as ei:
        resolve_credentials({"fs.obs.secret.key": "ONLYSECRET"})
    assert "ONLYSECRET" not in str(ei.value)


def test_credentials_repr_and_describe_hide_secrets():
    c = resolve_credentials(
        {
            "fs.obs.endpoint": "http://h:1",
            "fs.obs.access.key": "AKVALUE123",
            "fs.obs.secret.key": "SKVALUE456",
            "fs.obs.session.token": "TOKVALUE789",
        }
    )
    for text in (repr(c), str(c), c.describe()):
        for secret in ("AKVALUE123", "SKVALUE456", "TOKVALUE789"):
            assert secret not in text
    assert S3Credentials.from_json(c.to_json()) == c
    assert redact("a AKVALUE123 b SKVALUE456 c", c) == "a ****** b ****** c"


def test_spark_conf_has_no_secret_and_secret_env_has_them():
    c = resolve_credentials(
        {
            "fs.obs.endpoint": "http://127.0.0.1:9000",
            "fs.obs.access.key": "AKVALUE123",
            "fs.obs.secret.key": "SKVALUE456",
        }
    )
    conf = spark_conf(c)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert conf["spark.hadoop.fs.obs.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert all(k.startswith("spark.hadoop.fs.") for k in conf)
    dumped = json.dumps(conf)
    assert "AKVALUE123" not in dumped and "SKVALUE456" not in dumped
    assert not any("secret" in k or "access.key" in k for k in conf)
    assert secret_env(c) == {
        "AWS_ACCESS_KEY_ID": "AKVALUE123",
        "AWS_SECRET_ACCESS_KEY": "SKVALUE456",
    }
    # A raw property map works too; no keys -> anonymous provider and no env.
    anon = {"fs.obs.endpoint": "obs.example.com"}
    assert spark_conf(anon)["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"
    assert (
        "AnonymousAWSCredentialsProvider"
        in spark_conf(anon)["spark.hadoop.fs.s3a.aws.credentials.provider"]
    )
    assert secret_env(anon) == {}


# ---------------------------------------------------------------------------- fetch


def test_fetch_downloads_a_program_file(store: Store, bucket: str, tmp_path: Path):
    program = b"print('hello from obs')\n" * 100
    store.client().put_object(Bucket=bucket, Key="jobs/app.py", Body=program)
    dest = tmp_path / "work"
    got = fetch(f"obs://{bucket}/jobs/app.py", dest, store.props())
    assert got == dest / "app.py"
    assert got.read_bytes() == program
    assert sorted(os.listdir(dest)) == ["app.py"]  # no temporary left
    # Fetched again (replaced), through s3a:// and cluster-default style credentials.
    creds = resolve_credentials({}, store.props())
    got2 = fetch(f"s3a://{bucket}/jobs/app.py", dest, creds)
    assert got2.read_bytes() == program


def test_fetch_missing_object_and_directory(store: Store, bucket: str, tmp_path: Path):
    with pytest.raises(ObjectStoreError, match="not found"):
        fetch(f"obs://{bucket}/nope.py", tmp_path, store.props())
    store.client().put_object(Bucket=bucket, Key="dir/x.py", Body=b"x")
    with pytest.raises(ObjectStoreError, match="directory"):
        fetch(f"obs://{bucket}/dir", tmp_path, store.props())
    with pytest.raises(ObjectStoreError, match="bucket"):
        fetch(f"obs://{bucket}", tmp_path, store.props())
    assert os.listdir(tmp_path) == []


def test_fetch_size_limit(store: Store, bucket: str, tmp_path: Path):
    store.client().put_object(Bucket=bucket, Key="big.py", Body=b"x" * 1000)
    with pytest.raises(ObjectStoreError, match="larger"):
        fetch(f"obs://{bucket}/big.py", tmp_path, store.props(), max_bytes=999)
    assert fetch(f"obs://{bucket}/big.py", tmp_path, store.props(), max_bytes=1000).is_file()


def test_fetch_wrong_secret_is_clear_and_secret_free(store: Store, bucket: str, tmp_path: Path):
    store.client().put_object(Bucket=bucket, Key="app.py", Body=b"print(1)\n")
    wrong = "WrongSecretKeyValue0123456789"
    with pytest.raises(ObjectStoreError) as ei:
        fetch(f"obs://{bucket}/app.py", tmp_path, store.props(**{"fs.obs.secret.key": wrong}))
    msg = str(ei.value)
    assert "access denied" in msg.lower()
    assert wrong not in msg and store.access_key not in msg and store.secret_key not in msg
    assert ei.value.__cause__ is None
    assert os.listdir(tmp_path) == []


def test_fetch_unreachable_endpoint(tmp_path: Path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    props = {
        "fs.obs.endpoint": f"http://127.0.0.1:{port}",
        "fs.obs.access.key": "AKVALUE123",
        "fs.obs.secret.key": "SKVALUE456",
    }
    with pytest.raises(ObjectStoreError) as ei:
        fetch("obs://bkt/app.py", tmp_path, props)
    assert "SKVALUE456" not in str(ei.value) and "AKVALUE123" not in str(ei.value)
