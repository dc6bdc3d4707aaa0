"""Following detached applications: those whose launcher exits once the engine has accepted
them (spark-submit in cluster deploy mode, ``flink run -d``...).

Their state comes from the engine (``EngineAdapter.status``), asked about once a second by the
ids the launcher printed (application id, driver id, driver pod), never from a pid: so the same
calls re-attach them after a restart of the service. An engine that does not know the
application any more fails it after a grace period; a kill nobody can confirm because the engine
is unreachable is recorded after the kill grace plus a minute, with a warning in the log.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from mrs_jobs.domain.diagnostics import scrub
from mrs_jobs.domain.job import Job
from mrs_jobs.domain.outcome import Outcome
from mrs_jobs.domain.render import is_secret_key
from mrs_jobs.engines.base import LaunchSpec, RemoteStatus, call_hook
from mrs_jobs.runtime.jobdir import STDERR, append_log, read_launch
from mrs_jobs.store import jobs as job_store
from mrs_jobs.supervisor.clusters import ClusterCache
from mrs_jobs.supervisor.context import SupervisorContext
from mrs_jobs.supervisor.ending import Finisher
from mrs_jobs.supervisor.jobfiles import spec_of
from mrs_jobs.supervisor.observe import Observer, record_progress

__all__ = ["DetachedTracker"]

log = logging.getLogger(__name__)

_STATUS_EVERY_S = 1.0
# A detached application its engine does not know (any more) is failed after this long: long
# enough for an engine to register what it has just accepted.
_UNKNOWN_GRACE_S = 60.0
# A kill of a detached application whose engine cannot be reached is recorded after the kill
# grace plus this long.
_UNCONFIRMED_KILL_S = 60.0


class DetachedTracker:
    def __init__(
        self, ctx: SupervisorContext, observer: Observer, finisher: Finisher, clusters: ClusterCache
    ) -> None:
        self.ctx = ctx
        self.observer = observer  # reads the ids from the launcher's output
        self.finisher = finisher
        self.clusters = clusters
        self._last: dict[str, float] = {}
        self._unreachable_since: dict[str, float] = {}
        self._unknown_since: dict[str, float] = {}

    def forget(self, job_id: str) -> None:
        self._last.pop(job_id, None)
        self._unreachable_since.pop(job_id, None)
        self._unknown_since.pop(job_id, None)

    def keep_only(self, job_ids: set[str]) -> None:
        """Forget the jobs no longer watched here (ended through another path)."""
        for job_id in (set(self._last) | set(self._unreachable_since)) - job_ids:
            self.forget(job_id)

    def track(self, job: Job, launch: LaunchSpec) -> None:
        """Follow a detached application through its engine (by id, not by pid): after its
        launcher exited and after a restart of the service alike."""
        now = time.monotonic()
        if now - self._last.get(job.id, 0.0) < _STATUS_EVERY_S:
            return
        if not (job.app_id or job.launcher_id):
            self.observer.observe(job, force=True)  # the ids are in the launcher's output
            with self.ctx.store.read() as conn:
                job = job_store.get_job(conn, job.id) or job
        self._last[job.id] = now
        remote = self._ask(job, launch)
        if remote is None:
            self._track_unreachable(job)
            return
        self._unreachable_since.pop(job.id, None)
        if remote.state == "unknown":
            self._track_unknown(job, now)
            return
        self._unknown_since.pop(job.id, None)
        self._record(job, remote)
        if remote.terminal:
            with self.ctx.store.read() as conn:
                job = job_store.get_job(conn, job.id) or job
            self._end_detached(job, remote)

    def _ask(self, job: Job, launch: LaunchSpec) -> RemoteStatus | None:
        """The application's state from its engine; None when it cannot be asked now."""
        engine = self.ctx.registry.for_type(job.job_type)
        if engine is None:
            return None
        try:
            spec, cluster = spec_of(job, self.ctx.secrets), self.clusters.of(job)
        except Exception:  # an unreadable job or cluster must not stop the pass
            log.exception("job.status_failed", extra={"job_id": job.id})
            return None
        args = (spec, Path(job.workdir or ""), launch, job.app_id, job.launcher_id, cluster)
        return call_hook(engine.status, *args, default=None, job_id=job.id)

    def _record(self, job: Job, remote: RemoteStatus) -> None:
        values: dict[str, object] = {}
        if remote.app_id and remote.app_id != job.app_id:
            values["app_id"] = remote.app_id
        if remote.tracking_url and remote.tracking_url != job.tracking_url:
            values["tracking_url"] = remote.tracking_url
        # An ended application's progress is not the job's: YARN says 100 for a killed or
        # failed one. The job keeps its last running value (100 only when it succeeded).
        progress = remote.progress if remote.state == "running" else None
        started = remote.state != "pending"
        record_progress(self.ctx, job, values, started=started, progress=progress)

    def _track_unknown(self, job: Job, now: float) -> None:
        """The engine answered but does not know the application (yet, or any more)."""
        if job.kill_sent_ms:  # cancelled and already forgotten by its engine
            self._end_detached(job, RemoteStatus("killed"))
            return
        first = self._unknown_since.setdefault(job.id, now)
        if now - first >= _UNKNOWN_GRACE_S:
            message = "the engine no longer knows the application"
            self._end_detached(job, RemoteStatus("failed", message=message))

    def _track_unreachable(self, job: Job) -> None:
        """No answer from the engine: keep asking, except for a kill nobody can confirm."""
        engine = self.ctx.registry.for_type(job.job_type)
        if engine is None or not engine.follows_detached:
            message = "this engine cannot follow a detached job"
            self._end_detached(job, RemoteStatus("failed", message=message))
            return
        grace_ms = int((self.ctx.settings.kill_grace_seconds + _UNCONFIRMED_KILL_S) * 1000)
        if job.kill_sent_ms and job_store.now_ms() - job.kill_sent_ms >= grace_ms:
            self._end_detached(job, RemoteStatus("killed"))
            log.warning("job.kill_unconfirmed", extra={"job_id": job.id})
            return
        if job.id not in self._unreachable_since:
            self._unreachable_since[job.id] = time.monotonic()
            log.warning("job.engine_unreachable", extra={"job_id": job.id, "app_id": job.app_id})

    def _end_detached(self, job: Job, remote: RemoteStatus) -> None:
        self.forget(job.id)
        self._pull_engine_log(job)
        if remote.state == "succeeded":
            outcome = Outcome(returncode=0)
        elif remote.state == "killed":
            reason = "the application was killed in its engine"
            outcome = Outcome(killed_in_engine=True, lost_reason=reason)
        else:
            reason = remote.message or "the application failed in its engine"
            outcome = Outcome(returncode=1, lost_reason=reason)
        self.finisher.end(job, outcome)

    def _pull_engine_log(self, job: Job) -> None:
        """Append what the application's cluster kept of it (a remote driver's log, a
        jobmanager's exceptions) to the job's ``stderr.log``, masked: the user reads it
        there, and the job's diagnostics find the engine's own words in it."""
        engine = self.ctx.registry.for_type(job.job_type)
        workdir = Path(job.workdir or "")
        launch = read_launch(workdir) if job.workdir else None
        if engine is None or launch is None:
            return
        try:
            spec, cluster = spec_of(job, self.ctx.secrets), self.clusters.of(job)
        except Exception:  # an unreadable job or cluster: its log is not worth failing over
            log.exception("job.engine_log_failed", extra={"job_id": job.id})
            return
        args = (spec, workdir, launch, job.app_id or None, cluster)
        text = call_hook(engine.engine_logs, *args, default=None, job_id=job.id)
        if not text:
            return
        secrets = [v for k, v in spec.properties.items() if is_secret_key(k)]
        masked = scrub(text, len(text) + 64, secrets) or ""
        header = f"\n==== mrs-jobs: the application's log from its cluster ({job.app_id}) ====\n"
        append_log(workdir, STDERR, f"{header}{masked}\n")
