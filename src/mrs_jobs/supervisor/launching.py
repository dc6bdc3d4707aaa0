"""Claiming queued jobs into free running slots and launching each in its box.

Each job is built and launched on its own: an engine that refuses a job (or fails on it) fails
that job alone with a reason the user can read, never the others claimed in the same pass.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from mrs_jobs.domain.job import Job
from mrs_jobs.domain.render import MASK, is_secret_key, mask_text
from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec, LaunchSpec
from mrs_jobs.engines.registry import cluster_spec
from mrs_jobs.runtime import jobdir
from mrs_jobs.runtime.process import ATTEMPT_VARIABLE, JOB_ID_VARIABLE
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import supervision as sup_store
from mrs_jobs.store.tenants import get_cluster
from mrs_jobs.supervisor.context import INSTANCE_VARIABLE, SupervisorContext
from mrs_jobs.supervisor.ending import Finisher
from mrs_jobs.supervisor.jobfiles import (
    fresh_run_dir,
    plain_arguments,
    retry_policy_of,
    spec_of,
    timeout_of,
)
from mrs_jobs.supervisor.limits import JobProcessOptions, job_process_options

__all__ = ["Launcher"]

log = logging.getLogger(__name__)


class Launcher:
    def __init__(self, ctx: SupervisorContext, finisher: Finisher) -> None:
        self.ctx = ctx
        self.finisher = finisher

    def step(self) -> None:
        """Claim queued jobs of every cluster into its free slots, and launch them."""
        with self.ctx.store.read() as conn:
            pending = sup_store.queued_clusters(conn, job_store.now_ms())
        for project_id, cluster_id in pending:
            with self.ctx.store.write() as conn:
                claimed = sup_store.claim(
                    conn,
                    project_id,
                    cluster_id,
                    self.ctx.id,
                    job_store.now_ms(),
                    self.ctx.workdir,
                    self.ctx.store.skip_locked,
                )
            for job in claimed:
                try:
                    self.launch(job)
                except Exception:  # one job's launch never stops the others claimed with it
                    log.exception("job.launch_failed", extra={"job_id": job.id})
                    reason = "could not launch: an internal error (see the service log)"
                    self.finisher.fail(job.id, reason)

    def launch(self, job: Job) -> None:
        workdir = self.ctx.workdir(job.id)
        workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if job.attempt > 1:  # a retry: a fresh run, its logs marked where it starts
            fresh_run_dir(workdir)
            marker = f"[mrs-jobs] attempt {job.attempt} of {retry_policy_of(job).attempts}\n"
            for name in jobdir.JOB_LOGS:
                jobdir.append_log(workdir, name, marker)
        built = self._build(job, workdir)
        if built is None:
            return
        spec, cluster, options = built
        env = {
            **spec.env,
            INSTANCE_VARIABLE: self.ctx.instance,
            JOB_ID_VARIABLE: job.id,
            ATTEMPT_VARIABLE: str(job.attempt),
        }
        plain = plain_arguments(job, self.ctx.secrets)
        notes = [mask_text(n, plain) for n in spec.notes]  # written to the job's log
        spec = dataclasses.replace(spec, env=env, notes=notes)
        policy = self.ctx.boxes.policy
        box = None
        if policy is not None:
            box = policy.for_run(
                workdir,
                spec.argv,
                env,
                read_roots=cluster.input_roots,
                write_roots=cluster.output_roots,
                inputs=spec.inputs,
                outputs=spec.outputs,
                shared=spec.shared,
                user=(options.user.uid, options.user.gid) if options.user else None,
            )
        try:
            handle = self.ctx.table.launch(
                workdir,
                spec,
                user=options.user,
                limits=options.limits,
                box=box,
                bwrap=policy.bwrap if policy is not None else None,
            )
        except PermissionError as exc:  # the job user cannot reach its directory
            log.error("job.launch_failed", extra={"job_id": job.id, "error": exc})
            self.finisher.fail(
                job.id, "could not launch: the job user cannot reach the job directory"
            )
            return
        timeout_s = timeout_of(job)
        deadline = job_store.now_ms() + timeout_s * 1000 if timeout_s else 0
        with self.ctx.store.write() as conn:
            sup_store.set_fields(
                conn, job.id, pid=handle.pid, pid_start=handle.start_ticks, deadline_ms=deadline
            )
        log.info("job.launched", extra={"job_id": job.id, "pid": handle.pid})

    def _build(
        self, job: Job, workdir: Path
    ) -> tuple[LaunchSpec, ClusterSpec, JobProcessOptions] | None:
        """The job's launch and cluster; None when it cannot launch (then it has failed, with
        its reason in its record and its stderr)."""
        engine = self.ctx.registry.for_type(job.job_type)
        job_spec: JobSpec | None = None
        try:
            if engine is None:
                raise EngineRefused(f"no engine is installed for {job.job_type} jobs")
            with self.ctx.store.read() as conn:
                row = get_cluster(conn, job.project_id, job.cluster_id)
            if row is None:
                raise EngineRefused(f"the cluster {job.cluster_id} no longer exists")
            cluster = cluster_spec(row.id, row.kind, row.config, self.ctx.settings)
            options = job_process_options(cluster, self.ctx.settings)
            job_spec = spec_of(job, self.ctx.secrets)
            return engine.build(job_spec, cluster, workdir), cluster, options
        except Exception as exc:  # EngineRefused says why; anything else is the input's fault
            if isinstance(exc, EngineRefused):
                reason = f"could not launch: {exc}"
            else:
                log.warning(
                    "job.build_failed", extra={"job_id": job.id, "error": type(exc).__name__}
                )
                plain = job_spec.properties if job_spec is not None else {}
                detail = _without_secrets(f"{type(exc).__name__}: {exc}", plain)
                reason = f"could not launch: the job's arguments are not usable ({detail})"
        # An engine's refusal may quote them.
        reason = mask_text(reason, plain_arguments(job, self.ctx.secrets))
        with open(workdir / jobdir.STDERR, "a", encoding="utf-8") as fh:
            fh.write(f"[mrs-jobs] {reason}\n")
        self.finisher.fail(job.id, reason)
        log.info("job.refused", extra={"job_id": job.id, "reason": reason})
        return None


def _without_secrets(text: str, properties: dict[str, str]) -> str:
    """``text`` (shown to the user) with every secret property value masked, capped."""
    for key, value in properties.items():
        if is_secret_key(key) and value and value != MASK:
            text = text.replace(value, MASK)
    return text[:300]
