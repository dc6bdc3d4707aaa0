"""Ending a job: what the run did becomes an :class:`~mrs_jobs.domain.outcome.Outcome`, the
domain decides the ending (``domain/outcome.py``), and the store records it.

Local runs (an exit status the shim wrote), detached applications (what their engine says) and
the service's own verdicts (lost, never launched) all end here, through the same rule.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from sqlalchemy import Connection

from mrs_jobs.domain.diagnostics import compose
from mrs_jobs.domain.job import Job
from mrs_jobs.domain.outcome import Ending, Outcome, Retry, attempt_label, decide, plan_retry
from mrs_jobs.domain.render import argument_secrets, is_secret_key
from mrs_jobs.domain.retries import RetryPolicy
from mrs_jobs.domain.states import JobResult, JobState
from mrs_jobs.engines.base import EngineRefused, JobSpec, call_hook
from mrs_jobs.errors import InvalidParameter
from mrs_jobs.runtime.jobdir import read_launch, read_sql_results
from mrs_jobs.runtime.process import ExitStatus
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import sql_results as sql_results_store
from mrs_jobs.store import supervision as sup_store
from mrs_jobs.supervisor.clusters import ClusterCache
from mrs_jobs.supervisor.context import SupervisorContext
from mrs_jobs.supervisor.jobfiles import (
    clear_run_results,
    drop_secret_files,
    plain_arguments,
    retry_policy_of,
    spec_of,
    timeout_of,
)
from mrs_jobs.supervisor.usage import usage_values

__all__ = ["Finisher", "killed_by", "run_outcome", "with_record"]

log = logging.getLogger(__name__)


def run_outcome(status: ExitStatus | None, lost_reason: str | None = None) -> Outcome:
    """What a local run's exit status says (None: the run left none)."""
    if status is None:
        return Outcome(exited=False, lost_reason=lost_reason)
    return Outcome(
        returncode=status.returncode,
        signal=status.signal,
        start_error=status.error,
        lost_reason=lost_reason,
    )


def with_record(outcome: Outcome, job: Job, at_ms: int) -> Outcome:
    """The outcome with what the job's record adds: a kill or delete asked for, and whether
    its deadline (``mrs.job.timeout``) had passed when it ended at ``at_ms``."""
    asked = job.kill_requested_ms > 0 or job.deleted_ms > 0
    timed_out = not asked and 0 < job.deadline_ms <= at_ms
    timeout = timeout_of(job) if timed_out else None
    return dataclasses.replace(outcome, kill_asked=asked, timeout_seconds=timeout)


def _engine_to_blame(outcome: Outcome) -> bool:
    """Whether the engine's own words explain the ending: it failed by itself (not a kill, a
    timeout or a run the service lost)."""
    return (
        not outcome.succeeded
        and outcome.exited
        and not outcome.kill_asked
        and not outcome.killed_in_engine
        and outcome.timeout_seconds is None
    )


def killed_by(reason: str, record: Job) -> str:
    """A kill's diagnostics: the reason and who asked (a request, a batch delete, shutdown)."""
    if record.kill_requested_by:
        return f"{reason} ({record.kill_requested_by})"
    if record.deleted_ms > 0:
        return f"{reason} (batch delete)"
    return reason


def _diagnostics(
    ending: Ending, words: str | None, secrets: list[str], record: Job, label: str = ""
) -> str:
    """Why the job ended as it did (empty when it succeeded), masked and capped; ``label``
    names the last attempt of a job that had retries."""
    if ending.result == JobResult.SUCCEEDED:
        return ""
    if ending.result == JobResult.KILLED:
        return compose(killed_by(ending.reason, record), None, secrets)
    reason = f"{label} failed: {ending.reason}" if label else ending.reason
    return compose(reason, words, secrets)


def _final_label(record: Job, policy: RetryPolicy) -> str:
    """ "attempt N of M" for the ending of a job that had retries ("" without)."""
    return attempt_label(record.attempt, policy.attempts) if policy.retries else ""


