"""Which tables each SQL statement writes, so that writes to one table can take turns.

Spark writes a data-source table through Hadoop's FileOutputCommitter, whose scratch directory
is ``<table>/_temporary``: two jobs inserting into the same table at once on one SQL server
share it, and the first to commit deletes it under the second ("Mkdirs failed to create
.../_temporary/..."). Statements that write the same table are therefore serialised per
cluster (the SQL job process takes a lock per table, ``engines/runners/sql.py``); reads and
writes to other tables run concurrently as before.

Names are ``database.table`` in lower case (Spark's names are case-insensitive); the database
is the job's ``--database`` (else ``default``), changed by ``USE db`` statements.
"""

from __future__ import annotations

from mrs_jobs.domain.sqllex import SqlLexError, Tok, lex

__all__ = ["written_tables"]

# After these words the next name is a table that the statement writes into.
_WRITE_HEADS = {
    ("INSERT", "INTO"),
    ("INSERT", "OVERWRITE"),
    ("MERGE", "INTO"),
    ("UPDATE", ""),
    ("DELETE", "FROM"),
    ("TRUNCATE", "TABLE"),
}


def _name(toks: list[Tok], i: int) -> tuple[str | None, int]:
    """A possibly qualified name starting at ``toks[i]`` (words or backtick names and dots)."""
    parts: list[str] = []
    while i < len(toks) and toks[i].kind in ("word", "bq"):
        parts.append(toks[i].value)
        if i + 1 < len(toks) and toks[i + 1].kind == "punct" and toks[i + 1].value == ".":
            i += 2
            continue
        i += 1
        break
    return (".".join(parts) if parts else None), i


def _qualified(name: str, database: str) -> str:
    return (name if "." in name else f"{database}.{name}").lower()


def written_tables(statements: list[str], database: str | None = None) -> list[list[str]]:
    """For each statement, the tables it writes (sorted, ``db.table``); [] when none or when
    the text cannot be read (the statement then runs unserialised, as before)."""
    current = database or "default"
    out: list[list[str]] = []
    for stmt in statements:
        try:
            toks, _ = lex(stmt)
        except SqlLexError:
            out.append([])
            continue
        words = [t.upper for t in toks]
        if len(toks) >= 2 and words[0] == "USE":
            name, _ = _name(toks, 1)
            if name:
                current = name
            out.append([])
            continue
        found: set[str] = set()
        for i, word in enumerate(words):
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if (word, nxt) in _WRITE_HEADS:
                j = i + 2
            elif (word, "") in _WRITE_HEADS and i == 0:
                j = i + 1
            else:
                continue
            if word == "INSERT" and j < len(words) and words[j] == "TABLE":
                j += 1
            if word == "INSERT" and nxt == "OVERWRITE" and j < len(words):
                if words[j] in ("DIRECTORY", "LOCAL"):
                    continue  # a directory, not a table
            name, _ = _name(toks, j)
            if name:
                found.add(_qualified(name, current))
        out.append(sorted(found))
    return out
