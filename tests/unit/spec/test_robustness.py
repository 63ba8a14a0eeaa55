"""Whatever a user feeds the loader, the answer is an experiment or a SpecError, never a traceback."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaoskit import errors
from chaoskit.spec import loading

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
        loaded = loading.load_text(text, name=name, env={"HOME": "/root"})
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
