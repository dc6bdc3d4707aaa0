"""The SDK-HMAC-SHA256 signature: contract test vectors, round trips, refusals, the real SDK."""

from __future__ import annotations

import hashlib
import importlib
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

import pytest

from mrs_jobs.api.signing import (
    ParsedAuth,
    SignatureError,
    canonical_query,
    canonical_request,
    canonical_uri,
    compute_signature,
    parse_authorization,
    parse_sdk_date,
    sign_headers,
    string_to_sign,
    verify,
)

AK = "EXAMPLEAK1234567890"
SK = "EXAMPLESKabcdefghijklmnopqrstuvwxyz0123"
DATE = "20250101T120000Z"
NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
PROJECT = "0123456789abcdef0123456789abcdef"
BASE = f"/v2/{PROJECT}/clusters/cluster-1/job-executions"
SIGNED = ["content-type", "host", "user-agent", "x-project-id", "x-sdk-date"]
SUBMIT_BODY = (
    b'{"job_type": "SparkSubmit", "job_name": "demo", '
    b'"arguments": ["/opt/jobs/pi.py", "10"], "properties": {}}'
)
EMPTY_HASH = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def vector_headers() -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Host": "127.0.0.1:8080",
        "User-Agent": "huaweicloud-usdk-python/3.0; myapp/1.0",
        "X-Project-Id": PROJECT,
        "X-Sdk-Date": DATE,
    }


def lookup(ak: str) -> str | None:
    return SK if ak == AK else None


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def signed_request(
    method: str = "GET",
    path: str = BASE,
    query: str = "",
    body: bytes = b"",
    date: str = DATE,
) -> dict[str, str]:
    headers = {k: v for k, v in vector_headers().items() if k != "X-Sdk-Date"}
    headers.update(
        sign_headers(
            ak=AK,
            sk=SK,
            method=method,
            url_path=path,
            raw_query=query,
            headers=headers,
            body=body,
            sdk_date=date,
        )
    )
    return headers


def check(
    headers: dict[str, str],
    method: str = "GET",
    path: str = BASE,
    query: str = "",
    body: bytes = b"",
    now: datetime = NOW,
) -> str:
    return verify(
        method=method,
        raw_path=path,
        raw_query=query,
        headers=headers,
        body=body,
        secret_lookup=lookup,
        now=now,
    )


# --- contract test vectors -------------------------------------------------------------


def test_vector_get_list() -> None:
    query = "job_name=demo%20job&limit=2&offset=0&sort_by=asc"
    canonical = canonical_request("GET", BASE, query, vector_headers(), SIGNED, b"")
    assert sha(canonical) == "6fe3559da41dcdb413672629a65092fb32cc3a18c5f59242ccc619d43da4fa27"
    assert canonical.endswith("\n" + EMPTY_HASH)
    assert (
        compute_signature(SK, DATE, canonical)
        == "c3264943b409b1b703a31200b4147d1fdf126752725ded37e969a3ab88124228"
    )


def test_vector_post_submit() -> None:
    assert (
        hashlib.sha256(SUBMIT_BODY).hexdigest()
        == "fe157a2c147c806abf649f9378124a80a25269518e91bf4e9666b4b48e935093"
    )
    canonical = canonical_request("POST", BASE, "", vector_headers(), SIGNED, SUBMIT_BODY)
    assert sha(canonical) == "54e57cc9a23ff20edff1c0f5f21198eb1d6cc2329f61b1e12267d0b1110ac437"
    assert (
        compute_signature(SK, DATE, canonical)
        == "5ae87cb197b5ec2cf5f42cfb9c4bf49996bee9796627731f8cb63cb268d06a99"
    )


def test_vector_post_kill_without_body() -> None:
    path = f"{BASE}/6b1c0d9e-0000-4000-8000-000000000001/kill"
    canonical = canonical_request("POST", path, "", vector_headers(), SIGNED, b"")
    assert (
        compute_signature(SK, DATE, canonical)
        == "ae8e778e0ee00e61793a621c425654ce118f85100d4e323ed9a4b57513f24203"
    )


def test_vectors_through_sign_headers_and_verify() -> None:
    headers = signed_request("POST", BASE, "", SUBMIT_BODY)
    assert headers["X-Sdk-Date"] == DATE
    assert headers["Authorization"] == (
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders={';'.join(SIGNED)}, "
        "Signature=5ae87cb197b5ec2cf5f42cfb9c4bf49996bee9796627731f8cb63cb268d06a99"
    )
    assert check(headers, "POST", BASE, "", SUBMIT_BODY) == AK


