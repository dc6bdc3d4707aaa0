"""`mrs-jobs admin` and policies: create-aksk/create-token --policy, set-policy, show-credential,
the policy column of list-credentials, and audit's permission/decision (the real CLI, a real
data dir)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support_server import BIN

from mrs_jobs.domain.policies import ACTIONS, OWNER_ACTIONS
from mrs_jobs.services.credentials import hash_token
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store.audit import record_audit
from mrs_jobs.store.tables import credentials as credentials_table
from mrs_jobs.store.tenants import Credential, add_project, list_credentials

PROJECT = "p1"
CUSTOM = {
    "Version": "1.1",
    "Statement": [
        {"Effect": "Allow", "Action": ["mrs:job:*", "mrs:cluster:get"]},
        {"Effect": "Deny", "Action": ["mrs:job:batchDelete"]},
    ],
}


class Data:
    """A migrated data dir with one project; ``admin`` runs the installed console script."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store = Store(Settings(data_dir=path).effective_database_url)
        self.store.migrate()
        with self.store.write() as conn:
            add_project(conn, PROJECT, "p", 0)

    def start(self, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "MRS_JOBS_DATA_DIR": str(self.path)}
        env.pop("MRS_JOBS_DATABASE_URL", None)
        return subprocess.Popen(
            [str(BIN), "admin", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def admin(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = self.start(*args)
        stdout, stderr = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    def ok(self, *args: str) -> str:
        out = self.admin(*args)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def credentials(self) -> dict[str, Credential]:
        with self.store.read() as conn:
            return {c.id: c for c in list_credentials(conn)}


@pytest.fixture
def data(tmp_path):
    d = Data(tmp_path / "data")
    yield d
    d.store.dispose()


def _listed(data: Data) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, data.ok("list-credentials", "--json").splitlines())}


def test_create_with_a_policy_stores_it_and_lists_it(data, tmp_path) -> None:
    issued = json.loads(data.ok("create-aksk", PROJECT, "--policy", "ReadOnlyAccess"))
    token = data.ok("create-token", PROJECT, "--user", "ci", "--policy", "mrs commonoperations")
    default = json.loads(data.ok("create-aksk", PROJECT))
    doc = tmp_path / "jobs-only.json"
    doc.write_text(json.dumps(CUSTOM, indent=2))
    custom = json.loads(data.ok("create-aksk", PROJECT, "--policy", f"@{doc}"))

    stored = data.credentials()
    token_id = next(c.id for c in stored.values() if c.kind == "token")
    assert stored[issued["id"]].policy == "MRS ReadOnlyAccess"
    assert stored[token_id].policy == "MRS CommonOperations"
    assert stored[default["id"]].policy == "MRS FullAccess"
    assert json.loads(stored[custom["id"]].policy) == CUSTOM

    listed = _listed(data)
    assert {k: v["policy"] for k, v in listed.items()} == {
        issued["id"]: "MRS ReadOnlyAccess",
        token_id: "MRS CommonOperations",
        default["id"]: "MRS FullAccess",
        custom["id"]: "custom",
    }
    table = data.ok("list-credentials").splitlines()
    assert table[0].split()[-1] == "policy"
    row = next(line for line in table if line.startswith(issued["id"]))
    assert row.endswith("MRS ReadOnlyAccess")
    assert token.strip() not in "\n".join(table)


BAD_POLICIES = {
    "unknown name": ["create-aksk", PROJECT, "--policy", "SuperAccess"],
    "token, unknown name": ["create-token", PROJECT, "--policy", "FullAccess2"],
    "no statements": ["create-aksk", PROJECT, "--policy", '{"Version": "1.1", "Statement": []}'],
    "resource": [
        "create-token",
        PROJECT,
        "--policy",
        '{"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": "mrs:*:*",'
        ' "Resource": "*"}]}',
    ],
    "no file": ["create-aksk", PROJECT, "--policy", "@/nonexistent/policy.json"],
}


def test_a_bad_policy_is_refused_and_creates_nothing(data) -> None:
    running = {case: data.start(*command) for case, command in BAD_POLICIES.items()}  # at once
    for case, proc in running.items():
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode != 0, case
        assert stderr.startswith("error: ") and "Traceback" not in stderr, (case, stderr)
        assert "policy" in stderr.lower(), (case, stderr)
        assert stdout == "", case
    assert data.credentials() == {}


def test_set_policy_changes_it_and_show_credential_shows_it(data, tmp_path) -> None:
    token = data.ok("create-token", PROJECT, "--user", "dash").strip()
    (cid,) = data.credentials()

    assert data.ok("set-policy", cid, "ReadOnlyAccess").strip() == "MRS ReadOnlyAccess"
    assert data.credentials()[cid].policy == "MRS ReadOnlyAccess"

    shown = json.loads(data.ok("show-credential", cid, "--json"))
    assert token not in json.dumps(shown) and hash_token(token) not in json.dumps(shown)
    assert shown["policy"]["name"] == "MRS ReadOnlyAccess"
    assert shown["policy"]["document"]["Statement"][0]["Action"] == ["mrs:*:get*", "mrs:*:list*"]
    assert set(shown["actions"]) == {*ACTIONS, *OWNER_ACTIONS}
    assert shown["actions"]["mrs:job:list"] is True
    assert shown["actions"]["mrs:job:submit"] is False
    assert (shown["id"], shown["project_id"], shown["kind"], shown["user"]) == (
        cid,
        PROJECT,
        "token",
        "dash",
    )

    doc = tmp_path / "p.json"
    doc.write_text(json.dumps(CUSTOM))
    assert data.ok("set-policy", cid, f"@{doc}").strip() == "custom"
    assert json.loads(data.credentials()[cid].policy) == CUSTOM

    # a bad one changes nothing; an unknown id is an error
    bad = data.admin("set-policy", cid, '{"Version": "2012-10-17", "Statement": []}')
    assert bad.returncode != 0 and "Version" in bad.stderr
    assert json.loads(data.credentials()[cid].policy) == CUSTOM
    missing = data.admin("set-policy", "no-such-id", "ReadOnlyAccess")
    assert missing.returncode != 0 and "does not exist" in missing.stderr

    text = data.ok("show-credential", cid)
    assert token not in text and hash_token(token) not in text
    lines = text.splitlines()
    header = lines.index(next(line for line in lines if line.split() == ["action", "allowed"]))
    verdicts = dict(line.split() for line in lines[header + 1 :])
    assert verdicts == {
        **{a: "no" for a in (*ACTIONS, *OWNER_ACTIONS)},
        **{a: "yes" for a in ACTIONS if a.startswith("mrs:job:") and a != "mrs:job:batchDelete"},
        "mrs:job:stopAny": "yes",
        "mrs:job:deleteAny": "yes",
        "mrs:cluster:get": "yes",
    }
    assert "policy      custom" in text and '"mrs:job:batchDelete"' in text


def test_show_credential_never_prints_the_sk(data) -> None:
    issued = json.loads(data.ok("create-aksk", PROJECT, "--policy", "CommonOperations"))
    sealed = data.credentials()[issued["id"]].secret_key
    for args in (["show-credential", issued["id"]], ["show-credential", issued["id"], "--json"]):
        out = data.ok(*args)
        assert issued["sk"] not in out and sealed not in out
        assert issued["ak"] in out
    shown = json.loads(out)
    assert shown["actions"]["mrs:job:submit"] is True
    assert shown["actions"]["mrs:job:stopAny"] is False

    missing = data.admin("show-credential", "no-such-id")
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_a_stored_policy_that_no_longer_parses_shows_as_allowing_nothing(data) -> None:
    issued = json.loads(data.ok("create-aksk", PROJECT))
    with data.store.write() as conn:
        conn.execute(
            credentials_table.update()
            .where(credentials_table.c.id == issued["id"])
            .values(policy='{"Version": "1.0"}')
        )
    shown = json.loads(data.ok("show-credential", issued["id"], "--json"))
    assert shown["policy"] == {"name": "invalid", "stored": '{"Version": "1.0"}'}
    assert not any(shown["actions"].values())
    assert _listed(data)[issued["id"]]["policy"] == "invalid"


def test_audit_shows_permission_and_decision_and_filters_denials(data) -> None:
    with data.store.write() as conn:
        for i, (action, decision) in enumerate(
            [("submit", "allow"), ("mrs:job:submit", "deny"), ("kill", None)]
        ):
            record_audit(
                conn,
                at_ms=i,
                action=action,
                project_id=PROJECT,
                cluster_id=None,
                credential_id=None,
                request_id=f"r{i}",
                detail={},
                outcome="refused" if decision == "deny" else "ok",
                permission="mrs:job:submit" if decision else None,
                decision=decision,
            )
    rows = [json.loads(line) for line in data.ok("audit").splitlines()]
    assert [(r["request_id"], r["permission"], r["decision"]) for r in rows] == [
        ("r2", None, None),
        ("r1", "mrs:job:submit", "deny"),
        ("r0", "mrs:job:submit", "allow"),
    ]
    denied = [json.loads(line) for line in data.ok("audit", "--decision", "deny").splitlines()]
    assert [r["request_id"] for r in denied] == ["r1"] and denied[0]["detail"] == {}
    assert data.admin("audit", "--decision", "maybe").returncode != 0
