"""Java-style rendering of arguments and properties, and the secret rule.

MRS prints ``arguments`` as ``"[a, b, c]"`` and ``properties`` as ``"{k1=v1, k2=v2}"``; the
official SDK and Terraform expect strings there, never arrays or objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["MASK", "is_secret_key", "java_list", "java_map", "mask_properties"]

MASK = "******"
_SECRET_PARTS = ("secret", "password", "token")
_SECRET_SUFFIXES = (".access.key", ".secret.key")


def is_secret_key(key: str) -> bool:
    """Contract §3: keys containing secret/password/token or ending in .access/.secret.key."""
    k = key.lower()
    return any(p in k for p in _SECRET_PARTS) or k.endswith(_SECRET_SUFFIXES)


def mask_properties(props: Mapping[str, str]) -> dict[str, str]:
    return {k: (MASK if is_secret_key(k) else v) for k, v in props.items()}


def java_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(items) + "]"


def java_map(props: Mapping[str, str]) -> str:
    """Render with secrets masked: this string goes to API responses and pages."""
    return "{" + ", ".join(f"{k}={v}" for k, v in mask_properties(props).items()) + "}"
