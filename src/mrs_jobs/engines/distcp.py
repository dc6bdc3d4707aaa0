"""The ``DistCp`` engine: MRS DistCp arguments → our own copy process, and its progress back.

There is no Hadoop here, so a DistCp job runs :mod:`mrs_jobs.engines.runners.distcp` (pyarrow.fs
with Hadoop DistCp's placement rules). Arguments: ``[-overwrite | -update] [-m <maps>]
[-bandwidth <MB/s>] <source>... <target>``; other Hadoop options are refused with a reason.

Paths: absolute local paths, ``file://``, object stores (credentials: the job's ``fs.*``
properties over the cluster's, see ``objectstore``), and ``hdfs://`` only where the cluster's
``hadoop_home``/``libhdfs_dir`` holds ``libhdfs.so``. ``..`` components, relative paths and other
schemes are refused, local paths are checked against the roots and the service's own files, and
a target inside a source is refused. The secrets are written only to the 0600 ``distcp.json``.
The application id ``distcp_<job id prefix>`` is stable and known before launch.
"""

from __future__ import annotations

import functools
import json
import os
import re
import site
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from mrs_jobs.engines.base import (
    ClusterSpec,
    EngineAdapter,
    EngineRefused,
    JobSpec,
    LaunchSpec,
    Observation,
)
from mrs_jobs.engines.java import find_java_home
from mrs_jobs.engines.kit import job_dirs, launch_env, read_option
from mrs_jobs.engines.paths import URL_RE, InputRoots, file_url_path
from mrs_jobs.engines.spark import is_secret_key
from mrs_jobs.runtime import jobdir
from mrs_jobs.storage.objectstore import (
    ObjectStoreError,
    S3Credentials,
    is_object_uri,
    parse_uri,
    resolve_credentials,
)

__all__ = [
    "CONFIG_FILE",
    "PROGRESS_FILE",
    "DistCpEngine",
    "DistCpOptions",
    "app_id_for",
    "parse_distcp_arguments",
    "progress_from",
]

CONFIG_FILE = jobdir.DISTCP_CONFIG
PROGRESS_FILE = jobdir.PROGRESS
TMP_DIR = "tmp"
RUNNER_MODULE = "mrs_jobs.engines.runners.distcp"
DEFAULT_MAPS = 4
DEFAULT_MAX_MAPS = 64
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_VALUES = {"-m": "-m", "-bandwidth": "-bandwidth"}
_FLAGS = {"-overwrite": "-overwrite", "-update": "-update"}

# Hadoop DistCp options we do not implement, with the reason where it helps.
_UNSUPPORTED = {
    "-delete": "it would remove files at the target that are not in the source; delete them "
    "separately",
    "-async": "the job runs until the copy ends",
    "-direct": "object store targets are always written directly",
    "-f": "give the sources as arguments",
    "-i": "any failed file fails the job",
    "-log": "the job's log holds the runner's output",
    "-skipcrccheck": "no CRC comparison is made anyway",
}
_UNSUPPORTED |= dict.fromkeys(
    "-append -atomic -blocksperchunk -copybuffersize -diff -filters -numListstatusThreads -rdiff "
    "-sizelimit -filelimit -strategy -tmp -useiterator -v -xtrack".split(),
    "",
)


class DistCpOptions:
    """Parsed DistCp options."""

    def __init__(self) -> None:
        self.overwrite = False
        self.update = False
        self.maps = DEFAULT_MAPS
        self.bandwidth: float | None = None  # MB/s per map

    def to_json(self) -> dict[str, Any]:
        return {
            "overwrite": self.overwrite,
            "update": self.update,
            "maps": self.maps,
            "bandwidth_mb": self.bandwidth,
        }

    def describe(self) -> str:
        parts = []
        if self.overwrite:
            parts.append("-overwrite")
        if self.update:
            parts.append("-update")
        parts.append(f"-m {self.maps}")
        if self.bandwidth is not None:
            parts.append(f"-bandwidth {self.bandwidth:g}")
        return " ".join(parts)


