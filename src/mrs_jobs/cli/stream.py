"""One job's state changes through the cluster's event stream (``GET .../job-events?wait=``):
a long-poll that answers when something happens, instead of asking for the job again and
again (imported only by commands)."""

from __future__ import annotations

from typing import Any

from mrs_jobs.cli.client import ApiClient, ApiError

__all__ = ["LONG_POLL_SECONDS", "JobEvents"]

#: How long one long-poll may wait (the server allows 60 s; proxies often cut idle at 60 s).
LONG_POLL_SECONDS = 25


class JobEvents:
    """The events of one job from now on. :meth:`open` is False when the server has no stream
    (an older one answers 404): the caller polls the job instead."""

    def __init__(self, api: ApiClient, job_id: str) -> None:
        self.api = api
        self.job_id = job_id
        self.cursor = "now"

    def open(self) -> bool:
        """Take the current cursor (call it before reading the job, so nothing is missed)."""
        try:
            self.cursor = str(self.api.job_events("now")["next_cursor"])
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def next(self, wait: float) -> list[dict[str, Any]]:
        """The job's events (their ``data``) after the cursor, waiting up to ``wait`` s for
        one; empty when none came."""
        wait_s = max(1, min(60, round(wait)))
        page = self.api.job_events(self.cursor, wait=wait_s, job_id=self.job_id)
        self.cursor = str(page["next_cursor"])
        return [e["data"] for e in page["events"] if e["data"]["job_id"] == self.job_id]
