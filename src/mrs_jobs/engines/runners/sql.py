"""The SQL job process: runs a job's statements on its cluster's Spark Thrift Server.

``python -m mrs_jobs.engines.runners.sql <workdir>/sql.json``. Statements run one by one in
one session; after each, its result rows (capped) are written to ``sql_results.json`` and
progress to ``progress.json`` (both atomically), so the supervisor can store them when the
process ends. The job fails on the first failing statement: its entry holds the engine's
error (:func:`failed_record`, secrets masked) and the log names its index. With an
``archive`` (the SQL execution API's archive_path) the first statement's whole result set is
also written as CSV (runners/sqlarchive.py).
SIGTERM cancels the running statement on the server and exits 143. The server's user and
password (its CUSTOM authentication) come in ``sql.json`` too, which the job directory keeps
0600 and the supervisor deletes when the job ends.
"""

from __future__ import annotations

import datetime as dt
import decimal
import fcntl
import hashlib
import json
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from mrs_jobs.domain.render import MASK
from mrs_jobs.engines.runners.sqlarchive import archive_result
from mrs_jobs.runtime import jobdir

__all__ = [
    "FAILED",
    "MESSAGE_CAP",
    "SUCCEED",
    "cell_text",
    "failed_record",
    "main",
    "mask_secrets",
    "render_rows",
    "run_statements",
    "secrets_of",
]

SUCCEED = [{"result": "succeed"}]
FAILED = "failed"  # a failed statement: [{"result": "failed", "message": <the error>}]
MESSAGE_CAP = 4096  # bytes of a failed statement's message kept in its record
_CUT = " [...]"
_FRAME_RE = re.compile(r"^\s+(at \S+\(.*\)|\.\.\. \d+ more)\s*$")  # Java stack frames


def _log(message: str) -> None:
    print(f"[mrs-jobs] {message}", file=sys.stderr, flush=True)


def cell_text(value: Any) -> str:
    """A value as a result row shows it (NULL for None, ISO dates, booleans in lower case)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, float | decimal.Decimal | int):
        return str(value)
    return str(value)


def render_rows(description: list[tuple] | None, rows: list[tuple]) -> list[dict[str, str]]:
    """Rows as {column: string}; a statement without a result set gives ``[{"result": ...}]``."""
    if not description:
        return list(SUCCEED)
    names: list[str] = []
    for col in description:
        name = str(col[0]).split(".")[-1]
        base, n = name, 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    # Spark's Thrift server answers DDL/DML with one STRING column "Result" and no rows.
    if not rows and len(names) == 1 and names[0] == "Result":
        return list(SUCCEED)
    return [{k: cell_text(v) for k, v in zip(names, row, strict=False)} for row in rows]


def _wait_for_server(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the SQL server at {host}:{port} did not answer") from None
            if not announced:
                _log(f"waiting for the cluster's SQL server at {host}:{port} to start")
                announced = True
            time.sleep(0.5)


class TableLocks:
    """Statements writing the same table take turns across the cluster's SQL jobs: an
    exclusive ``flock`` per table (domain/sqlwrites.py says which tables a statement writes),
    held while the statement runs. Waiting is interruptible: a kill still cancels at once."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.dir = Path(spec.get("dir") or "")
        self.tables: dict[str, list[str]] = spec.get("tables") or {}
        self.held: list[int] = []

    def acquire(self, index: int) -> None:
        names = sorted(set(self.tables.get(str(index), [])))  # one order: no deadlock
        for name in names:
            path = self.dir / (hashlib.sha256(name.encode()).hexdigest()[:32] + ".lock")
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            except OSError as exc:  # no lock directory here: run unserialised, as before
                _log(f"writes to {name} are not serialised ({exc.__class__.__name__})")
                continue
            announced = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not announced:
                        _log(f"waiting: another job of this cluster is writing {name}")
                        announced = True
                    time.sleep(0.2)
            self.held.append(fd)

    def release(self) -> None:
        for fd in self.held:
            os.close(fd)  # closing drops the flock
        self.held = []


def _run(cursor: Any, stmt: str) -> None:
    """Run one statement asynchronously and wait for it.

    A synchronous ExecuteStatement keeps the job inside one Thrift call for the whole query,
    and the operation's handle arrives only with its end: a kill could not cancel it. Here the
    handle is known at once and a kill cancels the statement on the server (``_cancel``).
    """
    from TCLIService.ttypes import TOperationState

    cursor.execute(stmt, async_=True)
    done = {TOperationState.FINISHED_STATE}
    failed = {
        TOperationState.ERROR_STATE,
        TOperationState.CANCELED_STATE,
        TOperationState.CLOSED_STATE,
        TOperationState.UKNOWN_STATE,
    }
    delay = 0.01
    while True:
        status = cursor.poll()
        if status.operationState in done:
            return
        if status.operationState in failed:
            name = TOperationState._VALUES_TO_NAMES.get(status.operationState, "FAILED")
            raise RuntimeError(status.errorMessage or name)
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _connect(spec: dict[str, Any]) -> Any:
    from pyhive import hive

    password = spec.get("password")  # None: a server without authentication
    return hive.connect(
        host=spec["host"],
        port=spec["port"],
        username=spec.get("user", "mrs"),
        auth="CUSTOM" if password else "NONE",
        password=password or None,
        configuration=spec.get("session_conf") or None,
    )


