"""The files an SQL job's statements read or write, found in their text (a second line behind
the job's box: the engine checks each against the cluster's roots and the service's files).

Forms found, case-insensitively, in the text Spark receives (after the service's own
``--hivevar`` substitution):

* a path-based source ``fmt.`path``` (``text``, ``csv``, ``json``, ``parquet``, ``orc``,
  ``avro``, ``binaryFile``, ``delta``... or a data source class name), and any two-part name
  whose second part looks like a path (``x.`/abs```, ``x.`file:/abs```), also as
  ``IDENTIFIER('fmt.`path`')``; written when it is the target of ``INSERT``, ``MERGE``,
  ``UPDATE``, ``DELETE``, ``TRUNCATE``, ``CREATE``, ``ALTER``...;
* ``LOCATION '...'`` (tables, partitions, databases: written, since any later job may insert
  into them), ``OPTIONS (path '...', paths '[...]')`` and the other property lists;
* ``INSERT OVERWRITE [LOCAL] DIRECTORY '...'`` (written); ``LOAD DATA LOCAL INPATH '...'``
  (read) and ``LOAD DATA INPATH '...'`` (written: Hive moves the files away);
* ``ADD JAR|FILE|ARCHIVE[S] ...`` (every word after it, as Spark splits them) and
  ``USING JAR|FILE|ARCHIVE '...'`` of ``CREATE FUNCTION`` (read).

A temporary view's ``OPTIONS (path ...)``/``LOCATION`` is read, unless the job also inserts,
loads, merges, updates, deletes or truncates (a file-source view can be inserted into).

The text is cut as Spark 4's lexer cuts it (:mod:`mrs_jobs.domain.sqllex`). What cannot be
checked with certainty raises :class:`UncheckableSql`: ``${...}`` left in the text (Spark would
substitute it at run time, unknown names by nothing), ``EXECUTE IMMEDIATE`` or
``IDENTIFIER(...)`` of anything but one string literal, relative paths, unknown URL schemes,
``%`` or backslashes in a path, and a path form hidden in a comment or string. Non-local
schemes (``hdfs://``, ``s3a://``, ``obs://``...) are left to their engine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mrs_jobs.domain.sqllex import SqlLexError, Tok, lex

__all__ = ["SqlPath", "UncheckableSql", "local_path", "statement_paths"]

# Data sources whose ``name.`x``` reads the file x (Spark's ResolveSQLOnFile); a qualifier with
# a dot (a class name, ``org.apache.spark.sql.parquet``) is taken as a data source too.
FILE_FORMATS = frozenset(
    (
        "text csv json parquet orc avro binaryfile delta xml libsvm image hive iceberg "
        "hudi noop jdbc kafka statestore"
    ).split()
)
# Schemes of other file systems: not local, left to the engine (which refuses what it cannot
# reach).
REMOTE_SCHEMES = frozenset(
    (
        "hdfs webhdfs swebhdfs viewfs s3 s3a s3n obs oss gs wasb wasbs abfs abfss adl cos "
        "cosn alluxio http https ftp ivy"
    ).split()
)
_LOCAL_SCHEMES = frozenset({"file", "local"})
_RESOURCES = frozenset({"JAR", "JARS", "FILE", "FILES", "ARCHIVE", "ARCHIVES"})
_PROPERTY_LISTS = frozenset(
    {"OPTIONS", "TBLPROPERTIES", "SERDEPROPERTIES", "DBPROPERTIES", "PROPERTIES"}
)
_PATH_KEYS = frozenset({"path", "paths"})
_READ_KEYS = frozenset({"avro.schema.url", "avroschemaurl"})
# Words before a path-based source that make it a target (after skipping TABLE, IF NOT EXISTS).
_WRITE_VERBS = frozenset(
    (
        "INTO OVERWRITE UPDATE TRUNCATE ALTER DROP CREATE REPLACE RESTORE OPTIMIZE VACUUM "
        "DELTA REPAIR MERGE"
    ).split()
)
_SKIPPED_BEFORE_TABLE = frozenset({"TABLE", "IF", "NOT", "EXISTS", "ONLY", "EXTERNAL"})
# Where an unquoted ``fmt.name`` is a table reference (a relative path), not a column.
_TABLE_CONTEXT = frozenset({"FROM", "JOIN", "TABLE", "INTO", "UPDATE"})
_FROM_ENDS = frozenset(
    (
        "SELECT WHERE GROUP ORDER HAVING LIMIT ON WINDOW UNION EXCEPT INTERSECT SORT "
        "CLUSTER DISTRIBUTE INSERT SET VALUES"
    ).split()
)
# Words of statements that write into tables (looked for anywhere, EXECUTE IMMEDIATE too).
_TABLE_WRITES_RE = re.compile(r"(?i)\b(?:INSERT|MERGE|TRUNCATE|UPDATE|DELETE|LOAD)\b")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# Spark's split of what follows ADD JAR/FILE/ARCHIVE (SparkSqlParser.visitManageResource).
_RESOURCE_RE = re.compile(r"""(".*?[^\\]"|'.*?[^\\]'|[^ \n\r\t"']+)""")
_FORMAT_ALT = "|".join(sorted(FILE_FORMATS))
# Path forms that should never sit in a comment or an unchecked string: when one does, the
# lexing here and Spark's could disagree about where that comment or string ends.
_HIDDEN_RE = re.compile(
    rf"""(?ix)
    \b(?:{_FORMAT_ALT})\s*\.\s*[`"]
    | \.\s*`\s*(?:/|file:|local:)
    | \b(?:LOCATION|DIRECTORY|INPATH)\s*['"]
    | \bUSING\s+(?:JAR|FILE|ARCHIVE)\s*['"]
    | \bEXECUTE\s+IMMEDIATE\b
    | \bIDENTIFIER\s*\(
    """
)
_MAX_DEPTH = 3


@dataclass(frozen=True)
class SqlPath:
    """A file a statement names: ``local`` is its absolute local path, None for a URL of
    another file system; ``text`` is the path as written (for messages)."""

    statement: int  # index in the statement list, as in the job's SQL results
    text: str
    local: str | None
    write: bool


class UncheckableSql(ValueError):
    """A statement whose files cannot be known with certainty; the message names it."""

    def __init__(self, statement: int, reason: str) -> None:
        super().__init__(f"statement {statement}: {reason}")
        self.statement = statement
        self.reason = reason


@dataclass
class _Found:
    path: SqlPath
    temp_view: bool = False  # read unless the job writes into tables


def statement_paths(statements: Sequence[str]) -> list[SqlPath]:
    """Every file the statements name, in order; UncheckableSql when one cannot be known."""
    found: list[_Found] = []
    for index, text in enumerate(statements):
        found += _Statement(index, text, 0).paths()
    writes_tables = any(_writes_tables(text) for text in statements)
    out = []
    for f in found:
        p = f.path
        if f.temp_view and writes_tables and not p.write:
            p = SqlPath(p.statement, p.text, p.local, True)
        out.append(p)
    return out


def local_path(text: str, statement: int = 0) -> str | None:
    """The absolute local path ``text`` names, None for another file system's URL."""
    if not text:
        raise UncheckableSql(statement, "an empty path")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise UncheckableSql(statement, "a path with control characters")
    m = _SCHEME_RE.match(text)
    path = text
    if m:
        scheme = m.group(1).lower()
        rest = text[m.end() :]
        if scheme in REMOTE_SCHEMES:
            return None
        if scheme not in _LOCAL_SCHEMES:
            raise UncheckableSql(statement, f"unsupported URL scheme {scheme}: in {text}")
        if rest.startswith("//"):  # file://host/x: whatever the host, the local /x is checked
            _host, slash, tail = rest[2:].partition("/")
            rest = "/" + tail if slash else ""
        path = rest
    if not path.startswith("/") or path.startswith("//"):
        raise UncheckableSql(
            statement, f"the path {text} is not an absolute local path (or file: URL)"
        )
    if "%" in path:
        raise UncheckableSql(
            statement, f"the path {text} contains '%': percent-escapes are not accepted"
        )
    if "\\" in path:
        raise UncheckableSql(statement, f"the path {text} contains a backslash")
    return path


def _writes_tables(text: str) -> bool:
    return bool(_TABLE_WRITES_RE.search(text))


def _is_format(tok: Tok) -> bool:
    return tok.kind in ("word", "bq") and (tok.value.lower() in FILE_FORMATS or "." in tok.value)


def _looks_like_path(value: str) -> bool:
    v = value.strip()
    return v.startswith(("/", "~", ".", "\\")) or bool(
        re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:/", v) or re.match(r"(?i)^(file|local|har):", v)
    )


# ------------------------------------------------------------------------------- statements


class _Statement:
    def __init__(self, index: int, text: str, depth: int) -> None:
        self.index = index
        self.text = text
        self.depth = depth
        self.found: list[_Found] = []
        self.checked: set[int] = set()  # start offsets of strings taken as paths or SQL

    def refuse(self, reason: str) -> UncheckableSql:
        return UncheckableSql(self.index, reason)

    def lex(self, text: str) -> tuple[list[Tok], list[tuple[int, int]]]:
        try:
            return lex(text)
        except SqlLexError as exc:
            raise self.refuse(str(exc)) from None

    def add(self, text: str, *, write: bool, temp_view: bool = False) -> None:
        local = local_path(text, self.index)
        self.found.append(_Found(SqlPath(self.index, text, local, write), temp_view))

    def add_string(self, tok: Tok, nxt: Tok | None, **kw: bool) -> None:
        if not tok.plain:
            raise self.refuse(
                f"the path {tok.value} uses escapes (backslash or doubled quote): give it plainly"
            )
        if nxt is not None and nxt.kind == "str":
            raise self.refuse(f"the path {tok.value} is followed by another string")
        self.checked.add(tok.start)
        self.add(tok.value, **kw)

    def paths(self) -> list[_Found]:
        if "${" in self.text:
            raise self.refuse(
                "'${' would be substituted by Spark when the statement runs (an unknown name "
                "by nothing): give variables with --hivevar/--define k=v"
            )
        toks, comments = self.lex(self.text)
        if not toks:
            return []
        words = [t.upper for t in toks]
        if words[0] == "ADD" and len(toks) > 1 and words[1] in _RESOURCES:
            return self._resources(toks[1].end)
        if words[0] == "SET":
            self._setting(toks[0].end)  # and its text as code too: SET may assign a variable
        temp_view = self._temp_view(words)
        in_from = False
        for i, tok in enumerate(toks):
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            after = toks[i + 2] if i + 2 < len(toks) else None
            w = words[i]
            if w in ("FROM", "JOIN"):
                in_from = True
            elif w in _FROM_ENDS:
                in_from = False
            if tok.kind == "punct" and tok.value == "." and 0 < i and nxt is not None:
                self._dotted(toks, words, i, in_from)
            elif w in ("LOCATION", "MANAGEDLOCATION") and nxt is not None and nxt.kind == "str":
                self.add_string(nxt, after, write=not temp_view, temp_view=temp_view)
            elif w == "DIRECTORY" and nxt is not None and nxt.kind == "str":
                self.add_string(nxt, after, write=True)
            elif w == "INPATH" and nxt is not None and nxt.kind == "str":
                local = i > 0 and words[i - 1] == "LOCAL"
                self.add_string(nxt, after, write=not local)
            elif w in _RESOURCES and nxt is not None and nxt.kind == "str":
                self.add_string(nxt, after, write=False)
            elif w in _PROPERTY_LISTS and nxt is not None and nxt.value == "(":
                self._properties(toks, i + 2, temp_view)
            elif w == "EXECUTE" and nxt is not None and nxt.upper == "IMMEDIATE":
                self._immediate(toks, i + 2)
            elif w == "IDENTIFIER" and nxt is not None and nxt.value == "(":
                self._identifier(toks, words, i)
        self._hidden(toks, comments)
        return self.found

    # ---------------------------------------------------------------------------- the forms

    def _resources(self, start: int) -> list[_Found]:
        """ADD JAR/FILE/ARCHIVE: Spark splits the raw rest (comments included) into paths."""
        for item in _RESOURCE_RE.findall(self.text[start:]):
            if item[0] in "'\"":
                if "\\" in item:
                    raise self.refuse(f"the path {item} uses backslash escapes")
                item = item[1:-1]
            self.add(item, write=False)
        return self.found

    def _setting(self, start: int) -> None:
        """SET key=value: a value naming a local path is checked as written (a session setting
        such as a scratch or checkpoint directory is where Spark writes)."""
        _key, eq, value = self.text[start:].partition("=")
        value = value.split(";")[0].strip()
        if eq and re.match(r"(?i)^(/|file:|local:)", value):
            self.add(value, write=True)

    @staticmethod
    def _temp_view(words: list[str]) -> bool:
        """CREATE [OR REPLACE] TEMPORARY VIEW/TABLE (session only; GLOBAL ones outlive it)."""
        if not words or words[0] != "CREATE":
            return False
        rest = [w for w in words[1:4] if w not in ("OR", "REPLACE")]
        return bool(rest) and rest[0] in ("TEMPORARY", "TEMP")

    def _dotted(self, toks: list[Tok], words: list[str], i: int, in_from: bool) -> None:
        left, right = toks[i - 1], toks[i + 1]
        if left.kind not in ("word", "bq"):
            return
        quoted = right.kind == "bq" or (right.kind == "str" and right.quote == '"')
        if quoted:
            if not (_is_format(left) or _looks_like_path(right.value)):
                return
            if right.kind == "str":
                self.checked.add(right.start)
                if not right.plain:
                    raise self.refuse(f"the path {right.value} uses escapes: give it plainly")
        elif right.kind == "word" and _is_format(left) and i >= 2:
            before = toks[i - 2]
            if not (words[i - 2] in _TABLE_CONTEXT or (before.value == "," and in_from)):
                return
        else:
            return
        self.add(right.value, write=self._target(toks, words, i - 1))

    @staticmethod
    def _target(toks: list[Tok], words: list[str], j: int) -> bool:
        """Whether the table reference starting at ``j`` is written."""
        k = j - 1
        while k >= 0 and words[k] in _SKIPPED_BEFORE_TABLE:
            k -= 1
        if k < 0:
            return False
        if words[k] == "FROM":
            return k > 0 and words[k - 1] == "DELETE"
        return words[k] in _WRITE_VERBS

    def _properties(self, toks: list[Tok], start: int, temp_view: bool) -> None:
        """``(key [=] value, ...)``: path keys are files (written, but in a temporary view)."""
        depth, i = 1, start
        entry: list[Tok] = []
        while i < len(toks) and depth:
            t = toks[i]
            if t.value == "(" and t.kind == "punct":
                depth += 1
            elif t.value == ")" and t.kind == "punct":
                depth -= 1
            if depth == 0 or (depth == 1 and t.kind == "punct" and t.value == ","):
                self._property(entry, temp_view)
                entry = []
            else:
                entry.append(t)
            i += 1

    def _property(self, entry: list[Tok], temp_view: bool) -> None:
        if not entry:
            return
        value = entry[-1]
        key_toks = [t for t in entry[:-1] if not (t.kind == "punct" and t.value == "=")]
        if key_toks and key_toks[0].kind == "str":
            key = key_toks[0].value
        else:
            key = "".join(t.value for t in key_toks)
        key = key.strip().lower()
        if key not in _PATH_KEYS | _READ_KEYS:
            return
        if value.kind != "str":
            return
        if not value.plain:
            raise self.refuse(f"the {key} option uses escapes: give it plainly")
        self.checked.add(value.start)
        write = key in _PATH_KEYS and not temp_view
        items = self._json_paths(value.value) if key == "paths" else [value.value]
        for item in items:
            self.add(item, write=write, temp_view=temp_view and key in _PATH_KEYS)

    def _json_paths(self, text: str) -> list[str]:
        """The ``paths`` option: a JSON list, as Spark's file sources read it."""
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if not isinstance(items, list) or not all(isinstance(p, str) for p in items):
            raise self.refuse("the paths option must be a JSON list of paths")
        return items

    def _immediate(self, toks: list[Tok], i: int) -> None:
        """EXECUTE IMMEDIATE: its SQL is checked like a statement, if it is one literal."""
        sql = toks[i] if i < len(toks) else None
        after = toks[i + 1] if i + 1 < len(toks) else None
        if (
            sql is None
            or sql.kind != "str"
            or not sql.plain
            or self.depth >= _MAX_DEPTH
            or (after is not None and after.upper not in ("INTO", "USING"))
        ):
            raise self.refuse("EXECUTE IMMEDIATE can only run one plain string literal here")
        self.checked.add(sql.start)
        self.found += _Statement(self.index, sql.value, self.depth + 1).paths()

    def _identifier(self, toks: list[Tok], words: list[str], i: int) -> None:
        """IDENTIFIER('name'): the name is checked as if written in place."""
        lit = toks[i + 2] if i + 2 < len(toks) else None
        close = toks[i + 3] if i + 3 < len(toks) else None
        if lit is None or lit.kind != "str" or not lit.plain or close is None or close.value != ")":
            raise self.refuse("IDENTIFIER(...) can only take one plain string literal here")
        self.checked.add(lit.start)
        parts, _ = self.lex(lit.value)
        names, dots = parts[0::2], parts[1::2]
        if (
            not parts
            or len(parts) % 2 == 0
            or any(p.kind not in ("word", "bq") for p in names)
            or any(d.value != "." or d.kind != "punct" for d in dots)
        ):
            raise self.refuse(f"IDENTIFIER({lit.value!r}) is not a name")
        if len(names) != 2:
            return
        qualifier, name = names
        if _is_format(qualifier) or (name.kind == "bq" and _looks_like_path(name.value)):
            self.add(name.value, write=self._target(toks, words, i))

    def _hidden(self, toks: list[Tok], comments: list[tuple[int, int]]) -> None:
        spans = list(comments) + [
            (t.start, t.end) for t in toks if t.kind == "str" and t.start not in self.checked
        ]
        for start, end in spans:
            if _HIDDEN_RE.search(self.text[start:end]):
                raise self.refuse(
                    "a file path form (fmt.`path`, LOCATION '...', ...) inside a comment or a "
                    "quoted string cannot be checked: remove it"
                )
