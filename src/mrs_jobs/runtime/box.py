"""The job box: what a job's processes see of the machine.

Every local process of a job (engine launcher, driver, SQL server, copy and MapReduce runners)
starts inside a box made with bubblewrap (``bwrap``, the sandbox Flatpak uses; Debian package
``bubblewrap``): Linux mount, pid and IPC namespaces, unprivileged where user namespaces
are allowed, no daemon and no image. Why bubblewrap: it needs no root and no running service,
it is one small reviewed binary that every distribution packages, and a pid namespace gives the
two properties a job supervisor needs most — a job cannot see or signal processes outside its
box, and ending the box's first process ends every process in it, whatever process group or
session they moved to.

What a box shows (:class:`BoxSpec`):

- the system read-only: with ``host_view`` the whole host file system, else only the system
  directories (``/usr``, ``/etc``, ...) plus what the engine needs;
- ``readable`` paths read-only (engine homes, the Python environment, input roots, the files
  the job names) and ``writable`` paths read-write (its own directory, output roots);
- a private ``/tmp``, its own ``/proc`` (no other process, no other environment) and ``/dev``;
- never the ``hidden`` paths (the service's data directory, key and database files), which are
  covered by an empty tmpfs (directories) or ``/dev/null`` (files) *after* everything else is
  bound, so no root can reveal them; the job's own directory is bound again on top.

The network is the host's: jobs reach object stores and remote clusters; engine endpoints on
loopback authenticate instead (docs/security.md).
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SYSTEM_PATHS",
    "BoxPolicy",
    "BoxSpec",
    "box_support",
    "bwrap_path",
    "namespace_members",
    "pid_namespace",
]

# What every box shows read-only when it does not show the whole host.
SYSTEM_PATHS = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/opt",
    "/sys",
    "/run/systemd/resolve",
)
# Host files no job needs and root inside a box could otherwise read.
_ALWAYS_HIDDEN = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")
_PROC = Path("/proc")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the directory holding mrs_jobs/


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


@dataclass(frozen=True)
class BoxSpec:
    """What one box shows of the machine (all paths absolute)."""

    writable: tuple[str, ...] = ()
    readable: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    host_view: bool = False

    def args(self) -> list[str]:
        """bwrap's options (without the program, ``--json-status-fd`` or ``--``)."""
        args = [
            "--die-with-parent",
            "--unshare-pid",
            "--unshare-ipc",
        ]  # host name and cgroups stay: a new UTS name or cgroup namespace breaks the JVM
        if self.host_view:
            args += ["--ro-bind", "/", "/"]
        else:
            for path in SYSTEM_PATHS:
                args += _bind_system(path)
        args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp"]
        hidden = [*self.hidden, *_ALWAYS_HIDDEN]
        for path in self.readable:
            args += ["--ro-bind-try", path, path]
        for path in self.writable:
            args += ["--bind-try", path, path]
        for path in hidden:
            args += _hide(path)
        # Paths inside a hidden one (the job's own directory in the data directory, an engine
        # installed there) are bound again on top of the cover.
        for path in self.readable:
            if any(_inside(path, h) and path != h for h in hidden):
                args += ["--ro-bind-try", path, path]
        for path in self.writable:
            if any(_inside(path, h) and path != h for h in hidden):
                args += ["--bind-try", path, path]
        for path in hidden:  # the covers themselves are read-only: nothing to plant there
            if os.path.isdir(path):
                args += ["--remount-ro", path]
        return args


def _bind_system(path: str) -> list[str]:
    if os.path.islink(path):  # merged /usr: /bin -> usr/bin
        return ["--symlink", os.readlink(path), path]
    return ["--ro-bind-try", path, path]


def _hide(path: str) -> list[str]:
    if os.path.isdir(path):
        return ["--tmpfs", path]
    if os.path.exists(path):
        return ["--ro-bind", "/dev/null", path]
    return []


def bwrap_path() -> str | None:
    """The bubblewrap binary, or None when it is not installed."""
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=8)
def box_support(bwrap: str | None, uid: int | None = None) -> str | None:
    """None when a box can be made here (as ``uid``, default the caller), else the reason.

    Tries a real box once per process: a kernel may have bwrap installed but user namespaces
    switched off (``kernel.unprivileged_userns_clone=0``, AppArmor's restriction on Ubuntu
    24.04), which only a try reveals.
    """
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    argv = [bwrap, *BoxSpec().args(), "--", "/bin/true"]
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=20,
            user=uid,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap could not be started: {exc}"
    if done.returncode != 0:
        text = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"bwrap could not make a box: {text[-1] if text else done.returncode}"
    return None


def pid_namespace(pid: int) -> int | None:
    """The inode of ``pid``'s pid namespace, or None when it is gone or not ours to read."""
    try:
        link = os.readlink(_PROC / str(pid) / "ns" / "pid")
    except OSError:
        return None
    try:
        return int(link[link.index("[") + 1 : link.index("]")])
    except ValueError:
        return None


def namespace_members(namespace: int) -> list[int]:
    """Host pids of every live process in pid namespace ``namespace`` (its box); zombies,
    already dead and waiting for their parent, are not counted."""
    members = []
    for name in os.listdir(_PROC):
        if name.isdigit() and pid_namespace(int(name)) == namespace and not _dead(name):
            members.append(int(name))
    return members