def _number(name: str, value: str | None, kind: type, ok: Callable[[Any], bool], bad: str) -> Any:
    try:
        number = kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise EngineRefused(f"DistCp {name} needs {what}, not {value!r}") from None
    if not ok(number):
        raise EngineRefused(bad)
    return number


def parse_distcp_arguments(
    arguments: list[str], *, max_maps: int = DEFAULT_MAX_MAPS
) -> tuple[DistCpOptions, list[str], str]:
    """(options, sources, target) from MRS DistCp arguments; EngineRefused when invalid."""
    if any(_CONTROL_RE.search(a) for a in arguments):
        raise EngineRefused("DistCp arguments must not contain control characters")
    opts = DistCpOptions()
    i = 0
    while i < len(arguments) and arguments[i].startswith("-"):
        name = arguments[i]
        found = read_option(arguments, i, "DistCp", _VALUES, _FLAGS)
        if found is not None:
            i, (name, value) = found
            if name == "-m":
                bad = f"DistCp -m must be between 1 and {max_maps}"
                opts.maps = _number(name, value, int, lambda n: 1 <= n <= max_maps, bad)
            elif name == "-bandwidth":
                bad = "DistCp -bandwidth must be a positive number of MB/s"
                opts.bandwidth = _number(name, value, float, lambda n: 0 < n < 1e6, bad)
            opts.overwrite |= name == "-overwrite"
            opts.update |= name == "-update"
            continue
        if name in _UNSUPPORTED:
            why = _UNSUPPORTED[name]
            raise EngineRefused(f"{name} is not supported" + (f": {why}" if why else ""))
        if name.startswith("-p"):
            raise EngineRefused(f"DistCp option {name} (preserve) is not supported")
        raise EngineRefused(
            f"unknown DistCp option {name}: supported are -overwrite, -update, -m <maps>, "
            "-bandwidth <MB/s>"
        )
    if opts.overwrite and opts.update:
        raise EngineRefused("DistCp options -overwrite and -update are mutually exclusive")
    paths = arguments[i:]
    for p in paths:
        if p.startswith("-"):
            raise EngineRefused(f"DistCp options must come before the paths: {p}")
    if len(paths) < 2:
        raise EngineRefused("DistCp needs at least one source and a target")
    return opts, paths[:-1], paths[-1]


def app_id_for(job_id: str) -> str:
    return f"distcp_{job_id[:8]}"


def progress_from(data: dict[str, Any]) -> float:
    """Bytes copied over bytes to copy (files when no bytes) in percent, at most 99."""
    try:
        bytes_total = int(data.get("bytes_total") or 0)
        bytes_done = int(data.get("bytes_done") or 0)
        files_total = int(data.get("files_total") or 0)
        files_done = int(data.get("files_done") or 0)
    except (TypeError, ValueError):
        return 0.0
    if bytes_total > 0:
        ratio = bytes_done / bytes_total
    elif files_total > 0:
        ratio = files_done / files_total
    else:
        ratio = 1.0 if data.get("phase") == "done" else 0.0
    return min(99.0, round(max(0.0, ratio) * 100.0, 1))


def _check_components(parts: list[str], shown: str) -> None:
    if any(p == ".." for p in parts):
        raise EngineRefused(f"'..' is not allowed in DistCp paths: {shown}")


def _hdfs_setup(cluster: ClusterSpec) -> dict[str, str] | None:
    """Environment for libhdfs when the cluster configures it, else None."""
    s = cluster.settings
    hadoop_home = s.hadoop_home
    libdir = s.libhdfs_dir or (str(Path(hadoop_home) / "lib" / "native") if hadoop_home else None)
    if not libdir or not (Path(libdir) / "libhdfs.so").is_file():
        return None
    java_home = find_java_home(cluster.java_home)
    if java_home is None:
        return None
    env = {"ARROW_LIBHDFS_DIR": libdir, "JAVA_HOME": java_home}
    if hadoop_home:
        env["HADOOP_HOME"] = hadoop_home
    if s.hadoop_conf_dir:
        env["HADOOP_CONF_DIR"] = s.hadoop_conf_dir
    return env


