"""The launch plumbing engines share: Java and Spark homes, the launch environment, the job's
directories, and the remote-application hooks.

An engine's process gets an environment built from scratch (nothing of the service's own
environment — its database URL or keys — leaks into a job): :func:`launch_env` is that base.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx

from mrs_jobs.engines.base import (
    ClusterSpec,
    EngineAdapter,
    EngineRefused,
    JobSpec,
    LaunchSpec,
    RemoteStatus,
    Usage,
)
from mrs_jobs.engines.java import find_java_home, find_spark_home

__all__ = [
    "DEFAULT_PATH",
    "RemoteApplication",
    "RemoteEngine",
    "free_port",
    "job_dirs",
    "launch_env",
    "require_java",
    "require_spark",
]

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def require_java(cluster: ClusterSpec, setting: str | None) -> str:
    """JAVA_HOME for a job on ``cluster`` (its own java_home over the service's ``setting``)."""
    java_home = find_java_home(cluster.java_home or setting)
    if java_home is None:
        raise EngineRefused("Java was not found: set java_home or JAVA_HOME")
    return java_home


def require_spark(
    cluster: ClusterSpec, setting: str | None, missing: str = "Spark was not found"
) -> str:
    """SPARK_HOME (pyspark's by default) for a job on ``cluster``; ``missing`` says what the
    engine lacks without it."""
    spark_home = find_spark_home(cluster.spark_home or setting)
    if spark_home is None:
        raise EngineRefused(f"{missing}: set spark_home or install pyspark")
    return spark_home


def launch_env(
    home: Path, tmp: Path, java_home: str | None = None, *path_first: str
) -> dict[str, str]:
    """The base environment of an engine process: PATH (Java's ``bin`` and ``path_first``
    before the system's), LANG, HOME, TMPDIR and JAVA_HOME when given."""
    first = ([str(Path(java_home) / "bin")] if java_home else []) + list(path_first)
    parts = list(dict.fromkeys(first + DEFAULT_PATH.split(":")))
    env = {"PATH": ":".join(parts), "LANG": "C.UTF-8", "HOME": str(home), "TMPDIR": str(tmp)}
    if java_home:
        env["JAVA_HOME"] = java_home
    return env


def job_dirs(workdir: Path, *names: str, private: tuple[str, ...] = ()) -> Path:
    """The job's resolved working directory with its sub-directories made (``private`` ones
    0700, whatever was there)."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for name in names:
        (workdir / name).mkdir(exist_ok=True)
    for name in private:
        path = workdir / name
        path.mkdir(mode=0o700, exist_ok=True)
        path.chmod(0o700)
    return workdir


def conf_args(pairs: Iterable[tuple[str, object]]) -> list[str]:
    """``--conf key=value`` arguments (spark-submit's), in order."""
    return [arg for key, value in pairs for arg in ("--conf", f"{key}={value}")]


def free_port() -> int:
    """A TCP port free on loopback now (the engine binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RemoteApplication(Protocol):
    """A job's application in its engine (a driver, a YARN app, a Flink job)."""

    def status(self, app_id: str | None, launcher_id: str | None) -> RemoteStatus | None: ...

    def cancel(self) -> bool: ...

    def logs(self, app_id: str | None) -> str | None: ...

    def usage(self, app_id: str | None) -> Usage | None:
        """What the application used on its cluster (Usage() when the cluster tells nothing);
        None when it ran here, in the job's own processes."""
        ...


class RemoteEngine(EngineAdapter):
    """An engine whose applications may live on a cluster: ``status`` and ``cancel`` ask the
    :class:`RemoteApplication` that :meth:`application` finds (None: nothing to ask)."""

    def application(
        self, job: JobSpec, workdir: Path, launch: LaunchSpec, cluster: ClusterSpec | None
    ) -> RemoteApplication | None:
        raise NotImplementedError

    def status(
        self,
        job: JobSpec,
        workdir: Path,
        launch: LaunchSpec,
        app_id: str | None,
        launcher_id: str | None,
        cluster: ClusterSpec | None = None,
    ) -> RemoteStatus | None:
        app = self.application(job, Path(workdir), launch, cluster)
        return None if app is None else app.status(app_id, launcher_id)

    def cancel(
        self, job: JobSpec, workdir: Path, launch: LaunchSpec, cluster: ClusterSpec | None = None
    ) -> bool:
        app = self.application(job, Path(workdir), launch, cluster)
        return app is not None and app.cancel()

    def engine_logs(
        self,
        job: JobSpec,
        workdir: Path,
        launch: LaunchSpec,
        app_id: str | None,
        cluster: ClusterSpec | None = None,
    ) -> str | None:
        app = self.application(job, Path(workdir), launch, cluster)
        return None if app is None else app.logs(app_id)

    def usage(
        self,
        job: JobSpec,
        workdir: Path,
        launch: LaunchSpec,
        app_id: str | None = None,
        cluster: ClusterSpec | None = None,
        local: Usage | None = None,
    ) -> Usage:
        app = self.application(job, Path(workdir), launch, cluster)
        used = None if app is None else app.usage(app_id)
        return local or Usage() if used is None else used


def http_request(
    client: Callable[[], httpx.Client], method: str, url: str, **kwargs: Any
) -> httpx.Response | None:
    """One short request to an engine's REST API; None when nothing answered (network, TLS,
    an unreadable token or CA file), so a caller's answer is never an exception."""
    try:
        with client() as http:
            return http.request(method, url, **kwargs)
    except (httpx.HTTPError, OSError, ssl.SSLError):
        return None


def read_option(
    args: list[str], i: int, tool: str, values: Mapping[str, str], flags: Mapping[str, str]
) -> tuple[int, tuple[str, str | None]] | None:
    """The option at ``args[i]`` as ``(spelling, value)`` (``--opt=value`` unfolded, named as
    ``values``/``flags`` map it; a flag's value is None) and the index after it; None when
    ``args[i]`` is not one of them. EngineRefused on a missing or unexpected value."""
    arg = args[i]
    name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
    if name in values:
        if eq:
            return i + 1, (values[name], inline)
        if i + 1 >= len(args):
            raise EngineRefused(f"{tool} option {name} needs a value")
        return i + 2, (values[name], args[i + 1])
    if name in flags:
        if eq:
            raise EngineRefused(f"{tool} option {name} takes no value")
        return i + 1, (flags[name], None)
    return None
