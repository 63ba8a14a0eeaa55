"""Chaos Toolkit control modules run in chaoskit: a control written here records every call, and
a Chaos Toolkit experiment using it runs through the engine with the real process and python
drivers."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaoskit import errors, testing
from chaoskit.drivers import registry
from chaoskit.engine import events

RECORDER = """
CALLS = []

def _record(name, context, **kwargs):
    label = context.get("name") or context.get("title") if isinstance(context, dict) else context
    CALLS.append((name, label, kwargs))

def configure_control(tag, n, configuration=None, secrets=None):
    CALLS.append(("configure_control", None, {"tag": tag, "n": n, "configuration": configuration,
                                              "secrets": secrets}))

def cleanup_control():
    CALLS.append(("cleanup_control", None, {}))

def before_experiment_control(context, tag, n, **kwargs):
    _record("before_experiment_control", context, tag=tag, n=n, **kwargs)

def after_experiment_control(context, state, tag, n, **kwargs):
    _record("after_experiment_control", context, state=state)

def before_hypothesis_control(context, tag, n, **kwargs):
    _record("before_hypothesis_control", context)

def after_hypothesis_control(context, state, tag, n, **kwargs):
    _record("after_hypothesis_control", context, state=state)

def before_method_control(context, tag, n, **kwargs):
    _record("before_method_control", context)

def after_method_control(context, state, tag, n, **kwargs):
    _record("after_method_control", context, state=state)

def before_rollback_control(context, tag, n, **kwargs):
    _record("before_rollback_control", context)

def after_rollback_control(context, state, tag, n, **kwargs):
    _record("after_rollback_control", context, state=state)

def before_activity_control(context, tag, n, configuration, secrets, **kwargs):
    _record("before_activity_control", context, configuration=configuration, secrets=secrets)

def after_activity_control(context, state, tag, n, **kwargs):
    _record("after_activity_control", context, state=state)
"""

EXPERIMENT: dict[str, Any] = {
    "version": "1.0.0",
    "title": "controls see the whole run",
    "configuration": {"greeting": "hello"},
    "secrets": {"recorder": {"token": "s3cret-value"}},
    "controls": [
        {
            "name": "recorder",
            "provider": {
                "type": "python",
                "module": "MODULE",
                "arguments": {"tag": "${greeting}", "n": 3},
                "secrets": ["recorder"],
            },
        }
    ],
    "steady-state-hypothesis": {
        "title": "the root directory is there",
        "probes": [
            {
                "type": "probe",
                "name": "root-exists",
                "tolerance": True,
                "provider": {"type": "python", "module": "os.path", "func": "isdir", "arguments": {"s": "/"}},
            }
        ],
    },
    "method": [
        {"type": "action", "name": "run-true", "provider": {"type": "process", "path": "true"}},
        {
            "type": "probe",
            "name": "root-still-there",
            "provider": {"type": "python", "module": "os.path", "func": "isdir", "arguments": {"s": "/"}},
        },
    ],
    "rollbacks": [{"type": "action", "name": "undo", "provider": {"type": "process", "path": "true"}}],
}


@pytest.fixture
def drivers() -> list[Any]:
    assert shutil.which("true"), "true is part of coreutils and needed here"
    loaded = registry.load()
    return [loaded.drivers["process"], loaded.drivers["python"]]


@pytest.fixture
def control(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh recording control module on sys.path; its name is unique to the test."""
    name = "ctk_recorder_" + request.node.name.replace("[", "_").replace("]", "_").replace("-", "_")
    (tmp_path / f"{name}.py").write_text(RECORDER)
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    try:
        yield name
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def experiment(module: str, **changes: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(EXPERIMENT).replace('"MODULE"', json.dumps(module)))
    doc.update(changes)
    return doc


def calls(module: str) -> list[tuple[str, Any, dict[str, Any]]]:
    return list(importlib.import_module(module).CALLS)


def test_every_control_function_is_called_in_chaos_toolkit_order(drivers: list[Any], control: str) -> None:
    journal = testing.run_experiment(json.dumps(experiment(control)), drivers=drivers)
    assert journal.verdict == "completed"
    assert [(name, label) for name, label, _ in calls(control)] == [
        ("configure_control", None),
        ("before_experiment_control", "controls see the whole run"),
        ("before_hypothesis_control", "controls see the whole run"),
        ("before_activity_control", "root-exists"),
        ("after_activity_control", "root-exists"),
        ("after_hypothesis_control", "controls see the whole run"),
        ("before_method_control", "controls see the whole run"),
        ("before_activity_control", "run-true"),
        ("after_activity_control", "run-true"),
        ("before_activity_control", "root-still-there"),
        ("after_activity_control", "root-still-there"),
        ("after_method_control", "controls see the whole run"),
        ("before_hypothesis_control", "controls see the whole run"),
        ("before_activity_control", "root-exists"),
        ("after_activity_control", "root-exists"),
        ("after_hypothesis_control", "controls see the whole run"),
        ("before_rollback_control", "controls see the whole run"),
        ("before_activity_control", "undo"),
        ("after_activity_control", "undo"),
        ("after_rollback_control", "controls see the whole run"),
        ("after_experiment_control", "controls see the whole run"),
        ("cleanup_control", None),
    ]


