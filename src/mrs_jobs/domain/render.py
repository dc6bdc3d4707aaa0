"""Java-style rendering of arguments and properties, and the secret rules.

MRS prints ``arguments`` as ``"[a, b, c]"`` and ``properties`` as ``"{k1=v1, k2=v2}"``; the
official SDK and Terraform expect strings there, never arrays or objects.

Two rules say what is never echoed: a property whose key looks secret (contract §3), and an
argument starting with ``@`` (MRS's sensitive parameter, such as ``@password=XXX``, which MRS
keeps from being saved in plain text). Such an argument is shown as ``@******``; its engine
gets it without the ``@``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "ARGUMENT_MASK",
    "MASK",
    "SENSITIVE_PREFIX",
    "argument_secrets",
    "engine_arguments",
    "is_secret_key",
    "is_sensitive_argument",
    "java_list",
    "java_map",
    "mask_arguments",
    "mask_properties",
    "mask_text",
]

MASK = "******"
SENSITIVE_PREFIX = "@"
ARGUMENT_MASK = SENSITIVE_PREFIX + MASK
_SECRET_PARTS = ("secret", "password", "token")
_SECRET_SUFFIXES = (".access.key", ".secret.key")
# Shorter values are not searched for in free text: "@1" would mask every "1" of a message.
_MIN_TEXT_SECRET = 4


def is_secret_key(key: str) -> bool:
    """Contract §3: keys containing secret/password/token or ending in .access/.secret.key."""
    k = key.lower()
    return any(p in k for p in _SECRET_PARTS) or k.endswith(_SECRET_SUFFIXES)


def mask_properties(props: Mapping[str, str]) -> dict[str, str]:
    return {k: (MASK if is_secret_key(k) else v) for k, v in props.items()}


def is_sensitive_argument(arg: str) -> bool:
    """MRS's rule: an argument starting with ``@`` is sensitive."""
    return arg.startswith(SENSITIVE_PREFIX)


def mask_arguments(arguments: Sequence[str]) -> list[str]:
    """The arguments as any echo shows them: each sensitive one as ``@******``."""
    return [ARGUMENT_MASK if is_sensitive_argument(a) else a for a in arguments]


def engine_arguments(arguments: Sequence[str]) -> list[str]:
    """The arguments as the engine gets them: a sensitive one without its ``@`` (MRS strips
    the marker; ``@password=x`` reaches the program as ``password=x``)."""
    return [a[len(SENSITIVE_PREFIX) :] if is_sensitive_argument(a) else a for a in arguments]


def argument_secrets(arguments: Sequence[str]) -> list[str]:
    """The values free text must not show: each sensitive argument as submitted and as its
    engine got it (without the ``@``)."""
    out: list[str] = []
    for arg in arguments:
        if is_sensitive_argument(arg):
            out += [arg, arg[len(SENSITIVE_PREFIX) :]]
    return out


def mask_text(text: str, arguments: Sequence[str], values: Iterable[str] = ()) -> str:
    """``text`` (a reason, a note) with every sensitive argument of ``arguments`` and every
    value of ``values`` masked: ``@value`` as ``@******``, the bare value as ``******``."""
    found = {v for v in (*argument_secrets(arguments), *values) if len(v) >= _MIN_TEXT_SECRET}
    for value in sorted(found, key=len, reverse=True):  # "@v" before "v"
        mask = ARGUMENT_MASK if is_sensitive_argument(value) else MASK
        text = text.replace(value, mask)
    return text


def java_list(items: Sequence[str]) -> str:
    """Render with sensitive arguments masked: this string goes to API responses and pages."""
    return "[" + ", ".join(mask_arguments(items)) + "]"


def java_map(props: Mapping[str, str]) -> str:
    """Render with secrets masked: this string goes to API responses and pages."""
    return "{" + ", ".join(f"{k}={v}" for k, v in mask_properties(props).items()) + "}"
