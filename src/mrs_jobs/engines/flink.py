"""The ``Flink`` engine: an MRS Flink command line → a ``flink run`` argv, and the job back.

Only ``run`` is accepted; the deployment target is the cluster's (``flink_args``). With a
``flink_jobmanager`` (kind ``flink-remote``) the client submits with ``-d -t remote`` and exits
(a detached launch): the printed Flink job id is the app id, followed and cancelled through the
jobmanager's REST API (``flink_rest``), so a restarted service re-attaches by id. Otherwise a
mini-cluster runs inside the client; its REST endpoint is on a loopback port chosen here (never
8081, which Spark's worker UI uses) and answers only the job's own client certificate
(``flink_conf``), so other local processes cannot cancel the job or shut it down.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mrs_jobs.engines.base import (
    ClusterSpec,
    EngineRefused,
    JobSpec,
    LaunchSpec,
    Observation,
    RemoteStatus,
    Usage,
)
from mrs_jobs.engines.flink_args import (
    Translated,
    is_secret_key,
    localize_jar,
    parse_flink_run,
    translate_options,
)
from mrs_jobs.engines.flink_conf import (
    REST_PORTS,
    rest_client_context,
    write_job_config,
)
from mrs_jobs.engines.flink_rest import (
    STATES,
    cancel_job,
    job_exceptions,
    progress_of_job,
    remote_status,
    rest,
    tracking_url,
)
from mrs_jobs.engines.install import find_flink_home, flink_python_of
from mrs_jobs.engines.kit import RemoteEngine, job_dirs, launch_env, require_java
from mrs_jobs.engines.paths import InputRoots
from mrs_jobs.runtime import jobdir

__all__ = ["FlinkEngine", "find_job_id", "rest_port_from_log"]

_JOB_ID_RE = re.compile(r"Job has been submitted with JobID ([0-9a-f]{32})")
_REST_LISTENING_RE = re.compile(r"Rest endpoint listening at \S+:(\d+)")
_HEX32_RE = re.compile(r"^[0-9a-f]{32}$")
_REST_TIMEOUT = 0.3
_LOG_HEAD = 1 << 20  # the job id line comes early: read at most this much of each log

CONF_DIR = "flink-conf"
LOG_DIR = "flink-log"
TMP_DIR = "tmp"


def _log_sizes(workdir: Path) -> dict[str, int]:
    sizes = {}
    for name in jobdir.JOB_LOGS:
        try:
            sizes[name] = (workdir / name).stat().st_size
        except OSError:
            sizes[name] = 0
    return sizes


def find_job_id(workdir: Path, offsets: dict | None = None) -> str | None:
    """The Flink JobID the client printed (``Job has been submitted with JobID <32 hex>``).

    ``offsets`` (from engine.json) skip what earlier runs in the same workdir appended.
    """
    for name in jobdir.JOB_LOGS:
        start = offsets.get(name, 0) if isinstance(offsets, dict) else 0
        try:
            with open(Path(workdir) / name, "rb") as fh:
                fh.seek(int(start))
                head = fh.read(_LOG_HEAD).decode("utf-8", "replace")
        except OSError:
            continue
        m = _JOB_ID_RE.search(head)
        if m:
            return m.group(1)
    return None


def rest_port_from_log(log_dir: Path, lo: int, hi: int) -> int | None:
    """The local mini-cluster's REST port as its client logged it, if within [lo, hi]."""
    try:
        logs = [p for p in os.scandir(log_dir) if p.name.endswith(".log")]
    except OSError:
        return None
    for entry in logs:
        try:
            with open(entry.path, "rb") as fh:
                head = fh.read(_LOG_HEAD).decode("utf-8", "replace")
        except OSError:
            continue
        for m in _REST_LISTENING_RE.finditer(head):
            port = int(m.group(1))
            if lo <= port <= hi:
                return port
    return None


