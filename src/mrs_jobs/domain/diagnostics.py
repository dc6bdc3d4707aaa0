"""Why a job ended as it did, in a few lines a user can read: the job's ``diagnostics``.

Pure text work, no I/O: :func:`engine_error` finds an engine's own words for a failure in the
tail of its log (our runners' error lines, Spark's "Job aborted due to stage failure", a
Python exception, a Java root cause); :func:`scrub` masks what may be secret; :func:`compose`
joins the service's reason and the engine's words under the 4 KB cap.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mrs_jobs.domain.render import MASK, is_secret_key

__all__ = ["MAX_DIAGNOSTICS", "compose", "engine_error", "scrub"]

MAX_DIAGNOSTICS = 4096  # characters
_MAX_LINE = 1000

_KV_SECRET_RE = re.compile(r"([\w.\-]+)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)")
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+")

# Our own runners say what failed on a line of their own (runners/sql.py, runners/distcp.py).
_OWN_RE = re.compile(r"^(?:\[mrs-jobs\] (statement \d+ failed: .*)|distcp: error: (.*))$")
_STAGE_RE = re.compile(r"(Job aborted due to stage failure: .*)")
_TRACEBACK = "Traceback (most recent call last):"
# The last line of a Python traceback: ``ValueError: boom``, ``mod.Error``, ``SystemExit: 2``.
_PY_EXC_RE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Failure))(?:: (.*))?$")
# A Java exception line: ``Exception in thread "main" a.b.CException: msg``, ``Caused by: ...``.
_JAVA_EXC_RE = re.compile(
    r"^(?:Exception in thread \"[^\"]*\" |Caused by: |: )?"
    r"((?:[a-zA-Z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error|Failure))(?::\s*(.*))?$"
)
# Thrown again by a wrapper around the real error: its message repeats what follows.
_WRAPPERS = (
    "py4j.protocol.Py4JJavaError",
    "org.apache.flink.client.program.ProgramInvocationException",
    "java.lang.reflect.InvocationTargetException",
    "java.util.concurrent.ExecutionException",
    "java.util.concurrent.CompletionException",
    "org.apache.flink.runtime.client.JobExecutionException",
    "org.apache.flink.runtime.JobException",
)


def scrub(text: str | None, limit: int = _MAX_LINE, secrets: Iterable[str] = ()) -> str | None:
    """``text`` fit for users: the given secret values, secret ``key=value`` values and bearer
    tokens masked, whitespace trimmed, at most ``limit`` characters (None when empty)."""
    if not text:
        return None
    for value in sorted({v for v in secrets if len(v) >= 4}, key=len, reverse=True):
        text = text.replace(value, MASK)
    parts: list[str] = []
    pos = 0
    while m := _KV_SECRET_RE.search(text, pos):
        if is_secret_key(m.group(1)):
            parts.append(text[pos : m.start(3)] + MASK)
            pos = m.end(3)
        else:  # "failed: a.password=x": the value may itself start the next pair
            parts.append(text[pos : m.end(1)])
            pos = m.end(1)
    parts.append(text[pos:])
    out = _BEARER_RE.sub(lambda m: f"{m.group(1)} {MASK}", "".join(parts)).strip()
    if not out:
        return None
    return out if len(out) <= limit else out[: limit - 3].rstrip() + "..."


def engine_error(log_tail: str) -> str | None:
    """The engine's own words for why it failed, found in the tail of its log (None: none).

    At most three lines, most telling first: our runners' own error line; Spark's stage
    failure; the last Python exception; the root cause of the last Java exception.
    """
    lines = [line.rstrip() for line in log_tail.splitlines()]
    found = [_own_error(lines), _stage_failure(lines), _python_error(lines), _java_error(lines)]
    out: list[str] = []
    for line in found:
        if line and not any(line in seen or seen in line for seen in out):
            out.append(line[:_MAX_LINE])
    return "\n".join(out) or None


def compose(reason: str, engine_words: str | None, secrets: Iterable[str] = ()) -> str:
    """The diagnostics of an ended job: the service's reason, then the engine's own words,
    masked and capped at :data:`MAX_DIAGNOSTICS` characters."""
    lines = [w for w in (engine_words or "").splitlines() if w.strip() and w not in reason]
    text = "\n".join([reason, *lines])  # what the reason already quotes is not repeated
    return scrub(text, MAX_DIAGNOSTICS, secrets) or ""


def _own_error(lines: list[str]) -> str | None:
    for line in reversed(lines):
        if m := _OWN_RE.match(line):
            return m.group(1) or m.group(2)
    return None


def _stage_failure(lines: list[str]) -> str | None:
    for line in reversed(lines):
        if m := _STAGE_RE.search(line):
            # Spark appends the whole task's stack trace to the line: its first sentence says
            # which task failed; the cause is found below.
            return m.group(1).split("\n")[0][:400]
    return None


def _python_error(lines: list[str]) -> str | None:
    """The exception line ending the last Python traceback in the log."""
    start = max((i for i, line in enumerate(lines) if line.endswith(_TRACEBACK)), default=-1)
    if start < 0:
        return None
    for line in lines[start + 1 :]:
        if m := _PY_EXC_RE.match(line.strip() if line.startswith(" ") else line):
            if m.group(1).startswith(_WRAPPERS):
                continue
            return line.strip()
    return None


def _java_error(lines: list[str]) -> str | None:
    """The last Java exception line that is not a wrapper: the root cause of the last stack
    trace (its last ``Caused by:``), or the exception itself. A message that starts on the
    next line (Spark's ``ParseException:``) is taken from there."""
    last: str | None = None
    for i, line in enumerate(lines):
        m = _JAVA_EXC_RE.match(line.strip())
        if m is None or m.group(1).startswith(_WRAPPERS):
            continue
        message = m.group(2) or _next_text(lines, i + 1)
        last = f"{m.group(1)}: {message}" if message else m.group(1)
    return last


def _next_text(lines: list[str], start: int) -> str | None:
    """The first non-empty line from ``start`` unless it is a stack frame."""
    for line in lines[start : start + 3]:
        if line.strip():
            return None if line.startswith(("\tat ", "    at ")) else line.strip()
    return None