def _parse_path(
    value: str, roots: InputRoots, what: str, hdfs_ok: bool, *, write: bool = False
) -> dict[str, Any]:
    """One DistCp path → its JSON form for the runner (``kind`` local | s3 | hdfs); a local
    one is checked as read, or as written with ``write`` (the target)."""
    if not value:
        raise EngineRefused(f"empty DistCp {what} path")
    m = URL_RE.match(value)
    scheme = m.group(1).lower() if m else None
    if scheme is not None and is_object_uri(value):
        try:
            ref = parse_uri(value)
        except ObjectStoreError as exc:
            if "'.' and '..'" in str(exc):
                raise EngineRefused(f"'..' is not allowed in DistCp paths: {value}") from None
            raise EngineRefused(str(exc)) from None
        return _where("s3", str(ref), ref.path, ref.name, not ref.key)
    if scheme == "hdfs":
        return _hdfs_path(value, hdfs_ok)
    if scheme not in (None, "file"):
        raise EngineRefused(f"unsupported URL scheme {scheme}:// in DistCp path {value}")
    if scheme == "file" or value.startswith("file:"):
        local = file_url_path(value) if scheme else urllib.parse.unquote(value[len("file:") :])
    else:
        local = value
    if not local.startswith("/"):
        raise EngineRefused(f"DistCp local paths must be absolute: {value}")
    _check_components(local.split("/"), value)
    real = Path(local).resolve()
    roots.check(real, local, f"DistCp {what}", write=write)
    return _where("local", local, str(real), real.name, str(real) == "/")


def _where(kind: str, uri: str, path: str, name: str, root: bool, **more: Any) -> dict[str, Any]:
    return {"kind": kind, "uri": uri, "path": path, "name": name, "root": root, **more}


def _hdfs_path(value: str, hdfs_ok: bool) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(value)
    path = parts.path or "/"
    _check_components(path.split("/"), value)
    if not hdfs_ok:
        raise EngineRefused(
            "hdfs:// paths need libhdfs, which this cluster does not configure "
            "(cluster setting 'hadoop_home' or 'libhdfs_dir' with libhdfs.so)"
        )
    if parts.query or parts.fragment or parts.username:
        raise EngineRefused(f"unsupported hdfs:// URL form: {value}")
    norm = str(PurePosixPath("/" + path.strip("/")))
    host, port = parts.hostname or "default", parts.port or (8020 if parts.hostname else 0)
    return _where("hdfs", value, norm, PurePosixPath(norm).name, norm == "/", host=host, port=port)


def _inside(inner: dict[str, Any], outer: dict[str, Any]) -> bool:
    """True when ``inner`` is ``outer`` or below it (same file system)."""
    if inner["kind"] != outer["kind"]:
        return False
    if inner["kind"] == "hdfs" and (inner["host"], inner["port"]) != (outer["host"], outer["port"]):
        return False
    a, b = inner["path"], outer["path"]
    if inner["kind"] == "s3":
        return a == b or a.startswith(b + "/")
    return PurePosixPath(a).is_relative_to(PurePosixPath(b))


def _package_root() -> Path:
    import mrs_jobs

    return Path(mrs_jobs.__file__).resolve().parent.parent


@functools.lru_cache(maxsize=8)
def _importable_without_pythonpath(python: str) -> bool:
    """True when ``python`` (this interpreter) finds mrs_jobs via its site-packages alone.

    That is the case for a regular install (the package under a site-packages directory) and an
    editable one (the source root listed in a ``.pth`` file there). Another interpreter is not
    inspected: it gets PYTHONPATH.
    """
    if os.path.realpath(python) != os.path.realpath(sys.executable):
        return False
    root = _package_root()
    for sp in site.getsitepackages():
        spp = Path(sp).resolve()
        if root == spp:
            return True
        try:
            pths = [p for p in spp.iterdir() if p.suffix == ".pth"]
        except OSError:
            continue
        for pth in pths:
            try:
                lines = pth.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                line = line.strip()
                if line and not line.startswith(("#", "import")):
                    try:
                        if Path(line).resolve() == root:
                            return True
                    except OSError:
                        continue
    return False