def _dead(pid: str) -> bool:
    try:
        data = (_PROC / pid / "stat").read_bytes()
    except OSError:
        return True
    return data[data.rfind(b")") + 2 :][:1] in (b"Z", b"X")


# Environment variables whose values are paths an engine needs to read.
_PATH_VARIABLES = (
    "JAVA_HOME",
    "SPARK_HOME",
    "FLINK_HOME",
    "HADOOP_HOME",
    "HADOOP_CONF_DIR",
    "PYSPARK_PYTHON",
    "PYSPARK_DRIVER_PYTHON",
    "ARROW_LIBHDFS_DIR",
)


@dataclass(frozen=True)
class BoxPolicy:
    """How this installation boxes runs: the binary, and what no box ever shows."""

    bwrap: str
    hidden: tuple[str, ...]

    def for_run(
        self,
        workdir: Path,
        argv: list[str],
        env: dict[str, str],
        *,
        read_roots: tuple[str, ...] = (),
        write_roots: tuple[str, ...] = (),
        inputs: tuple[str, ...] = (),
        outputs: tuple[str, ...] = (),
        shared: tuple[str, ...] = (),
        user: tuple[int, int] | None = None,
    ) -> BoxSpec:
        """The box of one run.

        With roots the run sees the system, what its engine needs, its roots and the files it
        names; without, the whole host read-only (the single-user default), the hidden paths
        excepted either way. It writes only to ``workdir``, ``write_roots``, ``outputs`` and
        ``shared`` (directories of the service's own an engine shares between runs, the only
        paths that may lie inside a hidden one besides ``workdir``).
        With ``user`` (uid, gid: the run's job user, bwrap then runs as it) paths that user
        cannot reach are left out: bwrap could not bind them, and the user could not read them.
        """
        workdir_s = str(workdir)

        def allowed(path: str) -> bool:  # what a tenant names never uncovers a hidden path
            return _inside(path, workdir_s) or not any(_inside(path, h) for h in self.hidden)

        readable: list[str] = []
        for path in _engine_paths(argv, env):
            _add(readable, path)
        for path in (*read_roots, *inputs, *_named_files(argv)):
            if allowed(os.path.realpath(path)):
                _add(readable, path)
        writable: list[str] = []
        for path in (workdir_s, *write_roots, *outputs):
            if allowed(os.path.realpath(path)):
                _add(writable, path)
        for path in shared:
            if user is None or _reachable(path, *user):
                _add(writable, path)
        if user is not None:
            readable = [p for p in readable if _reachable(p, *user)]
        return BoxSpec(
            writable=tuple(writable),
            readable=tuple(p for p in readable if p not in writable),
            hidden=self.hidden,
            host_view=not (read_roots or write_roots),
        )


def _reachable(path: str, uid: int, gid: int) -> bool:
    """Whether ``uid`` (primary group ``gid`` only) may search every directory above ``path``."""
    for parent in Path(path).parents:
        try:
            st = parent.stat()
        except OSError:
            return False
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _add(paths: list[str], path: str) -> None:
    if not path or not os.path.isabs(path):
        return
    real = os.path.realpath(path)
    for candidate in (os.path.normpath(path), real):
        if candidate not in paths and candidate != "/":
            paths.append(candidate)


def _named_files(argv: list[str]) -> list[str]:
    """Existing files an argv names under /tmp (which is private in a box): an app, a jar."""
    found = []
    for token in argv[1:]:
        for part in token.replace("=", ",").split(","):
            if part.startswith("file://"):
                part = part[len("file://") :]
            if (_inside(part, "/tmp") or _inside(part, "/var/tmp")) and os.path.isfile(part):
                found.append(part)
    return found


def _engine_paths(argv: list[str], env: dict[str, str]) -> list[str]:
    """What an engine needs to read: its program, PATH, its homes, the Python environment."""
    import sys

    paths = [sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))]
    # The service's own import path: runners (``python -m mrs_jobs.engines.runners...``) import
    # this package, which an editable install keeps outside the environment.
    paths += [p for p in sys.path if p.endswith("site-packages")] + [_PACKAGE_ROOT]
    if argv and os.path.isabs(argv[0]):
        paths.append(os.path.dirname(argv[0]))
        paths.append(os.path.dirname(os.path.realpath(argv[0])))
    for name in _PATH_VARIABLES:
        value = env.get(name)
        if value:
            paths.append(value if os.path.isdir(value) else os.path.dirname(value))
    for name in ("PATH", "PYTHONPATH", "CLASSPATH", "LD_LIBRARY_PATH"):
        paths += [p for p in env.get(name, "").split(os.pathsep) if p]
    # A virtual environment's bin directory needs the whole environment (its site-packages):
    # the Flink client's own venv, a cluster's pyspark_python.
    paths += [
        os.path.dirname(p.rstrip("/"))
        for p in list(paths)
        if os.path.isabs(p)
        and os.path.isfile(os.path.join(os.path.dirname(p.rstrip("/")), "pyvenv.cfg"))
    ]
    return [p for p in paths if os.path.isabs(p) and os.path.exists(p)]
