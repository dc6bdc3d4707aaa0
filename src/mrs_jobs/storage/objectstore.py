"""Objects in an S3-compatible store (OBS, MinIO, AWS S3...) named ``obs://``/``s3a://``/``s3://``.

Credentials come from the job's ``fs.obs.*``/``fs.s3a.*`` properties over the cluster's
defaults (``_PROPS``). Keys come as a pair from one layer, and the cluster's keys are used only
when the job gives none **and** the endpoint is the cluster's, so a job cannot make the service
sign requests for a host of its choosing. Without keys access is anonymous: the AWS default
credential chain is never consulted, so the service's own credentials cannot leak into a job.
Keys reach Spark only through the environment (``secret_env``), never a command line, and no
:class:`ObjectStoreError` message ever contains a key, secret or token (``redact``).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets as _secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mrs_jobs.domain.render import is_secret_key

__all__ = [
    "OBJECT_SCHEMES",
    "ObjectStoreError",
    "ObjectURI",
    "S3Credentials",
    "fetch",
    "filesystem",
    "is_object_uri",
    "parse_uri",
    "redact",
    "resolve_credentials",
    "secret_env",
    "spark_conf",
]

OBJECT_SCHEMES = frozenset({"obs", "s3a", "s3"})
DEFAULT_REGION = "us-east-1"
CHUNK = 8 * 1024 * 1024
S3A_IMPL = "org.apache.hadoop.fs.s3a.S3AFileSystem"
_ANONYMOUS_PROVIDER = "org.apache.hadoop.fs.s3a.AnonymousAWSCredentialsProvider"

_PROPS = {
    "endpoint": ("fs.obs.endpoint", "fs.s3a.endpoint"),
    "access_key": ("fs.obs.access.key", "fs.s3a.access.key"),
    "secret_key": ("fs.obs.secret.key", "fs.s3a.secret.key"),
    "session_token": ("fs.obs.session.token", "fs.s3a.session.token"),
    "region": ("fs.obs.region", "fs.s3a.endpoint.region", "fs.s3a.region"),
}
_URI_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
_BUCKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9._-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
_REGION_RE = re.compile(r"^[a-z0-9-]{1,64}$")
_REGION_IN_HOST = (
    re.compile(r"^obs\.([a-z0-9-]+)\.[a-z0-9.-]+$"),
    re.compile(r"^s3[.-]([a-z0-9-]+)\.amazonaws\.com(\.cn)?$"),
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class ObjectStoreError(Exception):
    """An object URI, endpoint or transfer problem. The message never contains a secret."""


@dataclass(frozen=True)
class ObjectURI:
    """``scheme://bucket/key``; ``key`` has no leading/trailing ``/`` and may be empty."""

    scheme: str
    bucket: str
    key: str

    @property
    def path(self) -> str:
        """The ``bucket/key`` path pyarrow's S3FileSystem takes."""
        return f"{self.bucket}/{self.key}" if self.key else self.bucket

    @property
    def name(self) -> str:
        """The last component of the key (the bucket for a bucket root)."""
        return self.key.rpartition("/")[2] if self.key else self.bucket

    def __str__(self) -> str:
        return f"{self.scheme}://{self.path}"


def is_object_uri(value: str) -> bool:
    """True for ``obs://``, ``s3a://`` and ``s3://`` (any case) URIs."""
    m = _URI_RE.match(value)
    return bool(m) and m.group(1).lower() in OBJECT_SCHEMES


