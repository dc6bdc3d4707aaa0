"""A real Flink standalone session cluster for tests, and a job jar made for it.

``FlinkCluster.start`` runs the installed Flink's ``bin/start-cluster.sh`` (one jobmanager, one
taskmanager with two slots) with a generated ``FLINK_CONF_DIR``: everything on 127.0.0.1, a free
REST port (never 8081, which Spark's worker UI uses) and a free RPC port, small memory, and its
own log, pid and tmp dirs, so several test modules (and workers) can each run one. It waits
until ``/overview`` shows a taskmanager with free slots. ``stop`` runs ``stop-cluster.sh`` and
then kills by the pids the daemons recorded, never by name.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrs_jobs.engines.flink_conf import read_flink_config
from mrs_jobs.engines.java import find_java_home

__all__ = ["REMOTE_JOB", "FlinkCluster", "build_remote_jar", "free_port", "rest_json"]

# mrs-remote.jar, Main-Class MrsRemote, first argument the mode:
#   sum       bounded: 1..100 doubled and summed (prints "mrs-sum=10100" on the taskmanager)
#   slow N    bounded, ~N/4 s: a fast source vertex, then a slow keyed map (progress moves)
#   taskfail  bounded: a task throws IllegalStateException("mrs-remote-task-failure")
#   mainfail  the client's main() throws before anything is submitted
#   sleep     unbounded: runs until cancelled
REMOTE_JOB = """
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

public class MrsRemote {
    public static void main(String[] args) throws Exception {
        String mode = args.length > 0 ? args[0] : "sum";
        if (mode.equals("mainfail")) {
            throw new IllegalStateException("mrs-remote-main-failure");
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        if (mode.equals("sleep")) {
            env.fromSequence(1, Long.MAX_VALUE)
                .map(x -> { Thread.sleep(200); return x; }).returns(Types.LONG)
                .map(x -> "mrs-tick=" + x).returns(Types.STRING)
                .print();
        } else if (mode.equals("slow")) {
            long n = args.length > 1 ? Long.parseLong(args[1]) : 40;
            env.fromSequence(1, n)
                .keyBy(x -> x % 2)
                .map(x -> { Thread.sleep(500); return x; }).returns(Types.LONG)
                .map(x -> "mrs-slow=" + x).returns(Types.STRING)
                .print();
        } else if (mode.equals("taskfail")) {
            env.fromSequence(1, 100)
                .map(x -> {
                    if (x == 50) {
                        throw new IllegalStateException("mrs-remote-task-failure");
                    }
                    return x;
                }).returns(Types.LONG)
                .print();
        } else {
            env.fromSequence(1, 100)
                .map(x -> x * 2).returns(Types.LONG)
                .keyBy(x -> 0L).reduce((a, b) -> a + b).returns(Types.LONG)
                .map(x -> "mrs-sum=" + x).returns(Types.STRING)
                .print();
        }
        env.execute("mrs-remote-" + mode);
    }
}
"""

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rest_json(url: str, method: str = "GET", timeout: float = 3.0) -> tuple[int, Any]:
    """(status, JSON body or None) of a REST call; status 0 when nothing answered."""
    req = urllib.request.Request(url, method=method)
    try:
        with _NO_PROXY.open(req, timeout=timeout) as r:
            body = r.read()
            return r.status, json.loads(body) if body else None
    except urllib.error.HTTPError as e:
        return e.code, None
    except (OSError, ValueError):
        return 0, None


def build_remote_jar(flink_home: str, base: Path) -> Path | None:
    """Compile REMOTE_JOB against the Flink distribution; None without a JDK."""
    java_home = find_java_home()
    javac = Path(java_home or "/usr") / "bin" / "javac"
    jar_tool = Path(java_home or "/usr") / "bin" / "jar"
    if not javac.is_file() or not jar_tool.is_file():
        found_javac, found_jar = shutil.which("javac"), shutil.which("jar")
        if not found_javac or not found_jar:
            return None
        javac, jar_tool = Path(found_javac), Path(found_jar)
    base.mkdir(parents=True, exist_ok=True)
    (base / "MrsRemote.java").write_text(REMOTE_JOB)
    classes = base / "classes"
    cp = str(Path(flink_home) / "lib" / "*")
    subprocess.run(
        [str(javac), "-nowarn", "-d", str(classes), "-cp", cp, str(base / "MrsRemote.java")],
        check=True,
        timeout=180,
        capture_output=True,
    )
    jar = base / "mrs-remote.jar"
    subprocess.run(
        [str(jar_tool), "cfe", str(jar), "MrsRemote", "-C", str(classes), "."],
        check=True,
        timeout=60,
    )
    return jar


@dataclass
class FlinkCluster:
    """One running standalone session cluster; ``address`` is its REST ``host:port``."""

    flink_home: str
    base: Path
    rest_port: int
    env: dict[str, str]
    startup_s: float = 0.0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.rest_port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def job(self, job_id: str) -> dict | None:
        """``GET /jobs/<id>``: the cluster's own view of a job."""
        status, body = rest_json(f"{self.url}/jobs/{job_id}")
        return body if status == 200 and isinstance(body, dict) else None

