"""DistCp's copy process: ``python -m mrs_jobs.engines.runners.distcp <workdir>/distcp.json``.

Where each source lands follows Hadoop DistCp (``distcp_plan``); existing target files are
skipped, with ``-update`` when size matches and the target is not older (a local file and an S3
object share no checksum), and copied again with ``-overwrite``. No partial file ever carries
its final name (``distcp_sides``). Exit status: 0, 1 copy failure, 2 unusable config,
128+signal when stopped (within about a second). No message ever contains a key or secret.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, NoReturn

from mrs_jobs.engines.runners.distcp_plan import Planner, Progress, Task
from mrs_jobs.engines.runners.distcp_sides import (
    CHUNK,
    MB,
    MIN_CHUNK,
    PROGRESS_INTERVAL,
    STOP_GRACE,
    TEMPS,
    ArrowSide,
    CopyError,
    Info,
    LocalSide,
    Stopped,
)
from mrs_jobs.runtime import jobdir
from mrs_jobs.storage.objectstore import S3Credentials, describe_error, filesystem, redact


class Runner:
    def __init__(self, config: dict[str, Any], workdir: Path) -> None:
        self.cfg = config
        self.workdir = workdir
        opts = config.get("options") or {}
        self.overwrite = bool(opts.get("overwrite"))
        self.update = bool(opts.get("update"))
        self.maps = max(1, int(opts.get("maps") or 4))
        bw = opts.get("bandwidth_mb")
        self.bandwidth = float(bw) * MB if bw else None
        self.creds = S3Credentials.from_json(config["s3"]) if config.get("s3") else None
        self.progress = Progress(workdir / str(config.get("progress_file") or jobdir.PROGRESS))
        self.stop_event = threading.Event()
        self.stop_reason: str | None = None
        self.error: str | None = None
        self.done = threading.Event()
        self.completed = False
        self.sides: dict[str, Any] = {}
        self.roots = list(config.get("input_roots") or [])
        # A configuration without these (written before output roots existed) writes under
        # its input roots.
        self.output_roots = config.get("output_roots")
        self.rooted = config.get("rooted")
        self.forbidden = list(config.get("forbidden") or [])

    def warn(self, text: str) -> None:
        print(f"distcp: warning: {self.redact(text)}", file=sys.stderr, flush=True)

    def redact(self, text: str) -> str:
        return redact(text, self.creds) if self.creds else text

    def side_for(self, spec: dict[str, Any]):
        kind = spec["kind"]
        key = kind if kind != "hdfs" else f"hdfs:{spec['host']}:{spec['port']}"
        if key in self.sides:
            return self.sides[key]
        if kind == "local":
            side: Any = LocalSide(
                self.roots,
                self.warn,
                write_roots=self.output_roots,
                rooted=self.rooted,
                forbidden=self.forbidden,
            )
        elif kind == "s3":
            if self.creds is None:
                raise CopyError("object store paths but no object store settings")
            side = ArrowSide("s3", filesystem(self.creds))
        elif kind == "hdfs":
            side = ArrowSide("hdfs", _hdfs_filesystem(spec))
        else:
            raise CopyError(f"unknown path kind {kind}")
        self.sides[key] = side
        return side

    def check_stop(self) -> None:
        if self.stop_event.is_set():
            raise Stopped()

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop_event.set()

    def plan(self) -> tuple[list[str], list[Task], Any]:
        """(directories to make, files to copy, the target's side): see distcp_plan."""
        return Planner(self).plan()

    def _info(self, side, path: str, shown: str) -> Info | None:
        try:
            return side.info(path)
        except CopyError:
            raise
        except Exception as exc:
            raise CopyError(f"cannot read {shown}: {self._describe(exc)}") from None

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, OSError) and exc.strerror and exc.filename:
            return f"{exc.strerror}: {exc.filename}"
        return describe_error(exc, self.creds)

    def copy_one(self, task: Task, tside) -> None:
        self.check_stop()
        chunk = CHUNK
        if self.bandwidth:
            chunk = int(min(CHUNK, max(MIN_CHUNK, self.bandwidth / 8)))
        try:
            src = task.src_side.open_read(task.src)
        except Exception as exc:
            raise CopyError(f"cannot read {task.shown}: {self._describe(exc)}") from None
        writer = None
        try:
            try:
                writer = tside.writer(task.dst)
            except CopyError:
                raise
            except Exception as exc:
                raise CopyError(f"cannot write {task.dst}: {self._describe(exc)}") from None
            done = 0
            start = time.monotonic()
            while True:
                self.check_stop()
                try:
                    data = src.read(chunk)
                except Exception as exc:
                    raise CopyError(f"cannot read {task.shown}: {self._describe(exc)}") from None
                if not data:
                    break
                try:
                    writer.write(data)
                except Exception as exc:
                    raise CopyError(f"cannot write {task.dst}: {self._describe(exc)}") from None
                done += len(data)
                self.progress.add_bytes(len(data))
                if self.bandwidth:
                    ahead = done / self.bandwidth - (time.monotonic() - start)
                    if ahead > 0 and self.stop_event.wait(ahead):
                        raise Stopped()
            if done != task.size:
                raise CopyError(
                    f"{task.shown} changed during the copy ({task.size} bytes listed, {done} read)"
                )
            self.check_stop()
            try:
                writer.commit()
            except Exception as exc:
                raise CopyError(f"cannot write {task.dst}: {self._describe(exc)}") from None
            writer = None
            self.progress.file_done()
        finally:
            with contextlib.suppress(Exception):
                src.close()
            if writer is not None:
                writer.abort()

    def run(self) -> None:
        """The whole copy, in a worker thread; sets ``self.error`` or ``stop_reason``."""
        try:
            self.progress.write(force=True)
            make_dirs, tasks, tside = self.plan()
            with self.progress.lock:
                self.progress.phase = "copying"
                self.progress.files_total = len(tasks)
                self.progress.bytes_total = sum(t.size for t in tasks)
            self.progress.write(force=True)
            for d in make_dirs:
                self.check_stop()
                try:
                    tside.mkdir(d)
                except CopyError:
                    raise
                except Exception as exc:
                    raise CopyError(f"cannot create directory {d}: {self._describe(exc)}") from None
                self.progress.dirs_created += 1
            tasks.sort(key=lambda t: t.size, reverse=True)
            pool = ThreadPoolExecutor(max_workers=self.maps, thread_name_prefix="distcp-map")
            try:
                futures = [pool.submit(self.copy_one, t, tside) for t in tasks]
                pending = set(futures)
                while pending:
                    finished, pending = wait(
                        pending, timeout=PROGRESS_INTERVAL, return_when=FIRST_EXCEPTION
                    )
                    for f in finished:
                        exc = f.exception()
                        if exc is not None and not isinstance(exc, Stopped):
                            self.request_stop("error")
                            raise exc
                    self.check_stop()
                    self.progress.write()
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
            self.completed = True
        except Stopped:
            pass
        except CopyError as exc:
            self.error = str(exc)
        except Exception as exc:  # unexpected: still no secrets, no traceback with values
            self.error = f"{type(exc).__name__}: {self._describe(exc)}"
        finally:
            self.done.set()


