"""Spark progress from the application's own event log: task counts, no request to the driver.

A driver with a local event log (``spark.eventLog.dir`` in the job's directory, uncompressed,
one file, a small buffer: ``EVENT_LOG_CONF``) writes every job, stage and task end there. The
supervisor reads what was appended since its last look (``EventLogProgress.read``) and counts:

- the stages of every job known so far (a job's start lists all its stages, also those not
  submitted yet, so a finished stage is not the end of its job);
- a task counts once it ended successfully; a completed stage counts whole; so does a stage
  its job skipped (its output was already there), known once a stage after it is submitted
  (Spark submits a stage only when all its parents are done);
- the stages a failed or cancelled job never ran are dropped: they will not run.

Progress is completed over all those tasks, in percent, and only while a job runs with tasks
left: between two jobs (and after the last) the application's next work is not known yet, so
nothing is said and the stored value stays. Reading the log costs the job nothing, unlike the
UI's REST API, whose first answers warm a REST stack in the driver while the job runs
(bench/README.md, P4).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from mrs_jobs.fsutil import open_regular

__all__ = ["EVENT_LOG_CONF", "EventLogProgress", "TaskCounts"]

# What a local driver's event log must look like to be read while it is written.
EVENT_LOG_CONF = (
    ("spark.eventLog.compress", "false"),
    ("spark.eventLog.rolling.enabled", "false"),
    # Task ends are not flushed one by one: a small buffer makes them reach the file every
    # few tasks (a task end is about 3 KB) instead of every ~30.
    ("spark.eventLog.buffer.kb", "4k"),
)

_READ_CHUNK = 8 * 1024 * 1024  # per look: a long log is caught up over a few observations
_PREFIX = b'{"Event":"'
_WANTED = frozenset(
    {
        b"SparkListenerJobStart",
        b"SparkListenerJobEnd",
        b"SparkListenerStageSubmitted",
        b"SparkListenerStageCompleted",
        b"SparkListenerTaskEnd",
    }
)


@dataclass
class _Stage:
    tasks: int
    parents: tuple[int, ...] = ()
    done: int = 0
    completed: bool = False
    jobs: set[int] = field(default_factory=set)


@dataclass
class TaskCounts:
    """Task counts of one application, fed its event-log records in order."""

    stages: dict[int, _Stage] = field(default_factory=dict)
    running_jobs: dict[int, list[int]] = field(default_factory=dict)
    resolved_done: int = 0  # tasks of stages no running job needs any more
    resolved_total: int = 0
    resolved_ids: set[int] = field(default_factory=set)  # completed stages, counted whole

    def feed(self, event: dict) -> None:
        kind = event.get("Event")
        if kind == "SparkListenerTaskEnd":
            self._task_end(event)
        elif kind == "SparkListenerJobStart":
            self._job_start(event)
        elif kind == "SparkListenerJobEnd":
            self._job_end(event)
        elif kind in ("SparkListenerStageSubmitted", "SparkListenerStageCompleted"):
            self._stage(event.get("Stage Info"), completed=kind.endswith("Completed"))

    def progress(self) -> float | None:
        """Completed over known tasks in percent (one decimal) while a job runs with tasks
        left; None otherwise (no job runs, or the running ones are about to end)."""
        if not self.running_jobs:
            return None
        done, total = self.resolved_done, self.resolved_total
        for stage in self.stages.values():
            total += stage.tasks
            done += stage.tasks if stage.completed else min(stage.done, stage.tasks)
        if total <= 0:
            return 0.0
        return None if done >= total else round(100.0 * done / total, 1)

    def _job_start(self, event: dict) -> None:
        job_id = _int(event.get("Job ID"))
        infos = event.get("Stage Infos")
        if job_id is None or not isinstance(infos, list):
            return
        ids: list[int] = []
        for info in infos:
            if not isinstance(info, dict):
                continue
            stage_id = _int(info.get("Stage ID"))
            if stage_id is None or stage_id in self.resolved_ids:
                continue  # a stage an earlier job completed: counted already
            stage = self.stages.get(stage_id)
            if stage is None:
                parents = _ints(info.get("Parent IDs"))
                stage = _Stage(_int(info.get("Number of Tasks")) or 0, parents)
                self.stages[stage_id] = stage
            stage.jobs.add(job_id)
            ids.append(stage_id)
        self.running_jobs[job_id] = ids

    def _job_end(self, event: dict) -> None:
        job_id = _int(event.get("Job ID"))
        ids = self.running_jobs.pop(job_id, None) if job_id is not None else None
        if ids is None:
            return
        result = event.get("Job Result")
        succeeded = isinstance(result, dict) and result.get("Result") == "JobSucceeded"
        for stage_id in ids:
            stage = self.stages.get(stage_id)
            if stage is None:
                continue
            stage.jobs.discard(job_id)
            if succeeded:
                stage.completed = True  # run or skipped: nothing of it is left to do
            if stage.jobs and not stage.completed:
                continue  # another running job still needs it
            done = stage.tasks if stage.completed else min(stage.done, stage.tasks)
            self.resolved_done += done
            self.resolved_total += stage.tasks if stage.completed else done
            if stage.completed:
                self.resolved_ids.add(stage_id)
            del self.stages[stage_id]

    def _stage(self, info: object, *, completed: bool) -> None:
        if not isinstance(info, dict):
            return
        stage_id = _int(info.get("Stage ID"))
        stage = self.stages.get(stage_id) if stage_id is not None else None
        if stage is None:
            return  # of no running job (or counted already)
        if not stage.tasks and not _int(info.get("Stage Attempt ID")):
            stage.tasks = _int(info.get("Number of Tasks")) or 0
        if completed and "Failure Reason" not in info:
            stage.completed = True
        elif not completed:
            self._parents_done(stage)

    def _parents_done(self, stage: _Stage) -> None:
        """A submitted stage's ancestors are all done, the skipped ones included."""
        todo, seen = list(stage.parents), set()
        while todo:
            stage_id = todo.pop()
            parent = self.stages.get(stage_id)
            if stage_id in seen or parent is None:
                continue
            seen.add(stage_id)
            parent.completed = True
            todo.extend(parent.parents)

    def _task_end(self, event: dict) -> None:
        reason = event.get("Task End Reason")
        if not (isinstance(reason, dict) and reason.get("Reason") == "Success"):
            return
        stage_id = _int(event.get("Stage ID"))
        stage = self.stages.get(stage_id) if stage_id is not None else None
        if stage is not None:
            stage.done += 1