def parse_uri(uri: str) -> ObjectURI:
    """Parse ``obs://bucket/key`` (or ``s3a://``, ``s3://``).

    The key is taken literally (no percent-decoding, as Hadoop's ``Path`` does); repeated ``/``
    are collapsed; ``.``/``..`` components, control characters and credentials in the URI
    (``s3a://AK:SK@bucket``) are refused. Refusals never repeat a URI that holds credentials.
    """
    m = _URI_RE.match(uri)
    if not m or m.group(1).lower() not in OBJECT_SCHEMES:
        raise ObjectStoreError(f"not an obs://, s3a:// or s3:// URI: {uri}")
    scheme = m.group(1).lower()
    rest = m.group(2)
    bucket, _, key = rest.partition("/")
    if "@" in bucket:
        raise ObjectStoreError(
            f"credentials in a {scheme}:// URI are not allowed: use the fs.obs.access.key and "
            "fs.obs.secret.key properties"
        )
    if _CONTROL_RE.search(uri):
        raise ObjectStoreError(f"control characters in object URI {uri!r}")
    if not _BUCKET_RE.match(bucket):
        raise ObjectStoreError(f"invalid bucket name in {uri}")
    parts = [p for p in key.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ObjectStoreError(f"'.' and '..' are not allowed in object keys: {uri}")
    return ObjectURI(scheme=scheme, bucket=bucket, key="/".join(parts))


@dataclass(frozen=True)
class S3Credentials:
    """Where and how to reach the store. ``repr()`` never shows the keys."""

    endpoint_url: str | None = None  # "http(s)://host[:port]"; None = AWS's own endpoints
    region: str = DEFAULT_REGION
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    source: str = "anonymous"  # "job properties" | "cluster defaults" | "anonymous"

    @property
    def anonymous(self) -> bool:
        return not (self.access_key and self.secret_key)

    def secret_values(self) -> list[str]:
        """Values that must never appear in output (the access key counts, as in §3)."""
        return [v for v in (self.access_key, self.secret_key, self.session_token) if v]

    def describe(self) -> str:
        """A line safe for logs: endpoint, region and where the keys came from."""
        where = self.endpoint_url or "the AWS default endpoint"
        return f"object store {where} (region {self.region}, credentials: {self.source})"

    def to_json(self) -> dict[str, Any]:
        """For a private (0600) file only: includes the secrets."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> S3Credentials:
        values = {f.name: data.get(f.name) or None for f in fields(cls)}
        values["region"] = str(values["region"] or DEFAULT_REGION)
        return cls(**values | {"source": str(values["source"] or "anonymous")})


def normalize_endpoint(value: str) -> str:
    """``http://host:port`` → itself; ``host[:port]`` → ``https://host[:port]``.

    Refuses paths, queries, user info and schemes other than http/https.
    """
    text = value.strip()
    if not text:
        raise ObjectStoreError("empty object store endpoint")
    if _CONTROL_RE.search(text) or " " in text:
        raise ObjectStoreError("invalid object store endpoint: contains spaces or controls")
    if "://" in text:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ObjectStoreError(
                f"object store endpoint must be http:// or https://, not {scheme}://"
            )
        if parts.username or parts.password or "@" in parts.netloc:
            raise ObjectStoreError("object store endpoint must not contain user information")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ObjectStoreError(f"object store endpoint must be scheme://host[:port]: {text}")
        host = parts.netloc
    else:
        scheme, host = "https", text.rstrip("/")
    if not _HOST_RE.match(host):
        raise ObjectStoreError(f"invalid object store endpoint host: {host}")
    port = host.rpartition(":")[2] if not host.endswith("]") and ":" in host else None
    if port is not None and not 0 < int(port) < 65536:
        raise ObjectStoreError(f"invalid object store endpoint port: {port}")
    return f"{scheme}://{host.lower()}"


def _split_endpoint(endpoint_url: str) -> tuple[str, str]:
    scheme, _, host = endpoint_url.partition("://")
    return scheme, host


def _region_from_endpoint(endpoint_url: str | None) -> str | None:
    host = _split_endpoint(endpoint_url or "")[1]
    host = host.rpartition(":")[0] or host
    found = [m.group(1) for rx in _REGION_IN_HOST if (m := rx.match(host))]
    return found[0] if found else None


def _layer(props: Mapping[str, str] | None) -> dict[str, str | None]:
    """Each of ``_PROPS`` from ``props``: the first of its keys set."""
    values = {k: v.strip() for k, v in (props or {}).items() if isinstance(v, str) and v.strip()}
    return {
        name: next((values[k] for k in keys if k in values), None) for name, keys in _PROPS.items()
    }


def resolve_credentials(
    properties: Mapping[str, str] | None, defaults: Mapping[str, str] | None = None
) -> S3Credentials:
    """The job's ``fs.obs.*``/``fs.s3a.*`` properties over the cluster's defaults.

    See the module documentation for the rules; raises :class:`ObjectStoreError`.
    """
    job, base = _layer(properties), _layer(defaults)
    base_endpoint = normalize_endpoint(base["endpoint"]) if base["endpoint"] else None
    endpoint = normalize_endpoint(job["endpoint"]) if job["endpoint"] else base_endpoint
    same_endpoint = endpoint == base_endpoint

    if job["access_key"] or job["secret_key"] or job["session_token"]:
        if not (job["access_key"] and job["secret_key"]):
            raise ObjectStoreError(
                "object store credentials need both fs.obs.access.key and fs.obs.secret.key"
            )
        keys, source = job, "job properties"
    elif base["access_key"] and base["secret_key"] and same_endpoint:
        keys, source = base, "cluster defaults"
    else:
        keys, source = {}, "anonymous"

    region = (
        job["region"]
        or (base["region"] if same_endpoint else None)
        or _region_from_endpoint(endpoint)
        or DEFAULT_REGION
    )
    if not _REGION_RE.match(region):
        raise ObjectStoreError(f"invalid object store region: {region}")
    secrets = {k: keys.get(k) for k in ("access_key", "secret_key", "session_token")}
    return S3Credentials(endpoint_url=endpoint, region=region, source=source, **secrets)


def _creds(creds: S3Credentials | Mapping[str, str] | None) -> S3Credentials:
    if isinstance(creds, S3Credentials):
        return creds
    return resolve_credentials(creds or {})


def redact(text: str, creds: S3Credentials | Mapping[str, str] | None) -> str:
    """``text`` with every key/secret/token value of ``creds`` replaced by ``******``."""
    if isinstance(creds, S3Credentials):
        values = creds.secret_values()
    else:  # a raw property map
        values = [v for k, v in (creds or {}).items() if isinstance(v, str) and is_secret_key(k)]
    for v in sorted(set(values), key=len, reverse=True):
        if len(v) >= 3:
            text = text.replace(v, "******")
    return text


def filesystem(creds: S3Credentials | Mapping[str, str] | None):  # -> pyarrow.fs.S3FileSystem
    """A pyarrow S3FileSystem for ``creds`` (path-style; anonymous when there are no keys)."""
    c = _creds(creds)
    try:
        from pyarrow import fs as pafs

        kwargs: dict[str, Any] = {
            "region": c.region,
            "connect_timeout": 5.0,
            "request_timeout": 60.0,
            "force_virtual_addressing": False,
            "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3),
        }
        if c.endpoint_url:
            scheme, host = _split_endpoint(c.endpoint_url)
            kwargs["scheme"] = scheme
            kwargs["endpoint_override"] = host
        if c.anonymous:
            kwargs["anonymous"] = True
        else:
            keys = {"access_key": c.access_key, "secret_key": c.secret_key}
            kwargs |= {**keys, "session_token": c.session_token} if c.session_token else keys
        return pafs.S3FileSystem(**kwargs)
    except ObjectStoreError:
        raise
    except Exception as exc:  # pragma: no cover - pyarrow built without S3
        raise ObjectStoreError(redact(f"cannot set up the S3 client: {exc}", c)) from None


def describe_error(exc: BaseException, creds: S3Credentials | Mapping[str, str] | None) -> str:
    """A one-line, secret-free text for an S3 client error, with a hint on access problems."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if re.search(
        r"ACCESS_DENIED|AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|HTTP response code"
        r" 403|Forbidden",
        text,
    ):
        text += " (access denied: check fs.obs.access.key / fs.obs.secret.key and fs.obs.endpoint)"
    return redact(text, creds)


