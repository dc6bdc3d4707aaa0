"""One webhook attempt over HTTP, and the target check it and a new subscription share.

The target's host is resolved and every address it has is checked (``domain/webhooks.py``
``refused_address``) when a subscription is created and again before each attempt: a name
that pointed at a public address may point inside the network later. A plain-http attempt
then goes to the address checked (:func:`pinned`), not to a second resolution. Redirects are not
followed (a 3xx is a failed attempt), so a receiver cannot send the service elsewhere.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

import httpx

from mrs_jobs.domain.webhooks import Target, headers, parse_target, refused_address
from mrs_jobs.errors import InvalidParameter

__all__ = ["Result", "check_target", "pinned", "send"]

_ERROR_CHARS = 300
_BODY_BYTES = 64 * 1024


def _addresses(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise InvalidParameter(f"the webhook host {host} does not resolve ({exc}).") from None
    return sorted({str(info[4][0]) for info in infos})


def check_target(url: str, allow_private: bool) -> Target:
    """The parsed URL, if it may be called; InvalidParameter says why not."""
    return _vetted(url, allow_private)[0]


def _vetted(url: str, allow_private: bool) -> tuple[Target, list[str]]:
    """The parsed URL and the addresses it was checked at (none when private ones are
    allowed: then nothing is checked and the client resolves it)."""
    target = parse_target(url)
    if allow_private:
        return target, []
    addresses = _addresses(target.host, target.port)
    for address in addresses:
        why = refused_address(address)
        if why is not None:
            raise InvalidParameter(
                f"the webhook target {target.host} is refused: {why} (private targets need "
                "MRS_JOBS_WEBHOOK_ALLOW_PRIVATE=true)."
            )
    return target, addresses


def pinned(url: str, address: str) -> tuple[str, dict[str, str]]:
    """A plain-http request to ``url`` sent to the checked ``address``, with the name in
    ``Host``: the client does not resolve the name again, so an answer that changed since the
    check (DNS rebinding) cannot send it elsewhere. (https is not pinned: a pooled connection
    would be reused for another name on the address; its certificate check refuses a server
    that is not the name's.)"""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(host=address)), {"host": parsed.netloc.decode("ascii")}


@dataclass(frozen=True)
class Result:
    """What one attempt got: the status (None: no answer) and what went wrong."""

    status: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def send(
    client: httpx.Client,
    url: str,
    secret: str,
    msg_id: str,
    body: str,
    *,
    allow_private: bool,
) -> Result:
    """POST the body, signed for this attempt; never raises for the receiver's failures."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target, addresses = _vetted(url, allow_private)
    except InvalidParameter as exc:
        return Result(None, exc.message[:_ERROR_CHARS], took())
    sent = headers(secret, msg_id, int(time.time()), body)
    if target.scheme == "http" and addresses:
        url, host = pinned(url, addresses[0])
        sent |= host
    try:
        with client.stream("POST", url, content=body.encode(), headers=sent) as answer:
            status = answer.status_code
            _drain(answer)
    except httpx.TimeoutException:
        return Result(None, "timed out", took())
    except httpx.HTTPError as exc:
        return Result(None, f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS], took())
    if 200 <= status < 300:
        return Result(status, None, took())
    return Result(status, f"HTTP {status}", took())


def _drain(answer: httpx.Response) -> None:
    """Read a small answer's body (its connection is then reused); a large one is cut off
    unread: nothing in it matters, and a receiver cannot make the service hold megabytes."""
    seen = 0
    for chunk in answer.iter_raw():
        seen += len(chunk)
        if seen > _BODY_BYTES:
            return
