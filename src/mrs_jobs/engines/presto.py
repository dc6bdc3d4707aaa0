"""An SQL execution's ``presto`` statement, run on the cluster's Presto/Trino coordinator.

The service queues it as a one-statement SparkSql run carrying :data:`ENGINE_PROPERTY`
``presto`` (services/sql_execution.py); :class:`~mrs_jobs.engines.sql.SqlEngine` hands such a
run here. The runner (runners/presto.py) speaks the coordinator's client REST protocol from
the job's box (which shares the host's network, as the Thrift runner does), so nothing of the
cluster's Spark SQL server is started. Paths are the coordinator's catalogs' business, not
this host's: only an ``archive_path`` is checked against the roots (engines/sql.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mrs_jobs.domain.sqlexecution import ENGINE_PROPERTY, PRESTO
from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec, LaunchSpec, Observation
from mrs_jobs.engines.kit import launch_env
from mrs_jobs.runtime import jobdir

__all__ = ["ENGINE_RECORD", "build_presto", "is_presto", "observe_presto"]

ENGINE_RECORD = "presto"  # engine.json's "engine" of a presto run


def is_presto(job: JobSpec) -> bool:
    return job.properties.get(ENGINE_PROPERTY) == PRESTO


def build_presto(
    job: JobSpec,
    cluster: ClusterSpec,
    workdir: Path,
    *,
    statements: list[str],
    database: str | None,
    row_cap: int,
    archive: tuple[dict[str, object] | None, list[str]],
) -> LaunchSpec:
    """The runner's launch: its ``sql.json`` (0600, deleted when the run ends) names the
    coordinator, the session (user, catalog, schema: the execution's database, else the
    cluster's ``presto_schema``), the statement and the archive."""
    settings = cluster.settings
    if not settings.presto_coordinator:
        raise EngineRefused(
            f"the cluster {cluster.cluster_id} has no presto_coordinator: presto SQL cannot run"
        )
    if len(statements) != 1:
        raise EngineRefused(f"presto runs one statement; the SQL holds {len(statements)}")
    schema = database or settings.presto_schema
    if schema and not settings.presto_catalog:
        raise EngineRefused(
            f"database {schema} needs the cluster's presto_catalog (a schema is in a catalog)"
        )
    spec_archive, archive_secrets = archive
    password = _password(settings.presto_password_file)
    ca = _read(settings.presto_ca_file, "presto_ca_file") if settings.presto_ca_file else None
    spec: dict[str, Any] = {
        "coordinator": settings.presto_coordinator,
        "dialect": settings.presto_dialect,
        "user": settings.presto_user or "mrs",
        "catalog": settings.presto_catalog,
        "schema": schema or "",
        "statements": statements,
        "row_cap": row_cap,
        "mask": archive_secrets,
        **({"archive": spec_archive} if spec_archive else {}),
        # HTTP basic authentication's password: only in this 0600 file (masked in errors).
        **({"password": password} if password else {}),
        # The CA's PEM itself: the box may not show the file (a cluster with roots).
        **({"ca_pem": ca} if ca else {}),
    }
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / jobdir.SQL_SPEC
    jobdir.write_private(spec_path, json.dumps(spec))
    jobdir.write_engine_record(workdir, ENGINE_RECORD, coordinator=settings.presto_coordinator)
    env = launch_env(workdir, workdir) | {"PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "mrs_jobs.engines.runners.presto", str(spec_path)]
    where = f"{settings.presto_catalog}.{schema}" if schema else settings.presto_catalog
    notes = [
        f"1 statement on the {settings.presto_dialect} coordinator "
        f"{settings.presto_coordinator}" + (f" ({where})" if where else "")
    ]
    return LaunchSpec(argv=argv, env=env, cwd=str(workdir), notes=notes)


def _password(path: str) -> str | None:
    """The coordinator's password from the cluster's ``presto_password_file`` (its first
    line), None without one; EngineRefused when it cannot be read."""
    if not path:
        return None
    text = _read(path, "presto_password_file")
    password = text.splitlines()[0].strip() if text.strip() else ""
    if not password:
        raise EngineRefused("the cluster's presto_password_file is empty")
    return password


def _read(path: str, key: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EngineRefused(f"cannot read the cluster's {key}: {exc.__class__.__name__}") from None


def observe_presto(workdir: Path) -> Observation:
    """Running once the coordinator accepted the statement (the runner's progress file)."""
    progress = jobdir.read_sql_progress(Path(workdir))
    if progress is None:
        return Observation()
    return Observation(progress=progress.percent, running=True)
