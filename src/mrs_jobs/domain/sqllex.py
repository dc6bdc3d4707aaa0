"""Spark SQL text as Spark 4's lexer cuts it: words, strings, backtick names, punctuation, and
where the comments are (for :mod:`mrs_jobs.domain.sqlpaths`).

What decides where code ends and quoted text or a comment begins, checked against Spark's own
parser: strings in ``'`` or ``"`` with backslash escapes and doubled quotes (``'it''s'``); raw
strings ``r'...'`` without escapes; backtick names with doubled backticks; ``--`` comments that a
backslash at the end of the line continues onto the next; ``/* */`` comments that nest; hints
``/*+ ... */``, which are code.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SqlLexError", "Tok", "lex"]


class SqlLexError(ValueError):
    """An unclosed string, backtick name or comment (Spark refuses the statement)."""


@dataclass(frozen=True)
class Tok:
    """One token and where it is in the text."""

    kind: str  # word | str | bq (backtick name) | punct
    value: str  # a word as written, a string's or a backtick name's content, a character
    start: int
    end: int
    quote: str = ""  # ' or " for strings
    plain: bool = True  # a string written without escapes (backslash, doubled quote)

    @property
    def upper(self) -> str:
        return self.value.upper() if self.kind == "word" else ""


def lex(text: str) -> tuple[list[Tok], list[tuple[int, int]]]:
    """(tokens, comment spans); SqlLexError when something is not closed."""
    toks: list[Tok] = []
    comments: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if text.startswith("--", i):
            end = _line_comment_end(text, i)
            comments.append((i, end))
        elif text.startswith("/*+", i):  # a hint: code
            end = i + 3
            toks.append(Tok("punct", "/*+", i, end))
        elif text.startswith("/*", i):
            end = _block_comment_end(text, i)
            comments.append((i, end))
        elif ch in "'\"" or (ch in "rR" and text[i + 1 : i + 2] in ("'", '"')):
            # A word never starts here after a letter: words are read whole below.
            tok = _string(text, i)
            toks.append(tok)
            end = tok.end
        elif ch == "`":
            tok = _backtick(text, i)
            toks.append(tok)
            end = tok.end
        elif ch.isalnum() or ch == "_":
            end = i + 1
            while end < n and (text[end].isalnum() or text[end] == "_"):
                end += 1
            toks.append(Tok("word", text[i:end], i, end))
        else:
            end = i + 1
            toks.append(Tok("punct", ch, i, end))
        i = end
    return toks, comments


def _line_comment_end(text: str, i: int) -> int:
    j, n = i + 2, len(text)
    while j < n and text[j] not in "\r\n":
        j += 2 if text.startswith("\\\n", j) else 1
    return j


def _block_comment_end(text: str, i: int) -> int:
    j, depth = i + 2, 1
    while depth:
        if j >= len(text):
            raise SqlLexError("an unclosed /* comment")
        if text.startswith("*/", j):
            depth, j = depth - 1, j + 2
        elif text.startswith("/*", j) and not text.startswith("/*+", j):
            depth, j = depth + 1, j + 2
        else:
            j += 1
    return j


def _string(text: str, i: int) -> Tok:
    raw = text[i] in "rR"
    q = text[i + 1] if raw else text[i]
    j, n = i + (2 if raw else 1), len(text)
    plain = True
    body: list[str] = []
    while True:
        if j >= n:
            raise SqlLexError("an unclosed quoted string")
        c = text[j]
        if c == "\\" and not raw:
            plain = False
            body.append(text[j : j + 2])
            j += 2
        elif c == q and not raw and text.startswith(q + q, j):
            plain = False
            body.append(q)
            j += 2
        elif c == q:
            value = "".join(body)
            return Tok("str", value, i, j + 1, q, plain and "\\" not in value)
        else:
            body.append(c)
            j += 1


def _backtick(text: str, i: int) -> Tok:
    j, n = i + 1, len(text)
    body: list[str] = []
    while True:
        if j >= n:
            raise SqlLexError("an unclosed `quoted` name")
        if text.startswith("``", j):
            body.append("`")
            j += 2
        elif text[j] == "`":
            return Tok("bq", "".join(body), i, j + 1)
        else:
            body.append(text[j])
            j += 1
