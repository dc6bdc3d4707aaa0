"""The ``Flink`` engine: an MRS Flink command line → a ``flink run`` argv, and the job id back.

MRS ``arguments`` of a Flink job are the ``flink`` command line: ``run``, options, the jar (or
``-py file.py``), its arguments. Only the ``run`` action is accepted; the deployment target is
the cluster's (``-t``/``-m``/``-e`` and YARN options given by the user are replaced or dropped,
each with a note in the job's log).

Layout of a job's working directory (all created by :meth:`FlinkEngine.build`)::

    <workdir>/flink-conf/   FLINK_CONF_DIR: the distribution's log4j/logback files and a
                            config.yaml of our own (distribution settings flattened, plus ours;
                            secret properties go here, mode 0600, never on the command line)
    <workdir>/flink-log/    FLINK_LOG_DIR: the client's log (and the local mini-cluster's)
    <workdir>/tmp/          TMPDIR, java.io.tmpdir, io.tmp.dirs, web.tmpdir
    <workdir>/engine.json   {"engine": "flink", "target", "jobmanager", "rest_ports"}

Targets: a cluster with ``extra["flink_jobmanager"] = "host:port"`` (the REST address of a
running session cluster) gets ``-t remote -m host:port``; otherwise ``extra["flink_target"]``
(default ``local``: a mini-cluster inside the client process). The local mini-cluster's REST
endpoint binds to 127.0.0.1 on a small free port range chosen here, never Flink's default
8081 (which Spark's worker UI uses too).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from mrs_jobs.domain.render import is_secret_key as _contract_secret
from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec, LaunchSpec, Observation
from mrs_jobs.engines.install import find_flink_home, flink_python_of
from mrs_jobs.engines.java import find_java_home
from mrs_jobs.engines.paths import InputRoots

__all__ = [
    "FLAG_OPTIONS",
    "VALUE_OPTIONS",
    "FlinkEngine",
    "find_job_id",
    "parse_flink_run",
    "progress_of_job",
]

# `flink run --help` of Flink 2.3: options taking a value, long spelling → short spelling.
VALUE_OPTIONS = {
    "-c": "-c",
    "--class": "-c",
    "-C": "-C",
    "--classpath": "-C",
    "-cm": "-cm",
    "--claimMode": "-cm",
    "-rm": "-rm",
    "--restoreMode": "-rm",
    "-p": "-p",
    "--parallelism": "-p",
    "-py": "-py",
    "--python": "-py",
    "-pyarch": "-pyarch",
    "--pyArchives": "-pyarch",
    "-pyclientexec": "-pyclientexec",
    "--pyClientExecutable": "-pyclientexec",
    "-pyexec": "-pyexec",
    "--pyExecutable": "-pyexec",
    "-pyfs": "-pyfs",
    "--pyFiles": "-pyfs",
    "-pym": "-pym",
    "--pyModule": "-pym",
    "-pypath": "-pypath",
    "--pyPythonPath": "-pypath",
    "-pyreq": "-pyreq",
    "--pyRequirements": "-pyreq",
    "-s": "-s",
    "--fromSavepoint": "-s",
    "-e": "-e",
    "--executor": "-e",
    "-t": "-t",
    "--target": "-t",
    "-m": "-m",
    "--jobmanager": "-m",
    "-z": "-z",
    "--zookeeperNamespace": "-z",
    "-yid": "-yid",
    "--yarnapplicationId": "-yid",
    # Flink 1.x YARN options still found in MRS command lines; dropped (the cluster decides).
    "-yat": "-yat",
    "--yarnapplicationType": "-yat",
    "-yj": "-yj",
    "--yarnjar": "-yj",
    "-yjm": "-yjm",
    "--yarnjobManagerMemory": "-yjm",
    "-ynl": "-ynl",
    "--yarnnodeLabel": "-ynl",
    "-ynm": "-ynm",
    "--yarnname": "-ynm",
    "-yqu": "-yqu",
    "--yarnqueue": "-yqu",
    "-ys": "-ys",
    "--yarnslots": "-ys",
    "-yt": "-yt",
    "--yarnship": "-yt",
    "-ytm": "-ytm",
    "--yarntaskManagerMemory": "-ytm",
    "-yz": "-yz",
    "--yarnzookeeperNamespace": "-yz",
}
FLAG_OPTIONS = {
    "-d": "-d",
    "--detached": "-d",
    "-n": "-n",
    "--allowNonRestoredState": "-n",
    "-sae": "-sae",
    "--shutdownOnAttachedExit": "-sae",
    "-yd": "-yd",
    "--yarndetached": "-yd",
    "-yq": "-yq",
    "--yarnquery": "-yq",
}
# Options of the deployment target: replaced by the cluster's.
_TARGET_OPTIONS = frozenset({"-t", "-m", "-e"})
# Options of a YARN / ZooKeeper deployment: meaningless here, dropped with a note.
_DROPPED_OPTIONS = frozenset(
    {"-z", "-yid", "-yat", "-yj", "-yjm", "-ynl", "-ynm", "-yqu", "-ys", "-yt", "-ytm", "-yz"}
)
_DROPPED_FLAGS = frozenset({"-yd", "-yq"})
# `flink` actions other than run, refused by name.
_OTHER_ACTIONS = frozenset(
    {"info", "list", "stop", "cancel", "savepoint", "checkpoint", "run-application"}
)

# Configuration the service owns: a user's -D of these is dropped with a note.
RESERVED_CONF = frozenset(
    {
        "execution.target",
        "execution.attached",
        "execution.shutdown-on-attached-exit",
        "jobmanager.rpc.address",
        "jobmanager.rpc.port",
        "rest.address",
        "rest.port",
        "rest.bind-address",
        "rest.bind-port",
        "io.tmp.dirs",
        "web.tmpdir",
        "web.upload.dir",
        "env.log.dir",
        "env.pid.dir",
    }
)

_REMOTE_SCHEMES = frozenset(
    {"abfs", "abfss", "gs", "hdfs", "http", "https", "obs", "oss", "s3", "s3a", "s3n", "viewfs"}
)
_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_JOB_ID_RE = re.compile(r"Job has been submitted with JobID ([0-9a-f]{32})")
_REST_LISTENING_RE = re.compile(r"Rest endpoint listening at \S+:(\d+)")
_HEX32_RE = re.compile(r"^[0-9a-f]{32}$")
_HOSTPORT_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_REST_TIMEOUT = 0.3
_REST_PORTS = 16  # the local mini-cluster's REST endpoint binds to the first free one of these
_JOB_LOGS = ("stdout.log", "stderr.log")  # written by the supervisor's shim, appended to
_LOG_HEAD = 1 << 20  # the job id line comes early: read at most this much of each log

CONF_DIR = "flink-conf"
LOG_DIR = "flink-log"
TMP_DIR = "tmp"
ENGINE_FILE = "engine.json"


def is_secret_key(key: str) -> bool:
    """The contract's secret rule, plus Flink's ``*credentials`` keys."""
    return _contract_secret(key) or key.lower().endswith("credentials")


# ----------------------------------------------------------------------------- parsing


def parse_flink_run(
    arguments: list[str],
) -> tuple[list[tuple[str, str | None]], str | None, list[str]]:
    """Split ``run <options> [jar] <program arguments>`` into (options, jar, program args).

    The leading ``run`` (optionally preceded by ``flink``) is required. Options are returned in
    order as ``(short name, value)``, long spellings and ``--opt=value`` unfolded, ``-D k=v``
    and ``-Dk=v`` both as ``("-D", "k=v")``; flags have value ``None``. Like Flink's client,
    parsing stops at the first argument that is not an option: with ``-py``/``-pym`` all of the
    rest are program arguments (jar is None), otherwise it is the jar and the rest follow.
    Raises :class:`EngineRefused` for another action, an unknown option or a missing value.
    """
    args = list(arguments)
    if any("\x00" in a for a in args):
        raise EngineRefused("arguments must not contain NUL characters")
    if args and args[0] == "flink":
        args = args[1:]
    if not args:
        raise EngineRefused("Flink arguments must start with the action 'run'")
    action = args[0]
    if action != "run":
        if action in _OTHER_ACTIONS:
            raise EngineRefused(
                f"the Flink action {action!r} is not supported: only 'run' is "
                "(a job is stopped with the MRS kill API)"
            )
        raise EngineRefused("Flink arguments must start with the action 'run'")
    options: list[tuple[str, str | None]] = []
    i = 1
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg == "-":
            break
        if arg == "--":
            i += 1
            break
        if arg.startswith("--"):
            name, eq, inline = arg.partition("=")
            has_inline = bool(eq)
        else:
            name, inline, has_inline = arg, "", False
        if name in VALUE_OPTIONS:
            short = VALUE_OPTIONS[name]
            if has_inline:
                value = inline
            else:
                i += 1
                if i >= len(args):
                    raise EngineRefused(f"flink run option {name} needs a value")
                value = args[i]
            options.append((short, value))
        elif name in FLAG_OPTIONS:
            if has_inline:
                raise EngineRefused(f"flink run option {name} takes no value")
            options.append((FLAG_OPTIONS[name], None))
        elif name in ("-D", "-yD"):
            i += 1
            if i >= len(args):
                raise EngineRefused(f"flink run option {name} needs a property=value")
            options.append((name, args[i]))
        elif name.startswith("-yD") and len(name) > 3:
            options.append(("-yD", name[3:]))
        elif name.startswith("-D") and not name.startswith("--"):
            options.append(("-D", name[2:]))
        elif re.fullmatch(r"-p\d+", name):  # commons-cli's attached form: -p4
            options.append(("-p", name[2:]))
        elif any(n in ("-py", "-pym") for n, _ in options):
            break  # like Flink's parser: in a Python job an unknown option starts its arguments
        else:
            raise EngineRefused(f"unknown flink run option: {name}")
        i += 1
    rest = args[i:]
    if any(name in ("-py", "-pym") for name, _ in options):
        return options, None, rest
    if not rest:
        return options, None, []
    return options, rest[0], rest[1:]


# ------------------------------------------------------------------------------ helpers


def _free_port_range(count: int) -> int:
    """The first of ``count`` consecutive ports that are free right now (best effort)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + count >= 65536:
            continue
        free = True
        for port in range(base + 1, base + count):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    free = False
                    break
        if free:
            return base
    return base


