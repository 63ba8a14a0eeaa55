"""The published JSON Schema, and YAML round-trips of generated experiments."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaoskit.spec import models, reading, schemas

ROOT = Path(__file__).resolve().parents[3]


def test_the_committed_schema_is_what_the_models_generate() -> None:
    committed = (ROOT / "schemas" / "experiment.schema.json").read_text()
    regenerate = "python -c 'from chaoskit.spec import schemas; print(schemas.dumps(), end=\"\")'"
    assert committed == schemas.dumps(), f"regenerate it: {regenerate} > schemas/experiment.schema.json"


def test_the_schema_uses_the_keys_users_write() -> None:
    document = schemas.json_schema()
    assert document["$id"] == schemas.ID
    assert document["title"] == "chaoskit experiment"
    assert document["required"] == ["title"]
    assert "with" in document["$defs"]["ProbeStep"]["properties"]
    assert "in" in document["$defs"]["Expect"]["properties"]
    assert "steady_state" in document["properties"]
    json.dumps(document)


names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
text = st.text(
    alphabet=st.characters(blacklist_characters="$", blacklist_categories=("Cs", "Cc", "Zl", "Zp")),
    max_size=20,
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**9), max_value=10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=6,
)
durations = st.integers(min_value=0, max_value=10**6).map(lambda ms: ms / 1000)
expects = st.fixed_dictionaries(
    {"equals": json_values},
    optional={
        "path": st.lists(names, min_size=1, max_size=3).map(".".join),
        "below": st.integers(-1000, 1000),
        "in": st.lists(scalars, max_size=3),
        "matches": st.sampled_from(["^ok$", r"\d+", "a|b"]),
    },
)
probes = st.fixed_dictionaries(
    {"probe": st.sampled_from(["http.request", "process.command", "python.call"])},
    optional={"name": text, "with": st.dictionaries(names, json_values, max_size=3), "expect": expects},
)
faults = st.fixed_dictionaries(
    {"fault": st.sampled_from(["process.stop", "process.kill"])},
    optional={
        "with": st.dictionaries(names, json_values, max_size=3),
        "duration": durations,
        "background": st.booleans(),
    },
)
actions = st.fixed_dictionaries(
    {"action": st.just("process.start")}, optional={"with": st.dictionaries(names, json_values, max_size=2)}
)
pauses = st.fixed_dictionaries({"pause": durations}, optional={"name": text})
steps = st.one_of(probes, faults, actions, pauses)
experiments = st.fixed_dictionaries(
    {"title": text.filter(bool)},
    optional={
        "description": text,
        "tags": st.lists(text, max_size=3),
        "config": st.dictionaries(names, json_values, max_size=3),
        "secrets": st.dictionaries(names, st.builds(lambda n: {"env": n.upper()}, names), max_size=2),
        "setup": st.lists(steps, max_size=2),
        "steady_state": st.lists(probes, max_size=2),
        "method": st.lists(steps, max_size=4),
        "guards": st.lists(probes.map(lambda p: {**p, "interval": 0.5}), max_size=1),
        "recovery": st.fixed_dictionaries({}, optional={"within": durations, "interval": durations}),
        "rollbacks": st.lists(steps, max_size=2),
        "teardown": st.lists(steps, max_size=2),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(experiments)
def test_a_generated_experiment_dumped_to_yaml_loads_back_equal(document: dict[str, Any]) -> None:
    experiment = models.Experiment.model_validate(document)
    dumped = yaml.safe_dump(
        experiment.model_dump(mode="json", by_alias=True, exclude_unset=True), allow_unicode=True
    )
    loaded = reading.load_text(dumped, name="generated.yaml", env={})
    assert loaded.experiment == experiment
    as_json = json.dumps(experiment.model_dump(mode="json", by_alias=True, exclude_unset=True))
    assert reading.load_text(as_json, name="generated.json", env={}).experiment == experiment


def test_the_format_reference_documents_every_key() -> None:
    reference = (ROOT / "docs" / "experiment-format.md").read_text()
    documented = set(re.findall(r"`([a-z_]+)(?::|`| )", reference))
    for model in (
        models.Experiment,
        models.ProbeStep,
        models.FaultStep,
        models.ActionStep,
        models.PauseStep,
        models.Guard,
        models.Recovery,
        models.SecretRef,
        models.Expect,
    ):
        for name, info in model.model_fields.items():
            key = info.alias or name
            assert key in documented, f"docs/experiment-format.md does not mention {model.__name__}.{key}"
