"""SparkSql, SparkScript, HiveSql and HiveScript jobs, run on the cluster's SQL server.

Arguments (contract §5): option pairs as spark-sql/hive read them, then the SQL text or a
``.sql`` file. Secret properties never leave the private job directory. Every file the
statements name (:mod:`mrs_jobs.domain.sqlpaths`) is checked against the roots before launch;
what cannot be checked (``${...}`` Spark would substitute, a relative path) is refused.
"""

from __future__ import annotations

import json
import posixpath
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from mrs_jobs.domain.render import is_secret_key
from mrs_jobs.domain.sqlexecution import ARCHIVE_PROPERTY, archive_location
from mrs_jobs.domain.sqlpaths import UncheckableSql, local_path, statement_paths
from mrs_jobs.domain.sqlsplit import split_statements
from mrs_jobs.domain.sqlwrites import written_tables
from mrs_jobs.engines.base import (
    ClusterSpec,
    EngineAdapter,
    EngineRefused,
    JobSpec,
    LaunchSpec,
    Observation,
    Usage,
)
from mrs_jobs.engines.kit import launch_env, read_option
from mrs_jobs.engines.paths import InputRoots, file_url_path
from mrs_jobs.engines.presto import build_presto, is_presto, observe_presto
from mrs_jobs.engines.thrift import ThriftEndpoint, ThriftServers
from mrs_jobs.runtime import jobdir
from mrs_jobs.storage.objectstore import (
    ObjectStoreError,
    is_object_uri,
    parse_uri,
    resolve_credentials,
)

__all__ = ["SQL_TYPES", "SqlEngine", "parse_sql_arguments"]

# A script job names a .sql file; the others carry the SQL text.
SCRIPT_TYPES = frozenset({"SparkScript", "HiveScript"})
SQL_TYPES = frozenset({"SparkSql", "HiveSql"}) | SCRIPT_TYPES
_CONF_OPTS = {"--conf", "--hiveconf"}
_VAR_OPTS = {"--hivevar", "--define", "-d"}
_VALUE_OPTS = {o: o for o in (*_CONF_OPTS, *_VAR_OPTS, "--database", "-e", "-f")}
_SETTING_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")
_PATH_VALUE_RE = re.compile(r"(?i)^(/|file:|local:)")


def parse_sql_arguments(
    args: list[str], script: bool
) -> tuple[list[tuple[str, str]], dict[str, str], str | None, str | None, str | None]:
    """(settings, variables, database, sql text, script path)."""
    settings: list[tuple[str, str]] = []
    variables: dict[str, str] = {}
    database = text = path = None
    i = 0
    while i < len(args):
        found = read_option(args, i, "SQL", _VALUE_OPTS, {})
        if found is None:
            if args[i].startswith("-") and len(args[i]) > 1 and text is None and path is None:
                raise EngineRefused(f"unknown option {args[i]}")
            if not script:
                text = " ".join(args[i:])
            elif len(args) - i != 1:
                raise EngineRefused("a script job needs exactly one .sql file after its options")
            else:
                path = args[i]
            break
        i, (arg, value) = found
        if arg in _CONF_OPTS or arg in _VAR_OPTS:
            key, eq, val = str(value).partition("=")
            if not eq or not _SETTING_RE.fullmatch(key.strip()):
                raise EngineRefused(f"option {arg} needs key=value")
            if arg in _CONF_OPTS:
                settings.append((key.strip(), val))
            else:
                variables[key.strip()] = val
        elif arg == "--database":
            if not re.fullmatch(r"[A-Za-z0-9_]+", str(value)):
                raise EngineRefused("--database must be a plain database name")
            database = value
        elif arg == "-e":
            text = value
        else:
            path = value
    return settings, variables, database, text, path


def _check_local(roots: InputRoots, local: str, shown: str, what: str, *, write: bool) -> None:
    # Hadoop removes '..' lexically before the system follows symlinks: both readings checked.
    for candidate in dict.fromkeys((local, posixpath.normpath(local))):
        roots.check(Path(candidate).resolve(), shown, what, write=write)


def _substitute(text: str, variables: dict[str, str]) -> str:
    for key, value in variables.items():
        text = text.replace("${hivevar:" + key + "}", value).replace("${" + key + "}", value)
    return text


def _secret_values(
    settings: list[tuple[str, str]], variables: dict[str, str], properties: dict[str, str]
) -> list[str]:
    """The values of the job's secret keys (settings, variables, properties): a statement's
    error may quote them, and the runner masks them in what it records."""
    pairs = [*settings, *variables.items(), *properties.items()]
    return sorted({v for k, v in pairs if v and is_secret_key(k)})