def _cancel(spec: dict[str, Any], cursor: Any) -> None:
    """Cancel the cursor's running operation over a connection of its own.

    The signal arrives while the main thread is inside a Thrift call on the job's connection:
    a second request on that transport would read the first one's answer (or half of it).
    Operation handles are the server's, so another session can cancel it.
    """
    handle = getattr(cursor, "_operationHandle", None)
    if handle is None:
        return
    from TCLIService import ttypes

    conn = _connect(spec)
    try:
        conn.client.CancelOperation(ttypes.TCancelOperationReq(operationHandle=handle))
        _log("the running statement was cancelled on the server")
    finally:
        try:
            conn.close()
        except Exception:
            pass


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    secrets = secrets_of(spec)
    cursor_box: list[Any] = []

    def on_term(_signum: int, _frame: Any) -> None:
        _log("cancel requested: cancelling the running statement")
        if cursor_box:
            try:
                _cancel(spec, cursor_box[0])
            except Exception as exc:  # the server may already be gone
                _log(f"cancel failed: {exc.__class__.__name__}")
        os._exit(143)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    try:
        _wait_for_server(spec["host"], spec["port"], float(spec.get("connect_timeout", 180)))
        conn = _connect(spec)
    except Exception as exc:
        _log(f"could not connect to the SQL server: {mask_secrets(str(exc), secrets)}")
        return 2
    _log(f"connected to the Spark SQL server at {spec['host']}:{spec['port']}")
    cursor = conn.cursor()
    cursor_box.append(cursor)
    for stmt in spec.get("setup", []):
        try:
            cursor.execute(stmt)
        except Exception as exc:
            text = mask_secrets(_error_text(exc.args[0] if exc.args else exc), secrets)
            _log(f"session setup failed ({stmt.split('=')[0]}): {text}")
            return 1
    code = run_statements(cursor, spec, Path(argv[0]).parent)
    try:
        conn.close()
    except Exception:
        pass
    return code


def run_statements(cursor: Any, spec: dict[str, Any], workdir: Path) -> int:
    """Run the job's statements in order on ``cursor``, writing each one's rows to
    ``sql_results.json`` and the progress to ``progress.json``. The first failing statement
    is recorded at its index as :func:`failed_record` and ends the run (1); the statements
    after it do not run and have no entry. 0 when every statement succeeded."""
    results_path = workdir / jobdir.SQL_RESULTS
    progress_path = workdir / jobdir.PROGRESS
    statements: list[str] = spec["statements"]
    cap = int(spec.get("row_cap", 1000))
    secrets = secrets_of(spec)
    results: dict[str, list[dict[str, str]]] = {}
    jobdir.write_json_atomic(progress_path, {"done": 0, "total": len(statements)})
    locks = TableLocks(spec.get("locks") or {})
    for index, stmt in enumerate(statements):
        first = stmt.strip().splitlines()[0][:200] if stmt.strip() else ""
        _log(f"statement {index}: {first}")
        started = time.monotonic()
        try:
            locks.acquire(index)
            _run(cursor, stmt)
            archive = spec.get("archive") if index == 0 else None
            if archive and cursor.description:  # the SQL execution API's archive_path
                rows, _ = archive_result(cursor, archive, cap, workdir, cell_text)
            else:
                rows = cursor.fetchmany(cap) if cursor.description else []
            results[str(index)] = render_rows(cursor.description, rows)
        except Exception as exc:
            text = mask_secrets(_error_text(exc.args[0] if exc.args else exc), secrets)
            _log(f"statement {index} failed: {text}")
            print(f"statement {index} failed: {text}", flush=True)
            results[str(index)] = failed_record(text)
            jobdir.write_json_atomic(results_path, results)
            return 1
        finally:
            locks.release()
        jobdir.write_json_atomic(results_path, results)
        jobdir.write_json_atomic(progress_path, {"done": index + 1, "total": len(statements)})
        shown = results[str(index)]
        _log(
            f"statement {index} done in {time.monotonic() - started:.2f} s, "
            f"{0 if shown == SUCCEED else len(shown)} row(s)"
        )
        for row in shown[:20]:
            print(json.dumps(row, ensure_ascii=False), flush=True)
    return 0


def failed_record(message: str) -> list[dict[str, str]]:
    """A failed statement's entry in the results: the engine's error (secrets already
    masked) without the Java stack frames the server appends (the log keeps them), at most
    :data:`MESSAGE_CAP` bytes of UTF-8."""
    lines = message.splitlines()
    message = "\n".join(line for line in lines if not _FRAME_RE.match(line)).strip()
    raw = message.encode("utf-8")
    if len(raw) > MESSAGE_CAP:
        keep = MESSAGE_CAP - len(_CUT.encode("utf-8"))
        message = raw[:keep].decode("utf-8", "ignore") + _CUT
    return [{"result": FAILED, "message": message}]


def secrets_of(spec: dict[str, Any]) -> list[str]:
    """The values an error text must not show: the server's password and the job's secret
    values the engine listed in ``mask`` (secret settings, variables, properties)."""
    values = [spec.get("password"), *(spec.get("mask") or [])]
    return [v for v in values if isinstance(v, str) and v]


def mask_secrets(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value replaced by the mask (longest first)."""
    for value in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def _error_text(message: Any) -> str:
    """Thrift errors carry a status object; keep its human part."""
    status = getattr(message, "status", None)
    if status is not None and getattr(status, "errorMessage", None):
        return str(status.errorMessage)
    return str(message)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
