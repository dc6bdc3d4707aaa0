"""The supervisor: claims queued jobs, launches, watches, kills, ends and purges them.

One pass (:meth:`Supervisor.run_once`) does, in order: heartbeat (and take over the jobs of
supervisors that stopped); kills asked for (kills.py); watch the launched jobs (watch.py, which
ends them through ending.py and follows detached ones through detached.py); purge ended jobs
past their retention (retention.py, through purge.py) and deleted jobs whose processes are dead
(purge.py); claim queued jobs into free slots and launch them
(launching.py); send due webhook deliveries (webhooks.py, on its own small thread pool);
engine housekeeping. Every state change is a guarded transition in the store,
so the API and several supervisors can race on a job without corrupting it. A pass never
raises: errors are logged and retried next pass. Restart recovery is recovery.py.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from mrs_jobs.engines.base import call_hook
from mrs_jobs.engines.registry import EngineRegistry
from mrs_jobs.runtime.exitwatch import ExitWatcher
from mrs_jobs.runtime.process import ProcessTable
from mrs_jobs.secretbox import SecretBox, load_secret_box
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import supervision as sup_store
from mrs_jobs.supervisor.clusters import ClusterCache
from mrs_jobs.supervisor.containment import Containment, containment
from mrs_jobs.supervisor.context import INSTANCE_VARIABLE, SupervisorContext
from mrs_jobs.supervisor.detached import DetachedTracker
from mrs_jobs.supervisor.ending import Finisher
from mrs_jobs.supervisor.kills import Killer
from mrs_jobs.supervisor.launching import Launcher
from mrs_jobs.supervisor.marks import Marks
from mrs_jobs.supervisor.observe import Observer
from mrs_jobs.supervisor.purge import Purger
from mrs_jobs.supervisor.recovery import Recovery
from mrs_jobs.supervisor.retention import Retention
from mrs_jobs.supervisor.watch import Watcher
from mrs_jobs.supervisor.webhooks import WebhookDispatcher

__all__ = ["INSTANCE_VARIABLE", "Supervisor"]

log = logging.getLogger(__name__)

_MIN_PASS_GAP_S = 0.02
_HOUSEKEEPING_EVERY_S = 10.0


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
        self.ctx = SupervisorContext(
            store=store,
            settings=settings,
            registry=registry,
            secrets=secrets if secrets is not None else load_secret_box(settings),
            boxes=boxes if boxes is not None else containment(settings),
        )
        self.store, self.registry = store, registry
        self.ctx.table.exit_watcher = ExitWatcher(self.wake)
        self.marks = Marks(self.ctx.instance)
        clusters = ClusterCache(self.ctx)
        finisher = Finisher(self.ctx, clusters)
        observer = Observer(self.ctx)
        self.recovery = Recovery(self.ctx, finisher)
        self.detached = DetachedTracker(self.ctx, observer, finisher, clusters)
        self.killer = Killer(self.ctx, self.marks, clusters)
        self.watcher = Watcher(
            self.ctx,
            marks=self.marks,
            observer=observer,
            finisher=finisher,
            detached=self.detached,
            recovery=self.recovery,
        )
        self.purger = Purger(self.ctx, self.marks)
        self.retention = Retention(self.ctx, self.purger.remove)
        self.launcher = Launcher(self.ctx, finisher)
        self.webhooks = WebhookDispatcher(self.ctx, self.wake)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_heartbeat = 0.0
        self._last_housekeeping = time.monotonic()
        self._last_stray_sweep = time.monotonic()

    # The supervisor's settings, identity and process table live in its context, shared by
    # all its parts (tests may replace them).
    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self.ctx.settings = value

    @property
    def id(self) -> str:
        return self.ctx.id

    @id.setter
    def id(self, value: str) -> None:
        self.ctx.id = value

    @property
    def instance(self) -> str:
        return self.ctx.instance

    @property
    def table(self) -> ProcessTable:
        return self.ctx.table

    @table.setter
    def table(self, value: ProcessTable) -> None:
        self.ctx.table = value

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
        self.webhooks.close()
        if self.table.exit_watcher is not None:
            self.table.exit_watcher.close()

    def wake(self) -> None:
        self._wake.set()

    def reconcile(self) -> None:
        """After a (re)start: heartbeat, then adopt, re-attach and clean up (recovery.py)."""
        self._heartbeat(force=True)
        self.recovery.reconcile()

    def _take_over(self) -> int:
        return self.recovery.take_over()

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
        self.marks.reset()
        steps = (
            ("heartbeat", self._heartbeat),
            ("kills", self.killer.step),
            ("watch", self.watcher.step),
            ("retention", self.retention.step),
            ("purge", self.purger.step),
            ("claim", self.launcher.step),
            ("webhooks", self.webhooks.step),
            ("housekeeping", self._housekeeping),
            ("strays", self._sweep_strays),
        )
        for name, step in steps:
            if self._stop.is_set() and name == "claim":
                return
            try:
                step()
            except Exception:  # a pass must never kill the supervisor thread
                log.exception("supervisor.step_failed", extra={"step": name})
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
            self.recovery.take_over()

    def _housekeeping(self, idle_seconds: float | None = None) -> None:
        """Engines stop what no live job needs (a cluster's SQL server idle long enough)."""
        now = time.monotonic()
        if idle_seconds is None and now - self._last_housekeeping < _HOUSEKEEPING_EVERY_S:
            return
        self._last_housekeeping = now
        try:
            with self.store.read() as conn:
                live = sup_store.live_types_by_cluster(conn)
        except Exception:  # also called from stop(), outside a pass
            log.exception("supervisor.housekeeping_failed")
            return
        idle = self.settings.engine_idle_seconds if idle_seconds is None else idle_seconds
        for engine in self.registry.engines:
            call_hook(engine.housekeeping, live, idle, default=None)

    def _sweep_strays(self) -> None:
        """Every few seconds: end our marked processes that are no job's current run."""
        now = time.monotonic()
        if now - self._last_stray_sweep < _HOUSEKEEPING_EVERY_S:
            return
        self._last_stray_sweep = now
        self.marks.reset()  # a fresh scan: the claim step may have launched since the last
        self.recovery.sweep_strays(self.marks.marked())

    def _kill_all_owned(self) -> None:
        """Ask for every owned live job to be killed and drive the kills to the end (bounded)."""
        now = job_store.now_ms()
        with self.store.write() as conn:
            for job in sup_store.live_owned(conn, self.id):
                job_store.request_kill(conn, job.id, now, by=f"service shutdown ({self.id})")
        deadline = time.monotonic() + self.settings.kill_grace_seconds + 10
        while time.monotonic() < deadline:
            self.marks.reset()
            for step in (self.killer.step, self.watcher.step):
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
