"""The stable link of an ended local Spark job: its page on the cluster's history server.

``GET /spark-history/{cluster_id}/{app_id}`` (its tracking_url) asks here: the ids are checked,
the cluster's server is started if it is not running (``engines/spark_history.py``), and the
answer is the application's page once the server has read its event log.
"""

from __future__ import annotations

import logging

from mrs_jobs.engines.base import EngineRefused
from mrs_jobs.engines.spark_history import HistoryServers, valid_ids
from mrs_jobs.errors import ComponentMissing, HistoryNotFound, HistoryNotReady, InvalidParameter

__all__ = ["SparkHistoryService"]

log = logging.getLogger(__name__)

WAIT_SECONDS = 30.0  # a cold server (a JVM) loads its first application in 10-35 s


class SparkHistoryService:
    def __init__(self, servers: HistoryServers | None, wait_seconds: float = WAIT_SECONDS):
        self.servers = servers  # None: no supervisor here, so no history either
        self.wait_seconds = wait_seconds

    def page(self, cluster_id: str, app_id: str) -> str:
        """The URL of the application's page (the server knows it by then)."""
        if not valid_ids(cluster_id, app_id):
            raise InvalidParameter("Invalid cluster_id or app_id: 1-64 and 1-128 of [A-Za-z0-9_-].")
        if self.servers is None or not self.servers.has_app(cluster_id, app_id):
            raise HistoryNotFound(cluster_id, app_id)
        try:
            url = self.servers.page(cluster_id, app_id, self.wait_seconds)
        except EngineRefused as exc:
            raise ComponentMissing("Spark", str(exc)) from None
        if url is None:
            fields = {"cluster_id": cluster_id, "app_id": app_id}
            log.warning("spark_history.not_ready", extra=fields)
            raise HistoryNotReady(app_id)
        return url
