"""Encryption at rest for stored secrets (the SK of each AK/SK pair).

HMAC verification needs the SK itself, so it cannot be hashed like a token: it is sealed with
AES-256-GCM under an installation key that never enters the database. A sealed value reads
``v1:<key id>:<base64(nonce + ciphertext + tag)>``; the key id (a short digest of the key) says
which key sealed it, so values sealed before a key rotation stay readable while the old key
file is listed in ``MRS_JOBS_OLD_SECRET_KEY_FILES`` (``mrs-jobs admin reencrypt-secrets`` then
moves them to the current key).

A job's secret properties (keys matched by ``is_secret_key``) are sealed the same way from the
submit until the job ends (:func:`seal_job_properties`), bound to the job and the key; only the
supervisor opens them, to build the engine's launch (:func:`open_job_properties`).

The key comes from ``MRS_JOBS_SECRET_KEY`` (base64 of 32 bytes), else ``MRS_JOBS_SECRET_KEY_FILE``,
else ``<data_dir>/secret.key``, created on first use with mode 0600. A missing, malformed or
wrong key is an error, never a fallback to plain text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mrs_jobs.domain.render import SENSITIVE_PREFIX, is_secret_key, is_sensitive_argument

if TYPE_CHECKING:
    from mrs_jobs.settings import Settings

__all__ = [
    "SecretBox",
    "SecretKeyError",
    "generate_key",
    "is_sealed",
    "key_id",
    "load_secret_box",
    "open_job_arguments",
    "open_job_properties",
    "reseal_job_properties",
    "seal_job_arguments",
    "seal_job_properties",
]

log = logging.getLogger(__name__)

_VERSION = "v1"
_NONCE_BYTES = 12  # 96 bits, the GCM standard nonce
_KEY_BYTES = 32  # AES-256
# v1:<8 hex key id>:<base64 of nonce + ciphertext + 16-byte tag>, at least 28 bytes (40 chars)
_SEALED = re.compile(r"v1:[0-9a-f]{8}:[A-Za-z0-9+/]{38,}={0,2}")


class SecretKeyError(Exception):
    """The secret key is missing, malformed, or does not open a stored value."""


def generate_key() -> str:
    """A fresh key in its stored form: base64 of 32 random bytes."""
    return base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode()


def key_id(key: bytes) -> str:
    """Short public name of a key (a digest prefix; it reveals nothing usable about the key)."""
    return hashlib.sha256(b"mrs-jobs key id\0" + key).hexdigest()[:8]


def _decode_key(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SecretKeyError(f"the secret key from {source} is not valid base64.") from None
    if len(key) != _KEY_BYTES:
        raise SecretKeyError(
            f"the secret key from {source} is {len(key)} bytes; it must be base64 of "
            f"{_KEY_BYTES} bytes (e.g. `head -c 32 /dev/urandom | base64`)."
        )
    return key


def _read_key_file(path: Path) -> bytes:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SecretKeyError(f"cannot read the secret key file {path}: {exc.strerror}.") from None
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning(
            "secretbox.key_file_permissions",
            extra={"path": str(path), "mode": f"{mode:o}", "should_be": "600"},
        )
    return _decode_key(text, str(path))


def _create_key_file(path: Path) -> None:
    """Write a new key with mode 0600 from the first byte; lose a race to another creator."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as fh:
        fh.write(generate_key() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    log.info("secretbox.key_created", extra={"path": path})


class SecretBox:
    """Seals and opens short secrets; ``aad`` binds a value to its row (e.g. the AK)."""

    def __init__(self, current: bytes, old: list[bytes] | None = None) -> None:
        if len(current) != _KEY_BYTES:
            raise SecretKeyError(f"the secret key must be {_KEY_BYTES} bytes.")
        self.key_id = key_id(current)
        self._keys = {key_id(k): AESGCM(k) for k in (old or []) if len(k) == _KEY_BYTES}
        self._keys[self.key_id] = AESGCM(current)

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def seal(self, plaintext: str, *, aad: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        ct = self._keys[self.key_id].encrypt(nonce, plaintext.encode(), aad.encode())
        return f"{_VERSION}:{self.key_id}:{base64.b64encode(nonce + ct).decode()}"

    def open(self, sealed: str, *, aad: str) -> str:
        version, _, rest = sealed.partition(":")
        kid, _, body = rest.partition(":")
        if version != _VERSION or not kid or not body:
            raise SecretKeyError("the stored value is not a sealed secret (plain text?).")
        aes = self._keys.get(kid)
        if aes is None:
            raise SecretKeyError(
                f"the stored value was sealed with key {kid}, but the configured key is "
                f"{self.key_id}: set the right MRS_JOBS_SECRET_KEY / MRS_JOBS_SECRET_KEY_FILE, "
                "or list the old key file in MRS_JOBS_OLD_SECRET_KEY_FILES."
            )
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise SecretKeyError("the stored sealed value is damaged (bad base64).") from None
        try:
            return aes.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad.encode()).decode()
        except InvalidTag:
            raise SecretKeyError(
                f"the stored sealed value does not open with key {kid}: it was altered, or "
                "belongs to another row."
            ) from None

    def needs_reseal(self, sealed: str) -> bool:
        """True for values sealed with an old key (or not sealed at all)."""
        return not sealed.startswith(f"{_VERSION}:{self.key_id}:")


def load_secret_box(settings: Settings, *, create: bool = True) -> SecretBox:
    """The installation's box, from settings; ``create`` makes the default key file if absent."""
    if settings.secret_key is not None:
        current = _decode_key(settings.secret_key.get_secret_value(), "MRS_JOBS_SECRET_KEY")
    else:
        path = settings.secret_key_file or settings.data_dir / "secret.key"
        if not path.exists():
            if settings.secret_key_file is not None or not create:
                raise SecretKeyError(f"the secret key file {path} does not exist.")
            _create_key_file(path)
        current = _read_key_file(path)
    old = [
        _read_key_file(Path(p.strip()))
        for p in settings.old_secret_key_files.split(",")
        if p.strip()
    ]
    return SecretBox(current, old)


def is_sealed(value: str) -> bool:
    """Whether ``value`` has the form of a sealed secret (not whether it opens)."""
    return _SEALED.fullmatch(value) is not None


def _job_aad(job_id: str, key: str) -> str:
    """Bind a sealed property value to its job and key: copied elsewhere, it does not open."""
    return f"job-property\0{job_id}\0{key}"


def seal_job_properties(
    box: SecretBox, job_id: str, properties: Mapping[str, str]
) -> dict[str, str]:
    """The properties as stored: every secret value sealed, the others as given."""
    return {
        k: box.seal(v, aad=_job_aad(job_id, k)) if is_secret_key(k) else v
        for k, v in properties.items()
    }


def open_job_properties(
    box: SecretBox, job_id: str, properties: Mapping[str, str]
) -> dict[str, str]:
    """The properties as submitted. A secret value that is not sealed is returned as it is: a
    row stored before values were sealed, or the mask an ended job keeps. A sealed value that
    does not open raises :class:`SecretKeyError`."""
    return {
        k: box.open(v, aad=_job_aad(job_id, k)) if is_secret_key(k) and is_sealed(v) else v
        for k, v in properties.items()
    }


def reseal_job_properties(
    box: SecretBox, job_id: str, properties: Mapping[str, str]
) -> dict[str, str] | None:
    """The properties with every secret value sealed by the current key (plain values of a
    row stored before values were sealed, values sealed by an old key); None if none needed
    it. Raises :class:`SecretKeyError` for a sealed value that does not open."""
    changed = False
    out: dict[str, str] = {}
    for k, v in properties.items():
        if is_secret_key(k) and box.needs_reseal(v):
            plain = box.open(v, aad=_job_aad(job_id, k)) if is_sealed(v) else v
            v = box.seal(plain, aad=_job_aad(job_id, k))
            changed = True
        out[k] = v
    return out if changed else None


def _argument_aad(job_id: str, index: int) -> str:
    """Bind a sealed argument to its job and position."""
    return f"job-argument\0{job_id}\0{index}"


def seal_job_arguments(box: SecretBox, job_id: str, arguments: Sequence[str]) -> list[str]:
    """The arguments as stored: each sensitive one (MRS's ``@`` mark) kept as ``@`` + its
    sealed value, so echoes still know it is sensitive and the database never holds it."""
    return [
        SENSITIVE_PREFIX + box.seal(a[len(SENSITIVE_PREFIX) :], aad=_argument_aad(job_id, i))
        if is_sensitive_argument(a)
        else a
        for i, a in enumerate(arguments)
    ]


def open_job_arguments(box: SecretBox, job_id: str, arguments: Sequence[str]) -> list[str]:
    """The arguments as submitted (``@`` kept). A sensitive argument that is not sealed (a row
    stored before they were) is returned as it is; a sealed one that does not open raises
    :class:`SecretKeyError`."""
    out = []
    for i, a in enumerate(arguments):
        rest = a[len(SENSITIVE_PREFIX) :]
        if is_sensitive_argument(a) and is_sealed(rest):
            a = SENSITIVE_PREFIX + box.open(rest, aad=_argument_aad(job_id, i))
        out.append(a)
    return out
