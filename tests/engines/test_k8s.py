"""K8sClient and the spark-submit settings of a k8s cluster, against recorded Kubernetes API
responses (no Kubernetes cluster here).

Every request is asserted (method, path, query, headers incl. the bearer token read from the
token file, JSON body) by the replay; see tests/fixtures/recorded/README.md for the shapes.
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
from pathlib import Path

import httpx
import pytest
from support_recorded import Replay, load, self_signed, serve

from mrs_jobs.engines.base import ClusterSpec, EngineRefused, RemoteStatus
from mrs_jobs.engines.k8s import (
    K8sClient,
    api_url_of,
    driver_pod_from_output,
    driver_pod_name,
    spark_app_id_from_output,
    submit_confs,
)
from mrs_jobs.errors import InvalidParameter

JOB_ID = "6a8c0f2e-1b2d-4c5e-9f00-123456789abc"
POD = "mrs-6a8c0f2e-1b2d-4c5e-9f00-123456789abc-driver"
NS = "spark-jobs"
APPSEL = "spark-5d0a6c3f8e2b4f1d9c7a0b1e2f3d4c5b"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.test-token-value.sig"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def cluster(token_file: Path) -> ClusterSpec:
    return ClusterSpec(
        "c1",
        kind="k8s",
        spark_master="k8s://https://api.k8s.example:6443",
        extra={
            "k8s_namespace": NS,
            "k8s_image": "registry.example.internal/spark:4.0.1",
            "k8s_token_file": str(token_file),
        },
    )


def extra_of(cluster: ClusterSpec) -> dict[str, str]:
    """The k8s settings of a cluster as a stored config would hold them."""
    return {k: v for k, v in vars(cluster.settings).items() if k.startswith("k8s_") and v}


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def status_of(cluster: ClusterSpec, fixture: str) -> RemoteStatus | None:
    replay = Replay(load(f"k8s/{fixture}"), extra_headers=bearer())
    got = K8sClient.from_cluster(cluster, transport=replay.transport).driver_status(POD)
    replay.done()
    return got


# ------------------------------------------------------------------------------ status


@pytest.mark.parametrize(
    ("fixture", "state"),
    [
        ("pod_pending.json", "pending"),
        ("pod_pending_image_pull.json", "pending"),
        ("pod_running.json", "running"),
        ("pod_succeeded.json", "succeeded"),
        ("pod_failed.json", "failed"),
        ("pod_oom_killed.json", "failed"),
        ("pod_evicted.json", "failed"),
        ("pod_unknown.json", "unknown"),
    ],
)
def test_driver_status_phase_mapping(cluster, fixture, state):
    got = status_of(cluster, fixture)
    assert got is not None and got.state == state
    assert got.app_id == APPSEL  # the driver pod's spark-app-selector label


def test_driver_status_messages(cluster):
    assert status_of(cluster, "pod_running.json").message is None  # type: ignore[union-attr]
    assert status_of(cluster, "pod_succeeded.json").message is None  # type: ignore[union-attr]
    assert status_of(cluster, "pod_pending.json").message == "ContainerCreating"  # type: ignore[union-attr]
    pull = status_of(cluster, "pod_pending_image_pull.json")
    assert pull is not None and pull.message is not None
    assert pull.message.startswith("ImagePullBackOff: Back-off pulling image")
    failed = status_of(cluster, "pod_failed.json")
    assert failed is not None and failed.message == "driver container Error (exit code 1)"
    oom = status_of(cluster, "pod_oom_killed.json")
    assert oom is not None and oom.message == "driver container OOMKilled (exit code 137)"
    evicted = status_of(cluster, "pod_evicted.json")
    assert evicted is not None and evicted.message is not None
    assert "Evicted: The node was low on resource: ephemeral-storage" in evicted.message
    assert "ContainerStatusUnknown (exit code 137)" in evicted.message


def test_driver_status_not_found_is_unknown(cluster):
    assert status_of(cluster, "pod_not_found.json") == RemoteStatus("unknown")


def test_driver_status_forbidden_is_none(cluster):
    assert status_of(cluster, "pod_forbidden.json") is None


@pytest.mark.parametrize("code", [500, 503])
def test_driver_status_server_error_is_none(cluster, code):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, json={"kind": "Status", "code": code})

    client = K8sClient.from_cluster(cluster, transport=httpx.MockTransport(handler))
    assert client.driver_status(POD) is None


def test_driver_status_connection_error_is_none(cluster, caplog):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    caplog.set_level(logging.DEBUG)
    client = K8sClient.from_cluster(cluster, transport=httpx.MockTransport(refuse))
    assert client.driver_status(POD) is None
    assert client.delete_driver(POD) is False
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    real = K8sClient(f"http://127.0.0.1:{port}", NS, timeout=1.0)
    assert real.driver_status(POD) is None
    assert TOKEN not in caplog.text


def test_token_read_at_call_time_and_never_shown(cluster, token_file, caplog):
    caplog.set_level(logging.DEBUG)
    replay = Replay(load("k8s/pod_running.json"), load("k8s/pod_running.json"))
    client = K8sClient.from_cluster(cluster, transport=replay.transport)
    client.driver_status(POD)
    token_file.write_text("rotated-token\n")  # a projected token is refreshed in place
    client.driver_status(POD)
    replay.done()
    auth = [headers["authorization"] for _, _, headers, _ in replay.seen]
    assert auth == [f"Bearer {TOKEN}", "Bearer rotated-token"]
    assert TOKEN not in repr(client.__dict__) and TOKEN not in caplog.text


def test_unreadable_token_file_is_none_without_the_path_content(cluster, token_file):
    token_file.unlink()
    replay = Replay()
    client = K8sClient.from_cluster(cluster, transport=replay.transport)
    assert client.driver_status(POD) is None
    assert client.delete_driver(POD) is False
    assert replay.seen == []


def test_no_token_file_sends_no_authorization(cluster):
    extra = {k: v for k, v in extra_of(cluster).items() if k != "k8s_token_file"}
    anon = ClusterSpec("c1", kind="k8s", spark_master=cluster.spark_master, extra=extra)
    replay = Replay(load("k8s/pod_running.json"), absent_headers=("Authorization",))
    assert K8sClient.from_cluster(anon, transport=replay.transport).driver_status(POD)
    replay.done()


def test_driver_status_over_real_http(cluster):
    replay = Replay(load("k8s/pod_succeeded.json"), extra_headers=bearer())
    with serve(replay) as url:
        over = ClusterSpec("c1", kind="k8s", extra={**extra_of(cluster), "k8s_api_url": url})
        got = K8sClient.from_cluster(over).driver_status(POD)
    replay.done()
    assert got is not None and got.state == "succeeded" and got.app_id == APPSEL


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
def test_tls_verified_with_the_ca_file(cluster, tmp_path):
    cert, key = self_signed(tmp_path)
    replay = Replay(load("k8s/pod_running.json"), extra_headers=bearer())
    with serve(replay, tls=(cert, key)) as url:
        trusted = {**extra_of(cluster), "k8s_api_url": url, "k8s_ca_file": str(cert)}
        got = K8sClient.from_cluster(ClusterSpec("c1", kind="k8s", extra=trusted)).driver_status(
            POD
        )
        untrusted = {**extra_of(cluster), "k8s_api_url": url}
        refused = K8sClient.from_cluster(ClusterSpec("c1", kind="k8s", extra=untrusted))
        assert refused.driver_status(POD) is None  # unknown CA: no answer, no exception
        assert refused.delete_driver(POD) is False
    replay.done()  # exactly one request got through: the trusted one
    assert got is not None and got.state == "running"


def test_bad_pod_name_makes_no_request(cluster):
    replay = Replay()
    client = K8sClient.from_cluster(cluster, transport=replay.transport)
    assert client.driver_status("../secrets/x").state == "unknown"  # type: ignore[union-attr]
    assert client.delete_driver("a/b") is False
    assert replay.seen == []


# ------------------------------------------------------------------------------ delete


def test_delete_driver(cluster):
    replay = Replay(load("k8s/pod_delete.json"), extra_headers=bearer())
    assert K8sClient.from_cluster(cluster, transport=replay.transport).delete_driver(POD)
    replay.done()
    method, _, headers, _ = replay.seen[0]
    assert method == "DELETE" and headers["content-type"] == "application/json"


def test_delete_driver_with_grace_period(cluster):
    replay = Replay(load("k8s/pod_delete_grace.json"), extra_headers=bearer())
    client = K8sClient(
        api_url_of(cluster),
        NS,
        token_file=cluster.settings.k8s_token_file,
        grace_seconds=5,
        transport=replay.transport,
    )
    assert client.delete_driver(POD)
    replay.done()


def test_delete_driver_already_gone_is_true(cluster):
    replay = Replay(load("k8s/pod_delete_not_found.json"), extra_headers=bearer())
    assert K8sClient.from_cluster(cluster, transport=replay.transport).delete_driver(POD)
    replay.done()


def test_delete_driver_forbidden_is_false(cluster):
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "DELETE"
        return httpx.Response(403, json=load("k8s/pod_forbidden.json")["response"]["body"])

    client = K8sClient.from_cluster(cluster, transport=httpx.MockTransport(handler))
    assert client.delete_driver(POD) is False


def test_delete_then_status_over_real_http(cluster):
    replay = Replay(
        load("k8s/pod_delete.json"), load("k8s/pod_not_found.json"), extra_headers=bearer()
    )
    with serve(replay) as url:
        over = ClusterSpec("c1", kind="k8s", extra={**extra_of(cluster), "k8s_api_url": url})
        client = K8sClient.from_cluster(over)
        assert client.delete_driver(POD) is True
        assert client.driver_status(POD) == RemoteStatus("unknown")
    replay.done()


# ------------------------------------------------------------------------------ submit


def conf_map(args: list[str]) -> dict[str, str]:
    assert args[::2] == ["--conf"] * (len(args) // 2) and len(args) % 2 == 0
    return dict(a.split("=", 1) for a in args[1::2])


def test_submit_confs_minimal():
    cluster = ClusterSpec(
        "c", kind="k8s", spark_master="k8s://https://h:6443", extra={"k8s_image": "img:1"}
    )
    assert submit_confs(cluster, JOB_ID) == [
        "--conf",
        "spark.kubernetes.namespace=default",
        "--conf",
        "spark.kubernetes.container.image=img:1",
        "--conf",
        f"spark.kubernetes.driver.pod.name={POD}",
        "--conf",
        "spark.kubernetes.submission.waitAppCompletion=false",
    ]


def test_submit_confs_full(cluster, token_file):
    extra = {**extra_of(cluster), "k8s_service_account": "spark", "k8s_ca_file": "/etc/k8s/ca.crt"}
    full = ClusterSpec("c1", kind="k8s", spark_master=cluster.spark_master, extra=extra)
    confs = conf_map(submit_confs(full, JOB_ID))
    assert confs == {
        "spark.kubernetes.namespace": NS,
        "spark.kubernetes.container.image": "registry.example.internal/spark:4.0.1",
        "spark.kubernetes.authenticate.driver.serviceAccountName": "spark",
        "spark.kubernetes.driver.pod.name": POD,
        "spark.kubernetes.submission.waitAppCompletion": "false",
        "spark.kubernetes.authenticate.submission.oauthTokenFile": str(token_file),
        "spark.kubernetes.authenticate.submission.caCertFile": "/etc/k8s/ca.crt",
    }
    assert TOKEN not in " ".join(submit_confs(full, JOB_ID))  # the file, never its content


def test_submit_confs_refusals(cluster):
    no_image = {k: v for k, v in extra_of(cluster).items() if k != "k8s_image"}
    # refused when the cluster's settings are parsed, before any job is built
    with pytest.raises(InvalidParameter, match="k8s_image: is required"):
        ClusterSpec("c", kind="k8s", extra=no_image)
    bad_ns = {**extra_of(cluster), "k8s_namespace": "Spark_Jobs"}
    with pytest.raises(InvalidParameter, match="k8s_namespace: must be a DNS-1123 label"):
        ClusterSpec("c", kind="k8s", extra=bad_ns)


@pytest.mark.parametrize(
    "job_id",
    [JOB_ID, "JOB_42", "x" * 200, "--", "a.b.c", "9" * 62, "Ünïcode-ID"],
)
def test_driver_pod_name_is_dns_label(job_id):
    name = driver_pod_name(job_id)
    assert len(name) <= 63
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name), name
    assert name == driver_pod_name(job_id)  # deterministic
    assert name.startswith("mrs-") and name.endswith("-driver")


def test_driver_pod_names_differ_per_job():
    assert driver_pod_name("job-1") != driver_pod_name("job-2")


def test_api_url_of():
    def spec(master: str, **extra: str) -> ClusterSpec:
        return ClusterSpec("c", kind="k8s", spark_master=master, extra={"k8s_image": "i", **extra})

    assert api_url_of(spec("k8s://https://h:6443")) == "https://h:6443"
    assert api_url_of(spec("k8s://h:6443")) == "https://h:6443"  # Spark's default scheme
    assert api_url_of(spec("k8s://https://h:6443", k8s_api_url="https://proxy/k8s/")) == (
        "https://proxy/k8s"
    )
    with pytest.raises(EngineRefused, match="k8s_api_url"):
        api_url_of(spec("local[2]"))
    with pytest.raises(EngineRefused, match="http"):
        api_url_of(spec("k8s://ftp://h"))


# ------------------------------------------------------------------------------ output

SUBMIT_OUT = "\n".join(
    [
        "26/11/30 00:43:29 INFO SparkKubernetesClientFactory: Auto-configuring K8S client "
        "using current context from users K8S config file",
        "26/11/30 00:43:31 INFO LoggingPodStatusWatcherImpl: State changed, new state:",
        f"\t pod name: {POD}",
        f"\t namespace: {NS}",
        f"\t labels: spark-app-name -> daily-aggregates, spark-app-selector -> {APPSEL}, "
        "spark-role -> driver, spark-version -> 4.0.1",
        "\t phase: Pending",
        "26/11/30 00:43:31 INFO Client: Deployed Spark application daily-aggregates with "
        f"application ID {APPSEL} and submission ID {NS}:{POD} into Kubernetes",
        "26/11/30 00:43:31 INFO ShutdownHookManager: Shutdown hook called",
        "",
    ]
)


def test_driver_pod_and_app_id_from_output():
    assert driver_pod_from_output(SUBMIT_OUT) == POD
    watcher_only = SUBMIT_OUT.split("26/11/30 00:43:31 INFO Client")[0]
    assert driver_pod_from_output(watcher_only) == POD
    assert spark_app_id_from_output(SUBMIT_OUT) == APPSEL
    assert driver_pod_from_output("nothing here\n") is None
    assert spark_app_id_from_output("") is None


def test_driver_log_is_the_driver_containers_tail(cluster):
    replay = Replay(load("k8s/pod_log.json"), extra_headers=bearer())
    got = K8sClient.from_cluster(cluster, transport=replay.transport).driver_log(POD)
    replay.done()
    assert got is not None and "ValueError: no rows for 2026-12-06" in got


def test_driver_log_of_a_gone_pod_is_none(cluster):
    replay = Replay(load("k8s/pod_not_found.json"), extra_headers=bearer())
    want = replay.pending[0]["request"]
    want["path"] += "/log"
    want["query"] = {"container": "spark-kubernetes-driver", "tailLines": "2000"}
    want["headers"] = {"Accept": "*/*"}  # a log is text: JSON is not asked for
    assert K8sClient.from_cluster(cluster, transport=replay.transport).driver_log(POD) is None
    assert K8sClient.from_cluster(cluster, transport=Replay().transport).driver_log("Bad_") is None
