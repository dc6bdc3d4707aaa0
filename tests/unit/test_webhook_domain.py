"""Webhook rules of domain/webhooks.py: signatures, secrets, targets, events, the retry plan."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random

import pytest

from mrs_jobs.domain.webhooks import (
    MAX_DELAY_S,
    headers,
    new_secret,
    next_attempt_ms,
    over_duration_msg_id,
    parse_target,
    refused_address,
    secret_key,
    sign,
    validate_events,
)
from mrs_jobs.errors import InvalidParameter


def test_signature_matches_the_standard_webhooks_published_vector() -> None:
    got = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        '{"test": 2432232314}',
    )
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_is_hmac_sha256_of_id_timestamp_body_under_the_decoded_key() -> None:
    key = bytes(range(24))
    secret = "whsec_" + base64.b64encode(key).decode()
    body = '{"type":"job.succeeded","data":{"job_id":"j-1"}}'
    mac = hmac.new(key, f"msg_abc.1700000000.{body}".encode(), hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    assert sign(secret, "msg_abc", 1700000000, body) == expected
    sent = headers(secret, "msg_abc", 1700000000, body)
    assert sent["webhook-id"] == "msg_abc"
    assert sent["webhook-timestamp"] == "1700000000"
    assert sent["webhook-signature"] == expected
    # any change of id, time or body changes the signature
    assert sign(secret, "msg_abd", 1700000000, body) != expected
    assert sign(secret, "msg_abc", 1700000001, body) != expected
    assert sign(secret, "msg_abc", 1700000000, body + " ") != expected


def test_new_secrets_are_whsec_base64_random_and_distinct() -> None:
    a, b = new_secret(), new_secret()
    assert a.startswith("whsec_") and a != b
    assert len(secret_key(a)) == 24


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_inner_addresses_are_refused(address: str) -> None:
    assert refused_address(address) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert refused_address(address) is None


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "file:///etc/passwd", "example.com/hook", "http://", "https://u:p@h/"],
)
def test_urls_other_than_plain_http_are_refused(url: str) -> None:
    with pytest.raises(InvalidParameter):
        parse_target(url)


def test_a_url_gives_host_and_port() -> None:
    t = parse_target("https://hooks.example.com/in")
    assert (t.scheme, t.host, t.port) == ("https", "hooks.example.com", 443)
    assert parse_target("http://h:8080/").port == 8080


def test_events_are_checked_and_deduplicated() -> None:
    assert validate_events(["job.failed", " job.succeeded", "job.failed"]) == [
        "job.failed",
        "job.succeeded",
    ]
    with pytest.raises(InvalidParameter):
        validate_events(["job.exploded"])
    with pytest.raises(InvalidParameter):
        validate_events(["", " "])


def test_backoff_doubles_with_jitter_and_stops_at_the_max_age() -> None:
    rand = random.Random(7)
    created = now = 1_000_000
    gaps = []
    for attempts in range(1, 8):
        at = next_attempt_ms(attempts, created, now, base_s=5, max_age_s=86400, rand=rand)
        assert at is not None
        gaps.append(at - now)
    for n, gap in enumerate(gaps):
        nominal = 5000 * 2**n
        assert 0.8 * nominal <= gap <= 1.2 * nominal
    assert all(b > a for a, b in zip(gaps, gaps[1:], strict=False))
    capped = next_attempt_ms(40, created, now, base_s=5, max_age_s=10**9, rand=rand)
    assert capped is not None and capped - now <= MAX_DELAY_S * 1.2 * 1000
    # the next try would land past created + max age: dead-lettered
    assert next_attempt_ms(1, created, created + 9_000, base_s=5, max_age_s=10) is None


def test_over_duration_ids_are_fixed_per_subscription_and_job() -> None:
    assert over_duration_msg_id("w1", "j1") == over_duration_msg_id("w1", "j1")
    assert over_duration_msg_id("w1", "j1") != over_duration_msg_id("w1", "j2")
    assert over_duration_msg_id("w1", "j1") != over_duration_msg_id("w2", "j1")
    assert len(over_duration_msg_id("w", "j")) <= 80