def test_canonical_request_layout() -> None:
    canonical = canonical_request("get", BASE, "b=2&a=1", vector_headers(), SIGNED, b"")
    assert canonical.split("\n") == [
        "GET",
        BASE + "/",
        "a=1&b=2",
        "content-type:application/json",
        "host:127.0.0.1:8080",
        "user-agent:huaweicloud-usdk-python/3.0; myapp/1.0",
        f"x-project-id:{PROJECT}",
        f"x-sdk-date:{DATE}",
        "",
        ";".join(SIGNED),
        EMPTY_HASH,
    ]
    assert string_to_sign(DATE, canonical) == f"SDK-HMAC-SHA256\n{DATE}\n{sha(canonical)}"


# --- canonical forms ---------------------------------------------------------------------


def test_canonical_uri() -> None:
    assert canonical_uri("/v2/p/clusters/c") == "/v2/p/clusters/c/"
    assert canonical_uri("/v2/p/") == "/v2/p/"
    assert canonical_uri("") == "/"
    assert canonical_uri("/a%20b/c~d_e.f-g") == "/a%20b/c~d_e.f-g/"
    assert canonical_uri("/a b/x:y@z") == "/a%20b/x%3Ay%40z/"
    assert canonical_uri("/%e4%b8%ad") == "/%E4%B8%AD/"
    assert canonical_uri("/a%252F") == "/a%252F/"


def test_canonical_uri_encoded_slash_in_id_segment() -> None:
    # The SDK quotes ids with safe="" and then signs the decoded path, so %2F splits.
    raw = f"{BASE}/job%2Fwith%2Fslash/kill"
    assert canonical_uri(raw) == f"{BASE}/job/with/slash/kill/"
    headers = signed_request("POST", raw)
    assert check(headers, "POST", raw) == AK


def test_canonical_query_repeated_keys_and_spaces() -> None:
    raw = "tag=b%20x&tag=a&name=demo+job&z&empty=&k%20ey=v%2Bw"
    assert canonical_query(raw) == ("empty=&k%20ey=v%2Bw&name=demo%20job&tag=a&tag=b%20x&z=")
    assert canonical_query("") == ""
    assert canonical_query("a=1&&b=2") == "a=1&b=2"
    assert canonical_query("q=%7E%21%2a") == "q=~%21%2A"
    headers = signed_request("GET", BASE, raw)
    assert check(headers, "GET", BASE, "tag=a&empty&k+ey=v%2bw&z=&name=demo%20job&tag=b+x") == AK


def test_header_names_case_insensitive_and_values_trimmed() -> None:
    lower = {k.lower(): f"  {v}\t" for k, v in vector_headers().items()}
    assert canonical_request("GET", BASE, "", lower, SIGNED, b"") == canonical_request(
        "GET", BASE, "", vector_headers(), SIGNED, b""
    )


def test_missing_signed_header_is_refused() -> None:
    headers = vector_headers()
    del headers["User-Agent"]
    with pytest.raises(SignatureError, match="user-agent"):
        canonical_request("GET", BASE, "", headers, SIGNED, b"")


def test_parse_sdk_date() -> None:
    assert parse_sdk_date(DATE) == NOW
    for bad in [
        "",
        "2025-01-01T12:00:00Z",
        "20250101T120000",
        "20251301T120000Z",
        "20250101T250000Z",
        " 20250101T120000Z",
        "２０２５0101T120000Z",
    ]:
        with pytest.raises(SignatureError):
            parse_sdk_date(bad)


# --- round trips and refusals --------------------------------------------------------------


def test_round_trip() -> None:
    query = "limit=10&offset=0"
    headers = signed_request("GET", BASE, query)
    assert check(headers, "GET", BASE, query) == AK


def test_sign_headers_defaults_to_now_and_replaces_old_date() -> None:
    headers = vector_headers()
    headers["x-sdk-date"] = "19990101T000000Z"
    added = sign_headers(
        ak=AK, sk=SK, method="GET", url_path=BASE, raw_query="", headers=headers, body=b""
    )
    del headers["x-sdk-date"]
    headers.update(added)
    assert check(headers, now=datetime.now(UTC)) == AK


def test_sign_headers_signs_only_present_headers() -> None:
    added = sign_headers(
        ak=AK,
        sk=SK,
        method="GET",
        url_path=BASE,
        raw_query="",
        headers={"Host": "localhost:1", "X-Other": "x"},
        body=b"",
        sdk_date=DATE,
    )
    assert "SignedHeaders=host;x-sdk-date," in added["Authorization"]
    assert check({"Host": "localhost:1", **added}) == AK