def _ints(values: object) -> tuple[int, ...]:
    if not isinstance(values, list):
        return ()
    return tuple(v for v in values if _int(v) is not None)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class EventLogProgress:
    """One application's event log, read from where the last look stopped."""

    path: Path
    counts: TaskCounts = field(default_factory=TaskCounts)
    offset: int = 0
    skip_line: bool = False  # inside a line too long to keep: skipped to its end

    def read(self) -> float | None:
        """Read what was appended (whole lines only) and return the progress it gives."""
        fd = open_regular(self.path)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as fh:
            if os.fstat(fh.fileno()).st_size < self.offset:  # another file now: start over
                self.counts, self.offset, self.skip_line = TaskCounts(), 0, False
            fh.seek(self.offset)
            chunk = fh.read(_READ_CHUNK)
        self._take(chunk)
        return self.counts.progress()

    def _take(self, chunk: bytes) -> None:
        end = chunk.rfind(b"\n")
        if end < 0:
            if len(chunk) >= _READ_CHUNK:  # one line longer than a chunk: not one we count
                self.offset += len(chunk)
                self.skip_line = True
            return
        self.offset += end + 1
        lines = chunk[: end + 1].split(b"\n")
        if self.skip_line:
            lines, self.skip_line = lines[1:], False
        for line in lines:
            event = _event(line)
            if event is not None:
                self.counts.feed(event)


def _event(line: bytes) -> dict | None:
    """The record of one log line when it is one that progress needs (others: not parsed)."""
    if not line.startswith(_PREFIX):
        return None
    name = line[len(_PREFIX) : line.find(b'"', len(_PREFIX))]
    if name not in _WANTED:
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None