def _python_argv(tr: Translated, flink_python: str | None) -> list[str]:
    """``-pyexec``/``-pyclientexec``: the interpreter that has pyflink, unless given."""
    need_exec = "-pyexec" not in tr.given and "python.executable" not in tr.conf_keys
    need_client = "-pyclientexec" not in tr.given and "python.client.executable" not in tr.conf_keys
    if (need_exec or need_client) and flink_python is None:
        raise EngineRefused(
            "Python Flink jobs need a Python that has pyflink: install Flink with "
            "'mrs-jobs engines install flink' or set the cluster's flink_python"
        )
    return (["-pyexec", str(flink_python)] if need_exec else []) + (
        ["-pyclientexec", str(flink_python)] if need_client else []
    )


class FlinkEngine(RemoteEngine):
    """Runs ``Flink`` jobs with the ``bin/flink`` of a Flink home (the service's install).

    The job's properties come first as ``-Dk=v`` (secret keys go to the private config file), so
    the user's own options win.
    """

    job_types = frozenset({"Flink"})

    def __init__(
        self,
        flink_home: str | None = None,
        java_home: str | None = None,
        data_dir: Path | str | None = None,
    ) -> None:
        # Service-wide settings; the cluster's flink_home setting takes precedence.
        self.flink_home = flink_home
        self.java_home = java_home
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self._ids: dict[str, str] = {}
        self._rest_ports: dict[str, int] = {}

    def available(self) -> bool:
        """Whether Flink is installed (``mrs-jobs engines install flink``); else 0169."""
        return find_flink_home(self.flink_home, self.data_dir) is not None

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        self.refuse_other_types(job, "Flink")
        options, jar, program_args = parse_flink_run(list(job.arguments))
        java_home = require_java(cluster, self.java_home)
        flink_home = find_flink_home(cluster.settings.flink_home or self.flink_home, self.data_dir)
        if flink_home is None:
            raise EngineRefused(
                "Flink was not found: run 'mrs-jobs engines install flink' or set flink_home"
            )
        roots = InputRoots.of(cluster, workdir)
        notes: list[str] = []
        target, jobmanager = self._target(cluster)
        # A positional Python file is what the user meant by -py.
        is_python = any(name in ("-py", "-pym") for name, _ in options)
        if not is_python and jar is not None and jar.lower().endswith(".py"):
            notes.append(f"passed {jar} as -py {jar}")
            options.append(("-py", jar))
            jar, is_python = None, True
        if not is_python and jar is None:
            raise EngineRefused("Flink run needs a jar file or a Python file (-py)")
        workdir = job_dirs(workdir, CONF_DIR, LOG_DIR, TMP_DIR)
        conf_dir, tmp = workdir / CONF_DIR, workdir / TMP_DIR
        tr = translate_options(dict(job.properties), options, roots, target, jobmanager, notes)
        flink_python = cluster.settings.flink_python or flink_python_of(flink_home)
        py_argv = _python_argv(tr, flink_python) if is_python else []
        rest_base = write_job_config(flink_home, conf_dir, tmp, target, jobmanager, tr.secret_conf)
        detached = target == "remote"
        argv = [
            str(Path(flink_home) / "bin" / "flink"),
            "run",
            *(["-d"] if detached else []),
            *(["-t", target] + (["-m", jobmanager] if jobmanager else [])),
            *tr.prop_argv,
            *tr.user_argv,
            *py_argv,
            *([localize_jar(jar, roots)] if jar is not None else []),
            # A Python job's arguments follow its options directly: "--" keeps Flink from
            # taking one that looks like its own (-p 3) for itself.
            *(["--"] if is_python and program_args else []),
            *program_args,
        ]
        python_bin = [str(Path(flink_python).parent)] if flink_python is not None else []
        env = launch_env(workdir, tmp, java_home, *python_bin) | {
            "FLINK_HOME": flink_home,
            "FLINK_CONF_DIR": str(conf_dir),
            "FLINK_LOG_DIR": str(workdir / LOG_DIR),
            "FLINK_PID_DIR": str(tmp),
            "FLINK_IDENT_STRING": "mrs",
            "JVM_ARGS": "-XX:-UsePerfData"
            # JVM_ARGS is split on whitespace by bin/flink
            + ("" if re.search(r"\s", str(tmp)) else f" -Djava.io.tmpdir={tmp}"),
            "PYTHONUNBUFFERED": "1",
        }
        self._ids.pop(str(workdir), None)
        self._rest_ports.pop(str(workdir), None)
        jobdir.write_engine_record(
            workdir,
            "flink",
            target=target,
            jobmanager=jobmanager,
            rest_ports=[rest_base, rest_base + REST_PORTS - 1] if rest_base else None,
            rest_tls=rest_base is not None,  # the local endpoint wants our client cert
            detached=detached,
            log_offsets=_log_sizes(workdir),
        )
        return LaunchSpec(argv=argv, env=env, cwd=str(workdir), notes=notes, detached=detached)

    @staticmethod
    def _target(cluster: ClusterSpec) -> tuple[str, str | None]:
        """(execution target, jobmanager REST address or None) from the cluster's settings."""
        jobmanager = cluster.settings.flink_jobmanager  # host:port, checked by the settings
        return ("remote", jobmanager) if jobmanager else (cluster.settings.flink_target, None)

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        return self._observe(Path(workdir), launch)

    def _job_id(self, workdir: Path, info: dict) -> str | None:
        key = str(workdir)
        job_id = self._ids.get(key) or find_job_id(workdir, info.get("log_offsets"))
        if job_id is not None:
            if len(self._ids) > 1000:  # entries of jobs no longer observed
                self._ids.clear()
                self._rest_ports.clear()
            self._ids[key] = job_id
        return job_id

    def _observe(self, workdir: Path, launch: LaunchSpec) -> Observation:
        workdir = workdir.resolve()
        info = jobdir.read_engine_record(workdir)
        jobmanager = _jobmanager_of(launch, info)
        job_id = self._job_id(workdir, info)
        if job_id is None:
            return Observation()
        if jobmanager:
            _, detail = rest(f"http://{jobmanager}/jobs/{job_id}", _REST_TIMEOUT)
            detail = detail if isinstance(detail, dict) else None
            state = STATES.get(str(detail.get("state"))) if detail else None
            return Observation(
                app_id=job_id,
                tracking_url=tracking_url(jobmanager, job_id),
                progress=progress_of_job(detail) if detail else None,
                # accepted but not yet scheduled is not running; no answer: assume it is
                running=state not in ("pending", "unknown"),
            )
        port, detail = self._local_detail(str(workdir), workdir, info, job_id)
        scheme = "https" if info.get("rest_tls") else "http"
        return Observation(
            app_id=job_id,
            tracking_url=tracking_url(f"127.0.0.1:{port}", job_id, scheme=scheme) if port else None,
            progress=progress_of_job(detail) if isinstance(detail, dict) else None,
            running=True,
        )

    def _local_detail(
        self, key: str, workdir: Path, info: dict, job_id: str
    ) -> tuple[int | None, Any]:
        """(REST port, /jobs/<id> answer) of the local mini-cluster.

        The port is the one the client logged ("Rest endpoint listening at ...") within the
        range build() chose; when the log cannot tell, the range is probed for this job.
        """
        ports = info.get("rest_ports")
        if not (isinstance(ports, list) and len(ports) == 2):
            return None, None
        lo, hi = int(ports[0]), int(ports[1])
        scheme, context = "http", None
        if info.get("rest_tls"):
            scheme, context = "https", rest_client_context(workdir / CONF_DIR)
            if context is None:
                return None, None

        def ask(port: int, timeout: float) -> dict | None:
            url = f"{scheme}://127.0.0.1:{port}/jobs/{job_id}"
            status, detail = rest(url, timeout, context=context)
            ok = status == 200 and isinstance(detail, dict) and detail.get("jid") == job_id
            return detail if ok else None

        port = self._rest_ports.get(key) or rest_port_from_log(workdir / LOG_DIR, lo, hi)
        if port is not None:
            self._rest_ports[key] = port
            return port, ask(port, _REST_TIMEOUT)  # None: busy, not up yet, or gone
        deadline = time.monotonic() + 2 * _REST_TIMEOUT
        for candidate in range(lo, min(hi, lo + REST_PORTS - 1) + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0.01:
                break
            if (detail := ask(candidate, min(_REST_TIMEOUT, remaining))) is not None:
                self._rest_ports[key] = candidate
                return candidate, detail
        return None, None

    def application(
        self, job: JobSpec, workdir: Path, launch: LaunchSpec, cluster: ClusterSpec | None
    ) -> _RemoteFlinkJob | None:
        """The job on its remote jobmanager; None for the local target (the mini-cluster
        lives in the client process: stopping the process group is enough)."""
        workdir = Path(workdir).resolve()
        info = jobdir.read_engine_record(workdir)
        jobmanager = _jobmanager_of(launch, info)
        if not jobmanager:
            return None
        return _RemoteFlinkJob(jobmanager, job, self._job_id(workdir, info))


@dataclass(frozen=True)
class _RemoteFlinkJob:
    """A detached job on a remote jobmanager, by the id its client printed."""

    jobmanager: str
    job: JobSpec
    printed: str | None

    def status(self, app_id: str | None, launcher_id: str | None) -> RemoteStatus | None:
        """``GET /jobs/<id>`` by the recorded app id (after a restart the only one there is),
        else the printed one. A client that exited 0 without printing one submitted nothing
        the service can follow: ``unknown``. None when the jobmanager does not answer."""
        job_id = app_id if app_id and _HEX32_RE.match(app_id) else self.printed
        if job_id is None:
            return RemoteStatus(
                state="unknown", message="the Flink client printed no job id: nothing was submitted"
            )
        remote = remote_status(self.jobmanager, job_id)
        if remote is not None and remote.message:
            remote = replace(remote, message=_without_secrets(remote.message, self.job))
        return remote

    def logs(self, app_id: str | None) -> str | None:
        """The exceptions the jobmanager recorded for the job (its history, newest first)."""
        job_id = app_id if app_id and _HEX32_RE.match(app_id) else self.printed
        return None if job_id is None else job_exceptions(self.jobmanager, job_id)

    def usage(self, app_id: str | None) -> Usage:
        """Unknown: Flink's REST API reports no CPU or memory per job (a session cluster's
        taskmanagers, and their metrics, are shared by its jobs)."""
        return Usage()

    def cancel(self) -> bool:
        """``PATCH /jobs/<id>?mode=cancel``; True when the jobmanager accepted it."""
        job_id = self.printed
        return (
            job_id is not None
            and bool(_HEX32_RE.match(job_id))
            and cancel_job(self.jobmanager, job_id)
        )


def _without_secrets(message: str, job: JobSpec) -> str:
    """A job's secret values (properties, ``-D``) masked in a message from the cluster: an
    exception text may quote the configuration it failed with."""
    values = [v for k, v in job.properties.items() if is_secret_key(k)]
    with contextlib.suppress(EngineRefused):
        options, _, _ = parse_flink_run(list(job.arguments))
        for name, value in options:
            if name in ("-D", "-yD") and value:
                key, _, val = value.partition("=")
                if is_secret_key(key.strip()):
                    values.append(val)
    for value in sorted({v for v in values if len(v) >= 4}, key=len, reverse=True):
        message = message.replace(value, "***")
    return message


def _jobmanager_of(launch: LaunchSpec | None, info: dict) -> str | None:
    """The remote jobmanager build() chose: ``-t remote -m <host:port>`` in the argv (before
    the user's options), else engine.json."""
    if launch is not None:
        head = launch.argv[1:8]
        for i in range(len(head) - 3):
            if head[i : i + 3] == ["-t", "remote", "-m"]:
                return head[i + 3]
    jm = info.get("jobmanager")
    return jm if isinstance(jm, str) and jm else None
