"""Split SQL text into statements on ``;`` outside quotes and comments (contract §5, §9).

Statement indexes in ``sql_results`` follow this split, so it must be predictable: quoted
strings ('...', "...", `...`, with backslash escapes as Spark SQL reads them), ``--`` line
comments and ``/* */`` block comments never split; empty statements are dropped; comments are
kept in the statement text (the engine ignores them).
"""

from __future__ import annotations

__all__ = ["split_statements"]


def split_statements(text: str) -> list[str]:
    statements: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    quote: str | None = None
    while i < n:
        ch = text[i]
        if quote is not None:
            buf.append(ch)
            if ch == "\\" and quote != "`" and i + 1 < n:
                buf.append(text[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
            i += 1
            continue
        if ch in ("'", '"', "`"):
            quote = ch
            buf.append(ch)
            i += 1
            continue
        if ch == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end == -1 else end
            buf.append(text[i:end])
            i = end
            continue
        if ch == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end == -1 else end + 2
            buf.append(text[i:end])
            i = end
            continue
        if ch == ";":
            _flush(buf, statements)
            buf = []
            i += 1
            continue
        buf.append(ch)
        i += 1
    _flush(buf, statements)
    return statements


def _flush(buf: list[str], out: list[str]) -> None:
    stmt = "".join(buf).strip()
    if stmt and not _only_comments(stmt):
        out.append(stmt)


def _only_comments(stmt: str) -> bool:
    rest = stmt
    while rest:
        rest = rest.lstrip()
        if rest.startswith("--"):
            nl = rest.find("\n")
            rest = "" if nl == -1 else rest[nl + 1 :]
        elif rest.startswith("/*"):
            end = rest.find("*/")
            rest = "" if end == -1 else rest[end + 2 :]
        else:
            return False
    return True
