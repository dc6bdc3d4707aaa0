"""The ``SDK-HMAC-SHA256`` AK/SK request signature (CONTRACT.md section 11).

This is the scheme the official Huawei Cloud Python SDK (``huaweicloudsdkcore``) uses, so the
canonical forms below follow its signer byte for byte; the one deliberate choice of ours is
that ``+`` in a query decodes to a space, as the web framework does, so the text that is signed
is the text the handler reads. The module is pure: no web framework, no store. The server calls
:func:`verify`; our CLI and tests call :func:`sign_headers`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote, unquote_plus

__all__ = [
    "ALGORITHM",
    "CLIENT_SIGNED_HEADERS",
    "ParsedAuth",
    "SignatureError",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "compute_signature",
    "format_sdk_date",
    "parse_authorization",
    "parse_sdk_date",
    "sign_headers",
    "string_to_sign",
    "verify",
]

ALGORITHM = "SDK-HMAC-SHA256"
"""The only scheme accepted: the SDK's default signing algorithm."""

CLIENT_SIGNED_HEADERS = ("content-type", "host", "user-agent", "x-project-id", "x-sdk-date")
"""The headers the official SDK signs; :func:`sign_headers` signs those present."""

_SDK_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_SDK_DATE_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_HEADER_NAME_RE = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
_SIGNATURE_RE = re.compile(r"[0-9a-fA-F]{64}")
_ACCESS_KEY_RE = re.compile(r"[\x21-\x7e]+")
_AUTH_FIELDS = ("Access", "SignedHeaders", "Signature")


class SignatureError(Exception):
    """A request's signature cannot be accepted; ``reason`` is for logs, never for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ParsedAuth:
    """The three fields of an ``SDK-HMAC-SHA256`` Authorization header."""

    access_key: str
    signed_headers: list[str]
    signature: str


def parse_authorization(value: str) -> ParsedAuth:
    """Split ``SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...``.

    Strict on purpose: each field exactly once, header names lower-case tokens, signature 64
    hex digits (lower-cased here so the constant-time comparison sees ASCII of one case).
    """
    parts = value.strip().split(None, 1)
    if not parts:
        raise SignatureError("missing Authorization")
    if parts[0] != ALGORITHM:
        raise SignatureError("unsupported authorization scheme")
    if len(parts) != 2:
        raise SignatureError("malformed Authorization")
    fields: dict[str, str] = {}
    for item in parts[1].split(","):
        name, sep, field_value = item.strip().partition("=")
        if not sep or name not in _AUTH_FIELDS or name in fields:
            raise SignatureError("malformed Authorization")
        fields[name] = field_value.strip()
    if len(fields) != len(_AUTH_FIELDS):
        raise SignatureError("malformed Authorization")

    access_key = fields["Access"]
    if not _ACCESS_KEY_RE.fullmatch(access_key):
        raise SignatureError("malformed Authorization: bad Access")
    signed = fields["SignedHeaders"].split(";")
    if not all(_HEADER_NAME_RE.fullmatch(h) for h in signed) or len(set(signed)) != len(signed):
        raise SignatureError("malformed Authorization: bad SignedHeaders")
    signature = fields["Signature"]
    if not _SIGNATURE_RE.fullmatch(signature):
        raise SignatureError("malformed Authorization: bad Signature")
    return ParsedAuth(access_key=access_key, signed_headers=signed, signature=signature.lower())


def _encode(text: str) -> str:
    """Percent-encode all but RFC 3986 unreserved characters, upper-case hex, as the SDK."""
    return quote(text, safe="~")


def canonical_uri(raw_path: str) -> str:
    """Decode the path once, re-encode each segment, and end it with ``/``.

    A ``%2F`` inside a segment decodes to ``/`` and so becomes a separator: that is what the
    SDK signs (it percent-encodes ids in paths), so we must do the same to match it.
    """
    path = "/".join(_encode(segment) for segment in unquote(raw_path).split("/"))
    if not path.endswith("/"):
        path += "/"
    return path


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    pairs = []
    for item in raw_query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        pairs.append((unquote_plus(key), unquote_plus(value)))
    return pairs


def canonical_query(raw_query: str) -> str:
    """Decode the pairs, sort by (key, value), re-encode and join with ``&``.

    ``+`` decodes to a space, as the web framework reads it; the SDK itself never sends a raw
    ``+``. A key without ``=`` has an empty value (``k=``).
    """
    pairs = sorted(_query_pairs(raw_query))
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in pairs)


def _header_values(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Group header values by lower-case name, keeping duplicates so they can be refused."""
    grouped: dict[str, list[str]] = {}
    for name, value in headers.items():
        grouped.setdefault(name.lower(), []).append(value)
    return grouped


def _header(grouped: dict[str, list[str]], name: str) -> str | None:
    values = grouped.get(name)
    if not values:
        return None
    trimmed = {v.strip() for v in values}
    if len(trimmed) > 1:
        raise SignatureError(f"conflicting values for header {name}")
    return trimmed.pop()


