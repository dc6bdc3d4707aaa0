"""CredentialCache on its own: freshness, expiry times, size bound, switched off."""

from __future__ import annotations

from mrs_jobs.api.credcache import CredentialCache
from mrs_jobs.store.tenants import Credential


def cred(ak: str, expires_ms: int | None = None) -> Credential:
    return Credential(
        id="id-" + ak,
        project_id="p",
        kind="aksk",
        user_name="u",
        access_key=ak,
        secret_key="sk",
        expires_ms=expires_ms,
        disabled=False,
    )


def test_entries_live_for_the_ttl_only() -> None:
    now = [0.0]
    cache = CredentialCache(ttl=5, clock=lambda: now[0])
    cache.put("A", cred("A"))
    now[0] = 4.99
    assert cache.get("A") == cred("A")
    now[0] = 5.0
    assert cache.get("A") is None and len(cache) == 0
    assert cache.get("unknown") is None


def test_a_passed_expiry_time_is_refused_before_the_ttl() -> None:
    wall = [1_000]
    cache = CredentialCache(ttl=5, clock=lambda: 0.0, wall_ms=lambda: wall[0])
    cache.put("A", cred("A", expires_ms=1_500))
    assert cache.get("A") is not None
    wall[0] = 1_501
    assert cache.get("A") is None


def test_size_is_bounded_oldest_first_and_drop_and_ttl_zero() -> None:
    cache = CredentialCache(ttl=5, max_entries=2, clock=lambda: 0.0)
    for ak in ("A", "B", "C"):
        cache.put(ak, cred(ak))
    assert [cache.get(k) is not None for k in ("A", "B", "C")] == [False, True, True]
    cache.drop("B")
    assert cache.get("B") is None
    off = CredentialCache(ttl=0)
    off.put("A", cred("A"))
    assert off.get("A") is None
