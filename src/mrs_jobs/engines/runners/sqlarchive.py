"""A statement's whole result set as CSV (the SQL execution API's ``archive_path``).

Run inside the SQL job process (runners/sql.py): rows are fetched in batches and written as
they come (UTF-8, a header row, NULL as an empty field), so a result far over the row cap
never sits in memory; the first ``cap`` rows are kept for the inline result. A local target
is written in place (the engine checked it is under the cluster's output roots; the box lets
only those be written); an object-store target is written to the job's own directory first
and then uploaded with the credentials the engine put in the 0600 ``sql.json``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

__all__ = ["BATCH", "ArchiveFailed", "archive_result"]

BATCH = 10_000  # rows fetched per Thrift call while archiving
_CHUNK = 1 << 20


class ArchiveFailed(Exception):
    """The result could not be written where asked; the message holds no secret."""


def _cell(value: Any, text: Any) -> str:
    return "" if value is None else text(value)


def _is_ddl_answer(description: list[tuple], first: list[tuple]) -> bool:
    """Spark's Thrift server answers DDL/DML with one column ``Result`` and no rows."""
    names = [str(c[0]).split(".")[-1] for c in description]
    return not first and names == ["Result"]


def archive_result(
    cursor: Any, spec: dict[str, Any], cap: int, workdir: Path, text: Any
) -> tuple[list[tuple], bool]:
    """(the first ``cap`` rows, whether an archive was written) of the cursor's result set,
    every row written to ``spec["location"]``. ``text`` renders a value as the inline rows do.
    A statement without a result set writes nothing."""
    description = cursor.description or []
    batch = cursor.fetchmany(BATCH)
    if not description or _is_ddl_answer(description, batch):
        return list(batch[:cap]), False
    local = spec.get("local")
    target = Path(local) if local else workdir / "archive.csv"
    kept: list[tuple] = []
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow([str(c[0]).split(".")[-1] for c in description])
            while batch:
                if len(kept) < cap:
                    kept.extend(batch[: cap - len(kept)])
                writer.writerows([_cell(v, text) for v in row] for row in batch)
                batch = cursor.fetchmany(BATCH)
    except OSError as exc:
        raise ArchiveFailed(
            f"cannot write the result to {spec.get('location')}: {exc.strerror or exc}"
        ) from None
    if not local:
        _upload(target, spec)
    return kept, True


def _upload(path: Path, spec: dict[str, Any]) -> None:
    from mrs_jobs.storage.objectstore import (
        ObjectStoreError,
        S3Credentials,
        describe_error,
        filesystem,
        parse_uri,
    )

    creds = S3Credentials.from_json(spec.get("creds") or {})
    location = str(spec["location"])
    try:
        fs = filesystem(creds)
        with open(path, "rb") as src, fs.open_output_stream(parse_uri(location).path) as dst:
            while chunk := src.read(_CHUNK):
                dst.write(chunk)
    except ObjectStoreError as exc:
        raise ArchiveFailed(f"cannot write the result to {location}: {exc}") from None
    except Exception as exc:  # pyarrow's OSError/ArrowException: described without secrets
        raise ArchiveFailed(
            f"cannot write the result to {location}: {describe_error(exc, creds)}"
        ) from None
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