def _local_path(value: str) -> str | None:
    """The local path a file argument names, or None for a remote URL Flink fetches itself."""
    m = _URL_RE.match(value)
    if m:
        scheme = m.group(1).lower()
        if scheme == "file":
            path = value[m.end() :]
            if path.startswith("localhost/"):
                path = path[len("localhost") :]
            if not path.startswith("/"):
                raise EngineRefused(f"a file:// URL must name an absolute local path: {value}")
            return urllib.parse.unquote(path)
        if scheme in _REMOTE_SCHEMES:
            return None
        raise EngineRefused(f"unsupported URL scheme {scheme}:// in {value}")
    if value.startswith("file:"):
        return value[len("file:") :]
    return value


def _localize(value: str, roots: InputRoots, what: str, *, must_exist: bool, url: bool) -> str:
    """Check a file argument against the input roots; local ones come back absolute and real
    (as a ``file://`` URL when ``url``); remote ones unchanged."""
    local = _local_path(value)
    if local is None:
        return value
    if not local:
        raise EngineRefused(f"empty {what} path")
    real = Path(local).expanduser().resolve()
    roots.check(real, local, what)
    if must_exist and not real.exists():
        raise EngineRefused(f"{what} not found: {local}")
    return real.as_uri() if url else str(real)


def _localize_list(value: str, roots: InputRoots, what: str, *, url: bool) -> str:
    out = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        path, hash_, extra = item.partition("#")  # -pyarch "file#dir", -pyreq "req#cache"
        if extra and what.startswith("-pyreq"):
            extra = _localize(extra, roots, what, must_exist=False, url=url)
        out.append(_localize(path, roots, what, must_exist=False, url=url) + hash_ + extra)
    return ",".join(out)


