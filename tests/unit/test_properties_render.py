"""Property tests for the Java-style renderers and the secret rule (contract section 3)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mrs_jobs.domain.job import Job, to_mrs
from mrs_jobs.domain.render import (
    ARGUMENT_MASK,
    MASK,
    is_secret_key,
    java_list,
    java_map,
    mask_arguments,
    mask_properties,
)
from mrs_jobs.engines.spark import is_secret_key as spark_is_secret_key

PROFILE = settings(max_examples=300, deadline=None, derandomize=True, database=None)

SECRET_WORDS = ("secret", "password", "token")
SECRET_SUFFIXES = (".access.key", ".secret.key")
# Secret values are drawn from characters no key or plain value uses, so "never appears"
# can be checked character by character.
SECRET_ALPHABET = "\u2603\u2605\u00a7#"
PLAIN = st.text(st.characters(exclude_characters=SECRET_ALPHABET, exclude_categories=("Cs",)))


def random_case(draw: st.DrawFn, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if up else c for c, up in zip(word, flips, strict=True))


@st.composite
def secret_keys(draw: st.DrawFn) -> str:
    """Keys the contract calls secret: containing a word, or ending in a suffix (any case)."""
    if draw(st.booleans()):
        word = random_case(draw, draw(st.sampled_from(SECRET_WORDS)))
        return draw(PLAIN) + word + draw(PLAIN)
    return draw(PLAIN) + random_case(draw, draw(st.sampled_from(SECRET_SUFFIXES)))


# Without s, t and k (nor the Kelvin sign, which lower-cases to k) no secret word or suffix
# can be spelt, in any case.
SAFE_KEYS = st.text(
    st.sampled_from([c for c in "abcdefghijlmnopqruvwxyzABCDEFGHIJLMNOPQRUVWXYZ0123456789._-"]),
    min_size=1,
)


@PROFILE
@given(secret_keys())
def test_keys_the_contract_names_are_secret(key: str) -> None:
    assert is_secret_key(key)
    assert mask_properties({key: "v"}) == {key: MASK}


@PROFILE
@given(SAFE_KEYS)
@example("access.key")  # must *end in* ".access.key"
@example("fs.obs.access.key.path")
@example("passwd")
def test_other_keys_are_not_secret(key: str) -> None:
    assert not is_secret_key(key)
    assert mask_properties({key: "v"}) == {key: "v"}


@PROFILE
@given(st.one_of(st.text(), secret_keys(), SAFE_KEYS))
def test_the_spark_engine_uses_the_same_rule(key: str) -> None:
    # The engine keeps secret properties off the command line by its own copy of the rule.
    assert spark_is_secret_key(key) == is_secret_key(key)


@st.composite
def property_maps(draw: st.DrawFn) -> tuple[dict[str, str], set[str]]:
    """A map mixing plain and secret keys; returns it and its secret keys."""
    secret_values = st.text(SECRET_ALPHABET, min_size=1)
    plain = draw(st.dictionaries(PLAIN.filter(lambda k: not is_secret_key(k)), PLAIN, max_size=6))
    secret = draw(st.dictionaries(secret_keys(), secret_values, max_size=4))
    keys = list(plain) + [k for k in secret if k not in plain]
    order = draw(st.permutations(keys))
    props = {k: secret[k] if k in secret else plain[k] for k in order}
    return props, {k for k in props if k in secret}


@PROFILE
@given(property_maps())
def test_java_map_never_shows_a_secret_value(case: tuple[dict[str, str], set[str]]) -> None:
    props, secrets = case
    rendered = java_map(props)
    assert not set(rendered) & set(SECRET_ALPHABET), rendered
    for key in secrets:
        assert f"{key}={MASK}" in rendered


@PROFILE
@given(property_maps())
def test_mask_properties_keeps_keys_and_order(case: tuple[dict[str, str], set[str]]) -> None:
    props, secrets = case
    before = dict(props)
    masked = mask_properties(props)
    assert props == before, "the input is not modified"
    assert list(masked) == list(props)
    for key, value in masked.items():
        assert value == (MASK if key in secrets else props[key])


# Keys without "=" and ", ", values without ", ": the rendering can be read back.
TOKEN = st.text(
    st.characters(exclude_characters="=" + SECRET_ALPHABET, exclude_categories=("Cs",))
).filter(lambda s: ", " not in s)
VALUE = PLAIN.filter(lambda s: ", " not in s)


@PROFILE
@given(st.dictionaries(TOKEN, VALUE, min_size=1, max_size=8))
def test_java_map_reads_back_in_order(props: dict[str, str]) -> None:
    rendered = java_map(props)
    assert rendered.startswith("{") and rendered.endswith("}")
    pairs = [item.partition("=") for item in rendered[1:-1].split(", ")]
    assert [k for k, _, _ in pairs] == list(props)
    assert [v for _, _, v in pairs] == list(mask_properties(props).values())


@PROFILE
@given(st.lists(PLAIN.filter(lambda s: ", " not in s), min_size=1, max_size=10))
@example(["a,", " b"])
@example([""])
@example(["@secret", "a@b"])
def test_java_list_reads_back(items: list[str]) -> None:
    rendered = java_list(items)
    shown = mask_arguments(items)  # a sensitive (@) argument reads back as @******
    assert rendered == "[" + ", ".join(shown) + "]"
    assert rendered[1:-1].split(", ") == shown
    assert all(s == ARGUMENT_MASK for s, i in zip(shown, items, strict=True) if i[:1] == "@")


@PROFILE
@given(st.lists(st.text(), max_size=10))
def test_java_list_shape(items: list[str]) -> None:
    rendered = java_list(items)
    assert rendered[0] == "[" and rendered[-1] == "]"
    shown = mask_arguments(items)
    assert len(rendered) == 2 + sum(map(len, shown)) + 2 * max(0, len(items) - 1)
    assert java_list([]) == "[]"


TIMES = st.integers(0, 2**62)


@PROFILE
@given(
    property_maps(),
    st.lists(PLAIN, max_size=5),
    st.sampled_from(
        ["NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING", "FINISHED", "FAILED", "KILLED"]
    ),
    TIMES,
    TIMES,
    TIMES,
    TIMES,
    st.floats(0, 100),
)
def test_to_mrs_types_and_secrets(
    case: tuple[dict[str, str], set[str]],
    arguments: list[str],
    state: str,
    submitted: int,
    started: int,
    finished: int,
    now: int,
    progress: float,
) -> None:
    props, _ = case
    job = Job(
        id="j",
        project_id="p",
        cluster_id="c",
        job_name="n",
        job_type="SparkSubmit",
        user_name="u",
        queue="default",
        state=state,
        result="UNDEFINED",
        progress=progress,
        submitted_ms=submitted,
        started_ms=started,
        finished_ms=finished,
        arguments=arguments,
        properties=props,
    )
    d = to_mrs(job, now)
    for f in ("started_time", "submitted_time", "finished_time", "elapsed_time"):
        assert type(d[f]) is int, f
    assert d["elapsed_time"] >= 0, "a duration is never negative (clock steps included)"
    assert isinstance(d["job_progress"], float) and 0 <= d["job_progress"] <= 100
    assert isinstance(d["arguments"], str) and isinstance(d["properties"], str)
    assert d["arguments"] == java_list(arguments)
    assert not set(d["properties"]) & set(SECRET_ALPHABET)