@pytest.mark.parametrize(
    "change",
    [
        {"body": b'{"job_type": "SparkSubmit"}'},
        {"path": f"{BASE}/other"},
        {"query": "limit=11&offset=0"},
        {"method": "PUT"},
    ],
)
def test_tampered_request_is_refused(change: dict[str, object]) -> None:
    original: dict[str, object] = {
        "method": "POST",
        "path": BASE,
        "query": "limit=10&offset=0",
        "body": SUBMIT_BODY,
    }
    headers = signed_request(**original)  # type: ignore[arg-type]
    assert check(headers, **original) == AK  # type: ignore[arg-type]
    with pytest.raises(SignatureError, match="signature mismatch"):
        check(headers, **{**original, **change})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Host", "127.0.0.1:9090"),
        ("User-Agent", "evil/1.0"),
        ("X-Project-Id", "f" * 32),
        ("Content-Type", "text/plain"),
    ],
)
def test_tampered_header_is_refused(name: str, value: str) -> None:
    headers = signed_request()
    headers[name] = value
    with pytest.raises(SignatureError, match="signature mismatch"):
        check(headers)


def test_tampered_date_is_refused() -> None:
    headers = signed_request()
    headers["X-Sdk-Date"] = "20250101T120001Z"
    with pytest.raises(SignatureError, match="signature mismatch"):
        check(headers)


def test_unsigned_extra_header_is_ignored() -> None:
    headers = signed_request()
    headers["X-Request-Id"] = "anything"
    assert check(headers) == AK


def test_wrong_sk_is_refused() -> None:
    headers = {k: v for k, v in vector_headers().items() if k != "X-Sdk-Date"}
    headers.update(
        sign_headers(
            ak=AK,
            sk=SK + "x",
            method="GET",
            url_path=BASE,
            raw_query="",
            headers=headers,
            body=b"",
            sdk_date=DATE,
        )
    )
    with pytest.raises(SignatureError, match="signature mismatch"):
        check(headers)


def test_unknown_ak_is_refused() -> None:
    headers = {k: v for k, v in vector_headers().items() if k != "X-Sdk-Date"}
    headers.update(
        sign_headers(
            ak="OTHERAK",
            sk=SK,
            method="GET",
            url_path=BASE,
            raw_query="",
            headers=headers,
            body=b"",
            sdk_date=DATE,
        )
    )
    with pytest.raises(SignatureError, match="unknown access key"):
        check(headers)


@pytest.mark.parametrize("seconds", [14 * 60 + 59, 900, -900, -(14 * 60)])
def test_skew_within_window_is_accepted(seconds: int) -> None:
    assert check(signed_request(), now=NOW + timedelta(seconds=seconds)) == AK


@pytest.mark.parametrize("seconds", [901, 16 * 60, -901, -3600 * 24])
def test_skew_beyond_window_is_refused(seconds: int) -> None:
    with pytest.raises(SignatureError, match="outside the allowed window"):
        check(signed_request(), now=NOW + timedelta(seconds=seconds))


def test_naive_now_is_taken_as_utc() -> None:
    assert check(signed_request(), now=NOW.replace(tzinfo=None)) == AK


def test_missing_authorization() -> None:
    headers = signed_request()
    del headers["Authorization"]
    with pytest.raises(SignatureError, match="missing Authorization"):
        check(headers)


def test_missing_or_bad_date_header() -> None:
    headers = signed_request()
    del headers["X-Sdk-Date"]
    with pytest.raises(SignatureError, match="missing X-Sdk-Date"):
        check(headers)
    headers["X-Sdk-Date"] = "2025-01-01T12:00:00Z"
    with pytest.raises(SignatureError, match="malformed X-Sdk-Date"):
        check(headers)


def test_date_must_be_signed() -> None:
    headers = signed_request()
    headers["Authorization"] = headers["Authorization"].replace(
        "x-project-id;x-sdk-date", "x-project-id"
    )
    with pytest.raises(SignatureError, match="x-sdk-date is not signed"):
        check(headers)


def test_conflicting_duplicate_signed_header_is_refused() -> None:
    headers = signed_request()
    headers["host"] = "other:1"
    with pytest.raises(SignatureError, match="conflicting"):
        check(headers)


# --- Authorization header parsing ----------------------------------------------------------

GOOD_SIG = "ab" * 32