def test_arguments_configuration_and_secrets_reach_the_control(drivers: list[Any], control: str) -> None:
    testing.run_experiment(json.dumps(experiment(control)), drivers=drivers)
    recorded = calls(control)
    configure = recorded[0][2]
    assert configure["tag"] == "hello"  # ${greeting} filled in from the configuration
    assert configure["n"] == 3
    assert configure["configuration"] == {"greeting": "hello"}
    assert configure["secrets"] == {"token": "s3cret-value"}
    assert recorded[1][2]["tag"] == "hello"
    before_activity = next(kw for name, _, kw in recorded if name == "before_activity_control")
    assert before_activity["configuration"] == {"greeting": "hello"}
    assert before_activity["secrets"] == {"token": "s3cret-value"}


def test_state_has_chaos_toolkit_shapes(drivers: list[Any], control: str) -> None:
    testing.run_experiment(json.dumps(experiment(control)), drivers=drivers)
    states = {name: kw.get("state") for name, _, kw in calls(control)}
    hypothesis = states["after_hypothesis_control"]
    assert hypothesis["steady_state_met"] is True
    assert [p["activity"]["name"] for p in hypothesis["probes"]] == ["root-exists"]
    assert hypothesis["probes"][0]["output"] is True
    action = next(
        kw["state"]
        for name, label, kw in calls(control)
        if name == "after_activity_control" and label == "run-true"
    )
    assert action["status"] == "succeeded"
    assert action["activity"]["provider"] == {"type": "process", "path": "true", "arguments": []}
    assert [r["activity"]["name"] for r in states["after_method_control"]] == ["run-true", "root-still-there"]
    journal = states["after_experiment_control"]
    assert (journal["status"], journal["deviated"]) == ("completed", False)
    assert [r["activity"]["name"] for r in journal["rollbacks"]] == ["undo"]


def test_a_deviation_reaches_after_experiment(drivers: list[Any], control: str, tmp_path: Path) -> None:
    doc = experiment(control)
    marker = tmp_path / "first-check-done"
    # The steady-state probe holds the first time only: the after-hypothesis deviates.
    doc["method"] = [
        {
            "type": "action",
            "name": "break-it",
            "provider": {"type": "process", "path": "true"},
        }
    ]
    doc["steady-state-hypothesis"]["probes"][0]["provider"] = {
        "type": "process",
        "path": "sh",
        "arguments": ["-c", f"test -e {marker} || {{ touch {marker}; exit 0; }}; exit 1"],
    }
    doc["steady-state-hypothesis"]["probes"][0]["tolerance"] = 0
    journal = testing.run_experiment(json.dumps(doc), drivers=drivers)
    assert journal.verdict == "deviated"
    states = [(name, kw.get("state")) for name, _, kw in calls(control)]
    after = [s for name, s in states if name == "after_hypothesis_control"]
    assert [s["steady_state_met"] for s in after] == [True, False]
    final = dict(states)["after_experiment_control"]
    assert (final["status"], final["deviated"]) == ("deviated", True)


def test_a_raising_control_is_logged_and_the_run_goes_on(
    drivers: list[Any], control: str, tmp_path: Path
) -> None:
    source = tmp_path / f"{control}.py"
    source.write_text(
        RECORDER
        + textwrap.dedent(
            """
            def after_activity_control(context, state, **kwargs):
                _record("after_activity_control", context)
                raise RuntimeError("the dashboard is down")
            """
        )
    )
    seen: list[events.Event] = []
    journal = testing.run_experiment(
        json.dumps(experiment(control)), drivers=drivers, subscribers=[seen.append]
    )
    assert journal.verdict == "completed"
    assert journal.exit_code == 0
    assert not journal.errors
    names = [name for name, _, _ in calls(control)]
    assert names.count("after_activity_control") == 5
    assert names[-2:] == ["after_experiment_control", "cleanup_control"]
    logged = [e.message for e in seen if isinstance(e, events.Log) and "the dashboard is down" in e.message]
    assert len(logged) == 5
    assert "control 'recorder'" in logged[0] and "after_activity_control raised RuntimeError" in logged[0]


def test_configure_control_failing_refuses_the_run(drivers: list[Any], control: str, tmp_path: Path) -> None:
    (tmp_path / f"{control}.py").write_text(
        RECORDER + "\ndef configure_control(**kwargs):\n    raise ValueError('no API key')\n"
    )
    with pytest.raises(errors.ChaoskitError) as raised:
        testing.run_experiment(json.dumps(experiment(control)), drivers=drivers)
    assert "control 'recorder'" in raised.value.message
    assert "configure_control raised ValueError: no API key" in raised.value.message
    assert calls(control) == []  # not even before_experiment: nothing ran


def test_scope_limits_the_calls_to_before_or_after(drivers: list[Any], control: str) -> None:
    doc = experiment(control)
    doc["controls"][0]["scope"] = "after"
    testing.run_experiment(json.dumps(doc), drivers=drivers)
    names = {name for name, _, _ in calls(control)}
    assert not {n for n in names if n.startswith("before_")}
    assert {"after_activity_control", "after_experiment_control", "configure_control"} <= names


def test_a_control_on_one_activity_sees_only_that_activity(drivers: list[Any], control: str) -> None:
    doc = experiment(control)
    doc["method"][0]["controls"] = doc.pop("controls")
    testing.run_experiment(json.dumps(doc), drivers=drivers)
    assert [(name, label) for name, label, _ in calls(control)] == [
        ("before_activity_control", "run-true"),
        ("after_activity_control", "run-true"),
    ]
