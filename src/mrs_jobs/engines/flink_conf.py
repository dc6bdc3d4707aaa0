"""A Flink job's private configuration directory (``FLINK_CONF_DIR``), 0600 ``config.yaml``.

A local mini-cluster's REST endpoint is on the loopback, where every local process can reach
it, and Flink's REST API has no authentication (``web.cancel.enable: false`` only hides the
button). So it speaks TLS with a client certificate made per job, and a caller without it is
refused during the handshake; submission, cancel and rescale through the web UI are off.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import secrets
import shutil
import socket
import ssl
from pathlib import Path
from typing import Any

from mrs_jobs.engines.flink_args import RESERVED_CONF
from mrs_jobs.engines.kit import free_port
from mrs_jobs.runtime import jobdir

__all__ = [
    "LOCAL_REST_LOCKS",
    "REST_CLIENT_PEM",
    "REST_PORTS",
    "REST_TLS_STORE",
    "read_flink_config",
    "rest_client_context",
    "write_job_config",
]

REST_PORTS = 16  # the local mini-cluster's REST endpoint binds to the first free one of these
# Any local process can reach the mini-cluster's REST endpoint: no job submission through it.
LOCAL_REST_LOCKS = {
    "web.submit.enable": False,
    "web.cancel.enable": False,
    "web.rescale.enable": False,
}
REST_TLS_STORE = "rest-tls.p12"  # the endpoint's key and certificate; also its truststore
REST_CLIENT_PEM = "rest-client.pem"  # the same pair for the service's own REST requests
# Flink's default suite (TLS_RSA_WITH_AES_128_CBC_SHA) needs an RSA key; ours is EC.
_TLS_SUITES = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
_CERT_DAYS = 3650  # a job may run for long; the pair dies with the job directory anyway


def write_job_config(
    flink_home: str,
    conf_dir: Path,
    tmp: Path,
    target: str,
    jobmanager: str | None,
    secret_conf: dict[str, str],
) -> int | None:
    """Fill ``conf_dir``; return the first port of the local REST range (None if not local)."""
    dist_conf = Path(flink_home) / "conf"
    with contextlib.suppress(OSError):
        for entry in dist_conf.iterdir():
            if entry.is_file() and entry.name not in ("config.yaml", "flink-conf.yaml"):
                shutil.copyfile(entry, conf_dir / entry.name)
    config = read_flink_config(dist_conf / "config.yaml")
    for key in RESERVED_CONF:
        config.pop(key, None)
    rest_base = None
    config["io.tmp.dirs"] = str(tmp)
    config["web.tmpdir"] = str(tmp)
    config["web.upload.dir"] = str(tmp / "web-upload")
    if target == "local":
        # The mini-cluster sizes itself to the job's parallelism unless a slot count is
        # configured (the distribution's 1 would leave a job with -p 2 waiting forever).
        config.pop("taskmanager.numberOfTaskSlots", None)
        config["jobmanager.rpc.port"] = 0  # never the distribution's fixed 6123
        rest_base = _free_port_range(REST_PORTS)
        config["rest.address"] = "127.0.0.1"
        config["rest.bind-address"] = "127.0.0.1"
        config["rest.bind-port"] = f"{rest_base}-{rest_base + REST_PORTS - 1}"
        config.update(LOCAL_REST_LOCKS)
        config.update(_rest_tls(conf_dir))
    elif jobmanager:
        # With -t (Flink's generic CLI) -m is not applied: the REST address is configuration.
        host, _, port = jobmanager.rpartition(":")
        config["rest.address"] = host.strip("[]")
        config["rest.port"] = int(port)
    if target == "remote":
        config["execution.attached"] = False  # the same as -d, in case a wrapper drops it
    config.update(secret_conf)
    _write_config(conf_dir / "config.yaml", config)
    return rest_base


def _rest_tls(conf_dir: Path) -> dict[str, Any]:
    """A fresh key pair for the job's REST endpoint, and the settings that require it of every
    caller (mutual TLS)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mrs-jobs local Flink REST")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_CERT_DAYS))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    password = secrets.token_urlsafe(24)
    store = pkcs12.serialize_key_and_certificates(
        b"mrs-jobs", key, cert, None, serialization.BestAvailableEncryption(password.encode())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) + cert.public_bytes(serialization.Encoding.PEM)
    jobdir.write_private(conf_dir / REST_TLS_STORE, store)
    jobdir.write_private(conf_dir / REST_CLIENT_PEM, pem)
    path = str(conf_dir / REST_TLS_STORE)
    return {
        "security.ssl.rest.enabled": True,
        "security.ssl.rest.authentication-enabled": True,
        "security.ssl.rest.keystore": path,
        "security.ssl.rest.keystore-type": "PKCS12",
        "security.ssl.rest.keystore-password": password,
        "security.ssl.rest.key-password": password,
        "security.ssl.rest.truststore": path,
        "security.ssl.rest.truststore-type": "PKCS12",
        "security.ssl.rest.truststore-password": password,
        "security.ssl.algorithms": _TLS_SUITES,
    }


def rest_client_context(conf_dir: Path) -> ssl.SSLContext | None:
    """TLS for the service's requests to a local job's REST endpoint: its own certificate as
    the only trusted one, and as the client certificate. None when the job has none (it was
    started by an older version, over plain HTTP)."""
    pem = conf_dir / REST_CLIENT_PEM
    if not pem.is_file() or pem.is_symlink():
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(pem)
        context.load_cert_chain(pem)
    except (OSError, ssl.SSLError):
        return None
    return context


def _free_port_range(count: int) -> int:
    """The first of ``count`` consecutive ports that are free right now (best effort)."""
    for _ in range(20):
        base = free_port()
        if base + count < 65536 and all(_bindable(p) for p in range(base + 1, base + count)):
            return base
    return base


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _yaml_scalar(value: Any) -> str:
    """A value as YAML flow text (JSON is a subset of YAML 1.2)."""
    if isinstance(value, bool | int | float) or value is None:
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
    return json.dumps(str(value))


def _flatten(data: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif prefix:
        out[prefix] = data


def _strip_quotes(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    if " #" in text:
        text = text.split(" #", 1)[0].rstrip()
    return text


def _read_simple_yaml(text: str) -> dict[str, Any]:
    """Flatten block-mapping YAML of scalars (Flink's shipped config.yaml) without PyYAML."""
    out: dict[str, Any] = {}
    stack: list[tuple[int, str]] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("- "):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        key, colon, value = stripped.partition(":")
        if not colon:
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        full = ".".join([k for _, k in stack] + [_strip_quotes(key)])
        value = value.strip()
        if value:
            out[full] = _strip_quotes(value)
        else:
            stack.append((indent, _strip_quotes(key)))
    return out


def read_flink_config(path: Path) -> dict[str, Any]:
    """A Flink ``config.yaml`` as flat ``key → value`` (nested and flattened forms alike)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    try:
        import yaml  # optional: the shipped file also parses without it
    except ImportError:
        return _read_simple_yaml(text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return _read_simple_yaml(text)
    out: dict[str, Any] = {}
    _flatten(data or {}, "", out)
    return out


def _write_config(path: Path, config: dict[str, Any]) -> None:
    lines = ["# Written by mrs-jobs for this job only: the distribution's settings, then ours."]
    lines += [f"{json.dumps(str(k))}: {_yaml_scalar(v)}" for k, v in config.items()]
    jobdir.write_private(path, "\n".join(lines) + "\n")
