"""Webhooks as the Standard Webhooks conventions define them: secrets, signatures, targets, retries.

A subscription's secret is ``whsec_`` + base64 of random key bytes; every attempt of a delivery
carries ``webhook-id`` (the delivery's ``msg_id``, the same on every attempt, so a receiver
drops duplicates by it), ``webhook-timestamp`` (unix seconds of the attempt) and
``webhook-signature`` = ``v1,`` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).

A target must be http(s), and an address it resolves to on loopback, private, link-local,
reserved or multicast networks is refused unless the installation allows private targets:
the service must not be a way into its own network. Resolving is the caller's (I/O); the
rules here take the addresses.

Retries back off exponentially with jitter from a base delay until the delivery is older than
its maximum age; then it is dead-lettered (:func:`next_attempt_ms` answers None).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import random
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from mrs_jobs.domain.events import SUBSCRIBABLE
from mrs_jobs.errors import InvalidParameter

__all__ = [
    "MAX_DELAY_S",
    "SECRET_PREFIX",
    "Target",
    "headers",
    "new_secret",
    "next_attempt_ms",
    "over_duration_body",
    "over_duration_msg_id",
    "parse_target",
    "refused_address",
    "secret_aad",
    "secret_key",
    "sign",
    "validate_events",
]

SECRET_PREFIX = "whsec_"
_KEY_BYTES = 24
#: The longest wait between two attempts by default (the backoff stops doubling there).
MAX_DELAY_S = 3600.0
_JITTER = 0.2  # each delay is drawn within ±20 % of its nominal value


def new_secret() -> str:
    """A fresh signing secret in its shown form."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode()


def secret_aad(webhook_id: str) -> str:
    """Binds a sealed signing secret to its subscription: copied to another row, it won't open."""
    return f"webhook-secret\0{webhook_id}"


def secret_key(secret: str) -> bytes:
    """The HMAC key bytes of a ``whsec_`` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value of one attempt."""
    content = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The headers of one attempt (``Content-Type`` included)."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def validate_events(events: Iterable[str]) -> list[str]:
    """The subscribed event types, deduplicated in the given order; unknown ones are refused."""
    out: list[str] = []
    for raw in events:
        name = raw.strip()
        if not name:
            continue
        if name not in SUBSCRIBABLE:
            known = ", ".join(sorted(SUBSCRIBABLE))
            raise InvalidParameter(f"unknown webhook event {name!r}; known: {known}.")
        if name not in out:
            out.append(name)
    if not out:
        raise InvalidParameter("a webhook needs at least one event type.")
    return out


class Target:
    """A parsed webhook URL: scheme, host and port (what resolving and the check need)."""

    def __init__(self, url: str, scheme: str, host: str, port: int) -> None:
        self.url, self.scheme, self.host, self.port = url, scheme, host, port


def parse_target(url: str) -> Target:
    """Check a webhook URL's form (http or https, a host, no user info); raise InvalidParameter."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise InvalidParameter("the webhook URL is not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidParameter("a webhook URL must be http:// or https://.")
    if not parts.hostname:
        raise InvalidParameter("the webhook URL has no host.")
    if parts.username or parts.password:
        raise InvalidParameter("a webhook URL must not carry a user name or password.")
    if len(url) > 2000:
        raise InvalidParameter("the webhook URL is longer than 2000 characters.")
    default = 443 if parts.scheme == "https" else 80
    return Target(url.strip(), parts.scheme, parts.hostname, port or default)


def refused_address(address: str) -> str | None:
    """Why an address is not a public target (None: it is one)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("unspecified", ip.is_unspecified),
        ("not global", not ip.is_global),
    ):
        if flag:
            return f"{ip} is a {kind} address"
    return None


def next_attempt_ms(
    attempts: int,
    created_ms: int,
    now_ms: int,
    *,
    base_s: float,
    max_age_s: float,
    max_delay_s: float = MAX_DELAY_S,
    rand: random.Random | None = None,
) -> int | None:
    """When to try again after ``attempts`` failed attempts: ``base × 2^(attempts-1)`` seconds
    (at most ``max_delay_s``), ±20 % jitter so receivers that failed together are not hit
    together again; None when that is past the delivery's maximum age (dead-lettered)."""
    nominal = min(max_delay_s, base_s * 2 ** min(40, max(0, attempts - 1)))
    draw = (rand or random).uniform(1 - _JITTER, 1 + _JITTER)
    at = now_ms + int(nominal * draw * 1000)
    if at > created_ms + int(max_age_s * 1000):
        return None
    return at


def over_duration_msg_id(webhook_id: str, job_id: str) -> str:
    """One ``job.over_duration`` per subscription and job: a fixed id, so it is never doubled."""
    return "msg_od_" + hashlib.sha256(f"{webhook_id}\0{job_id}".encode()).hexdigest()[:32]


def over_duration_body(job: dict[str, Any], over_duration_s: int, now_ms: int) -> dict[str, Any]:
    """The body of a ``job.over_duration`` delivery (the shape of every other event)."""
    return {
        "type": "job.over_duration",
        "timestamp": datetime.fromtimestamp(now_ms / 1000, UTC).isoformat(timespec="milliseconds"),
        "data": {
            "project_id": job["project_id"],
            "cluster_id": job["cluster_id"],
            "job_id": job["id"],
            "state": job["state"],
            "started": job["started_ms"],
            "over_duration_s": over_duration_s,
            "running_s": max(0, now_ms - int(job["started_ms"])) // 1000,
            "at": now_ms,
        },
    }
