"""The presto SQL process: runs an SQL execution's statement on a Presto/Trino coordinator.

``python -m mrs_jobs.engines.runners.presto <workdir>/sql.json``, started boxed by the
supervisor like the Thrift runner (runners/sql.py), whose records it writes the same way:
``progress.json`` once the coordinator accepted the statement, ``sql_results.json`` with the
statement's rows (capped, rendered as the Thrift runner renders them) or its failure (the
coordinator's ``errorName: message``, secrets masked, :func:`~runners.sql.failed_record`).
With an ``archive`` the whole result set is written as CSV (runners/sqlarchive.py). Rows past
the cap of a statement without an archive are not fetched: the query is cancelled there.
SIGTERM sends ``DELETE nextUri`` to the coordinator (the query stops there) and exits 143.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mrs_jobs.engines.runners.sql import (
    SUCCEED,
    cell_text,
    failed_record,
    mask_secrets,
    render_rows,
    secrets_of,
)
from mrs_jobs.engines.runners.sqlarchive import archive_result
from mrs_jobs.engines.runners.trino import Query, Session, TrinoClient, TrinoError
from mrs_jobs.runtime import jobdir

__all__ = ["ResultCursor", "client_of", "main", "run_statement"]


def _log(message: str) -> None:
    print(f"[mrs-jobs] {message}", file=sys.stderr, flush=True)


def _value(value: Any) -> Any:
    """A JSON value of a row as the Thrift runner's renderer takes it: arrays, maps and rows
    (JSON lists and objects here) as JSON text."""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


class ResultCursor:
    """A query's result set as the DB-API cursor the archive writer reads (``description``,
    ``fetchmany``): the rows already read first, then the rest as the coordinator sends them."""

    def __init__(self, query: Query, read: list[list[Any]]) -> None:
        self.description = [(str(c.get("name", "")), c.get("type")) for c in query.columns or []]
        self._rows: Iterator[list[Any]] = itertools.chain(read, query.rows())

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        return [tuple(_value(v) for v in row) for row in itertools.islice(self._rows, size)]


def client_of(spec: dict[str, Any]) -> TrinoClient:
    session = Session(
        user=str(spec.get("user") or "mrs"),
        catalog=str(spec.get("catalog") or ""),
        schema=str(spec.get("schema") or ""),
        dialect=str(spec.get("dialect") or "trino"),
    )
    password = spec.get("password")
    auth = (session.user, str(password)) if password else None
    return TrinoClient(
        str(spec["coordinator"]),
        session,
        timeout=float(spec.get("http_timeout", 60)),
        auth=auth,
        ca_pem=spec.get("ca_pem") or None,
    )


def run_statement(
    client: TrinoClient, spec: dict[str, Any], workdir: Path, running: list[Query]
) -> int:
    """Run the one statement; its record in ``sql_results.json`` ("0"); 0 when it succeeded,
    1 when it failed. ``running`` receives the query once the coordinator accepted it (what a
    SIGTERM cancels)."""
    statement: str = spec["statements"][0]
    cap = int(spec.get("row_cap", 1000))
    secrets = secrets_of(spec)
    results_path = workdir / jobdir.SQL_RESULTS
    progress_path = workdir / jobdir.PROGRESS
    first = statement.strip().splitlines()[0][:200] if statement.strip() else ""
    _log(f"statement 0: {first}")
    started = time.monotonic()
    try:
        query = client.execute(statement)
        running.append(query)
        _log(f"query {query.id} on the coordinator ({query.info_uri or 'no info URI'})")
        jobdir.write_json_atomic(progress_path, {"done": 0, "total": 1})
        read = query.wait_for_columns()
        if query.columns is None:
            shown = list(SUCCEED)  # no result set (DDL): the query ran to its end
        else:
            cursor = ResultCursor(query, read)
            archive = spec.get("archive")
            if archive:
                rows, _ = archive_result(cursor, archive, cap, workdir, cell_text)
            else:
                rows = cursor.fetchmany(cap)
                if query.next_uri is not None:
                    _log(f"more than {cap} row(s): the rest of the result is not fetched")
                    query.cancel()
            shown = render_rows(cursor.description, rows)
    except Exception as exc:  # TrinoError, ArchiveFailed, a coordinator gone mid-way
        text = mask_secrets(str(exc), secrets)
        if not isinstance(exc, TrinoError):
            text = f"{exc.__class__.__name__}: {text}"
        _log(f"statement 0 failed: {text}")
        print(f"statement 0 failed: {text}", flush=True)
        jobdir.write_json_atomic(results_path, {"0": failed_record(text)})
        return 1
    jobdir.write_json_atomic(results_path, {"0": shown})
    jobdir.write_json_atomic(progress_path, {"done": 1, "total": 1})
    count = 0 if shown == SUCCEED else len(shown)
    _log(f"statement 0 done in {time.monotonic() - started:.2f} s, {count} row(s)")
    for row in shown[:20]:
        print(json.dumps(row, ensure_ascii=False), flush=True)
    return 0


def main(argv: list[str]) -> int:
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    running: list[Query] = []

    def on_term(_signum: int, _frame: Any) -> None:
        _log("cancel requested: cancelling the query on the coordinator")
        if running and running[0].next_uri:
            # A client of its own: the signal may arrive inside a request of the main one.
            try:
                with client_of(spec) as other:
                    other.delete(str(running[0].next_uri))
                _log(f"query {running[0].id} was cancelled on the coordinator")
            except Exception as exc:  # the coordinator may be gone
                _log(f"cancel failed: {exc.__class__.__name__}")
        os._exit(143)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    _log(f"the {spec.get('dialect', 'trino')} coordinator at {spec['coordinator']}")
    with client_of(spec) as client:
        return run_statement(client, spec, spec_path.parent, running)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