class DistCpEngine(EngineAdapter):
    """Runs ``DistCp`` jobs with :mod:`mrs_jobs.engines.runners.distcp`.

    The runner's interpreter is the cluster's ``distcp_python``, else the engine's, else the
    service's own (it needs pyarrow and mrs_jobs, which ``pyspark_python`` may lack).
    """

    job_types = frozenset({"DistCp"})
    secret_files = (CONFIG_FILE,)

    def __init__(self, python: str | None = None) -> None:
        self.python = python

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        self.refuse_other_types(job, "DistCp")
        max_maps = cluster.settings.distcp_max_maps or DEFAULT_MAX_MAPS
        opts, source_args, target_arg = parse_distcp_arguments(
            list(job.arguments), max_maps=max(1, max_maps)
        )
        roots = InputRoots.of(cluster, workdir)
        hdfs_env = _hdfs_setup(cluster)
        sources = [_parse_path(s, roots, "source", hdfs_env is not None) for s in source_args]
        # Any local target is written (-overwrite and -update replace files there too).
        target = _parse_path(target_arg, roots, "target", hdfs_env is not None, write=True)
        for s in sources:
            if _inside(target, s):
                raise EngineRefused(
                    f"DistCp target {target['uri']} is the source {s['uri']} or inside it"
                )

        notes = [
            f"DistCp: {len(sources)} source(s) -> {target['uri']} ({opts.describe()})",
        ]
        creds: S3Credentials | None = None
        if any(p["kind"] == "s3" for p in [*sources, target]):
            try:
                creds = resolve_credentials(job.properties, cluster.settings.object_store)
            except ObjectStoreError as exc:
                raise EngineRefused(str(exc)) from None
            notes.append(creds.describe())
        secret_keys = sorted(k for k in job.properties if is_secret_key(k))
        if secret_keys:
            notes.append(
                "secret properties not passed on the command line: " + ", ".join(secret_keys)
            )

        workdir = job_dirs(workdir, TMP_DIR)
        config = {
            "version": 1,
            "job_id": job.job_id,
            "app_id": app_id_for(job.job_id),
            "sources": sources,
            "target": target,
            "options": opts.to_json(),
            # The runner checks again what it reads (sources, symlinks) and writes.
            "input_roots": [str(r) for r in roots.roots],
            "output_roots": [str(r) for r in roots.outputs],
            "rooted": roots.rooted,
            "forbidden": [str(f) for f in roots.forbidden],
            "s3": creds.to_json() if creds is not None else None,
            "progress_file": PROGRESS_FILE,
        }
        config_path = workdir / CONFIG_FILE
        jobdir.write_private(config_path, json.dumps(config, indent=1) + "\n")

        python = cluster.settings.distcp_python or self.python or sys.executable
        if hdfs_env is None or not any(p["kind"] == "hdfs" for p in [*sources, target]):
            hdfs_env = {}
        env = launch_env(workdir, workdir / TMP_DIR, hdfs_env.get("JAVA_HOME")) | hdfs_env
        env |= {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        if not _importable_without_pythonpath(python):
            env["PYTHONPATH"] = str(_package_root())

        argv = [python, "-m", RUNNER_MODULE, str(config_path)]
        return LaunchSpec(argv=argv, env=env, cwd=str(workdir), notes=notes)

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        data = jobdir.read_json(Path(workdir) / PROGRESS_FILE)
        if not isinstance(data, dict):
            return Observation()
        return Observation(
            app_id=app_id_for(job.job_id), progress=progress_from(data), running=True
        )
