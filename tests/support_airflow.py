"""Apache Airflow with the Huawei provider, in a venv of its own, installed once per machine.

Airflow's pins (SQLAlchemy 1.4, Flask 2.2, ...) clash with the project's, so it never goes into
``.venv``: ``install_airflow`` makes ``<engines dir>/airflow-venv`` (the tests' engine cache,
``MRS_JOBS_TEST_ENGINES_DIR``, as for Flink) from ``tests/fixtures/airflow-requirements.txt``,
every version pinned (Airflow's own constraints file is not reachable here), then the provider
with ``--no-deps``: its MRS operators need only Airflow, ``huaweicloudsdkmrs`` and
``huaweicloudsdkiam``, not the other services' SDKs or psycopg2 it also declares. A marker
written last records what was installed; a changed requirements file rebuilds the venv. A file
lock lets parallel test runs share one install. About a minute on a fresh machine (~310 MB).

Run by hand: ``.venv/bin/python tests/support_airflow.py [target dir]`` prints the venv's Python.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from mrs_jobs.engines.install import EngineInstallError

__all__ = [
    "AIRFLOW_VENV",
    "PROVIDER",
    "REQUIREMENTS",
    "default_engines_dir",
    "install_airflow",
    "installed_airflow_python",
]

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "tests" / "fixtures" / "airflow-requirements.txt"
PROVIDER = "apache-airflow-providers-huawei==1.7.0"
AIRFLOW_VENV = "airflow-venv"
MARKER = ".mrs-jobs-airflow.json"
_LOCK = ".airflow-install.lock"
_PIP = ("--disable-pip-version-check", "--no-input", "--progress-bar", "off", "-q")
_NETWORK_SIGNS = (
    "NewConnectionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "No matching distribution found",
    "Could not find a version that satisfies",
    "ProxyError",
)


def default_engines_dir() -> Path:
    return Path(os.environ.get("MRS_JOBS_TEST_ENGINES_DIR", str(REPO / ".cache" / "engines")))


def _wanted() -> str:
    """What an install is of: the requirements file's digest and the provider."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    return f"{digest}+{PROVIDER}"


def installed_airflow_python(target_dir: Path) -> Path | None:
    """The Python of a finished install of the wanted pins under ``target_dir``, else None."""
    venv = Path(target_dir) / AIRFLOW_VENV
    try:
        info = json.loads((venv / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    python = venv / "bin" / "python"
    return python if info.get("installed") == _wanted() and python.exists() else None


@contextlib.contextmanager
def _locked(target_dir: Path) -> Iterator[None]:
    with open(target_dir / _LOCK, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace"
    )
    if done.returncode != 0:
        lines = [
            line
            for line in (done.stdout + done.stderr).splitlines()
            if line.strip() and not line.startswith("WARNING: Location")  # this machine's pip.conf
        ]
        network = any(sign in line for line in lines for sign in _NETWORK_SIGNS)
        raise EngineInstallError(
            f"{what} failed (exit {done.returncode}): {' | '.join(lines[-4:])}", network=network
        )


def install_airflow(target_dir: Path | None = None, python: str = sys.executable) -> Path:
    """Install Airflow and the Huawei provider into ``<target_dir>/airflow-venv``; its Python.

    Idempotent and safe to race: the second caller waits on the lock and finds the marker.
    Raises :class:`EngineInstallError` (``network`` set when the index could not be reached).
    """
    target_dir = Path(target_dir or default_engines_dir()).resolve()
    done = installed_airflow_python(target_dir)
    if done is not None:
        return done
    target_dir.mkdir(parents=True, exist_ok=True)
    venv = target_dir / AIRFLOW_VENV
    with _locked(target_dir):
        done = installed_airflow_python(target_dir)  # another process finished meanwhile
        if done is not None:
            return done
        if venv.exists():  # an interrupted install, or other pins: start clean
            shutil.rmtree(venv)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.pop("VIRTUAL_ENV", None)
        _run([python, "-m", "venv", str(venv)], env, f"python -m venv {venv}")
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", *_PIP]
        _run([*pip, "-r", str(REQUIREMENTS)], env, "pip install -r airflow-requirements.txt")
        _run([*pip, "--no-deps", PROVIDER], env, f"pip install --no-deps {PROVIDER}")
        info = {"installed": _wanted(), "installed_at": time.time()}
        tmp = venv / (MARKER + ".tmp")
        tmp.write_text(json.dumps(info) + "\n", encoding="utf-8")
        tmp.replace(venv / MARKER)
        return venv / "bin" / "python"


if __name__ == "__main__":
    started = time.monotonic()
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    airflow_python = install_airflow(target)
    print(f"{airflow_python} ({time.monotonic() - started:.0f} s)")
