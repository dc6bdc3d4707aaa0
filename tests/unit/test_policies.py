"""domain/policies.py: system policies, custom documents, wildcards, Deny wins, refusals."""

from __future__ import annotations

import json

import pytest

from mrs_jobs.domain.policies import ACTIONS, OWNER_ACTIONS, parse_policy
from mrs_jobs.errors import InvalidParameter

WRITES = {
    "mrs:job:submit",
    "mrs:job:stop",
    "mrs:job:delete",
    "mrs:job:batchDelete",
    "mrs:sql:execute",
    "mrs:sql:cancel",
}


def doc(*statements: tuple[str, list[str]]) -> str:
    return json.dumps(
        {"Version": "1.1", "Statement": [{"Effect": e, "Action": a} for e, a in statements]}
    )


def test_full_access_allows_every_action() -> None:
    policy = parse_policy("MRS FullAccess")
    assert all(policy.allows(a) for a in (*ACTIONS, *OWNER_ACTIONS))


def test_read_only_allows_reads_and_lists_only() -> None:
    policy = parse_policy("MRS ReadOnlyAccess")
    for a in ACTIONS:
        assert policy.allows(a) == (a not in WRITES), a
    assert not any(policy.allows(a) for a in OWNER_ACTIONS)


def test_common_operations_does_everything_but_others_jobs() -> None:
    policy = parse_policy("MRS CommonOperations")
    assert all(policy.allows(a) for a in ACTIONS)
    assert not any(policy.allows(a) for a in OWNER_ACTIONS)


@pytest.mark.parametrize("name", ["ReadOnlyAccess", "mrs readonlyaccess", " MRS ReadOnlyAccess "])
def test_system_names_are_matched_loosely_and_stored_by_full_name(name: str) -> None:
    assert parse_policy(name).stored == "MRS ReadOnlyAccess"


def test_deny_beats_allow_whatever_the_order() -> None:
    for policy in (
        parse_policy(doc(("Allow", ["mrs:job:*"]), ("Deny", ["mrs:job:stop"]))),
        parse_policy(doc(("Deny", ["mrs:job:stop"]), ("Allow", ["mrs:*:*"]))),
    ):
        assert policy.allows("mrs:job:submit")
        assert not policy.allows("mrs:job:stop")


def test_wildcards_match_inside_segments_and_ignore_case() -> None:
    policy = parse_policy(doc(("Allow", ["mrs:*:get*", "MRS:JOB:LIST"])))
    assert policy.allows("mrs:job:get") and policy.allows("mrs:sql:get")
    assert policy.allows("mrs:job:list")
    assert not policy.allows("mrs:cluster:list")
    assert not policy.allows("mrs:job:submit")


def test_nothing_matching_is_denied_and_other_services_do_not_grant() -> None:
    policy = parse_policy(doc(("Allow", ["ecs:*:*", "mrs:file:list"])))
    assert policy.allows("mrs:file:list")
    assert not policy.allows("mrs:job:get")


def test_a_custom_document_is_stored_canonically_and_reads_back_the_same() -> None:
    policy = parse_policy(doc(("Allow", ["mrs:job:get"])))
    assert policy.name == "custom"
    again = parse_policy(policy.stored)
    assert again.document == policy.document and again.allows("mrs:job:get")


@pytest.mark.parametrize(
    "text, says",
    [
        ("MRS Admin", "one of MRS FullAccess"),
        ("[]", "JSON object"),
        ('{"Version": "1.0", "Statement": [{"Effect": "Allow", "Action": ["mrs:*:*"]}]}', "1.1"),
        ('{"Version": "1.1", "Statement": []}', "1 to 100"),
        ('{"Version": "1.1", "Statement": [{"Effect": "allow", "Action": ["a:b:c"]}]}', "Effect"),
        ('{"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": ["mrs:job"]}]}', "not an"),
        (
            '{"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": ["mrs:*:*"], '
            '"Condition": {"StringEquals": {}}}]}',
            "Condition",
        ),
        (
            '{"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": ["mrs:*:*"], '
            '"Resource": ["*"]}]}',
            "Resource",
        ),
        ('{"Version": "1.1", "Statement": [], "Extra": 1}', "Version and Statement only"),
    ],
)
def test_bad_policies_are_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        parse_policy(text)
    assert says in str(err.value)
