"""YarnClient against recorded ResourceManager REST responses (no YARN cluster here).

Every request is asserted (method, path, query, headers, JSON body) by the replay; see
tests/fixtures/recorded/README.md for where each response shape comes from.
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from support_recorded import Replay, load, serve

from mrs_jobs.domain.diagnostics import scrub
from mrs_jobs.engines.base import ClusterSpec, EngineRefused, RemoteStatus
from mrs_jobs.engines.yarn import (
    YarnClient,
    app_id_from_output,
    client_of,
    map_yarn_state,
    rm_url_of,
    submit_env,
)
from mrs_jobs.errors import InvalidParameter

APP = "application_1764460800000_0042"
RM = "http://rm.example.internal:8088"


def client(replay: Replay, **kw: object) -> YarnClient:
    return YarnClient(RM, transport=replay.transport, **kw)  # type: ignore[arg-type]


def status_of(fixture: str) -> RemoteStatus | None:
    replay = Replay(load(f"yarn/{fixture}"))
    got = client(replay).status(APP)
    replay.done()
    return got


# ------------------------------------------------------------------------------ status


@pytest.mark.parametrize(
    ("fixture", "state"),
    [
        ("app_new.json", "pending"),
        ("app_new_saving.json", "pending"),
        ("app_submitted.json", "pending"),
        ("app_accepted.json", "pending"),
        ("app_running.json", "running"),
        ("app_finished_succeeded.json", "succeeded"),
        ("app_finished_failed.json", "failed"),
        ("app_finished_undefined.json", "failed"),
        ("app_failed.json", "failed"),
        ("app_killed.json", "killed"),
    ],
)
def test_status_state_mapping(fixture, state):
    got = status_of(fixture)
    assert got is not None and got.state == state
    assert got.app_id == APP
    assert got.terminal == (state in ("succeeded", "failed", "killed"))


def test_status_running_fields():
    got = status_of("app_running.json")
    assert got == RemoteStatus(
        state="running",
        app_id=APP,
        tracking_url=f"{RM}/proxy/{APP}/",
        progress=10.0,
        message=None,
    )


def test_status_succeeded_progress_and_no_message():
    got = status_of("app_finished_succeeded.json")
    assert got is not None and got.progress == 100.0 and got.message is None


def test_status_failure_message_trimmed_and_scrubbed():
    got = status_of("app_failed.json")
    assert got is not None and got.message is not None
    assert got.message.startswith(f"Application {APP} failed 2 times")
    assert "exitCode: 13" in got.message
    assert "EXAMPLEDONOTLEAK" not in got.message  # a secret property echoed in diagnostics
    assert "fs.s3a.secret.key=******" in got.message
    assert got.message == got.message.strip()
    assert status_of("app_finished_failed.json").message.startswith(  # type: ignore[union-attr]
        "User class threw exception: org.apache.spark.sql.AnalysisException"
    )
    assert status_of("app_killed.json").message == "Application killed by user."  # type: ignore[union-attr]


def test_status_not_found_is_unknown():
    assert status_of("app_not_found.json") == RemoteStatus("unknown", app_id=APP)


@pytest.mark.parametrize("code", [500, 502, 503])
def test_status_server_error_is_none(code):
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/ws/v1/cluster/apps/{APP}"
        return httpx.Response(code, text="<html>busy</html>")

    assert YarnClient(RM, transport=httpx.MockTransport(handler)).status(APP) is None


def test_status_connection_errors_are_none():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    assert YarnClient(RM, transport=httpx.MockTransport(refuse)).status(APP) is None
    assert YarnClient(RM, transport=httpx.MockTransport(slow)).status(APP) is None
    with socket.socket() as s:  # a real closed port: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert YarnClient(f"http://127.0.0.1:{port}", timeout=1.0).status(APP) is None


def test_status_garbage_body_is_none():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"apps": None})

    assert YarnClient(RM, transport=httpx.MockTransport(handler)).status(APP) is None


def test_status_refuses_non_application_ids_without_a_request():
    replay = Replay()
    got = client(replay).status("../../cluster/info")
    assert got is not None and got.state == "unknown"
    assert replay.seen == []
    assert client(replay).kill("application_1_2/../x") is False
    assert replay.seen == []


def test_status_over_real_http_through_a_standby_redirect():
    replay = Replay(load("yarn/app_running.json"))
    with serve(replay) as active, serve(Replay(), redirect_first=active) as standby:
        got = YarnClient(standby).status(APP)
    replay.done()
    assert got is not None and got.state == "running" and got.progress == 10.0


def test_map_yarn_state_unknown_value():
    assert map_yarn_state("SOMETHING_NEW", None) == "unknown"
    assert map_yarn_state("finished", "succeeded") == "succeeded"


# -------------------------------------------------------------------------------- kill


@pytest.mark.parametrize("fixture", ["kill_accepted.json", "kill_done.json"])
def test_kill_put_state_killed(fixture):
    replay = Replay(load(f"yarn/{fixture}"))
    assert client(replay).kill(APP) is True
    replay.done()
    method, url, headers, body = replay.seen[0]
    assert (method, body) == ("PUT", b'{"state":"KILLED"}')
    assert headers["content-type"] == "application/json"


def test_kill_as_user_names_the_user():
    replay = Replay(load("yarn/kill_as_user.json"))
    assert client(replay, user="etl").kill(APP) is True
    replay.done()


def test_kill_forbidden_is_false():
    replay = Replay(load("yarn/kill_forbidden.json"))
    assert client(replay).kill(APP) is False
    replay.done()


def test_kill_over_real_http_then_status_killed():
    replay = Replay(load("yarn/kill_accepted.json"), load("yarn/app_killed.json"))
    with serve(replay) as url:
        rm = YarnClient(url)
        assert rm.kill(APP) is True
        got = rm.status(APP)
    replay.done()
    assert got is not None and got.state == "killed" and got.terminal


def test_kill_unreachable_is_false():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    assert YarnClient(RM, transport=httpx.MockTransport(refuse)).kill(APP) is False


def test_client_of_cluster_uses_yarn_user():
    replay = Replay(load("yarn/kill_as_user.json"))
    cluster = ClusterSpec("c", kind="yarn", extra={"yarn_rm_url": RM + "/", "yarn_user": "etl"})
    assert client_of(cluster, transport=replay.transport).kill(APP) is True
    replay.done()


# ----------------------------------------------------------------------------- config

SITE = """<?xml version="1.0"?>
<configuration>
{props}
</configuration>
"""


def yarn_cluster(tmp_path: Path, props: dict[str, str], **extra: str) -> ClusterSpec:
    conf = tmp_path / "hadoop-conf"
    conf.mkdir(exist_ok=True)
    body = "\n".join(
        f"  <property><name>{k}</name><value>{v}</value></property>" for k, v in props.items()
    )
    (conf / "yarn-site.xml").write_text(SITE.format(props=body))
    return ClusterSpec("c", kind="yarn", extra={"hadoop_conf_dir": str(conf), **extra})


def test_rm_url_explicit_wins(tmp_path):
    cluster = yarn_cluster(
        tmp_path, {"yarn.resourcemanager.hostname": "x"}, yarn_rm_url="https://rm:8090/"
    )
    assert rm_url_of(cluster) == "https://rm:8090"
    with pytest.raises(InvalidParameter, match="yarn_rm_url: must be an http"):
        ClusterSpec("c", kind="yarn", extra={"yarn_rm_url": "rm:8088"})  # refused when parsed


@pytest.mark.parametrize(
    ("props", "url"),
    [
        ({"yarn.resourcemanager.webapp.address": "rm1.example:18088"}, "http://rm1.example:18088"),
        ({"yarn.resourcemanager.hostname": "rm2.example"}, "http://rm2.example:8088"),
        (
            {
                "yarn.resourcemanager.hostname": "rm3.example",
                "yarn.resourcemanager.webapp.address": "${yarn.resourcemanager.hostname}:8089",
            },
            "http://rm3.example:8089",
        ),
        (
            {
                "yarn.resourcemanager.hostname": "rm4.example",
                "yarn.resourcemanager.webapp.address": "0.0.0.0:8088",
            },
            "http://rm4.example:8088",
        ),
        (
            {
                "yarn.http.policy": "HTTPS_ONLY",
                "yarn.resourcemanager.webapp.address": "rm5.example:8088",
                "yarn.resourcemanager.webapp.https.address": "rm5.example:8090",
            },
            "https://rm5.example:8090",
        ),
        (
            {"yarn.http.policy": "HTTPS_ONLY", "yarn.resourcemanager.hostname": "rm6.example"},
            "https://rm6.example:8090",
        ),
        (
            {
                "yarn.resourcemanager.ha.enabled": "true",
                "yarn.resourcemanager.ha.rm-ids": "rm1,rm2",
                "yarn.resourcemanager.hostname.rm1": "master-1.example",
                "yarn.resourcemanager.hostname.rm2": "master-2.example",
                "yarn.resourcemanager.webapp.address.rm2": "master-2.example:8088",
            },
            "http://master-1.example:8088",
        ),
    ],
)
def test_rm_url_from_yarn_site(tmp_path, props, url):
    assert rm_url_of(yarn_cluster(tmp_path, props)) == url


def test_rm_url_unknown_is_refused(tmp_path):
    with pytest.raises(EngineRefused, match="set yarn_rm_url"):
        rm_url_of(yarn_cluster(tmp_path, {"yarn.nodemanager.aux-services": "mapreduce_shuffle"}))
    with pytest.raises(EngineRefused, match="set yarn_rm_url"):
        rm_url_of(ClusterSpec("c", kind="yarn", extra={"hadoop_conf_dir": str(tmp_path / "no")}))
    with pytest.raises(EngineRefused, match="hadoop_conf_dir"):
        rm_url_of(ClusterSpec("c", kind="yarn"))


def test_submit_env(tmp_path):
    cluster = yarn_cluster(tmp_path, {})
    conf = str((tmp_path / "hadoop-conf").resolve())
    assert submit_env(cluster) == {"HADOOP_CONF_DIR": conf, "YARN_CONF_DIR": conf}
    with pytest.raises(EngineRefused, match="hadoop_conf_dir"):
        submit_env(ClusterSpec("c", kind="yarn"))


# ----------------------------------------------------------------------------- output

SPARK_SUBMIT = f"""\
26/11/30 00:43:30 INFO Client: Requesting a new application from cluster with 3 NodeManagers
26/11/30 00:43:31 INFO Client: Uploading resource file:/tmp/app.py -> hdfs://nn:8020/user/etl/.sparkStaging/{APP}/app.py
26/11/30 00:43:32 INFO Client: Submitting application {APP} to ResourceManager
26/11/30 00:43:32 INFO YarnClientImpl: Submitted application {APP}
26/11/30 00:43:33 INFO Client: Application report for {APP} (state: ACCEPTED)
"""

HADOOP_JAR = """\
26/11/30 00:50:01 INFO client.DefaultNoHARMFailoverProxyProvider: Connecting to RM at rm:8032
26/11/30 00:50:02 INFO mapreduce.JobSubmitter: Submitting tokens for job: job_1764460800000_0043
26/11/30 00:50:02 INFO impl.YarnClientImpl: Submitted application application_1764460800000_0043
26/11/30 00:50:02 INFO mapreduce.Job: The url to track the job: http://rm:8088/proxy/application_1764460800000_0043/
26/11/30 00:50:02 INFO mapreduce.Job: Running job: job_1764460800000_0043
"""


def test_app_id_from_output():
    assert app_id_from_output(SPARK_SUBMIT) == APP
    assert app_id_from_output(HADOOP_JAR) == "application_1764460800000_0043"
    only_job = "INFO mapreduce.Job: Running job: job_1764460800000_0044\n"
    assert app_id_from_output(only_job) == "application_1764460800000_0044"
    two_jobs = HADOOP_JAR + "INFO mapreduce.Job: Running job: job_1764460800000_0051\n"
    assert app_id_from_output(two_jobs) == "application_1764460800000_0051"
    assert app_id_from_output("INFO Job: Running job: job_local1668870876_0001\n") is None
    assert app_id_from_output("") is None


def test_scrub_message():
    text = "  failed: a.password=p1 token: t2 Authorization: Bearer abc.def ok=1 \n"
    assert scrub(text) == (
        "failed: a.password=****** token: ****** Authorization: Bearer ****** ok=1"
    )
    assert scrub("") is None and scrub("   ") is None
    long = scrub("x" * 5000)
    assert long is not None and len(long) == 1000 and long.endswith("...")


def test_am_log_is_the_application_masters_stderr_from_its_node() -> None:
    """The RM names the AM container and its NodeManager; its stderr's end comes from there."""
    replay = Replay(load("yarn/app_finished_failed.json"), load("yarn/am_container_log.json"))
    got = client(replay).am_log(APP)
    replay.done()
    assert got is not None and got.endswith("(reason: User application exited with status 1)\n")
    assert "ValueError: no rows for 2026-12-06" in got
    node, url = replay.seen[1][1].split("/ws/")
    assert node == "http://nm-3.example.internal:8042"  # the AM's node, from amContainerLogs


def test_am_log_as_the_configured_user_and_none_when_unknown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"RemoteException": {"message": "not found"}})

    assert YarnClient(RM, transport=httpx.MockTransport(handler)).am_log(APP) is None
    assert client(Replay()).am_log("not-an-app") is None  # no request at all
    seen: list[httpx.URL] = []
    app = load("yarn/app_finished_failed.json")["response"]["body"]

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json=app) if len(seen) == 1 else httpx.Response(200, text="x")

    assert YarnClient(RM, transport=httpx.MockTransport(answer), user="etl").am_log(APP) == "x"
    assert seen[1].params["user.name"] == "etl" and seen[1].params["size"] == "-65536"