    def state(self, job_id: str) -> str | None:
        detail = self.job(job_id)
        return None if detail is None else detail.get("state")

    def wait_state(self, job_id: str, states: set[str], timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.state(job_id)
            if state in states:
                return state
            time.sleep(0.2)
        return state

    def cancel(self, job_id: str) -> bool:
        status, _ = rest_json(f"{self.url}/jobs/{job_id}?mode=cancel", "PATCH")
        return status in (200, 202)

    def running_jobs(self) -> list[str]:
        _, body = rest_json(f"{self.url}/jobs")
        jobs = body.get("jobs", []) if isinstance(body, dict) else []
        return [j["id"] for j in jobs if j.get("status") in ("RUNNING", "CREATED", "RESTARTING")]

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(
            f"== {p.name}\n" + p.read_text(errors="replace")[-tail:]
            for p in sorted((self.base / "log").glob("*"))
        )

    @classmethod
    def start(cls, flink_home: str, base: Path, timeout: float = 120.0) -> FlinkCluster:
        java_home = find_java_home()
        if java_home is None:
            raise RuntimeError("no Java")
        conf, log, pids, tmp = (base / n for n in ("conf", "log", "pids", "tmp"))
        for d in (conf, log, pids, tmp):
            d.mkdir(parents=True, exist_ok=True)
        dist = Path(flink_home) / "conf"
        for entry in dist.iterdir():
            if entry.is_file() and entry.name not in ("config.yaml", "flink-conf.yaml"):
                shutil.copyfile(entry, conf / entry.name)
        (conf / "masters").write_text("localhost\n")
        (conf / "workers").write_text("localhost\n")
        rest_port = free_port()
        while rest_port == 8081:
            rest_port = free_port()
        settings = read_flink_config(dist / "config.yaml")
        settings.update(
            {
                "jobmanager.rpc.address": "127.0.0.1",
                "jobmanager.rpc.port": free_port(),
                "jobmanager.bind-host": "127.0.0.1",
                "taskmanager.bind-host": "127.0.0.1",
                "taskmanager.host": "127.0.0.1",
                "jobmanager.memory.process.size": "1024m",
                "taskmanager.memory.process.size": "1024m",
                "taskmanager.numberOfTaskSlots": 2,
                "parallelism.default": 1,
                "restart-strategy.type": "none",  # a failing task fails its job at once
                "rest.address": "127.0.0.1",
                "rest.bind-address": "127.0.0.1",
                "rest.port": rest_port,
                "io.tmp.dirs": str(tmp),
                "web.tmpdir": str(tmp),
            }
        )
        lines = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in settings.items()]
        (conf / "config.yaml").write_text("\n".join(lines) + "\n")
        env = {
            "PATH": f"{java_home}/bin:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(base),
            "JAVA_HOME": java_home,
            "FLINK_HOME": flink_home,
            "FLINK_CONF_DIR": str(conf),
            "FLINK_LOG_DIR": str(log),
            "FLINK_PID_DIR": str(pids),
        }
        cluster = cls(flink_home=flink_home, base=base, rest_port=rest_port, env=env)
        t0 = time.monotonic()
        try:
            subprocess.run(
                [str(Path(flink_home) / "bin" / "start-cluster.sh")],
                env=env,
                cwd=base,
                check=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
            deadline = t0 + timeout
            while True:
                _, overview = rest_json(f"{cluster.url}/overview", timeout=2.0)
                if (
                    isinstance(overview, dict)
                    and overview.get("taskmanagers", 0) >= 1
                    and overview.get("slots-available", 0) >= 1
                ):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the Flink cluster did not come up:\n{cluster.logs()}")
                time.sleep(0.5)
        except BaseException:
            cluster.stop()
            raise
        cluster.startup_s = time.monotonic() - t0
        return cluster

    def stop(self) -> None:
        subprocess.run(
            [str(Path(self.flink_home) / "bin" / "stop-cluster.sh")],
            env=self.env,
            cwd=self.base,
            timeout=120,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        # whatever stop-cluster.sh left behind, by the pids its daemons recorded
        for pid_file in (self.base / "pids").glob("*.pid"):
            for word in pid_file.read_text().split():
                if word.isdigit() and _is_ours(int(word), self.base):
                    try:
                        os.kill(int(word), signal.SIGKILL)
                    except ProcessLookupError:
                        pass


def _is_ours(pid: int, base: Path) -> bool:
    """Whether ``pid`` is still a JVM of this cluster (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(base).encode() in cmdline
