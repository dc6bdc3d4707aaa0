"""Webhook administration: create, list, enable, disable and delete subscriptions; read the
delivery log.

The signing secret is made here, shown once in the answer of :meth:`WebhookAdmin.create`
and stored sealed with the service's key (bound to the subscription's id); no listing, log
or audit record carries it. Every change writes an audit record.
"""

from __future__ import annotations

import getpass
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection

from mrs_jobs.domain.events import OVER_DURATION
from mrs_jobs.domain.webhooks import new_secret, secret_aad, validate_events
from mrs_jobs.errors import InvalidParameter
from mrs_jobs.secretbox import SecretBox
from mrs_jobs.services.projects import require_project
from mrs_jobs.store import Store
from mrs_jobs.store import webhooks as wh_store
from mrs_jobs.store.audit import record_audit
from mrs_jobs.store.jobs import now_ms
from mrs_jobs.store.tenants import get_cluster
from mrs_jobs.store.webhooks import DeliveryRow, Webhook
from mrs_jobs.supervisor.webhook_send import check_target

__all__ = ["Created", "WebhookAdmin"]

STATES = ("pending", "delivered", "dead")


@dataclass(frozen=True)
class Created:
    webhook: Webhook
    secret: str  # shown once


def _operator() -> str:
    try:
        return f"admin {getpass.getuser()}"
    except (KeyError, OSError):
        return "admin"


class WebhookAdmin:
    """The webhook subscriptions of every project (administration; no project scope)."""

    def __init__(self, store: Store, box: SecretBox | None, *, allow_private: bool) -> None:
        self.store, self.box, self.allow_private = store, box, allow_private

    def create(
        self,
        project_id: str,
        url: str,
        events: list[str],
        *,
        cluster_id: str | None = None,
        over_duration_s: int | None = None,
        description: str = "",
    ) -> Created:
        wanted = validate_events(events)
        if over_duration_s is not None:
            if over_duration_s <= 0:
                raise InvalidParameter("--over-duration must be a positive number of seconds.")
            if OVER_DURATION not in wanted:
                wanted.append(OVER_DURATION)
        elif OVER_DURATION in wanted:
            raise InvalidParameter("job.over_duration needs --over-duration SECONDS.")
        if len(description) > 200:
            raise InvalidParameter("the description is longer than 200 characters.")
        target = check_target(url, self.allow_private)
        if self.box is None:
            raise InvalidParameter("creating a webhook needs the service's secret key.")
        webhook_id = str(uuid.uuid4())
        secret = new_secret()
        wh = Webhook(
            id=webhook_id,
            project_id=project_id,
            cluster_id=cluster_id,
            url=target.url,
            events=wanted,
            secret=self.box.seal(secret, aad=secret_aad(webhook_id)),
            over_duration_s=over_duration_s,
            enabled=True,
            description=description,
            created_ms=now_ms(),
        )
        with self.store.write() as conn:
            require_project(conn, project_id)
            if cluster_id is not None and get_cluster(conn, project_id, cluster_id) is None:
                raise InvalidParameter(f"cluster {cluster_id} is not a cluster of {project_id}.")
            wh_store.add_webhook(conn, wh)
            self._audit(conn, wh, "webhook_create", {"url": wh.url, "events": wanted})
        return Created(wh, secret)

    def list(self, project_id: str | None = None) -> list[Webhook]:
        with self.store.read() as conn:
            return wh_store.list_webhooks(conn, project_id)

    def set_enabled(self, webhook_id: str, enabled: bool) -> Webhook:
        with self.store.write() as conn:
            wh = self._require(conn, webhook_id)
            wh_store.set_enabled(conn, webhook_id, enabled, now_ms())
            self._audit(conn, wh, "webhook_enable" if enabled else "webhook_disable", {})
        return wh

    def delete(self, webhook_id: str) -> Webhook:
        """Remove the subscription, its pending deliveries and its delivery log."""
        with self.store.write() as conn:
            wh = self._require(conn, webhook_id)
            wh_store.delete_webhook(conn, webhook_id)
            self._audit(conn, wh, "webhook_delete", {"url": wh.url})
        return wh

    def deliveries(
        self,
        *,
        webhook_id: str | None = None,
        state: str | None = None,
        job_id: str | None = None,
        limit: int = 100,
    ) -> list[DeliveryRow]:
        if state is not None and state not in STATES:
            raise InvalidParameter(f"--state is one of {', '.join(STATES)}.")
        with self.store.read() as conn:
            return wh_store.list_deliveries(
                conn, webhook_id=webhook_id, state=state, job_id=job_id, limit=limit
            )

    @staticmethod
    def _require(conn: Connection, webhook_id: str) -> Webhook:
        wh = wh_store.get_webhook(conn, webhook_id)
        if wh is None:
            raise InvalidParameter(f"webhook {webhook_id} does not exist.")
        return wh

    @staticmethod
    def _audit(conn: Connection, wh: Webhook, action: str, detail: dict[str, object]) -> None:
        record_audit(
            conn,
            at_ms=now_ms(),
            action=action,
            project_id=wh.project_id,
            cluster_id=wh.cluster_id,
            credential_id=None,
            request_id=None,
            detail={"by": _operator(), "webhook_id": wh.id, **detail},
            outcome="ok",
        )
