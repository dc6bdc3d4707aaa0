"""Issue 20's permission matrix on one real server: every API route × system and custom
policies × both kinds of credential (the cases: permission_cases.py).

Each route is called through the official SDK with the AK/SK of a credential holding the
policy where the SDK has the operation (v2 and v1 clients), signed with httpx where it has
not, and always also with an ``X-Auth-Token`` token holding the same policy. A route answers
``403`` ``APIGW.0302`` naming exactly its action when the policy denies that action (and
leaves a ``deny`` audit row under the request's id, and nothing changed), and anything but
403 when the policy allows it (an allowed submit, kill, delete or cancel does its change).

The route table is the app's own (its routes and their declared actions), so a new route
without a case fails :func:`test_every_route_of_the_app_has_a_case`. Jobs never reach an
engine: they sit in the queue of a cluster with no running slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mrs_acceptance import RunningServer, client_for
from permission_cases import (
    CASES,
    DENIED,
    KINDS,
    POLICIES,
    Ctx,
    app_route_actions,
    assert_changed,
    call,
    denial_rows,
    sdk1,
    sdk2,
    sdk_outcome,
    store_of,
    v1_client,
)

from mrs_jobs.domain.policies import ACTIONS, parse_policy
from mrs_jobs.store.audit import list_audit

# The v1 client's job calls are marked deprecated in the SDK; they are MRS's v1.1 API.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:huaweicloudsdkmrs")

# Known server defects, one matrix case each: {(policy, kind, case): reason} (none found).
DEFECTS: dict[tuple[str, str, str], str] = {}


@pytest.fixture(scope="module")
def ctx(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    roots = tmp_path_factory.mktemp("pm-roots")
    files_dir = roots / "listed"
    files_dir.mkdir()
    (files_dir / "one.txt").write_text("1")
    (roots / "in.txt").write_text("copied by v1.1 submits\n")
    held = server.admin(
        "create-cluster",
        server.project_id,
        *("--name", "held", "--max-running", "0", "--components", "Spark,Hive,Hadoop"),
        *("--input-root", str(roots), "--output-root", str(roots)),
    )
    store, credentials = store_of(server)
    with httpx.Client(base_url=server.endpoint, timeout=30) as http:
        c = Ctx(
            server=server,
            store=store,
            credentials=credentials,
            http=http,
            admin2=server.client(),
            held=held,
            files_dir=files_dir,
            job="",
            sql="",
        )
        c.job = c.queued_job("pm-shared")
        c.sql = c.queued_sql()
        try:
            yield c
        finally:
            store.dispose()


@pytest.fixture(scope="module")
def route_actions(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str | None]:
    return app_route_actions(tmp_path_factory.mktemp("pm-app"))


# -- tests ------------------------------------------------------------------------------------


def test_every_route_of_the_app_has_a_case(route_actions) -> None:  # type: ignore[no-untyped-def]
    assert len(route_actions) >= 21  # the walk sees the routes, or it proves nothing
    table = {(case.method, case.path) for case in CASES.values()}
    missing = sorted(f"{m} {p}" for m, p in set(route_actions) - table)
    assert not missing, f"routes without a case in the permission matrix: {missing}"
    stale = sorted(f"{m} {p}" for m, p in table - set(route_actions))
    assert not stale, f"cases for routes the app no longer has: {stale}"
    undeclared = sorted(f"{m} {p}" for (m, p), a in route_actions.items() if a not in ACTIONS)
    assert not undeclared, f"routes without a known action: {undeclared}"


def test_the_expectations_are_the_policy_engines() -> None:
    for key, (policy, allowed) in POLICIES.items():
        parsed = parse_policy(policy)
        assert {a for a in ACTIONS if parsed.allows(a)} == allowed, key


def _params() -> Iterator[Any]:
    for policy_key in POLICIES:
        for kind in KINDS:
            for name in CASES:
                marks = []
                reason = DEFECTS.get((policy_key, kind, name))
                if reason:
                    marks.append(pytest.mark.xfail(reason=reason, strict=True))
                yield pytest.param(
                    policy_key, kind, name, id=f"{policy_key}-{kind}-{name}", marks=marks
                )


@pytest.mark.parametrize(("policy_key", "kind", "name"), list(_params()))
def test_route_answers_403_exactly_when_its_action_is_denied(
    ctx: Ctx, route_actions, policy_key: str, kind: str, name: str
) -> None:  # type: ignore[no-untyped-def]
    case = CASES[name]
    action = route_actions.get((case.method, case.path))
    if action is None:
        pytest.fail(f"the app has no route {case.method} {case.path}")
    allowed = action in POLICIES[policy_key][1]
    user = f"pm-{policy_key}-{kind}"
    target = case.target(ctx)
    before = ctx.snapshot(target, user)
    out = call(ctx, case, kind, ctx.credential(policy_key, kind), target)
    how = "SDK" if kind == "aksk" and case.sdk else "httpx"
    where = f"{case.method} {case.path} as {policy_key}/{kind} ({how}), {action}"
    if allowed:
        assert out.status != 403 and out.error_code != DENIED, f"{where}: refused: {out}"
        assert out.status < 500, f"{where}: {out}"
        if name == "permissions":  # what the credential is told it may do is what it may
            assert out.status == 200 and out.body["user_name"] == user, f"{where}: {out}"
            told = {a: v for a, v in out.body["actions"].items() if a in ACTIONS}
            assert told == {a: a in POLICIES[policy_key][1] for a in ACTIONS}, where
        if case.change is not None:  # the changes this matrix makes do succeed
            assert out.status < 300, f"{where}: {out}"
            assert_changed(ctx, case.change, target, user, before)
        return
    assert (out.status, out.error_code, out.error_msg) == (
        403,
        DENIED,
        f"Policy doesn't allow {action} to be performed.",
    ), where
    assert out.request_id, where
    rows = denial_rows(ctx, action, out.request_id)
    assert [(a["permission"], a["decision"], a["outcome"]) for a in rows] == [
        (action, "deny", "refused")
    ], where
    assert rows[0]["detail"]["user_name"] == user
    assert rows[0]["cluster_id"] == (ctx.held if "{cluster_id}" in case.path else None)
    assert ctx.snapshot(target, user) == before, f"{where}: a refused call changed something"


def test_read_only_cannot_kill_delete_submit_or_run_sql_and_the_audit_says_so(ctx: Ctx) -> None:
    """A MRS ReadOnlyAccess AK/SK through the SDK: every change refused, one deny row each."""
    user = "pm-readonly-audited"
    cred = ctx.credentials.issue_aksk(ctx.pid, user, policy="MRS ReadOnlyAccess")
    v2 = client_for(ctx.server.endpoint, cred.ak, cred.sk, ctx.pid)
    v1 = v1_client(ctx.server.endpoint, cred.ak, cred.sk, ctx.pid)
    queued, ended = ctx.queued_job("pm-ro-queued"), ctx.killed_job()
    statement = ctx.row(ctx.sql)
    attempts = [
        ("v2-kill", queued, "mrs:job:stop"),
        ("v11-delete", ended, "mrs:job:delete"),
        ("v2-batch-delete", ended, "mrs:job:batchDelete"),
        ("v2-batch-delete", queued, "mrs:job:batchDelete"),
        ("v2-submit", None, "mrs:job:submit"),
        ("v11-submit", None, "mrs:job:submit"),
        ("sql-execute", None, "mrs:sql:execute"),
        ("sql-cancel", ctx.sql, "mrs:sql:cancel"),
    ]
    request_ids = []
    for name, target, action in attempts:
        case = CASES[name]
        assert case.sdk is not None
        out = sdk_outcome(lambda case=case, target=target: case.sdk(v2, v1, ctx, target))
        assert (out.status, out.error_code, out.error_msg) == (
            403,
            DENIED,
            f"Policy doesn't allow {action} to be performed.",
        ), name
        request_ids.append(out.request_id)
    # It still reads: the jobs are there, unchanged, and nothing was created.
    shown = v2.show_single_job_exe(
        sdk2.ShowSingleJobExeRequest(cluster_id=ctx.held, job_execution_id=queued)
    ).job_detail
    assert (shown.job_state, shown.job_result) == ("SUBMITTED", "UNDEFINED")
    assert v1.show_job_exes(sdk1.ShowJobExesRequest(job_exe_id=ended)).job_execution.id == ended
    assert (ctx.row(queued), ctx.row(ended)) == (("SUBMITTED", False), ("KILLED", False))
    assert ctx.row(ctx.sql) == statement
    assert ctx.rows_of(user) == 0
    # One deny row per refusal, with its action, in order.
    with ctx.store.read() as conn:
        rows = list_audit(conn, project_id=ctx.pid, limit=100_000)
    mine = [a for a in reversed(rows) if a["detail"].get("user_name") == user]
    assert [(a["permission"], a["decision"], a["outcome"]) for a in mine] == [
        (action, "deny", "refused") for _, _, action in attempts
    ]
    assert [a["request_id"] for a in mine] == request_ids
    assert {a["credential_id"] for a in mine} == {cred.id}
