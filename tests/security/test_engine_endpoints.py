"""Engine endpoints only for their owners (issue 13).

Jobs keep the host's network, so whatever an engine opens on loopback is reachable by every
local process, the jobs of other projects included. Each endpoint must authenticate or be
unable to do harm:

- a cluster's Spark Thrift Server wants the cluster's password (Hive CUSTOM authentication);
- Spark UIs have no working kill links, and a local driver's RPC ports want Spark's
  per-application secret (``spark.authenticate``);
- a local Flink mini-cluster's REST endpoint wants the job's client certificate (mutual TLS).

The first group checks what the engines are given (no engine runs); the ``spark`` and
``flink`` ones attack real endpoints of a real server's jobs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import stat
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support_flink import job as flink_job
from support_flink import make_fake_flink

from mrs_jobs.engines.base import ClusterSpec, JobSpec, LaunchSpec
from mrs_jobs.engines.flink import FlinkEngine, rest_port_from_log
from mrs_jobs.engines.flink_conf import (
    REST_CLIENT_PEM,
    REST_TLS_STORE,
    read_flink_config,
    rest_client_context,
)
from mrs_jobs.engines.flink_rest import rest
from mrs_jobs.engines.install import EngineInstallError, install_flink
from mrs_jobs.engines.java import find_java_home, find_spark_home
from mrs_jobs.engines.java_auth import AUTH_CLASS, AUTH_JAR, AUTH_SOURCE
from mrs_jobs.engines.spark import SparkSubmitEngine
from mrs_jobs.engines.thrift import SECRET_FILE, SQL_USER, ThriftServers
from mrs_jobs.runtime.process import ProcessHandle, read_start_ticks

_ACCEPTANCE = Path(__file__).resolve().parent.parent / "acceptance"
if str(_ACCEPTANCE) not in sys.path:
    sys.path.insert(0, str(_ACCEPTANCE))

from mrs_acceptance import (  # noqa: E402
    RunningServer,
    marked_processes,
    start_server,
    stop_server,
    wait_until,
)

REPO = Path(__file__).resolve().parents[2]
ENGINES_DIR = Path(os.environ.get("MRS_JOBS_TEST_ENGINES_DIR", str(REPO / ".cache" / "engines")))
DONE = frozenset({"FINISHED", "FAILED", "KILLED"})
CLUSTER = ClusterSpec(cluster_id="c1")


def _confs(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--conf"]


def _spark_job(arguments: list[str], properties: dict[str, str] | None = None) -> JobSpec:
    return JobSpec(
        job_id="j1",
        job_type="SparkSubmit",
        job_name="t",
        arguments=arguments,
        properties=properties or {},
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ----------------------------------------------------------------- what engines are given


def test_spark_ui_kill_links_stay_off_whatever_the_job_asks(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("print(1)\n")
    spec = SparkSubmitEngine().build(
        _spark_job(
            ["--conf", "spark.ui.killEnabled=true", "-c", "spark.authenticate=false", str(app)],
            {"spark.ui.killEnabled": "true", "spark.authenticate": "false"},
        ),
        CLUSTER,
        tmp_path / "wd",
    )
    confs = _confs(spec.argv)
    assert [c for c in confs if c.startswith("spark.ui.killEnabled=")] == [
        "spark.ui.killEnabled=false"
    ]
    # local master: the driver's RPC ports authenticate (Spark makes the secret itself)
    assert [c for c in confs if c.startswith("spark.authenticate=")] == ["spark.authenticate=true"]
    assert "ignored --conf spark.ui.killEnabled: set by the service" in spec.notes
    assert "ignored --conf spark.authenticate: set by the service" in spec.notes


def test_spark_authenticate_is_the_users_on_masters_that_need_a_configured_secret(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app.py"
    app.write_text("print(1)\n")
    cluster = ClusterSpec(
        cluster_id="c2", kind="spark-standalone", spark_master="spark://127.0.0.1:7077"
    )
    spec = SparkSubmitEngine().build(
        _spark_job(["--conf", "spark.authenticate=true", str(app)]), cluster, tmp_path / "wd"
    )
    confs = _confs(spec.argv)
    assert confs.count("spark.authenticate=true") == 1  # the user's, passed on
    assert "spark.ui.killEnabled=false" in confs


def _capture_launch(servers: ThriftServers) -> list[LaunchSpec]:
    launched: list[LaunchSpec] = []

    def launch(job_dir: Path, spec: LaunchSpec, **_: object) -> ProcessHandle:
        launched.append(spec)
        return ProcessHandle(os.getpid(), read_start_ticks(os.getpid()) or 0)

    servers.table.launch = launch  # type: ignore[method-assign]
    return launched


def test_thrift_server_requires_the_cluster_password_never_shown(tmp_path: Path) -> None:
    if find_java_home() is None or find_spark_home() is None:
        pytest.skip("no Java or pyspark")
    servers = ThriftServers(tmp_path / "clusters", "m")
    launched = _capture_launch(servers)
    endpoint = servers._start(CLUSTER, servers.directory("c1"))
    secret_file = servers.directory("c1") / SECRET_FILE
    password = secret_file.read_text()
    assert len(password) >= 43 and _mode(secret_file) == 0o600
    assert (endpoint.user, endpoint.password) == (SQL_USER, password)
    assert password not in repr(endpoint)
    spec = launched[0]
    assert password not in json.dumps([spec.argv, spec.env])
    confs = _confs(spec.argv)
    assert "spark.hadoop.hive.server2.authentication=CUSTOM" in confs
    assert f"spark.hadoop.hive.server2.custom.authentication.class={AUTH_CLASS}" in confs
    assert "spark.ui.killEnabled=false" in confs and "spark.authenticate=true" in confs
    java_opts = next(c for c in confs if c.startswith("spark.driver.defaultJavaOptions="))
    assert f"-Dmrs.jobs.sql.password.file={secret_file}" in java_opts
    assert f"-Dhive.server2.custom.authentication.class={AUTH_CLASS}" in java_opts
    class_path = next(c for c in confs if c.startswith("spark.driver.extraClassPath="))
    jar = Path(class_path.partition("=")[2])
    assert jar.read_bytes() == AUTH_JAR.read_bytes() and jar.is_relative_to(tmp_path)
    # The next start of the same cluster's server keeps its password.
    assert servers._start(CLUSTER, servers.directory("c1")).password == password


def test_a_server_running_without_the_secret_is_replaced(tmp_path: Path, monkeypatch) -> None:
    """A server started before servers authenticated (still running after an upgrade) must
    not be handed to jobs: it is stopped and a new one started."""
    servers = ThriftServers(tmp_path / "clusters", "m")
    directory = servers.directory("c1")
    directory.mkdir(parents=True)
    old = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        ticks = read_start_ticks(old.pid)
        state = {"pid": old.pid, "start_ticks": ticks, "port": 1, "ui_port": 2}
        (directory / "state.json").write_text(json.dumps(state))
        assert servers.running("c1") is None
        assert servers.known_clusters() == ["c1"]  # still stopped when idle
        started: list[str] = []
        monkeypatch.setattr(
            servers, "_start", lambda cluster, d: started.append(cluster.cluster_id) or "new"
        )
        assert servers.ensure(CLUSTER) == "new"
        assert started == ["c1"]
        assert old.wait(10) is not None  # the unauthenticated server was stopped
    finally:
        if old.poll() is None:
            old.kill()
            old.wait()


def test_flink_local_rest_wants_the_jobs_client_certificate(tmp_path: Path) -> None:
    home = make_fake_flink(tmp_path / "flink")
    (tmp_path / "job.py").write_text("print(1)\n")
    wd = tmp_path / "wd"
    launch = FlinkEngine(flink_home=str(home)).build(
        flink_job(
            [
                "run",
                "-Dweb.cancel.enable=true",
                "-Dsecurity.ssl.rest.enabled=false",
                "-Dsecurity.ssl.rest.authentication-enabled=false",
                "-Dsecurity.ssl.rest.truststore=/tmp/mine.p12",
                "-py",
                str(tmp_path / "job.py"),
            ],
            {"web.submit.enable": "true"},
        ),
        CLUSTER,
        wd,
    )
    conf_dir = wd / "flink-conf"
    config = read_flink_config(conf_dir / "config.yaml")
    store = str(conf_dir / REST_TLS_STORE)
    assert config["security.ssl.rest.enabled"] is True
    assert config["security.ssl.rest.authentication-enabled"] is True
    assert config["security.ssl.rest.keystore"] == config["security.ssl.rest.truststore"] == store
    assert config["web.submit.enable"] is False and config["web.cancel.enable"] is False
    assert config["rest.bind-address"] == "127.0.0.1"
    for name in (REST_TLS_STORE, REST_CLIENT_PEM, "config.yaml"):
        assert _mode(conf_dir / name) == 0o600
    password = str(config["security.ssl.rest.keystore-password"])
    assert password not in " ".join(launch.argv) + json.dumps(launch.env)
    # The user's -D and properties cannot loosen it.
    assert not [a for a in launch.argv if a.startswith(("-Dweb.", "-Dsecurity."))]
    assert sum("set by the service" in n for n in launch.notes) == 5
    assert json.loads((wd / "engine.json").read_text())["rest_tls"] is True
    assert isinstance(rest_client_context(conf_dir), ssl.SSLContext)
    # A second job gets its own key pair.
    FlinkEngine(flink_home=str(home)).build(
        flink_job(["run", "-py", str(tmp_path / "job.py")]), CLUSTER, tmp_path / "wd2"
    )
    other = (tmp_path / "wd2" / "flink-conf" / REST_CLIENT_PEM).read_bytes()
    assert other != (conf_dir / REST_CLIENT_PEM).read_bytes()


def test_the_authenticator_jar_is_built_from_its_source(tmp_path: Path) -> None:
    """The committed jar holds the class compiled from the committed source: byte for byte
    when this javac is the one that built it (the jar's manifest says which), else at least
    a class with the interface's method."""
    from mrs_jobs.engines.java_auth.build import CLASS_ENTRY, compile_class, javac_version

    javac = shutil.which("javac")
    spark_home = find_spark_home()
    if javac is None or spark_home is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must have a JDK and pyspark")
        pytest.skip("no javac (JDK) or pyspark")
    built = compile_class(spark_home, AUTH_SOURCE, javac)
    with zipfile.ZipFile(AUTH_JAR) as jar:
        shipped = jar.read(CLASS_ENTRY)
        manifest = jar.read("META-INF/MANIFEST.MF").decode()
    if f"Created-By: {javac_version(javac)}" in manifest:
        assert built == shipped, "rebuild the jar: scripts/build-java-auth"
    javap = Path(javac).resolve().parent / "javap"
    (tmp_path / CLASS_ENTRY).parent.mkdir(parents=True)
    (tmp_path / CLASS_ENTRY).write_bytes(shipped)
    shown = subprocess.run(
        [str(javap), "-cp", str(tmp_path), AUTH_CLASS], capture_output=True, text=True, check=True
    ).stdout
    assert "implements org.apache.hive.service.auth.PasswdAuthenticationProvider" in shown
    assert "public void Authenticate(java.lang.String, java.lang.String)" in shown
    assert struct.unpack(">H", shipped[6:8])[0] == 55  # class file of Java 11: runs on a JRE 11


# ------------------------------------------------------------------------ real endpoints


@pytest.fixture(scope="module")
def spark_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    if find_java_home() is None:
        pytest.skip("no Java")
    srv = start_server(tmp_path_factory.mktemp("endpoints"))
    try:
        yield srv
    finally:
        stop_server(srv)


def _hive(port: int, **kwargs: object) -> list:
    from pyhive import hive

    conn = hive.connect(host="127.0.0.1", port=port, **kwargs)
    try:
        cursor = conn.cursor()
        cursor.execute("SHOW TABLES")
        return cursor.fetchall()
    finally:
        conn.close()


def _cmdlines() -> str:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                out.append(Path(f"/proc/{name}/cmdline").read_bytes().decode(errors="replace"))
            except OSError:
                pass
    return "\n".join(out)


@pytest.mark.spark
@pytest.mark.timeout(400)
def test_thrift_server_refuses_callers_without_the_cluster_password(
    spark_server: RunningServer,
) -> None:
    job_id = spark_server.submit(
        [
            "CREATE TABLE IF NOT EXISTS ep_t (x int); INSERT INTO ep_t VALUES (7);"
            " SELECT x FROM ep_t"
        ],
        name="sql",
        job_type="SparkSql",
    )
    detail = spark_server.wait_state(job_id, DONE, 240)
    assert detail.job_result == "SUCCEEDED"
    assert "7" in (spark_server.job_dir(job_id) / "stdout.log").read_text()
    assert not (spark_server.job_dir(job_id) / "sql.json").exists()

    sql_dir = spark_server.data_dir / "clusters" / spark_server.cluster_id / "sql"
    port = json.loads((sql_dir / "state.json").read_text())["port"]
    secret_file = sql_dir / SECRET_FILE
    assert _mode(secret_file) == 0o600
    password = secret_file.read_text().strip()

    refused: list[str] = []
    for attempt in (
        {"username": "mrs", "auth": "NONE"},
        {"username": "anyone"},
        {"username": "mrs", "auth": "NOSASL"},
        {"username": "mrs", "auth": "CUSTOM", "password": "wrong"},
        {"username": "mrs", "auth": "CUSTOM", "password": password[:-1]},
        {"username": "admin", "auth": "CUSTOM", "password": password},
    ):
        try:
            _hive(port, **attempt)
        except Exception as exc:  # Thrift's transport error: the login was refused
            refused.append(type(exc).__name__)
        else:
            pytest.fail(f"the SQL server answered {attempt.get('username')}/{attempt.get('auth')}")
    assert len(refused) == 6
    # The same server still answers its cluster's user: the refusals were authentication.
    assert ("ep_t",) in [tuple(r[1:2]) for r in _hive(port, **_owner(password))]

    # The password is in no command line, no log, no job file.
    assert password not in _cmdlines()
    for path in [spark_server.stdout_path, spark_server.stderr_path, *sql_dir.glob("*.log")]:
        assert password not in path.read_text(errors="replace"), path
    for path in spark_server.job_dir(job_id).rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path


def _owner(password: str) -> dict[str, object]:
    return {"username": SQL_USER, "auth": "CUSTOM", "password": password}


SLOW_APP = """\
import time
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("endpoint-slow").getOrCreate()
total = spark.sparkContext.parallelize(range(4), 2).map(lambda x: (time.sleep(20), x)[1]).sum()
print("SLOW-RESULT", total, flush=True)
spark.stop()
"""


def _ui(url: str, body: bytes | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _kill_through_the_ui(base: str) -> list[int]:
    """What any local process can do: read a page's kill form (Spark 4 puts a CSRF token in
    it) and post it, for job 0 and stage 0; also with a made-up token."""
    statuses = []
    for page, action in (("/jobs/", "/jobs/job/kill/"), ("/stages/", "/stages/stage/kill/")):
        _, html = _ui(base + page)
        tokens = set(re.findall(r'name="csrfToken" value="([0-9a-f]+)"', html)) | {"0" * 32}
        for token in sorted(tokens):
            form = urllib.parse.urlencode({"id": "0", "csrfToken": token}).encode()
            statuses.append(_ui(base + action, form)[0])
        statuses.append(_ui(f"{base}{action}?id=0")[0])
    return statuses


def _listening_ports(pids: set[int]) -> set[int]:
    """TCP ports in LISTEN state whose socket belongs to one of ``pids``."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _spark_rpc_probe(port: int) -> bytes:
    """Send an unauthenticated Spark RPC request (a frame: length, type 3 = RpcRequest, request
    id, body) and return what comes back. A port that runs it answers with a Java
    deserialisation error; one that wants authentication asks for SASL (or hangs up)."""
    body = b"\0" * 16
    payload = struct.pack(">bqi", 3, 42, len(body)) + body
    frame = struct.pack(">q", 8 + len(payload)) + payload
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(frame)
            return sock.recv(65536)
    except OSError:
        return b""


@pytest.mark.spark
@pytest.mark.timeout(300)
def test_spark_ui_kill_links_kill_nothing_and_rpc_ports_want_the_apps_secret(
    spark_server: RunningServer, tmp_path: Path
) -> None:
    app = tmp_path / "slow.py"
    app.write_text(SLOW_APP)
    job_id = spark_server.submit([str(app)], name="slow")
    spark_server.wait_state(job_id, {"RUNNING"}, 120)
    ui_port = json.loads((spark_server.job_dir(job_id) / "engine.json").read_text())["ui_port"]
    base = f"http://127.0.0.1:{ui_port}"

    def active_stage() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/api/v1/applications", timeout=2) as resp:
                app_id = json.loads(resp.read())[0]["id"]
            url = f"{base}/api/v1/applications/{app_id}/stages?status=active"
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(json.loads(resp.read()))
        except (OSError, ValueError, IndexError, KeyError):
            return False

    wait_until("the slow stage to run", active_stage, 60, 0.3)
    _kill_through_the_ui(base)
    # The pages themselves stay readable on loopback (documented), without kill forms.
    status, html = _ui(base + "/jobs/")
    assert status == 200 and "job-0" in html and "/jobs/job/kill/" not in html

    ports = _listening_ports(set(marked_processes(job_id))) - {ui_port}
    answers = {port: _spark_rpc_probe(port) for port in ports}
    unauthenticated = [p for p, a in answers.items() if b"ObjectInputStream" in a]
    assert not unauthenticated, f"ports that run unauthenticated Spark RPC: {unauthenticated}"
    assert any(b"SaslMessage" in a for a in answers.values()), answers

    detail = spark_server.wait_state(job_id, DONE, 120)
    assert (detail.job_state, detail.job_result) == ("FINISHED", "SUCCEEDED")
    assert "SLOW-RESULT 6" in (spark_server.job_dir(job_id) / "stdout.log").read_text()


@pytest.fixture(scope="module")
def flink_home() -> str:
    if find_java_home() is None:
        pytest.skip("no Java")
    try:
        return str(install_flink(ENGINES_DIR))
    except EngineInstallError as exc:
        if exc.network and os.environ.get("CI") != "true":
            pytest.skip(f"Flink could not be downloaded: {exc}")
        raise


@pytest.fixture(scope="module")
def flink_server(flink_home: str, tmp_path_factory) -> Iterator[RunningServer]:
    srv = start_server(
        tmp_path_factory.mktemp("endpoints-flink"), {"MRS_JOBS_FLINK_HOME": flink_home}
    )
    try:
        yield srv
    finally:
        stop_server(srv)


def _flink_call(url: str, method: str, context: ssl.SSLContext | None = None) -> str:
    """What a caller without the job's certificate gets: a status, or the refusal."""
    req = urllib.request.Request(url, method=method, data=b"x" if method == "POST" else None)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(req, timeout=5) as resp:
            return str(resp.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except (OSError, ssl.SSLError) as exc:
        return f"refused: {type(exc).__name__}"


@pytest.mark.flink
@pytest.mark.timeout(400)
def test_flink_mini_cluster_rest_refuses_other_local_processes(
    flink_server: RunningServer, flink_home: str, tmp_path: Path
) -> None:
    from huaweicloudsdkmrs.v2 import StopJobRequest
    from support_jobs import build_flink_jar

    jar = build_flink_jar(flink_home, find_java_home() or "/usr", tmp_path)
    if jar is None:
        pytest.skip("no JDK")
    job_id = flink_server.submit(["run", str(jar), "sleep"], name="flinkep", job_type="Flink")
    detail = flink_server.wait_state(job_id, {"RUNNING"}, 120)
    flink_id = wait_until(
        "the Flink job id", lambda: flink_server.show(job_id).app_id or None, 60, 0.3
    )
    assert re.fullmatch(r"[0-9a-f]{32}", flink_id)
    job_dir = flink_server.job_dir(job_id)
    lo, hi = json.loads((job_dir / "engine.json").read_text())["rest_ports"]
    port = wait_until(
        "the REST port in the log", lambda: rest_port_from_log(job_dir / "flink-log", lo, hi), 60
    )

    no_cert = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    no_cert.check_hostname = False
    no_cert.verify_mode = ssl.CERT_NONE
    attacks = {}
    for scheme, context in (("http", None), ("https", no_cert)):
        base = f"{scheme}://127.0.0.1:{port}"
        attacks[f"{scheme} cancel"] = _flink_call(
            f"{base}/jobs/{flink_id}?mode=cancel", "PATCH", context
        )
        attacks[f"{scheme} upload"] = _flink_call(f"{base}/jars/upload", "POST", context)
        attacks[f"{scheme} stop"] = _flink_call(f"{base}/jobs/{flink_id}/stop", "POST", context)
        attacks[f"{scheme} shutdown"] = _flink_call(f"{base}/cluster", "DELETE", context)
    assert not [a for a, result in attacks.items() if result.startswith("2")], attacks

    # The job's own certificate (what the service uses) is let in; the job still runs.
    time.sleep(2)
    context = rest_client_context(job_dir / "flink-conf")
    assert context is not None
    status, answer = rest(f"https://127.0.0.1:{port}/jobs/{flink_id}", 5, context=context)
    assert status == 200 and answer["state"] == "RUNNING", (status, answer)
    detail = flink_server.show(job_id)
    assert detail.job_state == "RUNNING"
    assert (detail.tracking_url or "").startswith("https://127.0.0.1:")

    flink_server.client().stop_job(
        StopJobRequest(cluster_id=flink_server.cluster_id, job_execution_id=job_id)
    )
    assert flink_server.wait_state(job_id, {"KILLED"}, 60).job_result == "KILLED"
