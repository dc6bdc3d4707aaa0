from __future__ import annotations

import pytest

from mrs_jobs.domain.sqlsplit import split_statements


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("select 1; select 2", ["select 1", "select 2"]),
        ("select 1;;; ;\n", ["select 1"]),
        ("select 'a;b'; select \"c;d\"", ["select 'a;b'", 'select "c;d"']),
        ("select `we;ird` from t", ["select `we;ird` from t"]),
        ("select 'it\\'s; fine'; select 2", ["select 'it\\'s; fine'", "select 2"]),
        ("select 1 -- no; split\n; select 2", ["select 1 -- no; split", "select 2"]),
        ("/* a; b */ select 1; /* only a comment; */", ["/* a; b */ select 1"]),
        ("-- just a comment", []),
        ("", []),
        (
            "insert into t values (1, 'x;y');\nselect * from t;",
            ["insert into t values (1, 'x;y')", "select * from t"],
        ),
        ("select 'unterminated; still one", ["select 'unterminated; still one"]),
        ("select 1 /* unterminated; comment", ["select 1 /* unterminated; comment"]),
        ("select a-b from t; select 2", ["select a-b from t", "select 2"]),
    ],
)
def test_split(text: str, expected: list[str]) -> None:
    assert split_statements(text) == expected