class Finisher:
    def __init__(self, ctx: SupervisorContext, clusters: ClusterCache | None = None) -> None:
        self.ctx = ctx
        self.clusters = clusters or ClusterCache(ctx)

    def finish(self, job: Job, status: ExitStatus | None, lost_reason: str | None = None) -> None:
        """End a job whose local run exited (``status``) or was lost (None)."""
        at = status.finished_ms if status and status.finished_ms else None
        self.end(job, run_outcome(status, lost_reason), at_ms=at)

    def end(self, job: Job, outcome: Outcome, at_ms: int | None = None) -> None:
        """Record how ``job`` ended: its SQL results, its ending, and drop its secret files.
        ``outcome`` says what the run did; the job's record adds kills asked and deadlines.
        A failed attempt with retries left is queued again instead (:meth:`_retry`)."""
        at = at_ms or job_store.now_ms()
        seen = outcome
        outcome = with_record(seen, job, at)
        results = read_sql_results(Path(job.workdir)) if job.workdir else None
        spec = None if outcome.succeeded else self._spec(job)
        engine_words = self._engine_words(job, spec) if _engine_to_blame(outcome) else None
        secrets = [v for k, v in (spec or job).properties.items() if is_secret_key(k)]
        # Sensitive (@) arguments, as MRS marks them.
        secrets += argument_secrets(plain_arguments(job, self.ctx.secrets))
        failed_state = self._failed_job_state(job)
        used = usage_values(self.ctx, self.clusters, job)  # what it used (supervisor/usage.py)
        policy = retry_policy_of(job)
        likely = plan_retry(decide(job.state, outcome, failed_state), outcome, job.attempt, policy)
        if likely is not None and job.workdir:  # before the commit: never read as the next's
            clear_run_results(Path(job.workdir))
        kept_url = None if likely is not None else self._ended_url(job)
        supervisor = f"supervisor {self.ctx.id}"
        with self.ctx.store.write() as conn:
            current = job_store.get_job(conn, job.id)
            if current is not None:  # a kill asked since ``job`` was read counts too
                outcome = with_record(seen, current, at)
            state = current.state if current is not None else job.state
            ending = decide(JobState(state), outcome, failed_state)
            retry = plan_retry(ending, outcome, current.attempt, policy) if current else None
            if retry and current and self._retry(conn, current, retry, engine_words, secrets, used):
                ending = dataclasses.replace(ending, state=JobState.SUBMITTED)
                moved: JobState | None = JobState(state)  # queued again, not ended
            else:
                if results is not None and job.deleted_ms <= 0:  # < 0: an SQL execution
                    cap = self.ctx.settings.sql_result_row_cap
                    sql_results_store.save_sql_results(conn, job.id, results, cap)
                if ending.via_running:
                    job_store.transition(
                        conn, job.id, JobState.RUNNING, reason="exited", actor=supervisor
                    )
                label = _final_label(current or job, policy)
                values: dict[str, object] = {"result": ending.result.value, "finished_ms": at}
                if ending.result == JobResult.SUCCEEDED:
                    values["progress"] = 100.0
                actor = supervisor  # a kill is done here, but caused by whoever asked for it
                if outcome.kill_asked and current is not None and current.kill_requested_by:
                    actor = current.kill_requested_by
                values["reason"] = _diagnostics(
                    ending, engine_words, secrets, current or job, label
                )
                values.update(used)
                if kept_url:  # the live UI is gone: where the application can still be seen
                    values["tracking_url"] = kept_url
                moved = job_store.transition(
                    conn, job.id, ending.state, reason=ending.reason, values=values, actor=actor
                )
        if job.workdir:
            drop_secret_files(Path(job.workdir), self.ctx.registry.for_type(job.job_type))
        if moved is None:  # a race lost to another writer (a kill before launch, a peer)
            log.info("job.end_not_recorded", extra={"job_id": job.id, "state": state})
            return
        fields = {"job_id": job.id, "state": ending.state, "reason": ending.reason}
        log.info(
            "job.retrying" if ending.state == JobState.SUBMITTED else "job.ended", extra=fields
        )

    def _retry(
        self,
        conn: Connection,
        job: Job,
        retry: Retry,
        engine_words: str | None,
        secrets: list[str],
        used: dict[str, object] | None = None,
    ) -> bool:
        """Queue ``job`` again for its next attempt, with what its attempts used so far;
        False when the store refused (a kill or delete came first, another writer moved it):
        then it ends as decided."""
        return sup_store.retry(
            conn,
            job,
            retry_at_ms=job_store.now_ms() + retry.delay_seconds * 1000,
            reason=retry.summary,
            diagnostics=compose(retry.summary, engine_words, secrets),
            actor=f"supervisor {self.ctx.id}",
            usage=used,
        )

    def lost(self, job: Job, reason: str) -> None:
        """A launched job whose engine was lost with its supervisor (on another host): a
        failed attempt, retried when the job has retries left, else FAILED with ``reason``."""
        policy = retry_policy_of(job)
        asked = job.kill_requested_ms > 0 or job.deleted_ms != 0
        if not asked and job.attempt < policy.attempts:
            ending = Ending(JobState.FAILED, JobResult.FAILED, reason)
            retry = plan_retry(ending, Outcome.lost(reason), job.attempt, policy)
            if retry is not None:
                with self.ctx.store.write() as conn:
                    if self._retry(conn, job, retry, None, []):
                        log.info("job.retrying", extra={"job_id": job.id, "reason": reason})
                        return
        self.fail(job.id, reason)

    def _failed_job_state(self, job: Job) -> JobState:
        """Where an application that ran and failed ends: its cluster's ``failed_job_state``
        (FINISHED, MRS's, when the cluster is gone or its config no longer parses)."""
        try:
            cluster = self.clusters.of(job)
        except InvalidParameter:
            return JobState.FINISHED
        return JobState(cluster.settings.failed_job_state if cluster else JobState.FINISHED)

    def _spec(self, job: Job) -> JobSpec | None:
        """The job with its secret values opened; None when they do not open."""
        try:
            return spec_of(job, self.ctx.secrets)
        except EngineRefused:
            return None

    def _engine_words(self, job: Job, spec: JobSpec | None) -> str | None:
        """What the job's engine says of its failure (its ``diagnostics`` hook)."""
        engine = self.ctx.registry.for_type(job.job_type)
        workdir = Path(job.workdir or "")
        launch = read_launch(workdir) if job.workdir else None
        if engine is None or launch is None or spec is None:
            return None
        return call_hook(engine.diagnostics, spec, workdir, launch, default=None, job_id=job.id)

    def _ended_url(self, job: Job) -> str | None:
        """Where the ended job's application stays visible (its engine's
        ``ended_tracking_url`` hook: a local Spark job's history page); not for a deleted
        job, whose files are about to go."""
        engine = self.ctx.registry.for_type(job.job_type)
        launch = read_launch(Path(job.workdir)) if job.workdir and job.deleted_ms <= 0 else None
        if engine is None or launch is None:
            return None
        args = (job.id, Path(job.workdir or ""), launch, job.app_id or None, self.clusters.of(job))
        return call_hook(engine.ended_tracking_url, *args, default=None, job_id=job.id)

    def fail(self, job_id: str, reason: str) -> None:
        """End a job FAILED with a reason the user can read (guarded like every transition)."""
        reason = compose(reason, None)
        with self.ctx.store.write() as conn:
            job_store.transition(
                conn,
                job_id,
                JobState.FAILED,
                reason=reason,
                values={
                    "result": JobResult.FAILED.value,
                    "finished_ms": job_store.now_ms(),
                    "reason": reason,
                },
                actor=f"supervisor {self.ctx.id}",
            )
