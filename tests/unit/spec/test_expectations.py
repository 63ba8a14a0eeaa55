"""``expect`` checks: what they accept, and the "expected X, got Y" a failure shows."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaoskit.spec import expectations, models

OUTPUT = {
    "status": 200,
    "latency_ms": {"p50": 12.5, "p99": 350.2},
    "json": {"items": [{"name": "a", "ok": True}, {"name": "b", "ok": False}]},
    "body": "all good",
}


def expect(**fields: Any) -> models.Expect:
    return models.Expect.model_validate(fields)


def test_a_passing_check_names_what_held() -> None:
    result = expectations.check(expect(path="status", equals=200), OUTPUT)
    assert result == expectations.Check(True, "status equals 200", 200, "status equals 200: 200")


def test_a_failing_check_says_expected_and_got() -> None:
    result = expectations.check(expect(path="latency_ms.p99", below=200), OUTPUT)
    assert not result.ok
    assert result.expected == "latency_ms.p99 below 200"
    assert result.got == 350.2
    assert result.message == "expected latency_ms.p99 below 200, got 350.2"


def test_paths_reach_into_lists_including_from_the_end() -> None:
    assert expectations.check(expect(path="json.items[-1].name", equals="b"), OUTPUT).ok
    assert expectations.check(expect(path="json.items[0].ok", equals=True), OUTPUT).ok


def test_a_missing_path_fails_naming_what_is_there() -> None:
    result = expectations.check(expect(path="stats.p99", below=1), OUTPUT)
    assert not result.ok
    assert result.message == (
        "expected stats.p99 below 1, but no 'stats' in output (has: status, latency_ms, json, body)"
    )
    missing_item = expectations.check(expect(path="json.items[5]", equals=1), OUTPUT)
    assert missing_item.message.endswith("no item [5] in json.items (the list has 2 items)")


def test_numeric_checks_on_text_fail_without_raising() -> None:
    result = expectations.check(expect(path="body", above=3), OUTPUT)
    assert not result.ok
    assert result.message == "expected body above 3, got 'all good' (not a number)"


def test_matches_searches_text_and_the_json_of_structures() -> None:
    assert expectations.check(expect(path="body", matches="g[o]+d$"), OUTPUT).ok
    assert expectations.check(expect(path="json", matches='"name": "b"'), OUTPUT).ok
    assert expectations.check(expect(path="status", matches="^2..$"), OUTPUT).ok
    assert expectations.check(expect(path="json.items[0].ok", matches="^True$"), OUTPUT).ok
    failed = expectations.check(expect(path="body", matches="^bad"), OUTPUT)
    assert failed.message == "expected body matches /^bad/, got 'all good'"


def test_every_check_in_one_expect_must_hold() -> None:
    both = expect(path="latency_ms.p50", above=10, below=12)
    result = expectations.check(both, OUTPUT)
    assert result.expected == "latency_ms.p50 below 12 and above 10"
    assert result.message == "expected latency_ms.p50 below 12, got 12.5"


def test_check_all_gives_one_result_per_expect() -> None:
    results = expectations.check_all(
        [expect(path="status", in_=[200, 204]), expect(path="body", equals="x")], OUTPUT
    )
    assert [r.ok for r in results] == [True, False]
    assert results[1].message == "expected body equals 'x', got 'all good'"


def test_jsonpath_applies_checks_to_every_match_and_counts_them() -> None:
    names = expect(path="json", jsonpath="$.items[*].name", **{"in": ["a", "b"]}, count=2)
    assert expectations.check(names, OUTPUT).ok
    not_all_ok = expectations.check(expect(path="json", jsonpath="$..ok", equals=True), OUTPUT)
    assert not not_all_ok.ok
    assert not_all_ok.message == "expected json $..ok equals true, got false"
    none = expectations.check(expect(jsonpath="$.nothing[*]"), OUTPUT)
    assert not none.ok
    assert none.message.startswith("expected output $.nothing[*] has a match, got no match in")
    # JSON text (a process's stdout) is parsed before the path is applied.
    assert expectations.check(expect(jsonpath="$.a[1]", equals=2), '{"a": [1, 2]}').ok


def test_call_hands_the_value_and_arguments_to_a_function() -> None:
    holds = expect(call="tests.unit.spec.checkers:contains", arguments={"needle": "good"})
    assert expectations.check(holds, OUTPUT["body"]).ok
    falsy = expectations.check(holds, "bad")
    assert falsy.message == (
        "expected output accepted by tests.unit.spec.checkers:contains(), got 'bad' "
        "(it returned a false value)"
    )
    raised = expectations.check(expect(call="tests.unit.spec.checkers:explode"), 1)
    assert raised.message.endswith("(tests.unit.spec.checkers:explode() raised RuntimeError: cannot judge 1)")
    missing = expectations.check(expect(call="no_such_module_here:f"), 1)
    assert "can't load no_such_module_here:f" in missing.message


def test_an_expect_needs_a_check_and_valid_parts() -> None:
    with pytest.raises(ValueError, match=r"give at least one check"):
        expect(path="status")
    with pytest.raises(ValueError, match=r"between needs \[low, high\]"):
        expect(between=[5, 1])
    with pytest.raises(ValueError, match=r"unsupported JSONPath"):
        expect(jsonpath="$.items[?(@.ok)]")
    with pytest.raises(ValueError, match=r"count: needs jsonpath:"):
        expect(count=1)
    with pytest.raises(ValueError, match=r"arguments: needs call:"):
        expect(equals=1, arguments={"a": 1})


numbers = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12) | st.integers(
    min_value=-(10**12), max_value=10**12
)


# Loaded CI machines: no per-example deadline, no slow-generation health check.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(numbers, numbers)
def test_below_and_above_agree_with_arithmetic(value: float, bound: float) -> None:
    assert expectations.check(expect(below=bound), value).ok == (value < bound)
    assert expectations.check(expect(above=bound), value).ok == (value > bound)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(numbers, numbers, numbers)
def test_between_is_inclusive_arithmetic(value: float, a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert expectations.check(expect(between=[low, high]), value).ok == (low <= value <= high)


json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=10,
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_equals_is_reflexive(value: Any) -> None:
    assert expectations.check(expect(equals=value), value).ok


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(json_values, min_size=1, max_size=5), st.data())
def test_in_holds_for_members_and_not_for_outsiders(items: list[Any], data: st.DataObject) -> None:
    member = data.draw(st.sampled_from(items))
    assert expectations.check(expect(**{"in": items}), member).ok
    outsider = {"not-one-of": items}
    assert not expectations.check(expect(**{"in": items}), outsider).ok


keys = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)


@st.composite
def nested_with_a_path(draw: st.DrawFn) -> tuple[Any, str, Any]:
    """A nested structure, a path into it, and the value at the path."""
    leaf = draw(json_values)
    value, path = leaf, ""
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if draw(st.booleans()):
            key = draw(keys)
            siblings = draw(st.dictionaries(keys, json_values, max_size=2))
            value = {**siblings, key: value}
            path = f".{key}{path}"
        else:
            before = draw(st.lists(json_values, max_size=2))
            after = draw(st.lists(json_values, max_size=2))
            index = draw(st.sampled_from([len(before), -(len(after) + 1)]))
            value = [*before, value, *after]
            path = f"[{index}]{path}"
    return value, path.lstrip("."), leaf


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nested_with_a_path())
def test_path_lookup_finds_the_value_it_was_built_around(case: tuple[Any, str, Any]) -> None:
    value, path, leaf = case
    if path.startswith("["):
        # A path can't start with an index; wrap the list so the path starts with a key.
        value, path = {"root": value}, f"root{path}"
    result = expectations.check(expect(path=path, equals=leaf), value)
    assert result.ok, result.message
    assert result.got == leaf