def test_parse_authorization() -> None:
    parsed = parse_authorization(
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host;x-sdk-date, Signature={GOOD_SIG}"
    )
    assert parsed == ParsedAuth(AK, ["host", "x-sdk-date"], GOOD_SIG)
    tight = parse_authorization(
        f"SDK-HMAC-SHA256 Access={AK},SignedHeaders=host,Signature={GOOD_SIG.upper()}"
    )
    assert tight.signature == GOOD_SIG


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "SDK-HMAC-SHA256",
        f"SDK-HMAC-SM3 Access={AK}, SignedHeaders=host, Signature={GOOD_SIG}",
        f"Bearer {GOOD_SIG}",
        f"sdk-hmac-sha256 Access={AK}, SignedHeaders=host, Signature={GOOD_SIG}",
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host",
        f"SDK-HMAC-SHA256 Access=, SignedHeaders=host, Signature={GOOD_SIG}",
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=, Signature={GOOD_SIG}",
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host;;date, Signature={GOOD_SIG}",
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=Host, Signature={GOOD_SIG}",
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host;host, Signature={GOOD_SIG}",
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host, Signature=xyz",
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host, Signature={GOOD_SIG}0",
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host, Signature={'é' * 64}",
        f"SDK-HMAC-SHA256 Access={AK}, Access={AK}, SignedHeaders=host, Signature={GOOD_SIG}",
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host, Signature={GOOD_SIG}, Extra=1",
        f"SDK-HMAC-SHA256 Access={AK} SignedHeaders=host Signature={GOOD_SIG}",
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host, Signature={GOOD_SIG},",
    ],
)
def test_malformed_authorization(value: str) -> None:
    with pytest.raises(SignatureError):
        parse_authorization(value)
    headers = signed_request()
    headers["Authorization"] = value
    with pytest.raises(SignatureError):
        check(headers)


# --- the official SDK's signer -------------------------------------------------------------


def _server_view(request: object) -> tuple[str, str, dict[str, str]]:
    """What an ASGI server would hand to ``verify`` for a request the SDK signed."""
    parts = urlsplit(request.url)  # type: ignore[attr-defined]
    # The SDK sends header text as UTF-8 bytes (it stores them latin-1-decoded); a server
    # reads bytes and must hand verify the UTF-8 text.
    headers = {
        k: v.encode("latin-1").decode("utf-8")
        for k, v in request.header_params.items()  # type: ignore[attr-defined]
    }
    return parts.path, parts.query, headers


def test_official_sdk_signer_is_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    sdk_request = importlib.import_module("huaweicloudsdkcore.sdk_request")
    sdk_signer = importlib.import_module("huaweicloudsdkcore.signer.signer")
    sdk_credentials = importlib.import_module("huaweicloudsdkcore.auth.credentials")

    credentials = sdk_credentials.BasicCredentials(AK, SK, PROJECT)
    job_id = "weird/id é"
    ua = "huaweicloud-usdk-python/3.0; myapp/1.0 ünïcode"
    cases = [
        (
            "GET",
            BASE,
            [("job_name", "demo job+x"), ("limit", 2), ("tag", ["b", "a b"]), ("flag", True)],
            None,
        ),
        (
            "POST",
            BASE,
            [],
            json.dumps(
                {
                    "job_type": "SparkSubmit",
                    "job_name": "démo",
                    "arguments": ["/opt/jobs/pi.py", "10"],
                    "properties": {},
                }
            ),
        ),
        ("POST", f"{BASE}/{quote(job_id, safe='')}/kill", [], None),
    ]
    for method, path, query_params, body in cases:
        request = sdk_request.SdkRequest(
            method=method,
            schema="http",
            host="127.0.0.1:8080",
            resource_path=path,
            query_params=query_params,
            header_params={
                "Content-Type": "application/json",
                "User-Agent": ua,
                "X-Project-Id": PROJECT,
            },
            body=body,
        )
        signed = sdk_signer.Signer(credentials).sign(request)
        raw_path, raw_query, headers = _server_view(signed)
        assert (
            "SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-date,"
            in (headers["Authorization"])
        )
        raw_body = signed.body or b""
        assert isinstance(raw_body, bytes)
        got = verify(
            method=method,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            body=raw_body,
            secret_lookup=lookup,
            now=datetime.now(UTC),
        )
        assert got == AK
        with pytest.raises(SignatureError, match="signature mismatch"):
            verify(
                method=method,
                raw_path=raw_path,
                raw_query=raw_query,
                headers=headers,
                body=raw_body + b" ",
                secret_lookup=lookup,
                now=datetime.now(UTC),
            )

    # And through the credentials object the SDK client really uses (adds X-Project-Id).
    request = sdk_request.SdkRequest(
        method="GET",
        schema="http",
        host="127.0.0.1:8080",
        resource_path=BASE,
        query_params=[("limit", 10), ("offset", 0)],
        header_params={"Content-Type": "application/json", "User-Agent": ua},
        body=None,
    )
    signed = credentials.sign_request(request)
    raw_path, raw_query, headers = _server_view(signed)
    assert headers["X-Project-Id"] == PROJECT
    assert (
        verify(
            method="GET",
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            body=b"",
            secret_lookup=lookup,
            now=datetime.now(UTC),
        )
        == AK
    )
