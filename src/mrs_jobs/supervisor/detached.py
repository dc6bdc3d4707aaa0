"""Following detached applications: those whose launcher exits once the engine has accepted
them (spark-submit in cluster deploy mode, ``flink run -d``...).

Their state comes from the engine (``Engine.status``), asked about once a second by the ids
the launcher printed (application id, driver id, driver pod), never from a pid: so the same
calls re-attach them after a restart of the service. An engine that does not know the
application any more fails it after a grace period; a kill nobody can confirm because the engine
is unreachable is recorded after the kill grace plus a minute, with a warning in the log.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path

from mrs_jobs.domain.job import Job
from mrs_jobs.domain.states import JobState
from mrs_jobs.engines.base import ClusterSpec, LaunchSpec, RemoteStatus, call_hook
from mrs_jobs.engines.registry import EngineRegistry, cluster_spec
from mrs_jobs.runtime.process import ExitStatus
from mrs_jobs.secretbox import SecretBox
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import supervision as sup_store
from mrs_jobs.store.tenants import get_cluster
from mrs_jobs.supervisor.jobfiles import spec_of

__all__ = ["DetachedTracker"]

log = logging.getLogger(__name__)

_STATUS_EVERY_S = 1.0
# A detached application its engine does not know (any more) is failed after this long: long
# enough for an engine to register what it has just accepted.
_UNKNOWN_GRACE_S = 60.0
# A kill of a detached application whose engine cannot be reached is recorded after the kill
# grace plus this long.
_UNCONFIRMED_KILL_S = 60.0
_CLUSTER_CACHE_S = 10.0

Observe = Callable[..., None]
Finish = Callable[..., None]


class DetachedTracker:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        registry: EngineRegistry,
        observe: Observe,
        finish: Finish,
        secrets: SecretBox,
    ) -> None:
        self.store = store
        self.secrets = secrets  # opens the jobs' sealed secret values (spec_of)
        self.settings = settings
        self.registry = registry
        self._observe = observe  # Supervisor._observe(job, force=True): ids from the output
        self._finish = finish  # Supervisor._finish(job, status, reason, killed_in_engine=)
        self._last: dict[str, float] = {}
        self._unreachable_since: dict[str, float] = {}
        self._unknown_since: dict[str, float] = {}
        self._clusters: dict[tuple[str, str], tuple[float, ClusterSpec | None]] = {}

    def cluster_of(self, job: Job) -> ClusterSpec | None:
        """The job's cluster as configured (cached a few seconds): engines ask the cluster
        where its applications live rather than trust a file in the job's directory, which
        the job's own user may write."""
        key = (job.project_id, job.cluster_id)
        now = time.monotonic()
        cached = self._clusters.get(key)
        if cached is not None and now - cached[0] < _CLUSTER_CACHE_S:
            return cached[1]
        with self.store.read() as conn:
            row = get_cluster(conn, job.project_id, job.cluster_id)
        spec = cluster_spec(row.id, row.kind, row.config, self.settings) if row else None
        if len(self._clusters) > 1000:
            self._clusters.clear()
        self._clusters[key] = (now, spec)
        return spec

    def forget(self, job_id: str) -> None:
        self._last.pop(job_id, None)
        self._unreachable_since.pop(job_id, None)
        self._unknown_since.pop(job_id, None)

    def track(self, job: Job, launch: LaunchSpec) -> None:
        """Follow a detached application through its engine (by id, not by pid): after its
        launcher exited and after a restart of the service alike."""
        now = time.monotonic()
        if now - self._last.get(job.id, 0.0) < _STATUS_EVERY_S:
            return
        if not (job.app_id or job.launcher_id):
            self._observe(job, force=True)  # the ids are in the launcher's output
            with self.store.read() as conn:
                job = job_store.get_job(conn, job.id) or job
        self._last[job.id] = now
        engine = self.registry.for_type(job.job_type)
        workdir = Path(job.workdir or "")
        remote = None
        can_track = engine is not None and engine.follows_detached
        try:
            spec, cluster = spec_of(job, self.secrets), self.cluster_of(job)
        except Exception:  # an unreadable job or cluster must not stop the pass
            log.exception("job.status_failed job_id=%s", job.id)
        else:
            if engine is not None:
                args = (spec, workdir, launch, job.app_id, job.launcher_id, cluster)
                remote = call_hook(engine.status, *args, default=None, job_id=job.id)
        if remote is None:
            self._track_unreachable(job, engine_can_track=can_track)
            return
        self._unreachable_since.pop(job.id, None)
        if remote.state == "unknown":
            if job.kill_sent_ms:  # cancelled and already forgotten by its engine
                self._end_detached(job, RemoteStatus("killed"))
                return
            first = self._unknown_since.setdefault(job.id, now)
            if now - first >= _UNKNOWN_GRACE_S:
                self._end_detached(
                    job,
                    RemoteStatus("failed", message="the engine no longer knows the application"),
                )
            return
        self._unknown_since.pop(job.id, None)
        values: dict[str, object] = {}
        if remote.app_id and remote.app_id != job.app_id:
            values["app_id"] = remote.app_id
        if remote.tracking_url and remote.tracking_url != job.tracking_url:
            values["tracking_url"] = remote.tracking_url
        if remote.progress is not None and abs(remote.progress - job.progress) >= 0.5:
            values["progress"] = min(99.0, remote.progress)
        if values or (remote.state != "pending" and job.state == JobState.ACCEPTED):
            with self.store.write() as conn:
                if values:
                    sup_store.set_fields(conn, job.id, **values)
                if remote.state != "pending" and job.state == JobState.ACCEPTED:
                    job_store.transition(
                        conn, job.id, JobState.RUNNING, reason="application started"
                    )
        if remote.terminal:
            with self.store.read() as conn:
                job = job_store.get_job(conn, job.id) or job
            self._end_detached(job, remote)

    def _track_unreachable(self, job: Job, engine_can_track: bool) -> None:
        """No answer from the engine: keep asking, except for a kill nobody can confirm."""
        if not engine_can_track:
            self._end_detached(
                job, RemoteStatus("failed", message="this engine cannot follow a detached job")
            )
            return
        grace_ms = int((self.settings.kill_grace_seconds + _UNCONFIRMED_KILL_S) * 1000)
        if job.kill_sent_ms and job_store.now_ms() - job.kill_sent_ms >= grace_ms:
            self._end_detached(job, RemoteStatus("killed"))
            log.warning("job.kill_unconfirmed job_id=%s", job.id)
            return
        if job.id not in self._unreachable_since:
            self._unreachable_since[job.id] = time.monotonic()
            log.warning("job.engine_unreachable job_id=%s app_id=%s", job.id, job.app_id)

    def _end_detached(self, job: Job, remote: RemoteStatus) -> None:
        at = job_store.now_ms()
        self.forget(job.id)
        if remote.state == "succeeded":
            self._finish(job, ExitStatus(returncode=0, signal=None, finished_ms=at), None)
        elif remote.state == "killed":
            self._finish(
                job,
                ExitStatus(returncode=None, signal=signal.SIGKILL, finished_ms=at),
                lost_reason="the application was killed in its engine",
                killed_in_engine=True,
            )
        else:
            self._finish(
                job,
                ExitStatus(returncode=1, signal=None, finished_ms=at),
                lost_reason=remote.message or "the application failed in its engine",
            )
