"""Credential lifecycle and SKs sealed at rest (issue 8; secretbox.py, cli/admin.py).

SKs are stored as AES-256-GCM sealed values under a key that never enters the database; the
admin commands list, disable, enable, rotate and delete credentials, and each change shows in
authentication at once (401 APIGW.0301).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from api_helpers import assert_error, client_for
from pydantic import SecretStr
from sqlalchemy import select
from support import SigV4Auth
from support_server import BIN

from mrs_jobs.api.credcache import CredentialCache
from mrs_jobs.secretbox import SecretBox, SecretKeyError, generate_key, key_id, load_secret_box
from mrs_jobs.services.authn import Authenticator
from mrs_jobs.services.credentials import CredentialService
from mrs_jobs.services.projects import ProjectService
from mrs_jobs.services.sealed_keys import check_secrets, reencrypt_secrets
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store.tables import credentials
from mrs_jobs.store.tenants import set_credential_expiry

OK = 202  # MRS answers a job list with 202


def _key() -> bytes:
    return base64.b64decode(generate_key())


# -- the box -------------------------------------------------------------------------------
def test_seal_round_trip_with_random_nonce() -> None:
    key = _key()
    box = SecretBox(key)
    a = box.seal("the-secret", aad="AK1")
    b = box.seal("the-secret", aad="AK1")
    assert a != b  # a fresh nonce per value
    assert a.startswith(f"v1:{key_id(key)}:") and "the-secret" not in a
    assert box.open(a, aad="AK1") == box.open(b, aad="AK1") == "the-secret"
    assert not box.needs_reseal(a)


def test_tampered_or_moved_values_do_not_open() -> None:
    box = SecretBox(_key())
    sealed = box.seal("the-secret", aad="AK1")
    prefix, body = sealed.rsplit(":", 1)
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1
    tampered = f"{prefix}:{base64.b64encode(bytes(raw)).decode()}"
    with pytest.raises(SecretKeyError, match="altered"):
        box.open(tampered, aad="AK1")
    with pytest.raises(SecretKeyError, match="altered"):
        box.open(sealed, aad="AK2")  # copied onto another AK's row
    with pytest.raises(SecretKeyError, match="plain text"):
        box.open("the-secret", aad="AK1")
    with pytest.raises(SecretKeyError, match="bad base64"):
        box.open(f"{prefix}:!!!", aad="AK1")


def test_wrong_key_names_both_key_ids_and_old_keys_still_open() -> None:
    old, new = _key(), _key()
    sealed = SecretBox(old).seal("s", aad="A")
    with pytest.raises(SecretKeyError) as info:
        SecretBox(new).open(sealed, aad="A")
    assert key_id(old) in str(info.value) and key_id(new) in str(info.value)
    assert "MRS_JOBS_OLD_SECRET_KEY_FILES" in str(info.value)
    rotated = SecretBox(new, [old])
    assert rotated.open(sealed, aad="A") == "s"
    assert rotated.needs_reseal(sealed)
    assert not rotated.needs_reseal(rotated.seal("s", aad="A"))


# -- key sources ---------------------------------------------------------------------------
def test_default_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    box = load_secret_box(settings)
    path = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.b64decode(path.read_text().strip())) == 32
    assert load_secret_box(settings).key_id == box.key_id
    with pytest.raises(SecretKeyError, match="does not exist"):
        load_secret_box(Settings(data_dir=tmp_path / "other"), create=False)


def test_key_from_setting_wins_and_bad_keys_are_clear_errors(tmp_path: Path) -> None:
    key = generate_key()
    s = Settings(data_dir=tmp_path, secret_key=SecretStr(key))
    assert load_secret_box(s).key_id == key_id(base64.b64decode(key))
    assert not (tmp_path / "secret.key").exists()
    with pytest.raises(SecretKeyError, match="MRS_JOBS_SECRET_KEY is not valid base64"):
        load_secret_box(Settings(data_dir=tmp_path, secret_key=SecretStr("not base64!")))
    short = base64.b64encode(b"x" * 16).decode()
    with pytest.raises(SecretKeyError, match="16 bytes; it must be base64 of 32"):
        load_secret_box(Settings(data_dir=tmp_path, secret_key=SecretStr(short)))
    with pytest.raises(SecretKeyError, match="does not exist"):
        load_secret_box(Settings(data_dir=tmp_path, secret_key_file=tmp_path / "nope.key"))
    bad = tmp_path / "bad.key"
    bad.write_text("garbage")
    with pytest.raises(SecretKeyError, match="bad.key is not valid base64"):
        load_secret_box(Settings(data_dir=tmp_path, secret_key_file=bad))


# -- at rest -------------------------------------------------------------------------------
def test_sk_is_not_stored_in_plain_text(store: Store, tmp_path: Path) -> None:
    box = SecretBox(_key())
    creds = CredentialService(store, box)
    pid = ProjectService(store).create_project("p")
    issued = creds.issue_aksk(pid, "alice")
    with store.read() as conn:
        row = conn.execute(select(credentials).where(credentials.c.id == issued.id)).one()
    assert row.secret_key.startswith("v1:")
    assert all(issued.sk not in str(v) for v in row), row
    if store.url.startswith("sqlite"):
        db = Path(store.url.removeprefix("sqlite:///"))
        blobs = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
        assert issued.ak.encode() in blobs  # the scan does see this row's data
        assert issued.sk.encode() not in blobs
    cred = Authenticator(store, box).credential_for_ak(issued.ak)
    assert cred is not None and cred.secret_key == issued.sk
    assert issued.sk not in repr(cred)
    listed = creds.list_credentials(pid)
    assert [c.id for c in listed] == [issued.id] and listed[0].secret_key is None


def test_wrong_key_is_refused_and_reported(store: Store) -> None:
    right, wrong = SecretBox(_key()), SecretBox(_key())
    pid = ProjectService(store).create_project("p")
    ak, _sk = CredentialService(store, right).create_aksk(pid)
    assert check_secrets(store, right) == 1
    assert Authenticator(store, wrong).credential_for_ak(ak) is None  # refused, not opened
    with pytest.raises(SecretKeyError, match="configured key is"):
        check_secrets(store, wrong)
    with pytest.raises(SecretKeyError, match="no secret key"):
        CredentialService(store).create_aksk(pid)


def test_reencrypt_moves_values_to_the_current_key(store: Store) -> None:
    old, new = _key(), _key()
    pid = ProjectService(store).create_project("p")
    ak, sk = CredentialService(store, SecretBox(old)).create_aksk(pid)
    rotated = SecretBox(new, [old])
    assert reencrypt_secrets(store, rotated) == 1
    assert reencrypt_secrets(store, rotated) == 0
    only_new = SecretBox(new)
    check_secrets(store, only_new)
    cred = Authenticator(store, only_new).credential_for_ak(ak)
    assert cred is not None and cred.secret_key == sk


def test_server_refuses_to_start_with_the_wrong_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "MRS_JOBS_DATA_DIR": str(data)}
    run = subprocess.run  # noqa: S603 - our own binary
    pid = run(
        [str(BIN), "admin", "create-project", "p"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    run(
        [str(BIN), "admin", "create-aksk", pid],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    r = run(
        [str(BIN), "serve"],
        env={
            **env,
            "MRS_JOBS_PORT": "0",
            "MRS_JOBS_SECRET_KEY": generate_key(),
            "MRS_JOBS_RUN_SUPERVISOR": "false",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0
    assert "secret key" in r.stderr and "configured key is" in r.stderr, r.stderr


# -- lifecycle through the admin commands --------------------------------------------------
def _admin(api: Any, settings: Settings, *args: str) -> str:
    env = {
        **os.environ,
        "MRS_JOBS_DATA_DIR": str(settings.data_dir),
        "MRS_JOBS_DATABASE_URL": api.store.url,
    }
    r = subprocess.run(  # noqa: S603 - our own binary
        [str(BIN), "admin", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def _status(api: Any, ak: str, sk: str) -> int:
    r = client_for(api.client.app, SigV4Auth(ak, sk, api.project_id)).get(api.base)
    if r.status_code == 401:
        assert_error(r, 401, "APIGW.0301")
    return r.status_code


def test_aksk_lifecycle_through_admin_commands(api: Any, settings: Settings) -> None:
    # Each change shows at once without the credential cache (a cached credential follows
    # within its TTL_SECONDS: tests/api/test_api_credcache.py).
    api.client.app.state.credential_cache = CredentialCache(ttl=0)
    first = json.loads(_admin(api, settings, "create-aksk", api.project_id, "--user", "alice"))
    assert set(first) == {"id", "project_id", "user", "ak", "sk"}
    assert _status(api, first["ak"], first["sk"]) == OK

    listed = _admin(api, settings, "list-credentials", "--project", api.project_id, "--json")
    rows = {row["id"]: row for row in map(json.loads, listed.splitlines())}
    assert rows[first["id"]] == {
        "id": first["id"],
        "project_id": api.project_id,
        "kind": "aksk",
        "user": "alice",
        "ak": first["ak"],
        "created": rows[first["id"]]["created"],
        "expires": "-",
        "disabled": False,
        "policy": "MRS FullAccess",
    }
    table = _admin(api, settings, "list-credentials")
    assert first["id"] in table and first["ak"] in table
    assert first["sk"] not in listed + table and api.sk not in listed + table

    _admin(api, settings, "disable-credential", first["id"])
    assert _status(api, first["ak"], first["sk"]) == 401
    _admin(api, settings, "enable-credential", first["id"])
    assert _status(api, first["ak"], first["sk"]) == OK

    second = json.loads(_admin(api, settings, "rotate-aksk", first["id"]))
    assert second["replaces"] == first["id"] and second["ak"] != first["ak"]
    assert second["user"] == "alice" and second["project_id"] == api.project_id
    assert _status(api, second["ak"], second["sk"]) == OK
    assert _status(api, first["ak"], first["sk"]) == OK  # still valid until disabled
    _admin(api, settings, "disable-credential", first["id"])
    assert _status(api, first["ak"], first["sk"]) == 401
    assert _status(api, second["ak"], second["sk"]) == OK

    _admin(api, settings, "delete-credential", second["id"])
    assert _status(api, second["ak"], second["sk"]) == 401
    listed = _admin(api, settings, "list-credentials", "--json")
    assert second["id"] not in listed
    assert _status(api, api.ak, api.sk) == OK  # the bootstrap pair is untouched


def test_rotate_with_grace_expires_the_old_pair(api: Any, settings: Settings) -> None:
    api.client.app.state.credential_cache = CredentialCache(ttl=0)
    first = json.loads(_admin(api, settings, "create-aksk", api.project_id))
    second = json.loads(_admin(api, settings, "rotate-aksk", first["id"], "--grace", "3600"))
    row = json.loads(
        next(
            line
            for line in _admin(api, settings, "list-credentials", "--json").splitlines()
            if first["id"] in line
        )
    )
    assert row["expires"] != "-"
    assert _status(api, first["ak"], first["sk"]) == OK  # inside the grace period
    with api.store.write() as conn:
        set_credential_expiry(conn, first["id"], 1)
    assert _status(api, first["ak"], first["sk"]) == 401
    assert _status(api, second["ak"], second["sk"]) == OK


def test_unknown_ids_are_clear_errors(api: Any, settings: Settings) -> None:
    env = {
        **os.environ,
        "MRS_JOBS_DATA_DIR": str(settings.data_dir),
        "MRS_JOBS_DATABASE_URL": api.store.url,
    }
    for cmd in ("disable-credential", "enable-credential", "delete-credential", "rotate-aksk"):
        r = subprocess.run(  # noqa: S603 - our own binary
            [str(BIN), "admin", cmd, "no-such-id"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2 and "does not exist" in r.stderr, (cmd, r.stderr)


def test_token_lifecycle_and_expiry(api: Any, settings: Settings) -> None:
    # Each change shows at once without the credential cache (a cached token's credential
    # follows within its TTL_SECONDS: tests/api/test_api_credcache.py).
    api.client.app.state.credential_cache = CredentialCache(ttl=0)
    token = _admin(api, settings, "create-token", api.project_id, "--ttl", "600").strip()
    bearer = client_for(api.client.app)

    def status() -> int:
        r = bearer.get(api.base, headers={"X-Auth-Token": token})
        if r.status_code == 401:
            assert_error(r, 401, "APIGW.0301")
        return r.status_code

    assert status() == OK
    rows = [json.loads(x) for x in _admin(api, settings, "list-tokens", "--json").splitlines()]
    assert [r["kind"] for r in rows] == ["token"] and rows[0]["expires"] != "-"
    assert token not in json.dumps(rows)
    tid = rows[0]["id"]
    _admin(api, settings, "disable-credential", tid)
    assert status() == 401
    _admin(api, settings, "enable-credential", tid)
    assert status() == OK
    with api.store.write() as conn:
        set_credential_expiry(conn, tid, 1)  # long past
    assert status() == 401
    _admin(api, settings, "delete-credential", tid)
    assert status() == 401
    assert _admin(api, settings, "list-tokens", "--json").strip() == ""