def _archive(
    job: JobSpec, cluster: ClusterSpec, statements: list[str]
) -> tuple[dict[str, object] | None, list[str]]:
    """(the runner's archive spec, its secret values) of a run asked to archive its result
    (:data:`ARCHIVE_PROPERTY`): an object-store URI with the cluster's object-store settings,
    or a local directory under the cluster's output roots; (None, []) when not asked."""
    path = job.properties.get(ARCHIVE_PROPERTY)
    if not path:
        return None, []
    if len(statements) != 1:
        raise EngineRefused(
            f"{ARCHIVE_PROPERTY} archives one statement's result; the SQL holds "
            f"{len(statements)} statements"
        )
    location = archive_location(path, job.job_id)
    if is_object_uri(path):
        try:
            parse_uri(location)
            creds = resolve_credentials(job.properties, cluster.settings.object_store)
        except ObjectStoreError as exc:
            raise EngineRefused(f"archive_path: {exc}") from None
        return {"location": location, "creds": creds.to_json()}, creds.secret_values()
    local = file_url_path(path)
    _check_local(InputRoots.of(cluster), local, path, "archive_path", write=True)
    target = Path(local).resolve() / f"{job.job_id}.csv"
    return {"location": location, "local": str(target)}, []


class SqlEngine(EngineAdapter):
    job_types = SQL_TYPES
    secret_files = (jobdir.SQL_SPEC,)

    def __init__(self, servers: ThriftServers, *, row_cap: int = 1000) -> None:
        self.servers = servers
        self.row_cap = row_cap

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        self.refuse_other_types(job, "SQL")
        script = job.job_type in SCRIPT_TYPES
        settings, variables, database, text, path = parse_sql_arguments(list(job.arguments), script)
        notes: list[str] = []
        if path is not None:
            text = self._read_script(path, cluster)
        if not text or not text.strip():
            raise EngineRefused(
                f"{job.job_type} needs SQL text"
                if not script
                else f"{job.job_type} needs a .sql script"
            )
        statements = split_statements(_substitute(text, variables))
        if not statements:
            raise EngineRefused("the SQL text holds no statement")
        if is_presto(job):  # an SQL execution's presto statement (engines/presto.py)
            return build_presto(
                job,
                cluster,
                workdir,
                statements=statements,
                database=database,
                row_cap=self.row_cap,
                archive=_archive(job, cluster, statements),
            )
        notes += _session_properties(job.properties, settings)
        self._check_paths(statements, settings, cluster)
        archive, archive_secrets = _archive(job, cluster, statements)
        secrets = _secret_values(settings, variables, job.properties) + archive_secrets
        setup = [f"SET {k}={v}" for k, v in settings]
        if database:
            setup.append(f"USE {database}")

        endpoint = self.servers.ensure(cluster)
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        # Writes to one table take turns on the cluster (domain/sqlwrites.py): a lock file per
        # table in a directory the cluster's SQL jobs share (and nothing else of the service).
        locks = self.servers.lock_directory(cluster.cluster_id)
        writes = written_tables(statements, database)
        spec = {
            "host": endpoint.host,
            "port": endpoint.port,
            "statements": statements,
            "setup": setup,
            "row_cap": self.row_cap,
            "locks": {
                "dir": str(locks),
                "tables": {str(i): names for i, names in enumerate(writes) if names},
            },
            "user": endpoint.user or "mrs",
            # The server's password (its CUSTOM authentication): only in this 0600 file,
            # deleted with the job's other secret files when the job ends.
            **({"password": endpoint.password} if endpoint.password else {}),
            # Secret values an error text must not show (runners/sql.py masks them).
            "mask": secrets,
            # Where the result set goes as CSV (the SQL execution API's archive_path); an
            # object store's keys only in this 0600 file.
            **({"archive": archive} if archive else {}),
        }
        spec_path = workdir / jobdir.SQL_SPEC
        jobdir.write_private(spec_path, json.dumps(spec))
        jobdir.write_engine_record(
            workdir,
            "sql",
            host=endpoint.host,
            port=endpoint.port,
            ui_port=endpoint.ui_port,
            server_dir=str(endpoint.directory) if endpoint.directory else None,
        )
        python = cluster.pyspark_python or sys.executable
        env = launch_env(workdir, workdir) | {"PYTHONUNBUFFERED": "1"}
        argv = [python, "-m", "mrs_jobs.engines.runners.sql", str(spec_path)]
        notes.append(
            f"{len(statements)} statement(s) on the cluster's Spark SQL server "
            f"{endpoint.host}:{endpoint.port}"
        )
        return LaunchSpec(argv=argv, env=env, cwd=str(workdir), notes=notes, shared=(str(locks),))

    @staticmethod
    def _check_paths(
        statements: list[str], settings: list[tuple[str, str]], cluster: ClusterSpec
    ) -> None:
        """The files the statements and session settings name (domain/sqlpaths.py) must be
        readable (under the input or output roots) or writable (under the output roots) on the
        cluster, and never the service's own (engines/paths.py): a second line behind the box
        of the cluster's SQL server."""
        roots = InputRoots.of(cluster)
        for key, value in settings:
            value = value.strip()
            if "${" in value:
                raise EngineRefused(
                    f"setting {key}: '${{' would be substituted by Spark when it is applied"
                )
            if _PATH_VALUE_RE.match(value):
                try:
                    local = local_path(value)
                except UncheckableSql as exc:
                    raise EngineRefused(f"setting {key}: {exc.reason}") from None
                if local is not None:
                    _check_local(roots, local, value, f"setting {key}: path", write=True)
        try:
            found = statement_paths(statements)
        except UncheckableSql as exc:
            raise EngineRefused(str(exc)) from None
        for p in found:
            if p.local is not None:
                what = f"statement {p.statement}: {'output ' if p.write else ''}path"
                _check_local(roots, p.local, p.text, what, write=p.write)

    @staticmethod
    def _read_script(path: str, cluster: ClusterSpec) -> str:
        local = path[len("file://") :] if path.startswith("file://") else path
        if "://" in local:
            raise EngineRefused(f"the script {path} is not a local file")
        real = Path(local).expanduser().resolve()
        InputRoots.of(cluster).check(real, path, "the script")
        if not real.is_file():
            raise EngineRefused(f"script file not found: {path}")
        try:
            return real.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise EngineRefused(
                f"cannot read the script {path}: {exc.__class__.__name__}"
            ) from None

    def housekeeping(self, live_jobs: dict[str, set[str]], idle_seconds: float) -> None:
        """Stop cluster SQL servers that have had no live SQL job for ``idle_seconds``."""
        busy = {c for c, types in live_jobs.items() if types & SQL_TYPES}
        self.servers.stop_idle(busy, idle_seconds)

    def usage(
        self,
        job: JobSpec,
        workdir: Path,
        launch: LaunchSpec,
        app_id: str | None = None,
        cluster: ClusterSpec | None = None,
        local: Usage | None = None,
    ) -> Usage:
        """Unknown: the statements run in the cluster's shared SQL server (Spark Thrift,
        Presto/Trino), whose work is not told apart per job; the job's own process only
        sends them."""
        return Usage()

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        info = jobdir.read_engine_record(Path(workdir))
        if is_presto(job):
            return observe_presto(Path(workdir))
        progress = jobdir.read_sql_progress(Path(workdir))
        if progress is None or "host" not in info:
            return Observation()
        server_dir = info.get("server_dir")
        endpoint = ThriftEndpoint(
            str(info["host"]),
            int(info["port"]),
            info.get("ui_port"),
            Path(server_dir) if isinstance(server_dir, str) else None,
        )
        return Observation(
            app_id=endpoint.app_id(),
            tracking_url=endpoint.tracking_url or None,
            progress=progress.percent,
            running=True,
        )

    def diagnostics(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> str | None:
        """The failed statement's own record (the server's error, its stack frames dropped),
        else what the log says (a connection or setup failure)."""
        for index, rows in sorted((jobdir.read_sql_results(workdir) or {}).items()):
            first = rows[0] if isinstance(rows, list) and rows else None
            if isinstance(first, dict) and first.get("result") == "failed":
                return f"statement {index} failed: {first.get('message', '')}"
        return super().diagnostics(job, workdir, launch)


def _session_properties(
    properties: Mapping[str, str], settings: list[tuple[str, str]]
) -> list[str]:
    """Add the job's ``spark.*``/``hive.*`` properties to the session's settings; a secret
    one is left out (a SET would echo it in the server's logs), with a note saying so."""
    notes = []
    for key, value in properties.items():
        if key.startswith(("spark.", "hive.")):
            if is_secret_key(key):
                notes.append(f"secret property {key} not applied to the SQL session")
                continue
            settings.append((key, value))
    return notes
