"""Where the client CLI finds its service and credentials.

Each field is taken from the first source that has it: command-line flags, then
``MRS_JOBS_*`` environment variables, then a profile in ``profiles.toml``, then the
``bootstrap.json`` a local ``mrs-jobs serve`` wrote on its first start. Pure standard library
so importing it costs nothing on ``--help``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ENV_VARS",
    "FIELDS",
    "ConfigError",
    "Connection",
    "bootstrap_path",
    "profiles_path",
    "resolve",
]

FIELDS = ("endpoint", "project_id", "cluster_id", "ak", "sk", "token")
ENV_VARS = {
    "endpoint": "MRS_JOBS_ENDPOINT",
    "project_id": "MRS_JOBS_PROJECT_ID",
    "cluster_id": "MRS_JOBS_CLUSTER_ID",
    "ak": "MRS_JOBS_AK",
    "sk": "MRS_JOBS_SK",
    "token": "MRS_JOBS_TOKEN",
}
# Keys accepted in a profile; the short names match the command-line flags.
_PROFILE_KEYS = {
    **{f: f for f in FIELDS},
    "project": "project_id",
    "cluster": "cluster_id",
}
_SOURCES = ("flag", "env", "profile", "bootstrap")


class ConfigError(Exception):
    """The connection cannot be resolved (missing field, bad profile file)."""


@dataclass(frozen=True)
class Connection:
    """Everything a request needs: where to send it and how to authenticate it."""

    endpoint: str
    project_id: str
    cluster_id: str
    ak: str | None = None
    sk: str | None = None
    token: str | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def base_url(self) -> str:
        """The job-executions collection of this project and cluster."""
        return f"{self.endpoint}/v2/{self.project_id}/clusters/{self.cluster_id}/job-executions"


def profiles_path(env: Mapping[str, str]) -> Path:
    """``$MRS_JOBS_CONFIG``, else ``$XDG_CONFIG_HOME/mrs-jobs/profiles.toml`` (~/.config)."""
    if env.get("MRS_JOBS_CONFIG"):
        return Path(env["MRS_JOBS_CONFIG"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mrs-jobs" / "profiles.toml"


def bootstrap_path(env: Mapping[str, str]) -> Path:
    """The local service's ``bootstrap.json``: ``<MRS_JOBS_DATA_DIR or ~/.mrs-jobs>``."""
    data_dir = env.get("MRS_JOBS_DATA_DIR") or str(Path.home() / ".mrs-jobs")
    return Path(data_dir).expanduser() / "bootstrap.json"


def _load_profile(path: Path, name: str | None) -> dict[str, str]:
    """The named profile (``[default]`` when none is named); a named one must exist."""
    if not path.exists():
        if name:
            raise ConfigError(f"profile {name!r} requested but {path} does not exist")
        return {}
    import tomllib

    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    section = data.get(name or "default")
    if section is None:
        if name:
            known = ", ".join(sorted(k for k, v in data.items() if isinstance(v, dict)))
            raise ConfigError(f"no profile [{name}] in {path} (profiles: {known or 'none'})")
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"[{name or 'default'}] in {path} is not a table")
    out: dict[str, str] = {}
    for key, value in section.items():
        if key not in _PROFILE_KEYS:
            allowed = ", ".join(_PROFILE_KEYS)
            raise ConfigError(f"unknown key {key!r} in [{name or 'default'}] ({allowed})")
        if not isinstance(value, str):
            raise ConfigError(f"{key} in [{name or 'default'}] must be a string")
        out[_PROFILE_KEYS[key]] = value
    return out


def _load_bootstrap(path: Path) -> dict[str, str]:
    """Best effort: a missing or unreadable file simply contributes nothing."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if k in FIELDS and isinstance(v, str) and v}


def _normalize_endpoint(endpoint: str) -> str:
    endpoint = endpoint.strip().rstrip("/")
    if "://" not in endpoint:
        # The service listens on plain HTTP unless a proxy says otherwise.
        endpoint = "http://" + endpoint
    return endpoint


def resolve(
    flags: Mapping[str, str | None],
    env: Mapping[str, str] | None = None,
    profile: str | None = None,
) -> Connection:
    """Merge the four sources field by field and check that the result can be used.

    The credential comes from the most specific source that has one: a token given as a flag
    beats an AK/SK from ``bootstrap.json``, and vice versa; in the same source AK/SK wins.
    """
    env = os.environ if env is None else env
    profile = profile or env.get("MRS_JOBS_PROFILE") or None
    layers: list[dict[str, str]] = [
        {k: v for k, v in flags.items() if k in FIELDS and v},
        {f: env[var] for f, var in ENV_VARS.items() if env.get(var)},
        _load_profile(profiles_path(env), profile),
        _load_bootstrap(bootstrap_path(env)),
    ]
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    rank: dict[str, int] = {}
    for i, layer in enumerate(layers):
        for key, value in layer.items():
            if key not in values:
                values[key], sources[key], rank[key] = value, _SOURCES[i], i

    missing = [f for f in ("endpoint", "project_id", "cluster_id") if f not in values]
    if missing:
        names = ", ".join(f"--{f.removesuffix('_id')} / {ENV_VARS[f]}" for f in missing)
        raise ConfigError(
            f"missing {names}; give them as flags, environment variables, a profile in "
            f"{profiles_path(env)}, or run a local service ({bootstrap_path(env)})"
        )

    ak, sk, token = values.get("ak"), values.get("sk"), values.get("token")
    use_aksk = ak is not None and (token is None or rank["ak"] <= rank["token"])
    if use_aksk:
        if sk is None:
            raise ConfigError("an AK needs its SK (--sk / MRS_JOBS_SK)")
        token = None
    elif token is not None:
        ak = sk = None
    else:
        raise ConfigError(
            "no credential: give --ak and --sk (MRS_JOBS_AK / MRS_JOBS_SK) or --token "
            "(MRS_JOBS_TOKEN; `mrs-jobs admin create-token`)"
        )
    return Connection(
        endpoint=_normalize_endpoint(values["endpoint"]),
        project_id=values["project_id"],
        cluster_id=values["cluster_id"],
        ak=ak,
        sk=sk,
        token=token,
        sources=sources,
    )
