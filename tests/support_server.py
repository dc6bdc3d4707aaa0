"""Start the real ``mrs-jobs serve`` as a subprocess for tests (loopback, free port)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent / "mrs-jobs"


class ServerProcess:
    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "MRS_JOBS_DATA_DIR": str(data_dir),
            "MRS_JOBS_PORT": "0",
            "MRS_JOBS_POLL_INTERVAL": "0.1",
            "MRS_JOBS_KILL_GRACE_SECONDS": "3",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def bootstrap(self) -> dict[str, str]:
        return json.loads((self.data_dir / "bootstrap.json").read_text())

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        offset = self.log.stat().st_size if self.log.exists() else 0
        self.proc = subprocess.Popen(
            [str(BIN), "serve"],
            env=self.env,
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            marker = "mrs-jobs is running at"
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            if marker in text:
                endpoint = text.split(marker, 1)[1].split()[0]
                try:
                    if httpx.get(endpoint + "/health", timeout=1).status_code == 200:
                        self.endpoint = endpoint
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise RuntimeError("server did not start in time")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)