def fetch(
    uri: str,
    dest_dir: str | os.PathLike[str],
    creds: S3Credentials | Mapping[str, str] | None,
    *,
    max_bytes: int | None = None,
) -> Path:
    """Download one object to ``dest_dir/<last key component>`` and return that path.

    Streams in chunks to a temporary name in ``dest_dir`` and renames it into place, so a failed
    download never leaves a partial file under the final name. ``max_bytes`` (optional) refuses
    larger objects. Raises :class:`ObjectStoreError` (secret-free) on any failure.
    """
    ref = parse_uri(uri)
    c = _creds(creds)
    if not ref.key:
        raise ObjectStoreError(f"{uri} names a bucket, not an object")
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / ref.name
    tmp = dest / f".{ref.name}.fetch-{_secrets.token_hex(4)}.tmp"
    try:
        from pyarrow import fs as pafs

        s3 = filesystem(c)
        info = s3.get_file_info(ref.path)
        if info.type == pafs.FileType.NotFound:
            raise ObjectStoreError(f"object not found: {ref}")
        if info.type != pafs.FileType.File:
            raise ObjectStoreError(f"{ref} is a directory, not an object")
        if max_bytes is not None and info.size is not None and info.size > max_bytes:
            raise ObjectStoreError(f"{ref} is larger than {max_bytes} bytes")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        done = 0
        with os.fdopen(fd, "wb") as out, s3.open_input_stream(ref.path) as src:
            while True:
                chunk = src.read(CHUNK)
                if not chunk:
                    break
                done += len(chunk)
                if max_bytes is not None and done > max_bytes:
                    raise ObjectStoreError(f"{ref} is larger than {max_bytes} bytes")
                out.write(chunk)
        os.replace(tmp, final)
        return final
    except ObjectStoreError:
        raise
    except Exception as exc:
        raise ObjectStoreError(f"cannot fetch {ref}: {describe_error(exc, c)}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def spark_conf(creds: S3Credentials | Mapping[str, str] | None) -> dict[str, str]:
    """Non-secret ``spark.hadoop.fs.s3a.*`` settings matching ``creds``.

    ``obs://`` and ``s3://`` are served by S3A too (``fs.obs.impl``/``fs.s3.impl``). The keys are
    not here: pass :func:`secret_env` in the job's environment, where S3A's default credential
    chain (``EnvironmentVariableCredentialsProvider``) reads them. Without keys, S3A is set to
    anonymous access. Needs ``hadoop-aws`` and its AWS SDK on Spark's class path.
    """
    c = _creds(creds)
    conf = {
        "spark.hadoop.fs.s3a.impl": S3A_IMPL,
        "spark.hadoop.fs.s3.impl": S3A_IMPL,
        "spark.hadoop.fs.obs.impl": S3A_IMPL,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.endpoint.region": c.region,
    }
    if c.endpoint_url:
        scheme, _ = _split_endpoint(c.endpoint_url)
        conf["spark.hadoop.fs.s3a.endpoint"] = c.endpoint_url
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(scheme == "https").lower()
    if c.anonymous:
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = _ANONYMOUS_PROVIDER
    return conf


def secret_env(creds: S3Credentials | Mapping[str, str] | None) -> dict[str, str]:
    """``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``) or ``{}``."""
    c = _creds(creds)
    if c.anonymous:
        return {}
    env = {"AWS_ACCESS_KEY_ID": str(c.access_key), "AWS_SECRET_ACCESS_KEY": str(c.secret_key)}
    if c.session_token:
        env["AWS_SESSION_TOKEN"] = c.session_token
    return env
