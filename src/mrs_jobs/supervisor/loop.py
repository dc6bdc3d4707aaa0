"""The supervisor: claims queued jobs, launches, watches, kills, finalises and purges.

One pass (:meth:`Supervisor.run_once`) does, in order: heartbeat; kills asked for (by kill or
batch delete); watch its launched jobs (app id, progress, exit); purge deleted jobs whose
process is confirmed dead; claim queued jobs into free running slots and launch them. Every
state change is a guarded transition in the store, so the API and several supervisors can race
on a job without corrupting it. A pass never raises: errors are logged and retried next pass.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

from mrs_jobs.domain.job import Job
from mrs_jobs.domain.render import MASK, is_secret_key
from mrs_jobs.domain.states import JobResult, JobState
from mrs_jobs.engines.base import EngineRefused, JobSpec, Observation, call_hook
from mrs_jobs.engines.registry import EngineRegistry, cluster_spec
from mrs_jobs.runtime.exitwatch import ExitWatcher
from mrs_jobs.runtime.process import (
    JOB_ID_VARIABLE,
    ExitStatus,
    ProcessTable,
    find_marked_processes,
    kill_strays,
    read_exit,
    read_start_ticks,
    signal_run,
)
from mrs_jobs.secretbox import SecretBox, load_secret_box
from mrs_jobs.settings import Settings, installation_id
from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import supervision as sup_store
from mrs_jobs.store.tenants import get_cluster
from mrs_jobs.supervisor.containment import Containment, containment
from mrs_jobs.supervisor.detached import DetachedTracker
from mrs_jobs.supervisor.jobfiles import (
    drop_secret_files,
    failure_reason,
    handle_of,
    read_launch,
    read_sql_results,
    spec_of,
    timeout_of,
)
from mrs_jobs.supervisor.limits import job_process_options

__all__ = ["INSTANCE_VARIABLE", "Supervisor"]

log = logging.getLogger(__name__)

INSTANCE_VARIABLE = "MRS_JOBS_INSTANCE"
_OBSERVE_EVERY_S = 1.0
_PURGE_BATCH = 500
_MIN_PASS_GAP_S = 0.02
_PURGE_BATCHES_PER_PASS = 20


class Supervisor:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        registry: EngineRegistry,
        *,
        boxes: Containment | None = None,
        secrets: SecretBox | None = None,
    ) -> None:
        self.store = store
        # Opens the jobs' sealed secret values for their engines (jobfiles.spec_of).
        self.secrets = secrets if secrets is not None else load_secret_box(settings)
        self.boxes = boxes if boxes is not None else containment(settings)
        self.settings = settings
        self.registry = registry
        self.instance = installation_id(settings)
        self.id = f"{socket.gethostname()}-{self.instance}"
        self.table = ProcessTable()
        self.table.exit_watcher = ExitWatcher(self.wake)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_observe: dict[str, float] = {}
        self.detached = DetachedTracker(
            store, settings, registry, self._observe, self._finish, self.secrets
        )
        self._last_heartbeat = 0.0
        self._marked_cache: dict[int, str] | None = None
        self._last_housekeeping = time.monotonic()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.reconcile()
        self._thread = threading.Thread(target=self._run, name="mrs-jobs-supervisor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop supervising; running engines keep running and are re-attached next start.

        Engine services (a cluster's SQL server) with no live job are stopped too: nothing
        needs them until the next start, which brings them back on demand.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.settings.kill_jobs_on_shutdown:
            self._kill_all_owned()
        self._housekeeping(idle_seconds=0.0)
        if self.table.exit_watcher is not None:
            self.table.exit_watcher.close()

    def _kill_all_owned(self) -> None:
        """Ask for every owned live job to be killed and drive the kills to the end (bounded)."""
        now = job_store.now_ms()
        with self.store.write() as conn:
            for job in sup_store.live_owned(conn, self.id):
                job_store.request_kill(conn, job.id, now)
        deadline = time.monotonic() + self.settings.kill_grace_seconds + 10
        while time.monotonic() < deadline:
            for step in (self._kills, self._watch):
                try:
                    step()
                except Exception:
                    log.exception("supervisor.shutdown_kill_failed")
            self.table.reap()
            with self.store.read() as conn:
                if not sup_store.live_owned(conn, self.id):
                    return
            time.sleep(0.1)
        log.warning("supervisor.shutdown_kill_incomplete")

    def _housekeeping(self, idle_seconds: float | None = None) -> None:
        now = time.monotonic()
        if idle_seconds is None and now - self._last_housekeeping < 10.0:
            return
        self._last_housekeeping = now
        try:
            with self.store.read() as conn:
                live = sup_store.live_types_by_cluster(conn)
            idle = self.settings.engine_idle_seconds if idle_seconds is None else idle_seconds
            for engine in self.registry.engines:
                call_hook(engine.housekeeping, live, idle, default=None)
        except Exception:
            log.exception("supervisor.housekeeping_failed")

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # a wake during the pass makes the next wait return at once
            started = time.monotonic()
            self.run_once()
            self._wake.wait(self.settings.poll_interval)
            rest = _MIN_PASS_GAP_S - (time.monotonic() - started)
            if rest > 0:  # a storm of submits wakes one pass per gap, not one per submit
                self._stop.wait(rest)

    # -- one pass ----------------------------------------------------------------------------
    def run_once(self) -> None:
        self._marked_cache: dict[int, str] | None = None
        steps = (
            self._heartbeat,
            self._kills,
            self._watch,
            self._purge,
            self._claim,
            self._housekeeping,
        )
        for step in steps:
            if self._stop.is_set() and step is self._claim:
                return
            try:
                step()
            except Exception:  # a pass must never kill the supervisor thread
                log.exception("supervisor.step_failed step=%s", step.__name__)
        self.table.reap()

    def _heartbeat(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_heartbeat < self.settings.heartbeat_seconds:
            return
        with self.store.write() as conn:
            sup_store.heartbeat(
                conn, self.id, socket.gethostname(), os.getpid(), job_store.now_ms()
            )
        self._last_heartbeat = now
        if not force:
            self._take_over()

    def _take_over(self) -> int:
        """Jobs of supervisors that stopped heartbeating (3 periods) are never left RUNNING.

        On this host their processes can still be watched and killed: adopt them (a restart
        of this very supervisor adopts its own at once, its id being stable). On another host
        nothing here can see them: fail them with the reason, as a lost engine.
        """
        now = job_store.now_ms()
        stale = now - int(self.settings.heartbeat_seconds * 3000)
        lost = now - int(
            max(self.settings.heartbeat_seconds * 3, self.settings.lost_supervisor_seconds) * 1000
        )
        host = socket.gethostname()
        with self.store.read() as conn:
            orphans = sup_store.orphaned_jobs(conn, self.id, stale)
            lost_ids = (
                {j.id for j, _ in sup_store.orphaned_jobs(conn, self.id, lost)}
                if any(h not in (None, host) for _, h in orphans)
                else set()
            )
        adopted = 0
        for job, owner_host in orphans:
            if owner_host in (None, host) or job.owner == self.id:
                with self.store.write() as conn:
                    adopted += sup_store.adopt(conn, job.id, job.owner, self.id)
                continue
            if job.id not in lost_ids:
                continue  # its host may be restarting: give it lost_supervisor_seconds
            self._fail(
                job.id,
                f"the supervisor {job.owner} on {owner_host} stopped heartbeating; "
                "its engine process was lost",
            )
            log.warning("job.lost job_id=%s owner=%s", job.id, job.owner)
        return adopted

    # -- restart -----------------------------------------------------------------------------
    def reconcile(self) -> None:
        """After a (re)start: adopt our jobs, fill in pids, end processes of ended jobs.

        A process carrying our marker is ended only when its job is no longer live (ended,
        purged, unknown). A live job's processes are never touched here, whoever owns the job
        now (a peer may have adopted it while this instance was down) and whatever process
        group or session they moved to (PySpark's workers leave the launcher's group).
        """
        self._heartbeat(force=True)
        adopted = self._take_over()
        marked = find_marked_processes(INSTANCE_VARIABLE, self.instance)
        by_job: dict[str, list[int]] = {}
        for pid, job_id in marked.items():
            by_job.setdefault(job_id, []).append(pid)
        with self.store.read() as conn:
            owned = {j.id: j for j in sup_store.live_owned(conn, self.id)}
            live = {
                job_id for job_id in by_job if job_id in owned or sup_store.is_live(conn, job_id)
            }
        for job in owned.values():
            if job.pid is None and job.id in by_job:
                shim = _session_leader(by_job[job.id])
                ticks = read_start_ticks(shim) if shim is not None else None
                if shim is not None and ticks is not None:
                    with self.store.write() as conn:
                        sup_store.set_fields(conn, job.id, pid=shim, pid_start=ticks)
                        refreshed = job_store.get_job(conn, job.id)
                    owned[job.id] = refreshed or job
        for job_id, pids in by_job.items():
            if job_id in live:
                continue
            log.warning("supervisor.orphan_killed job_id=%s pids=%s", job_id, sorted(pids))
            kill_strays(pids)
        for job in owned.values():
            handle = handle_of(job)
            if handle is not None and self.table.is_running(handle) and self.table.exit_watcher:
                self.table.exit_watcher.watch(handle.pid)  # re-attached: wake on its exit too
        log.info("supervisor.reconciled adopted=%s running=%s", adopted, len(owned))

    # -- kills -------------------------------------------------------------------------------
    def _kills(self) -> None:
        now = job_store.now_ms()
        with self.store.read() as conn:
            pending = sup_store.kill_pending(conn, self.id, now)
        grace_ms = int(self.settings.kill_grace_seconds * 1000)
        for job in pending:
            handle = handle_of(job)
            if handle is None:
                continue  # not launched yet in this pass; _watch finalises it
            if job.kill_sent_ms == 0:
                self._cancel_in_engine(job)
                signal_run(handle, signal.SIGTERM)
                with self.store.write() as conn:
                    sup_store.set_fields(conn, job.id, kill_sent_ms=now)
                log.info("job.kill_sent job_id=%s signal=TERM", job.id)
            elif now - job.kill_sent_ms >= grace_ms:
                # The run (shim group and box) while the shim is provably ours; stragglers by
                # their marker (a bare pgid could by now belong to somebody else).
                signal_run(handle, signal.SIGKILL)
                self._sweep(job.id)
                log.info("job.kill_sent job_id=%s signal=KILL", job.id)

    def _cancel_in_engine(self, job: Job) -> None:
        """An application on a remote cluster outlives its client: cancel it there first."""
        engine = self.registry.for_type(job.job_type)
        launch = read_launch(Path(job.workdir or ""))
        if engine is None or launch is None:
            return
        try:
            cluster = self.detached.cluster_of(job)
            spec = spec_of(job, self.secrets)
        except Exception:
            log.exception("job.cancel_failed job_id=%s", job.id)
            return
        workdir = Path(job.workdir or "")
        if call_hook(engine.cancel, spec, workdir, launch, cluster, default=False, job_id=job.id):
            log.info("job.cancelled_in_engine job_id=%s", job.id)

    # -- watching ----------------------------------------------------------------------------
    def _watch(self) -> None:
        with self.store.read() as conn:
            owned = sup_store.live_owned(conn, self.id)
        for job in owned:
            handle = handle_of(job)
            if handle is None:
                # Claimed but not launched (a crash in between): reconcile() already looked
                # for marked processes. Without a launch record the engine provably never
                # started, so the job goes back to the queue; with one it may have run.
                workdir = Path(job.workdir) if job.workdir else None
                status = read_exit(workdir) if workdir is not None else None
                if status is not None:  # it ran and ended while the service was down
                    launch = read_launch(workdir) if workdir is not None else None
                    if launch is not None and launch.detached and status.succeeded:
                        self.detached.track(job, launch)
                        continue
                    self._finish(job, status, lost_reason=None)
                    continue
                asked = job.kill_requested_ms > 0 or job.deleted_ms > 0
                if not asked and (workdir is None or not (workdir / "launch.json").exists()):
                    with self.store.write() as conn:
                        if sup_store.requeue(conn, job.id, self.id):
                            log.info("job.requeued job_id=%s reason=never_started", job.id)
                            continue
                if self._reattach(job):
                    continue  # its launcher died before recording the pid: watched from now
                self._finish(
                    job, None, lost_reason="the service stopped before the engine was started"
                )
                continue
            if self.table.is_running(handle):
                self._observe(job)
                continue
            if self._sweep(job.id):
                continue  # the shim is gone but some of the job's processes were not: next pass
            workdir = Path(job.workdir or "")
            status = read_exit(workdir)
            launch = read_launch(workdir)
            if launch is not None and launch.detached and status is not None and status.succeeded:
                self.detached.track(job, launch)  # the launcher handed it to its engine
                continue
            self._observe(job, force=True)
            self._finish(job, status, lost_reason=None)

    def _reattach(self, job: Job) -> bool:
        """Record the shim of a launched run whose pid never reached the store, found by the
        job marker (any instance's: a peer that adopted the job sees another marker)."""
        marked = find_marked_processes(JOB_ID_VARIABLE, job.id)
        shim = _session_leader(list(marked))
        ticks = read_start_ticks(shim) if shim is not None else None
        if shim is None or ticks is None:
            return False
        with self.store.write() as conn:
            sup_store.set_fields(conn, job.id, pid=shim, pid_start=ticks)
        if self.table.exit_watcher is not None:
            self.table.exit_watcher.watch(shim)
        log.info("job.reattached job_id=%s pid=%s", job.id, shim)
        return True

    def _observe(self, job: Job, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_observe.get(job.id, 0.0) < _OBSERVE_EVERY_S:
            return
        self._last_observe[job.id] = now
        engine = self.registry.for_type(job.job_type)
        workdir = Path(job.workdir or "")
        launch = read_launch(workdir)
        if engine is None or launch is None:
            return
        obs = call_hook(
            engine.observe,
            spec_of(job, self.secrets),
            workdir,
            launch,
            default=Observation(),
            job_id=job.id,
        )
        values: dict[str, object] = {}
        if obs.app_id and obs.app_id != job.app_id:
            values["app_id"] = obs.app_id
        if obs.launcher_id and obs.launcher_id != job.launcher_id:
            values["launcher_id"] = obs.launcher_id
        if obs.tracking_url and obs.tracking_url != job.tracking_url:
            values["tracking_url"] = obs.tracking_url
        if obs.progress is not None and abs(obs.progress - job.progress) >= 0.5:
            values["progress"] = min(99.0, obs.progress)
        started = obs.running and job.state == JobState.ACCEPTED
        if not values and not started:
            return  # nothing new: no write transaction (on SQLite it would take the lock)
        with self.store.write() as conn:
            if values:
                sup_store.set_fields(conn, job.id, **values)
            if started:
                job_store.transition(conn, job.id, JobState.RUNNING, reason="application started")

    def _finish(
        self,
        job: Job,
        status: ExitStatus | None,
        lost_reason: str | None,
        *,
        killed_in_engine: bool = False,
    ) -> None:
        at = status.finished_ms if status and status.finished_ms else job_store.now_ms()
        asked = job.kill_requested_ms > 0 or job.deleted_ms > 0
        killed = asked or killed_in_engine
        timed_out = not killed and 0 < job.deadline_ms <= at
        results = read_sql_results(Path(job.workdir)) if job.workdir else None
        with self.store.write() as conn:
            if results is not None and not job.deleted_ms:
                job_store.save_sql_results(conn, job.id, results, self.settings.sql_result_row_cap)
            if killed:
                job_store.transition(
                    conn,
                    job.id,
                    JobState.KILLED,
                    reason="killed on request" if asked else lost_reason or "killed",
                    values={"result": JobResult.KILLED.value, "finished_ms": at},
                )
            elif status is not None and status.succeeded:
                if job.state == JobState.ACCEPTED:
                    job_store.transition(conn, job.id, JobState.RUNNING, reason="exited")
                job_store.transition(
                    conn,
                    job.id,
                    JobState.FINISHED,
                    reason="exit code 0",
                    values={
                        "result": JobResult.SUCCEEDED.value,
                        "finished_ms": at,
                        "progress": 100.0,
                    },
                )
            else:
                reason = lost_reason or failure_reason(status)
                if timed_out:
                    reason = f"timed out after {timeout_of(job)} s (mrs.job.timeout)"
                target = JobState.FINISHED
                current = job_store.get_job(conn, job.id)
                if (
                    current is None
                    or current.state != JobState.RUNNING
                    or status is None
                    or timed_out
                ):
                    target = JobState.FAILED
                job_store.transition(
                    conn,
                    job.id,
                    target,
                    reason=reason,
                    values={"result": JobResult.FAILED.value, "finished_ms": at, "reason": reason},
                )
        self._last_observe.pop(job.id, None)
        self.detached.forget(job.id)
        if job.workdir:
            drop_secret_files(Path(job.workdir), self.registry.for_type(job.job_type))
        log.info("job.ended job_id=%s killed=%s status=%s", job.id, killed, status)

    # -- purge -------------------------------------------------------------------------------
    def _purge(self) -> None:
        """Remove deleted jobs whose processes are confirmed dead; batch after batch while
        batches come full (a delete of 100k jobs must not take 200 passes)."""
        for _ in range(_PURGE_BATCHES_PER_PASS):
            with self.store.read() as conn:
                deleted = sup_store.deleted_jobs(conn, limit=_PURGE_BATCH)
            done: list[Job] = []
            peers = self._live_peers()
            for job in deleted:
                if job.state in (JobState.ACCEPTED, JobState.RUNNING):
                    continue  # its owner kills and finalises it first (taken over if gone)
                if job.owner in peers and job.workdir and not Path(job.workdir).exists():
                    continue  # its files are on a live peer's disk: that peer purges it
                handle = handle_of(job)
                if handle is not None and self.table.is_running(handle):
                    continue  # _kills is on it; purge once it is confirmed dead
                if handle is not None and job.id in self._live_marked():
                    self._sweep(job.id)  # stragglers of an ended job: gone by the next pass
                    continue
                done.append(job)
            if not done:
                return
            # Files first, row last: a service killed in between leaves the (deleted) row,
            # and the next pass finishes; never a directory no row names any more.
            for job in done:
                shutil.rmtree(job.workdir or self._workdir(job.id), ignore_errors=True)
            with self.store.write() as conn:
                job_store.purge(conn, [j.id for j in done])
            for job in done:
                self._last_observe.pop(job.id, None)
            log.info("job.purged count=%s", len(done))
            if len(deleted) < _PURGE_BATCH or len(done) < len(deleted) // 2:
                return

    def _live_peers(self) -> set[str]:
        """Other supervisors heartbeating now (their jobs' files may be on their disks)."""
        since = job_store.now_ms() - int(self.settings.heartbeat_seconds * 3000)
        with self.store.read() as conn:
            return sup_store.live_supervisors(conn, since) - {self.id}

    def _fail(self, job_id: str, reason: str) -> None:
        """End a job FAILED with a reason the user can read (guarded like every transition)."""
        with self.store.write() as conn:
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
            )

    def _marked(self) -> dict[int, str]:
        """pid -> job id of live processes carrying our marker (one /proc scan per pass)."""
        if self._marked_cache is None:
            self._marked_cache = find_marked_processes(INSTANCE_VARIABLE, self.instance)
        return self._marked_cache

    def _live_marked(self) -> set[str]:
        """Job ids that still have a live process carrying our marker."""
        return set(self._marked().values())

    def _sweep(self, job_id: str) -> int:
        """SIGKILL a job's processes still alive after its shim, found by the marker in their
        environment (never by a bare pid), each with its whole box. Returns how many."""
        marked = self._marked()
        pids = [pid for pid, owner in marked.items() if owner == job_id]
        for pid in pids:
            del marked[pid]
        if pids:
            log.warning("job.straggler_killed job_id=%s pids=%s", job_id, sorted(pids))
        return kill_strays(pids)

    # -- claim and launch --------------------------------------------------------------------
    def _workdir(self, job_id: str) -> Path:
        return self.settings.jobs_dir / job_id

    def _claim(self) -> None:
        with self.store.read() as conn:
            pending = sup_store.queued_clusters(conn)
        for project_id, cluster_id in pending:
            with self.store.write() as conn:
                claimed = sup_store.claim(
                    conn,
                    project_id,
                    cluster_id,
                    self.id,
                    job_store.now_ms(),
                    self._workdir,
                    self.store.skip_locked,
                )
            for job in claimed:
                try:
                    self._launch(job)
                except Exception:  # one job's launch never stops the others claimed with it
                    log.exception("job.launch_failed job_id=%s", job.id)
                    self._fail(job.id, "could not launch: an internal error (see the service log)")

    def _launch(self, job: Job) -> None:
        workdir = self._workdir(job.id)
        workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = self.registry.for_type(job.job_type)
        job_spec: JobSpec | None = None
        try:
            if engine is None:
                raise EngineRefused(f"no engine is installed for {job.job_type} jobs")
            with self.store.read() as conn:
                cluster = get_cluster(conn, job.project_id, job.cluster_id)
            if cluster is None:
                raise EngineRefused(f"the cluster {job.cluster_id} no longer exists")
            cluster_cfg = cluster_spec(cluster.id, cluster.kind, cluster.config, self.settings)
            options = job_process_options(cluster_cfg, self.settings)
            job_spec = spec_of(job, self.secrets)
            spec = engine.build(job_spec, cluster_cfg, workdir)
        except Exception as exc:  # EngineRefused says why; anything else is the input's fault
            if isinstance(exc, EngineRefused):
                reason = f"could not launch: {exc}"
            else:
                log.warning("job.build_failed job_id=%s error=%s", job.id, type(exc).__name__)
                plain = job_spec.properties if job_spec is not None else {}
                detail = _without_secrets(f"{type(exc).__name__}: {exc}", plain)
                reason = f"could not launch: the job's arguments are not usable ({detail})"
            with open(workdir / "stderr.log", "a", encoding="utf-8") as fh:
                fh.write(f"[mrs-jobs] {reason}\n")
            self._fail(job.id, reason)
            log.info("job.refused job_id=%s reason=%s", job.id, exc)
            return
        env = dict(spec.env)
        env[INSTANCE_VARIABLE] = self.instance
        env[JOB_ID_VARIABLE] = job.id
        spec = dataclasses.replace(spec, env=env)
        box = None
        if self.boxes.policy is not None:
            box = self.boxes.policy.for_run(
                workdir,
                spec.argv,
                env,
                read_roots=cluster_cfg.input_roots,
                write_roots=cluster_cfg.output_roots,
                inputs=spec.inputs,
                outputs=spec.outputs,
                shared=spec.shared,
                user=(options.user.uid, options.user.gid) if options.user else None,
            )
        try:
            handle = self.table.launch(
                workdir,
                spec,
                user=options.user,
                limits=options.limits,
                box=box,
                bwrap=self.boxes.policy.bwrap if self.boxes.policy is not None else None,
            )
        except PermissionError as exc:  # the job user cannot reach its directory
            log.error("job.launch_failed job_id=%s error=%s", job.id, exc)
            reason = "could not launch: the job user cannot reach the job directory"
            self._fail(job.id, reason)
            return
        timeout_s = timeout_of(job)
        deadline = job_store.now_ms() + timeout_s * 1000 if timeout_s else 0
        with self.store.write() as conn:
            sup_store.set_fields(
                conn, job.id, pid=handle.pid, pid_start=handle.start_ticks, deadline_ms=deadline
            )
        log.info("job.launched job_id=%s pid=%s", job.id, handle.pid)


def _session_leader(pids: list[int]) -> int | None:
    """The shim among a job's marked processes: the leader of the session they share."""
    sessions = set()
    for pid in pids:
        try:
            sessions.add(os.getsid(pid))
        except OSError:
            continue
    leaders = sorted(sid for sid in sessions if sid in pids)
    return leaders[0] if leaders else None


def _without_secrets(text: str, properties: dict[str, str]) -> str:
    """``text`` (shown to the user) with every secret property value masked, capped."""
    for key, value in properties.items():
        if is_secret_key(key) and value and value != MASK:
            text = text.replace(value, MASK)
    return text[:300]