def _hdfs_filesystem(spec: dict[str, Any]):
    from pyarrow import fs as pafs

    if not os.environ.get("CLASSPATH") and os.environ.get("HADOOP_HOME"):
        hadoop = os.path.join(os.environ["HADOOP_HOME"], "bin", "hadoop")
        out = subprocess.run(
            [hadoop, "classpath", "--glob"], capture_output=True, text=True, timeout=60
        )
        if out.returncode == 0:
            os.environ["CLASSPATH"] = out.stdout.strip()
    try:
        return pafs.HadoopFileSystem(spec["host"], int(spec["port"]))
    except Exception as exc:
        raise CopyError(f"cannot connect to HDFS {spec['uri']}: {exc}") from None


def _exit(code: int) -> NoReturn:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(code)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"


def main(argv: list[str] | None = None) -> NoReturn:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mrs_jobs.engines.runners.distcp <distcp.json>", file=sys.stderr)
        _exit(2)
    config_path = Path(args[0]).resolve()
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        runner = Runner(config, config_path.parent)
    except Exception as exc:
        print(
            f"distcp: error: cannot read the configuration {config_path}: {type(exc).__name__}",
            file=sys.stderr,
        )
        _exit(2)

    signals: dict[int, str] = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}

    def on_signal(signum, _frame) -> None:
        runner.request_stop(signals.get(signum, str(signum)))

    for s in signals:
        signal.signal(s, on_signal)

    sources = config.get("sources") or []
    target = config.get("target") or {}
    print(
        f"distcp: copying {len(sources)} source(s) to {target.get('uri')} with "
        f"{runner.maps} map(s)",
        flush=True,
    )
    started = time.monotonic()
    worker = threading.Thread(target=runner.run, name="distcp-main", daemon=True)
    worker.start()
    # The main thread only waits, so a signal is handled at once whatever the copy is doing.
    while not runner.done.wait(0.1):
        if runner.stop_event.is_set() and runner.stop_reason not in (None, "error"):
            runner.done.wait(STOP_GRACE)  # copy threads notice the stop between chunks
            break
    _end(runner, time.monotonic() - started)


def _finish(runner: Runner, phase: str) -> None:
    if phase != "done":
        TEMPS.remove_all()
    with runner.progress.lock:
        runner.progress.phase = phase
    runner.progress.write(force=True, final=True)


def _end(runner: Runner, elapsed: float) -> NoReturn:
    """The final progress, the summary lines and the exit status."""
    p = runner.progress
    if runner.stop_reason in ("SIGTERM", "SIGINT") and not runner.completed:
        _finish(runner, "stopped")
        print(
            f"distcp: stopped by {runner.stop_reason} after {elapsed:.2f} s: {p.files_done} of "
            f"{p.files_total} file(s) copied; no partially copied file was left under its name",
            file=sys.stderr,
        )
        _exit(128 + (signal.SIGTERM if runner.stop_reason == "SIGTERM" else signal.SIGINT))
    if runner.error is not None:
        _finish(runner, "failed")
        print(f"distcp: error: {runner.redact(runner.error)}", file=sys.stderr)
        print(
            f"DistCp failed after {elapsed:.2f} s: {p.files_done} of {p.files_total} file(s) "
            "copied",
            flush=True,
        )
        _exit(1)
    _finish(runner, "done")
    print(
        f"distcp: copied {p.files_done} file(s) ({_human(p.bytes_done)}), skipped "
        f"{p.files_skipped} existing file(s) ({_human(p.bytes_skipped)}), created "
        f"{p.dirs_created} directories in {elapsed:.2f} s"
    )
    print(
        f"DistCp summary: files_copied={p.files_done} bytes_copied={p.bytes_done} "
        f"files_skipped={p.files_skipped} bytes_skipped={p.bytes_skipped} "
        f"dirs_created={p.dirs_created} seconds={elapsed:.3f}"
    )
    _exit(0)


if __name__ == "__main__":
    main()
