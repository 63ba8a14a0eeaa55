"""Whatever a user feeds the loader, the answer is an experiment or a SpecError, never a traceback."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaoskit import errors
from chaoskit.spec import reading

KEYS = [
    "title", "method", "steady_state", "setup", "guards", "rollbacks", "teardown", "config", "secrets",
    "recovery", "probe", "fault", "action", "pause", "use", "with", "expect", "path", "equals", "below",
    "between", "in", "matches", "id", "duration", "interval", "within", "env", "file", "background",
    "steady-state-hypothesis", "type", "provider", "tolerance", "ref", "pauses", "probes", "configuration",
    "module", "func", "url", "arguments", "jsonpath", "count", "call", "name", "timeout",
]  # fmt: skip
WORDS = [
    "probe", "action", "python", "http", "process", "${x}", "${env:HOME}", "${steps.a.output.b}",
    "${secrets.s}", "-1s", "2s", "env", "range", "regex", "jsonpath", "$.a[*]", "[", "$${y}", "",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(WORDS),
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    max_leaves=25,
)


def outcome(text: str, name: str) -> None:
    try:
        loaded = reading.load_text(text, name=name, env={"HOME": "/root"})
    except errors.SpecError as e:
        assert e.problems
        for problem in e.problems:
            assert problem.message
            assert problem.file == name
            assert problem.line >= 0
    else:
        assert loaded.experiment.title


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_any_document_shape_gives_an_experiment_or_a_spec_error(document: Any) -> None:
    outcome(yaml.safe_dump(document), "fuzz.yaml")
    outcome(json.dumps(document), "fuzz.json")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_text_gives_an_experiment_or_a_spec_error(text: str) -> None:
    outcome(text, "fuzz.yaml")


CTK_KEYS = [
    "type", "name", "provider", "tolerance", "module", "func", "path", "url", "arguments", "timeout", "key",
    "default", "range", "pattern", "target", "expect", "count", "ref", "pauses", "before", "after",
    "background", "secrets", "controls", "headers", "method",
]  # fmt: skip
CTK_VALUES = st.recursive(
    scalars | st.sampled_from(["python", "process", "http", "env", "vault", "probe", "action"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(CTK_KEYS), inner, max_size=5),
    max_leaves=20,
)
activities = st.fixed_dictionaries(
    {"type": st.sampled_from(["action", "probe"]), "name": st.sampled_from(["a", "b"])},
    optional={
        "provider": CTK_VALUES,
        "tolerance": CTK_VALUES,
        "pauses": CTK_VALUES,
        "background": CTK_VALUES,
        "ref": CTK_VALUES,
    },
)
ctk_documents = st.fixed_dictionaries(
    {"title": st.just("t"), "method": st.lists(activities | CTK_VALUES, max_size=4)},
    optional={
        "steady-state-hypothesis": st.fixed_dictionaries(
            {}, optional={"probes": st.lists(activities, max_size=3)}
        )
        | CTK_VALUES,
        "configuration": CTK_VALUES,
        "secrets": CTK_VALUES,
        "rollbacks": CTK_VALUES,
        "controls": CTK_VALUES,
    },
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ctk_documents)
def test_any_chaos_toolkit_shape_gives_an_experiment_or_a_spec_error(document: Any) -> None:
    outcome(json.dumps(document), "fuzz.json")
