"""Install engines the service runs but does not depend on as a Python package.

Flink is PyPI's ``apache-flink`` (its ``pyflink`` directory is a complete Flink home), in a
venv of its own under ``<data_dir>/engines/flink-venv``: its pins clash with pyspark's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

__all__ = [
    "DEFAULT_FLINK_VERSION",
    "FLINK_VENV",
    "EngineInstallError",
    "engines_install_command",
    "find_flink_home",
    "flink_python_of",
    "install_flink",
    "installed_flink_home",
]

DEFAULT_FLINK_VERSION = "2.3.0"
FLINK_VENV = "flink-venv"
MARKER = ".mrs-jobs-flink.json"
_LOCK = ".flink-install.lock"
_PIP_FLAGS = ("--disable-pip-version-check", "--no-input", "--progress-bar", "off")

# Lines of pip's output that mean the package index could not be reached.
_NETWORK_SIGNS = (
    "Failed to establish a new connection",
    "NewConnectionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Connection refused",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "timed out",
    "No matching distribution found",
    "Could not find a version that satisfies",
    "ProxyError",
    "SSLError",
)


class EngineInstallError(Exception):
    """An engine could not be installed; ``network`` tells a download problem from others."""

    def __init__(self, message: str, *, network: bool = False) -> None:
        super().__init__(message)
        self.network = network


def is_flink_home(path: Path) -> bool:
    flink = path / "bin" / "flink"
    return flink.is_file() and (path / "lib").is_dir()


def _venv_flink_homes(venv: Path) -> list[Path]:
    return [p for p in sorted(venv.glob("lib/python*/site-packages/pyflink")) if is_flink_home(p)]


def installed_flink_home(target_dir: Path, version: str | None = None) -> Path | None:
    """The FLINK_HOME of a finished install under ``target_dir`` (of ``version`` if given)."""
    venv = Path(target_dir) / FLINK_VENV
    try:
        info = json.loads((venv / MARKER).read_text(encoding="utf-8"))
        home = Path(info["flink_home"])
        installed = str(info["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if version is not None and installed != version:
        return None
    return home if is_flink_home(home) else None


def flink_python_of(flink_home: str | Path) -> str | None:
    """The Python of the virtual environment a pip-installed Flink home lives in (has pyflink).

    Walks up from ``<venv>/lib/pythonX.Y/site-packages/pyflink`` to the directory holding
    ``pyvenv.cfg``; None for a Flink home that is not inside a virtual environment.
    """
    home = Path(flink_home)
    for parent in list(home.parents)[:5]:
        if (parent / "pyvenv.cfg").is_file():
            python = parent / "bin" / "python"
            if python.exists():
                return str(python)
    return None


def find_flink_home(setting: str | None, data_dir: Path | None) -> str | None:
    """FLINK_HOME: the setting if given, else env ``FLINK_HOME``, else the service's install.

    A setting that is not a Flink home yields None (a wrong explicit setting is not silently
    replaced); an env value that is not one is skipped. The service's own install is
    ``<data_dir>/engines/flink-venv/.../pyflink`` once ``install_flink`` has finished there.
    """
    if setting:
        return str(Path(setting)) if is_flink_home(Path(setting)) else None
    env = os.environ.get("FLINK_HOME")
    if env and is_flink_home(Path(env)):
        return str(Path(env))
    if data_dir is not None:
        home = installed_flink_home(Path(data_dir) / "engines")
        if home is not None:
            return str(home)
    return None


@contextlib.contextmanager
def _locked(target_dir: Path) -> Iterator[None]:
    """Serialise installs into one directory (the CLI and a test run may race)."""
    with open(target_dir / _LOCK, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run_streamed(argv: list[str], out: TextIO, env: dict[str, str]) -> tuple[int, list[str]]:
    """Run argv, copying its merged output line by line to ``out``; (exit code, last lines)."""
    tail: list[str] = []
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        errors="replace",
        bufsize=1,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        out.write(line)
        out.flush()
        tail.append(line.rstrip("\n"))
        if len(tail) > 200:
            del tail[:100]
    return proc.wait(), tail


def _step(argv: list[str], out: TextIO, env: dict[str, str], what: str) -> None:
    """Run one install step; EngineInstallError with its last lines when it fails."""
    code, tail = _run_streamed(argv, out, env)
    if code != 0:
        network = any(sign in line for line in tail for sign in _NETWORK_SIGNS)
        last = " | ".join(tail[-3:])
        raise EngineInstallError(f"{what} failed (exit {code}): {last}", network=network)


def install_flink(
    target_dir: Path,
    *,
    python: str = sys.executable,
    version: str = DEFAULT_FLINK_VERSION,
    out: TextIO | None = None,
) -> Path:
    """Install ``apache-flink==version`` into ``<target_dir>/flink-venv``; return FLINK_HOME.

    Idempotent: a marker written after a successful install makes later calls return at once.
    A venv left by an interrupted install is reused (pip completes it); one of another version
    is upgraded in place. pip's output goes to ``out`` (default: ``sys.stderr``); the download
    is about 0.85 GB installed and takes minutes. Raises :class:`EngineInstallError`.
    """
    target_dir = Path(target_dir).resolve()
    done = installed_flink_home(target_dir, version)
    if done is not None:
        return done
    out = out if out is not None else sys.stderr
    target_dir.mkdir(parents=True, exist_ok=True)
    venv = target_dir / FLINK_VENV
    with _locked(target_dir):
        done = installed_flink_home(target_dir, version)  # another process finished meanwhile
        if done is not None:
            return done
        with contextlib.suppress(OSError):
            (venv / MARKER).unlink()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.pop("VIRTUAL_ENV", None)
        env["PYTHONUNBUFFERED"] = "1"
        venv_python = venv / "bin" / "python"
        if not venv_python.exists():
            if venv.exists():
                shutil.rmtree(venv)
            out.write(f"creating virtual environment {venv}\n")
            _step([python, "-m", "venv", str(venv)], out, env, f"python -m venv {venv}")
        out.write(f"installing apache-flink=={version} (about 0.85 GB, several minutes)\n")
        out.flush()
        pip = [str(venv_python), "-m", "pip", "install", *_PIP_FLAGS, f"apache-flink=={version}"]
        _step(pip, out, env, f"pip install apache-flink=={version}")
        homes = _venv_flink_homes(venv)
        if not homes:
            raise EngineInstallError(f"apache-flink installed but no pyflink/bin/flink in {venv}")
        home = homes[0]
        for script in (home / "bin").iterdir():  # wheels may drop the executable bits
            if script.is_file() and (script.suffix == ".sh" or "." not in script.name):
                mode = script.stat().st_mode
                if mode & 0o111 != 0o111:
                    script.chmod(mode | 0o755)
        info = {"version": version, "flink_home": str(home), "installed_at": time.time()}
        tmp = venv / (MARKER + ".tmp")
        tmp.write_text(json.dumps(info) + "\n", encoding="utf-8")
        tmp.replace(venv / MARKER)
        return home


def _dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def engines_install_command(what: str, data_dir: Path) -> int:
    """``mrs-jobs engines install <what>``: install an engine under ``<data_dir>/engines``.

    Prints progress (pip's output on stderr); returns the process exit code.
    """
    what = what.strip().lower()
    if what not in ("flink", "spark", "all"):
        print(f"unknown engine {what!r}: choose spark, flink or all", file=sys.stderr)
        return 2
    if what in ("spark", "all"):
        # Spark, Spark SQL/Hive and the Hadoop client jars come with the pyspark dependency.
        from mrs_jobs.engines.java import find_java_home, find_spark_home

        spark, java = find_spark_home(), find_java_home()
        print(
            f"Spark is installed with mrs-jobs: SPARK_HOME={spark or 'NOT FOUND'}; "
            f"JAVA_HOME={java or 'NOT FOUND (install Java 17+)'}"
        )
        if spark is None or java is None:
            return 1
        if what == "spark":
            return 0
    target = Path(data_dir) / "engines"
    already = installed_flink_home(target.resolve(), DEFAULT_FLINK_VERSION)
    if already is not None:
        print(f"Flink {DEFAULT_FLINK_VERSION} is already installed: FLINK_HOME={already}")
        return 0
    print(f"installing Flink {DEFAULT_FLINK_VERSION} into {target / FLINK_VENV} ...", flush=True)
    started = time.monotonic()
    try:
        home = install_flink(target)
    except EngineInstallError as e:
        print(f"Flink install failed: {e}", file=sys.stderr)
        if e.network:
            print("(the package index could not be reached)", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"Flink install failed: {e}", file=sys.stderr)
        return 1
    size_mb = _dir_size(target / FLINK_VENV) / 1e6
    print(
        f"Flink {DEFAULT_FLINK_VERSION} installed in {time.monotonic() - started:.0f} s "
        f"({size_mb:.0f} MB): FLINK_HOME={home}"
    )
    return 0
