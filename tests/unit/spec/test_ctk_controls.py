"""A Chaos Toolkit file's controls: python ones become ``controls:`` (run by the engine), safeguards
become guards and preflight checks, and only what can't work is refused, by name, at its place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaoskit import errors
from chaoskit.spec import chaostoolkit, ctk_controls, models, reading

PROBE = {
    "type": "probe",
    "name": "root-exists",
    "tolerance": True,
    "provider": {"type": "python", "module": "os.path", "func": "isdir", "arguments": {"s": "/"}},
}


def ctk(controls: list[Any], **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "title": "with controls",
        "controls": controls,
        "steady-state-hypothesis": {"title": "root", "probes": [PROBE]},
        "method": [{"type": "action", "name": "act", "provider": {"type": "process", "path": "true"}}],
    }
    doc.update(changes)
    return doc


def load(doc: dict[str, Any]) -> reading.Loaded:
    return reading.load_text(json.dumps(doc, indent=2), name="ctk.json", env={})


def problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(errors.SpecError) as caught:
        load(doc)
    return [p.render() for p in caught.value.problems]


def test_a_python_control_becomes_a_control_with_its_arguments_scope_and_secrets() -> None:
    doc = ctk(
        [
            {
                "name": "audit",
                "scope": "after",
                "provider": {
                    "type": "python",
                    "module": "json",  # any importable module
                    "arguments": {"url": "${base}/audit", "retries": 2},
                    "secrets": ["audit"],
                },
            }
        ],
        configuration={"base": "http://127.0.0.1:9"},
        secrets={"audit": {"token": "t0ken"}, "other": {"password": "p"}},
    )
    loaded = load(doc)
    assert loaded.experiment.controls == [
        models.Control(
            name="audit",
            module="json",
            arguments={"url": "http://127.0.0.1:9/audit", "retries": 2},
            scope="after",
            secrets=["token"],
        )
    ]


def test_a_module_that_cannot_be_imported_is_refused_naming_the_control() -> None:
    doc = ctk(
        [{"name": "tracing", "provider": {"type": "python", "module": "chaostracing_not_here.control"}}]
    )
    assert problems(doc) == [
        "ctk.json:8:9: controls[0].provider.module: control 'tracing' (chaostracing_not_here.control): "
        "module 'chaostracing_not_here.control' can't be imported; install the package that provides "
        "it in the environment chaoskit runs in, or remove the control"
    ]


def test_a_control_of_another_provider_type_is_refused_naming_it() -> None:
    doc = ctk([{"name": "remote", "provider": {"type": "http", "url": "http://127.0.0.1:9"}}])
    assert problems(doc) == [
        "ctk.json:7:9: controls[0].provider.type: control 'remote': 'http' controls can't run in "
        "chaoskit (it runs python controls); remove it or run the experiment with Chaos Toolkit"
    ]


def test_an_unknown_scope_is_refused() -> None:
    doc = ctk([{"name": "c", "scope": "during", "provider": {"type": "python", "module": "json"}}])
    assert problems(doc) == [
        "ctk.json:6:7: controls[0].scope: unknown control scope 'during'; use before or after"
    ]


def test_safeguards_still_become_guards_and_preflight_checks() -> None:
    safeguards = {
        "name": "safeguards",
        "provider": {
            "type": "python",
            "module": ctk_controls.SAFEGUARDS,
            "arguments": {"probes": [{**PROBE, "name": "once"}, {**PROBE, "name": "often", "frequency": 2}]},
        },
    }
    experiment = load(ctk([safeguards])).experiment
    assert [p.name for p in experiment.preflight] == ["once"]
    assert [(g.name, g.interval) for g in experiment.guards] == [("often", 2.0)]
    assert experiment.controls == []


def test_a_safeguard_that_is_not_an_activity_is_a_problem_at_its_place() -> None:
    # It was an AttributeError (a traceback), not a problem in the file.
    safeguards = {
        "name": "safeguards",
        "provider": {"type": "python", "module": ctk_controls.SAFEGUARDS, "arguments": {"probes": ["often"]}},
    }
    assert problems(ctk([safeguards])) == [
        "ctk.json:11:13: controls[0].provider.arguments.probes[0]: expected an activity: a mapping with "
        "type:, name: and provider:"
    ]


def test_safeguards_on_an_activity_are_refused() -> None:
    doc = ctk([])
    doc["method"][0]["controls"] = [
        {"name": "sg", "provider": {"type": "python", "module": ctk_controls.SAFEGUARDS, "arguments": {}}}
    ]
    [problem] = problems(doc)
    assert "method[0].controls[0]: control 'sg' (chaosaddons.controls.safeguards) on an activity" in problem


def test_a_control_on_an_activity_applies_to_that_activity_once_even_through_refs() -> None:
    doc = ctk([])
    doc["method"][0]["controls"] = [{"name": "timer", "provider": {"type": "python", "module": "json"}}]
    doc["method"].append({"ref": "act"})
    experiment = load(doc).experiment
    assert experiment.controls == [models.Control(name="timer", module="json", activity="act")]


def test_controls_in_a_native_file() -> None:
    steady = "steady_state: [{probe: python.call, with: {function: 'os.path:isdir', arguments: {s: /}}}]\n"
    text = steady + "title: t\ncontrols:\n  - {name: c, module: json, arguments: {a: 1}, scope: before}\n"
    assert load_yaml(text).experiment.controls == [
        models.Control(name="c", module="json", arguments={"a": 1}, scope="before")
    ]
    with pytest.raises(errors.SpecError) as caught:
        load_yaml(steady + "title: t\ncontrols:\n  - {name: c, module: 'not a module'}\n")
    assert "controls[0].module" in caught.value.problems[0].render()


def test_the_converted_yaml_keeps_the_controls(tmp_path: Path) -> None:
    doc = ctk([{"name": "c", "provider": {"type": "python", "module": "json", "arguments": {"a": 1}}}])
    path = tmp_path / "ctk.json"
    path.write_text(json.dumps(doc))
    text = chaostoolkit.to_yaml(reading.read_chaostoolkit(path))
    assert load_yaml(text).experiment.controls == [
        models.Control(name="c", module="json", arguments={"a": 1})
    ]


def load_yaml(text: str) -> reading.Loaded:
    return reading.load_text(text, name="x.yaml", env={})


def test_a_native_file_with_only_controls_is_not_taken_for_chaos_toolkit() -> None:
    native = {"title": "t", "controls": [{"name": "c", "module": "json"}]}
    assert not chaostoolkit.is_chaostoolkit(native)
    assert load_yaml(json.dumps(native)).experiment.controls == [models.Control(name="c", module="json")]
    assert chaostoolkit.is_chaostoolkit(
        {"title": "t", "controls": [{"name": "c", "provider": {"module": "json"}}]}
    )
    assert chaostoolkit.is_chaostoolkit({"title": "t", "controls": []})
