"""A ``flink run`` command line as MRS users write it → options the service can launch.

Parsing follows Flink's own client (commons-cli): options until the first argument that is not
one, then the jar (or, for ``-py``/``-pym``, the program arguments). Translation decides per
option: the deployment target is the cluster's (``-t``/``-m``/``-e`` replaced), YARN and
ZooKeeper options are dropped, secret ``-D`` keys move to the job's private configuration file,
and file arguments are checked against the cluster's input roots. Every change is a note for
the job's log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mrs_jobs.domain.render import is_secret_key as _contract_secret
from mrs_jobs.engines.base import EngineRefused
from mrs_jobs.engines.kit import read_option
from mrs_jobs.engines.paths import URL_RE, InputRoots, file_url_path

__all__ = [
    "FLAG_OPTIONS",
    "RESERVED_CONF",
    "VALUE_OPTIONS",
    "Translated",
    "is_secret_key",
    "localize_jar",
    "parse_flink_run",
    "translate_options",
]


def _spellings(*pairs: tuple[str, str]) -> dict[str, str]:
    """Short and long spelling of each option → the short one."""
    return {name: short for short, long in pairs for name in (short, long)}


# `flink run --help` of Flink 2.3: options taking a value, (short, long).
VALUE_OPTIONS = _spellings(
    ("-c", "--class"),
    ("-C", "--classpath"),
    ("-cm", "--claimMode"),
    ("-rm", "--restoreMode"),
    ("-p", "--parallelism"),
    ("-py", "--python"),
    ("-pyarch", "--pyArchives"),
    ("-pyclientexec", "--pyClientExecutable"),
    ("-pyexec", "--pyExecutable"),
    ("-pyfs", "--pyFiles"),
    ("-pym", "--pyModule"),
    ("-pypath", "--pyPythonPath"),
    ("-pyreq", "--pyRequirements"),
    ("-s", "--fromSavepoint"),
    ("-e", "--executor"),
    ("-t", "--target"),
    ("-m", "--jobmanager"),
    ("-z", "--zookeeperNamespace"),
    ("-yid", "--yarnapplicationId"),
    # Flink 1.x YARN options still found in MRS command lines; dropped (the cluster decides).
    ("-yat", "--yarnapplicationType"),
    ("-yj", "--yarnjar"),
    ("-yjm", "--yarnjobManagerMemory"),
    ("-ynl", "--yarnnodeLabel"),
    ("-ynm", "--yarnname"),
    ("-yqu", "--yarnqueue"),
    ("-ys", "--yarnslots"),
    ("-yt", "--yarnship"),
    ("-ytm", "--yarntaskManagerMemory"),
    ("-yz", "--yarnzookeeperNamespace"),
)
FLAG_OPTIONS = _spellings(
    ("-d", "--detached"),
    ("-n", "--allowNonRestoredState"),
    ("-sae", "--shutdownOnAttachedExit"),
    ("-yd", "--yarndetached"),
    ("-yq", "--yarnquery"),
)
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
        # What keeps a local mini-cluster's REST endpoint to the job and the service
        # (flink_conf: mutual TLS, no submission or cancel through the web UI).
        "web.submit.enable",
        "web.cancel.enable",
        "web.rescale.enable",
        "security.ssl.algorithms",
        "security.ssl.protocol",
        "security.ssl.provider",
        "security.ssl.rest.enabled",
        "security.ssl.rest.authentication-enabled",
        "security.ssl.rest.cert.fingerprint",
        "security.ssl.rest.keystore",
        "security.ssl.rest.keystore-type",
        "security.ssl.rest.keystore-password",
        "security.ssl.rest.key-password",
        "security.ssl.rest.truststore",
        "security.ssl.rest.truststore-type",
        "security.ssl.rest.truststore-password",
    }
)

_REMOTE_SCHEMES = frozenset(
    {"abfs", "abfss", "gs", "hdfs", "http", "https", "obs", "oss", "s3", "s3a", "s3n", "viewfs"}
)
_URL_RE = URL_RE


def is_secret_key(key: str) -> bool:
    """The contract's secret rule, plus Flink's ``*credentials`` keys."""
    return _contract_secret(key) or key.lower().endswith("credentials")


def _after_run(arguments: list[str]) -> list[str]:
    """The arguments after the required action ``run`` (``flink run`` too)."""
    if any("\x00" in a for a in arguments):
        raise EngineRefused("arguments must not contain NUL characters")
    args = arguments[1:] if arguments[:1] == ["flink"] else list(arguments)
    if args[:1] == ["run"]:
        return args[1:]
    if args and args[0] in _OTHER_ACTIONS:
        raise EngineRefused(
            f"the Flink action {args[0]!r} is not supported: only 'run' is "
            "(a job is stopped with the MRS kill API)"
        )
    raise EngineRefused("Flink arguments must start with the action 'run'")


def parse_flink_run(
    arguments: list[str],
) -> tuple[list[tuple[str, str | None]], str | None, list[str]]:
    """Split ``run <options> [jar] <program arguments>`` into (options, jar, program args).

    Options come as ``(short name, value)``; ``-D k=v`` and ``-Dk=v`` both as ``("-D", "k=v")``.
    Like Flink's client, parsing stops at the first argument that is not an option: with
    ``-py``/``-pym`` the rest are program arguments (no jar), else it is the jar.
    """
    args = _after_run(arguments)
    options: list[tuple[str, str | None]] = []
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "-":
        if args[i] == "--":
            i += 1
            break
        found = read_option(args, i, "flink run", VALUE_OPTIONS, FLAG_OPTIONS)
        if found is not None:
            i, option = found
            options.append(option)
            continue
        name = args[i].partition("=")[0] if args[i].startswith("--") else args[i]
        if name in ("-D", "-yD"):
            i += 1
            if i >= len(args):
                raise EngineRefused(f"flink run option {name} needs a property=value")
            options.append((name, args[i]))
        elif name.startswith(("-yD", "-D")):  # the attached form: -Dk=v
            cut = 3 if name.startswith("-yD") else 2
            options.append((name[:cut], name[cut:]))
        elif re.fullmatch(r"-p\d+", name):  # commons-cli's attached form: -p4
            options.append(("-p", name[2:]))
        elif any(n in ("-py", "-pym") for n, _ in options):
            break  # like Flink's parser: in a Python job an unknown option starts its arguments
        else:
            raise EngineRefused(f"unknown flink run option: {name}")
        i += 1
    rest = args[i:]
    if not rest or any(name in ("-py", "-pym") for name, _ in options):
        return options, None, rest
    return options, rest[0], rest[1:]


def _local_path(value: str) -> str | None:
    """The local path a file argument names, or None for a remote URL Flink fetches itself."""
    m = _URL_RE.match(value)
    if m:
        scheme = m.group(1).lower()
        if scheme == "file":
            return file_url_path(value)
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


@dataclass
class Translated:
    """What the user's options and the job's properties become on the ``flink run`` line."""

    prop_argv: list[str] = field(default_factory=list)  # the job's properties as -Dk=v
    user_argv: list[str] = field(default_factory=list)  # the user's options, checked
    secret_conf: dict[str, str] = field(default_factory=dict)  # for the private config file
    given: set[str] = field(default_factory=set)  # short names of the options the user gave
    conf_keys: set[str] = field(default_factory=set)  # keys of the user's own -D


def translate_options(
    properties: dict[str, str],
    options: list[tuple[str, str | None]],
    roots: InputRoots,
    target: str,
    jobmanager: str | None,
    notes: list[str],
) -> Translated:
    """Turn properties and parsed options into argv pieces; append a note per change.

    Properties come first on the line so that the user's own ``-D`` win. A user's ``-d``
    (detached) is never passed on: on a remote cluster every job is submitted detached anyway
    (the service follows it through the jobmanager's REST API), and a local mini-cluster dies
    with its client, so the client must wait.
    """
    out = Translated()

    def conf_entry(key: str, value: str, shown: str) -> list[str]:
        key = key.strip()
        if not key:
            raise EngineRefused(f"{shown} needs a key=value")
        if key in RESERVED_CONF:
            notes.append(f"ignored {shown} {key}: set by the service")
            return []
        if is_secret_key(key):
            out.secret_conf[key] = value
            notes.append(f"{shown} {key} passed in the job's private configuration file")
            return []
        return [f"-D{key}={value}"]

    for key, value in properties.items():
        out.prop_argv += conf_entry(key, value, "property")

    for name, value in options:
        out.given.add(name)
        note = _service_option(name, value, target, jobmanager)
        if note is not None:
            notes.append(note)
        elif value is None:
            out.user_argv.append(name)
        elif name == "-D":
            key, eq, val = value.partition("=")
            if not eq:
                raise EngineRefused(f"-D {key} needs a key=value")
            out.conf_keys.add(key.strip())
            out.user_argv += conf_entry(key, val, "-D")
        else:
            out.user_argv += [name, _checked_value(name, value, roots)]
    return out


def _service_option(
    name: str, value: str | None, target: str, jobmanager: str | None
) -> str | None:
    """The note for an option the service decides (replaced or ignored); None for the user's."""
    if name in _TARGET_OPTIONS:
        replacement = f"-t {target}" + (f" -m {jobmanager}" if jobmanager else "")
        return f"replaced {name} {value} with {replacement}"
    if name in _DROPPED_OPTIONS or name in _DROPPED_FLAGS or name == "-yD":
        if value is None:
            shown = name
        elif name == "-yD":  # the value might be a secret: show the key only
            shown = f"-yD {value.partition('=')[0]}"
        else:
            shown = f"{name} {value}"
        return f"ignored {shown}: the cluster's configuration decides"
    if name == "-d":
        if target == "remote":
            return (
                "-d (detached): jobs on a remote Flink cluster are always submitted "
                "detached; the service follows the job through the jobmanager's REST API"
            )
        return "ignored -d (detached): the service follows the job until it ends" + (
            " (a local mini-cluster dies with its client)" if target == "local" else ""
        )
    if name == "-sae":
        return "ignored -sae: the service owns the cluster's lifetime"
    return None


def _checked_value(name: str, value: str, roots: InputRoots) -> str:
    """An option's value with its local files checked against the roots."""
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
    return value


def localize_jar(jar: str, roots: InputRoots) -> str:
    """The jar's real local path, checked against the input roots."""
    if _local_path(jar) is None:
        raise EngineRefused(f"the Flink jar must be a local file: {jar}")
    real = _localize(jar, roots, "jar file", must_exist=True, url=False)
    if not Path(real).is_file():
        raise EngineRefused(f"jar file not found: {jar}")
    return real