def _yaml_scalar(value: Any) -> str:
    """A value as YAML flow text (JSON is a subset of YAML 1.2)."""
    if isinstance(value, bool | int | float) or value is None:
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
    return json.dumps(str(value))


def _flatten(data: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif prefix:
        out[prefix] = data


def _strip_quotes(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    if " #" in text:
        text = text.split(" #", 1)[0].rstrip()
    return text


def _read_simple_yaml(text: str) -> dict[str, Any]:
    """Flatten block-mapping YAML of scalars (Flink's shipped config.yaml) without PyYAML."""
    out: dict[str, Any] = {}
    stack: list[tuple[int, str]] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("- "):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        key, colon, value = stripped.partition(":")
        if not colon:
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        full = ".".join([k for _, k in stack] + [_strip_quotes(key)])
        value = value.strip()
        if value:
            out[full] = _strip_quotes(value)
        else:
            stack.append((indent, _strip_quotes(key)))
    return out


def read_flink_config(path: Path) -> dict[str, Any]:
    """A Flink ``config.yaml`` as flat ``key → value`` (nested and flattened forms alike)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    try:
        import yaml  # optional: the shipped file also parses without it
    except ImportError:
        return _read_simple_yaml(text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return _read_simple_yaml(text)
    out: dict[str, Any] = {}
    _flatten(data or {}, "", out)
    return out


def _write_config(path: Path, config: dict[str, Any]) -> None:
    lines = ["# Written by mrs-jobs for this job only: the distribution's settings, then ours."]
    lines += [f"{json.dumps(str(k))}: {_yaml_scalar(v)}" for k, v in config.items()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)


def _log_sizes(workdir: Path) -> dict[str, int]:
    sizes = {}
    for name in _JOB_LOGS:
        try:
            sizes[name] = (workdir / name).stat().st_size
        except OSError:
            sizes[name] = 0
    return sizes


def find_job_id(workdir: Path, offsets: dict | None = None) -> str | None:
    """The Flink JobID the client printed (``Job has been submitted with JobID <32 hex>``).

    ``offsets`` (from engine.json) skip what earlier runs in the same workdir appended.
    """
    for name in _JOB_LOGS:
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


def progress_of_job(detail: dict) -> float | None:
    """Finished subtasks over all subtasks of a ``/jobs/<id>`` answer, in percent, at most 99.

    A streaming job's subtasks only finish at its end, so it shows 0 until then.
    """
    vertices = detail.get("vertices")
    if not isinstance(vertices, list):
        return None
    total = done = 0
    for v in vertices:
        if not isinstance(v, dict):
            continue
        tasks = v.get("tasks") if isinstance(v.get("tasks"), dict) else {}
        parallelism = int(v.get("parallelism", 0) or 0)
        total += parallelism
        done += min(parallelism, int(tasks.get("FINISHED", 0) or 0))
    if total <= 0:
        return 0.0
    return min(99.0, round(100.0 * done / total, 1))


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _rest(url: str, timeout: float, method: str = "GET") -> tuple[int, Any]:
    """(HTTP status, decoded JSON or None); status 0 when nothing answered."""
    req = urllib.request.Request(url, method=method)
    try:
        with _NO_PROXY_OPENER.open(req, timeout=timeout) as resp:
            body = resp.read(4_000_000)
            status = resp.status
    except urllib.error.HTTPError as e:
        return e.code, None
    except (OSError, ValueError):
        return 0, None
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None


# ------------------------------------------------------------------------------- engine


class FlinkEngine:
    """Runs ``Flink`` jobs with the ``bin/flink`` of a Flink home (the service's install).

    ``build()`` order: ``flink run -t <target> [-m <jobmanager>]``, the job's properties as
    ``-Dk=v`` (secret keys go to the private config file instead), the user's options (so they
    win over properties), for Python jobs ``-pyexec``/``-pyclientexec`` (the Flink venv's
    Python unless given), then the jar and its arguments.
    """

    job_types = frozenset({"Flink"})

    def __init__(
        self,
        flink_home: str | None = None,
        java_home: str | None = None,
        data_dir: Path | str | None = None,
    ) -> None:
        # Service-wide settings; a ClusterSpec's extra["flink_home"] takes precedence.
        self.flink_home = flink_home
        self.java_home = java_home
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self._ids: dict[str, str] = {}
        self._rest_ports: dict[str, int] = {}

    def available(self) -> bool:
        """Whether Flink is installed (``mrs-jobs engines install flink``); else 0169."""
        return find_flink_home(self.flink_home, self.data_dir) is not None

    # ------------------------------------------------------------------ build

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        if job.job_type not in self.job_types:
            raise EngineRefused(f"the Flink engine does not run {job.job_type} jobs")
        options, jar, program_args = parse_flink_run(list(job.arguments))

        java_home = find_java_home(cluster.java_home or self.java_home)
        if java_home is None:
            raise EngineRefused("Java was not found: set java_home or JAVA_HOME")
        flink_home = find_flink_home(
            cluster.extra.get("flink_home") or self.flink_home, self.data_dir
        )
        if flink_home is None:
            raise EngineRefused(
                "Flink was not found: run 'mrs-jobs engines install flink' or set flink_home"
            )

        roots = InputRoots(cluster.input_roots)
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

        workdir = Path(workdir).resolve()
        conf_dir = workdir / CONF_DIR
        log_dir = workdir / LOG_DIR
        tmp = workdir / TMP_DIR
        for d in (workdir, conf_dir, log_dir, tmp):
            d.mkdir(parents=True, exist_ok=True)

        secret_conf: dict[str, str] = {}

        def conf_entry(key: str, value: str, shown: str) -> list[str]:
            key = key.strip()
            if not key:
                raise EngineRefused(f"{shown} needs a key=value")
            if key in RESERVED_CONF:
                notes.append(f"ignored {shown} {key}: set by the service")
                return []
            if is_secret_key(key):
                secret_conf[key] = value
                notes.append(f"{shown} {key} passed in the job's private configuration file")
                return []
            return [f"-D{key}={value}"]

        # The job's properties first, so the user's own -D win.
        prop_argv: list[str] = []
        for key, value in job.properties.items():
            prop_argv += conf_entry(key, value, "property")

        # The user's options.
        user_argv: list[str] = []
        given = set()
        for name, value in options:
            given.add(name)
            if name in _TARGET_OPTIONS:
                replacement = f"-t {target}" + (f" -m {jobmanager}" if jobmanager else "")
                notes.append(f"replaced {name} {value} with {replacement}")
                continue
            if name in _DROPPED_OPTIONS or name in _DROPPED_FLAGS or name == "-yD":
                if value is None:
                    shown = name
                elif name == "-yD":  # the value might be a secret: show the key only
                    shown = f"-yD {value.partition('=')[0]}"
                else:
                    shown = f"{name} {value}"
                notes.append(f"ignored {shown}: the cluster's configuration decides")
                continue
            if name == "-d":
                notes.append(
                    "ignored -d (detached): the service follows the job until it ends"
                    + (" (a local mini-cluster dies with its client)" if target == "local" else "")
                )
                continue
            if name == "-sae":
                notes.append("ignored -sae: the service owns the cluster's lifetime")
                continue
            if value is None:
                user_argv.append(name)
                continue
            if name == "-D":
                key, eq, val = value.partition("=")
                if not eq:
                    raise EngineRefused(f"-D {key} needs a key=value")
                user_argv += conf_entry(key, val, "-D")
                continue
            if name == "-p":
                if not value.strip().isdigit() or int(value) < 1:
                    raise EngineRefused(f"-p needs a positive integer, not {value!r}")
            elif name == "-py":
                if _local_path(value) is None:
                    raise EngineRefused(f"the Python file must be a local file: {value}")
                value = _localize(value, roots, "Python file", must_exist=True, url=False)
                if not Path(value).is_file():
                    raise EngineRefused(f"Python file not found: {value}")
            elif name == "-C":
                value = _localize(value, roots, "-C classpath entry", must_exist=False, url=True)
            elif name in ("-pyfs", "-pyarch", "-pyreq"):
                value = _localize_list(value, roots, f"{name} file", url=False)
            elif name == "-s":
                value = _localize(value, roots, "savepoint", must_exist=False, url=False)
            user_argv += [name, value]

        # The jar.
        jar_argv: list[str] = []
        if jar is not None:
            if _local_path(jar) is None:
                raise EngineRefused(f"the Flink jar must be a local file: {jar}")
            real = _localize(jar, roots, "jar file", must_exist=True, url=False)
            if not Path(real).is_file():
                raise EngineRefused(f"jar file not found: {jar}")
            jar_argv = [real]

        # Python jobs: the interpreter that has pyflink.
        py_argv: list[str] = []
        flink_python = cluster.extra.get("flink_python") or flink_python_of(flink_home)
        if is_python:
            conf_keys = {v.partition("=")[0].strip() for n, v in options if n == "-D" and v}
            need_exec = "-pyexec" not in given and "python.executable" not in conf_keys
            need_client = "-pyclientexec" not in given and "python.client.executable" not in (
                conf_keys
            )
            if (need_exec or need_client) and flink_python is None:
                raise EngineRefused(
                    "Python Flink jobs need a Python that has pyflink: install Flink with "
                    "'mrs-jobs engines install flink' or set the cluster's flink_python"
                )
            if need_exec:
                py_argv += ["-pyexec", str(flink_python)]
            if need_client:
                py_argv += ["-pyclientexec", str(flink_python)]

        # The private configuration directory.
        dist_conf = Path(flink_home) / "conf"
        with contextlib.suppress(OSError):
            for entry in dist_conf.iterdir():
                if entry.is_file() and entry.name not in ("config.yaml", "flink-conf.yaml"):
                    shutil.copyfile(entry, conf_dir / entry.name)
        config = read_flink_config(dist_conf / "config.yaml")
        for key in RESERVED_CONF:
            config.pop(key, None)
        rest_base = None
        config["io.tmp.dirs"] = str(tmp)
        config["web.tmpdir"] = str(tmp)
        config["web.upload.dir"] = str(tmp / "web-upload")
        if target == "local":
            # The mini-cluster sizes itself to the job's parallelism unless a slot count is
            # configured (the distribution's 1 would leave a job with -p 2 waiting forever).
            config.pop("taskmanager.numberOfTaskSlots", None)
            config["jobmanager.rpc.port"] = 0  # never the distribution's fixed 6123
            rest_base = _free_port_range(_REST_PORTS)
            config["rest.address"] = "127.0.0.1"
            config["rest.bind-address"] = "127.0.0.1"
            config["rest.bind-port"] = f"{rest_base}-{rest_base + _REST_PORTS - 1}"
        elif jobmanager:
            # With -t (Flink's generic CLI) -m is not applied: the REST address is configuration.
            host, _, port = jobmanager.rpartition(":")
            config["rest.address"] = host.strip("[]")
            config["rest.port"] = int(port)
        config.update(secret_conf)
        _write_config(conf_dir / "config.yaml", config)

        target_argv = ["-t", target] + (["-m", jobmanager] if jobmanager else [])
        argv = [
            str(Path(flink_home) / "bin" / "flink"),
            "run",
            *target_argv,
            *prop_argv,
            *user_argv,
            *py_argv,
            *jar_argv,
            # A Python job's arguments follow its options directly: "--" keeps Flink from
            # taking one that looks like its own (-p 3) for itself.
            *(["--"] if is_python and program_args else []),
            *program_args,
        ]

        path_parts = [str(Path(java_home) / "bin")]
        if flink_python is not None:
            path_parts.append(str(Path(flink_python).parent))
        path_parts += [p for p in _DEFAULT_PATH.split(":") if p not in path_parts]
        jvm_args = "-XX:-UsePerfData"
        if not re.search(r"\s", str(tmp)):  # JVM_ARGS is split on whitespace by bin/flink
            jvm_args += f" -Djava.io.tmpdir={tmp}"
        env = {
            "PATH": ":".join(path_parts),
            "LANG": "C.UTF-8",
            "HOME": str(workdir),
            "JAVA_HOME": java_home,
            "FLINK_HOME": flink_home,
            "FLINK_CONF_DIR": str(conf_dir),
            "FLINK_LOG_DIR": str(log_dir),
            "FLINK_PID_DIR": str(tmp),
            "FLINK_IDENT_STRING": "mrs",
            "JVM_ARGS": jvm_args,
            "PYTHONUNBUFFERED": "1",
            "TMPDIR": str(tmp),
        }

        info = {
            "engine": "flink",
            "target": target,
            "jobmanager": jobmanager,
            "rest_ports": [rest_base, rest_base + _REST_PORTS - 1] if rest_base else None,
            "log_offsets": _log_sizes(workdir),
        }
        self._ids.pop(str(workdir), None)
        self._rest_ports.pop(str(workdir), None)
        (workdir / ENGINE_FILE).write_text(json.dumps(info) + "\n", encoding="utf-8")
        return LaunchSpec(argv=argv, env=env, cwd=str(workdir), notes=notes)

    @staticmethod
    def _target(cluster: ClusterSpec) -> tuple[str, str | None]:
        """(execution target, jobmanager REST address or None) from the cluster's settings."""
        jobmanager = (cluster.extra.get("flink_jobmanager") or "").strip()
        if jobmanager:
            for scheme in ("http://", "https://"):
                if jobmanager.startswith(scheme):
                    jobmanager = jobmanager[len(scheme) :]
            jobmanager = jobmanager.rstrip("/")
            if not _HOSTPORT_RE.match(jobmanager):
                raise EngineRefused(
                    "the cluster's flink_jobmanager must be host:port, "
                    f"not {cluster.extra.get('flink_jobmanager')!r}"
                )
            return "remote", jobmanager
        target = (cluster.extra.get("flink_target") or "local").strip()
        if target == "remote":
            raise EngineRefused("the cluster's Flink target is remote but has no flink_jobmanager")
        return target, None

    # ---------------------------------------------------------------- observe

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        try:
            return self._observe(Path(workdir), launch)
        except Exception:  # observe() must never raise
            return Observation()

    def _observe(self, workdir: Path, launch: LaunchSpec) -> Observation:
        workdir = workdir.resolve()
        key = str(workdir)
        info = _engine_info(workdir)
        jobmanager = _jobmanager_of(launch, info)
        job_id = self._ids.get(key) or find_job_id(workdir, info.get("log_offsets"))
        if job_id is None:
            return Observation()
        if len(self._ids) > 1000:  # entries of jobs no longer observed
            self._ids.clear()
            self._rest_ports.clear()
        self._ids[key] = job_id
        base = None
        detail = None
        if jobmanager:
            base = f"http://{jobmanager}"
            status, detail = _rest(f"{base}/jobs/{job_id}", _REST_TIMEOUT)
        else:
            port, detail = self._local_detail(key, workdir, info, job_id)
            if port is not None:
                base = f"http://127.0.0.1:{port}"
        progress = progress_of_job(detail) if isinstance(detail, dict) else None
        return Observation(
            app_id=job_id,
            tracking_url=f"{base}/#/job/running/{job_id}/overview" if base else None,
            progress=progress,
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
        port = self._rest_ports.get(key) or rest_port_from_log(workdir / LOG_DIR, lo, hi)
        if port is not None:
            self._rest_ports[key] = port
            status, detail = _rest(f"http://127.0.0.1:{port}/jobs/{job_id}", _REST_TIMEOUT)
            if status == 200 and isinstance(detail, dict) and detail.get("jid") == job_id:
                return port, detail
            return port, None  # busy, not up yet, or gone with the ended job
        deadline = time.monotonic() + 2 * _REST_TIMEOUT
        for candidate in range(lo, min(hi, lo + _REST_PORTS - 1) + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0.01:
                break
            url = f"http://127.0.0.1:{candidate}/jobs/{job_id}"
            status, detail = _rest(url, min(_REST_TIMEOUT, remaining))
            if status == 200 and isinstance(detail, dict) and detail.get("jid") == job_id:
                self._rest_ports[key] = candidate
                return candidate, detail
        return None, None

    # ----------------------------------------------------------------- cancel

    def cancel(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> bool:
        """Cancel the job on a remote jobmanager (``PATCH /jobs/<id>?mode=cancel``).

        Returns True when the jobmanager accepted the cancellation. For the local target it
        returns False: the mini-cluster lives in the client process, so stopping the process
        group is enough. Never raises.
        """
        try:
            workdir = Path(workdir).resolve()
            info = _engine_info(workdir)
            jobmanager = _jobmanager_of(launch, info)
            if not jobmanager:
                return False
            job_id = self._ids.get(str(workdir)) or find_job_id(workdir, info.get("log_offsets"))
            if job_id is None or not _HEX32_RE.match(job_id):
                return False
            status, _ = _rest(f"http://{jobmanager}/jobs/{job_id}?mode=cancel", 2.0, "PATCH")
            return status in (200, 202)
        except Exception:
            return False


def _engine_info(workdir: Path) -> dict:
    try:
        data = json.loads((workdir / ENGINE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _jobmanager_of(launch: LaunchSpec | None, info: dict) -> str | None:
    """The remote jobmanager build() chose: ``-m`` in the argv, else engine.json."""
    if launch is not None:
        argv = launch.argv
        if len(argv) >= 6 and argv[1:5] == ["run", "-t", "remote", "-m"]:
            return argv[5]
    jm = info.get("jobmanager")
    return jm if isinstance(jm, str) and jm else None