def canonical_request(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    signed_headers: list[str],
    body: bytes,
) -> str:
    """The six lines that are hashed and signed.

    ``headers`` names are matched case-insensitively; values must be the UTF-8-decoded text.
    A signed header that did not arrive makes the request unverifiable, hence an error.
    """
    grouped = _header_values(headers)
    lines = []
    for name in signed_headers:
        value = _header(grouped, name.lower())
        if value is None:
            raise SignatureError(f"missing signed header {name}")
        lines.append(f"{name.lower()}:{value}\n")
    return "\n".join(
        [
            method.upper(),
            canonical_uri(raw_path),
            canonical_query(raw_query),
            "".join(lines),
            ";".join(signed_headers),
            hashlib.sha256(body or b"").hexdigest(),
        ]
    )


def string_to_sign(sdk_date: str, canonical: str) -> str:
    """Bind the date to the canonical request's hash, as the SDK does."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def compute_signature(sk: str, sdk_date: str, canonical: str) -> str:
    """Hex HMAC-SHA256 of the string to sign, keyed with the secret key."""
    message = string_to_sign(sdk_date, canonical).encode("utf-8")
    return hmac.new(sk.encode("utf-8"), message, hashlib.sha256).hexdigest()


def parse_sdk_date(value: str) -> datetime:
    """Read ``YYYYMMDDTHHMMSSZ`` as an aware UTC datetime (strictly: it is signed verbatim)."""
    if not _SDK_DATE_RE.fullmatch(value):
        raise SignatureError("malformed X-Sdk-Date")
    try:  # the fields by position (the pattern fixed them): a fifth of strptime's cost
        v = value
        return datetime(
            int(v[0:4]), int(v[4:6]), int(v[6:8]), int(v[9:11]), int(v[11:13]), int(v[13:15]),
            tzinfo=UTC,
        )  # fmt: skip
    except ValueError as exc:  # a day or time that does not exist (20250230T…)
        raise SignatureError("malformed X-Sdk-Date") from exc


def format_sdk_date(moment: datetime) -> str:
    """Format a datetime as an ``X-Sdk-Date`` (a naive one is taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime(_SDK_DATE_FORMAT)


def verify(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
    secret_lookup: Callable[[str], str | None],
    now: datetime,
    max_skew_seconds: int = 900,
    auth: ParsedAuth | None = None,
) -> str:
    """Check a signed request and return its access key; raise :class:`SignatureError` if not.

    ``raw_path`` and ``raw_query`` are as received (still percent-encoded, no ``?``). The
    signed header list comes from the Authorization header, not from what arrived, and must
    include ``x-sdk-date`` or the date (and so the replay window) would not be protected.
    ``secret_lookup`` returns None for an unknown or disabled AK. A naive ``now`` is UTC.
    """
    grouped = _header_values(headers)
    if auth is None:  # ``auth``: the Authorization header already parsed by the caller
        authorization = _header(grouped, "authorization")
        if not authorization:
            raise SignatureError("missing Authorization")
        auth = parse_authorization(authorization)
    if "x-sdk-date" not in auth.signed_headers:
        raise SignatureError("x-sdk-date is not signed")
    sdk_date = _header(grouped, "x-sdk-date")
    if sdk_date is None:
        raise SignatureError("missing X-Sdk-Date")
    signed_at = parse_sdk_date(sdk_date)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if abs((now - signed_at).total_seconds()) > max_skew_seconds:
        raise SignatureError("request date outside the allowed window")

    secret = secret_lookup(auth.access_key)
    if secret is None:
        raise SignatureError("unknown access key")
    canonical = canonical_request(method, raw_path, raw_query, headers, auth.signed_headers, body)
    expected = compute_signature(secret, sdk_date, canonical)
    if not hmac.compare_digest(expected, auth.signature):
        raise SignatureError("signature mismatch")
    return auth.access_key


def sign_headers(
    *,
    ak: str,
    sk: str,
    method: str,
    url_path: str,
    raw_query: str,
    headers: dict[str, str],
    body: bytes,
    sdk_date: str | None = None,
) -> dict[str, str]:
    """Return the ``X-Sdk-Date`` and ``Authorization`` headers to add to a request.

    Signs whichever of :data:`CLIENT_SIGNED_HEADERS` are in ``headers`` (give ``Host`` with
    its port, exactly as it will be sent) plus ``x-sdk-date``, which is now unless given and
    replaces any date already in ``headers``. ``url_path`` and ``raw_query`` are as sent.
    """
    date = sdk_date if sdk_date is not None else format_sdk_date(datetime.now(UTC))
    parse_sdk_date(date)
    to_sign = {k: v for k, v in headers.items() if k.lower() != "x-sdk-date"}
    to_sign["X-Sdk-Date"] = date
    present = {k.lower() for k in to_sign}
    signed = [h for h in CLIENT_SIGNED_HEADERS if h in present]
    canonical = canonical_request(method, url_path, raw_query, to_sign, signed, body)
    signature = compute_signature(sk, date, canonical)
    authorization = (
        f"{ALGORITHM} Access={ak}, SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    return {"X-Sdk-Date": date, "Authorization": authorization}
