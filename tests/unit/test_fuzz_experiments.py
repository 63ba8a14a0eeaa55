"""Experiment files generated from the real step vocabulary, then mutated, through the CLI
(``chaoskit validate`` and ``chaoskit run --dry-run``, in-process): exit 0 or 2, never a traceback,
and every problem line says FILE:LINE:COL.

``tests/unit/spec/test_robustness.py`` fuzzes the loader with shapeless documents; this one builds
documents that are nearly right (real fault, probe and action names, real argument names), so the
planner, the argument checks and the CLI's rendering are reached too. ``bench/fuzz.py`` runs the
same checks on 10,000 cases.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaoskit.cli import main

# Names a user types. Docker and Kubernetes ones only go through `validate`: a dry run resolves
# targets, and with no engine or cluster here that is slow without testing anything more.
LOCAL_FAULTS = ["process.stop", "process.kill", "toxiproxy.latency", "toxiproxy.down", "toxiproxy.toxic"]
REMOTE_FAULTS = ["docker.container.pause", "docker.network.partition", "kubernetes.deployment.scale"]
PROBES = ["http.request", "http.load", "tcp.connect", "process.running", "python.call", "toxiproxy.proxy"]
ACTIONS = ["process.start", "process.command", "python.call"]
ARGS = [
    "pid", "name", "regex", "url", "proxy", "latency", "jitter", "stream", "type", "attributes", "argv",
    "call", "args", "kwargs", "timeout", "requests", "concurrency", "host", "port", "count", "all",
    "percent", "max_targets", "replicas", "namespace", "label_selector", "wait_for", "duration",
]  # fmt: skip
STEP_KEYS = [
    "name", "id", "with", "expect", "duration", "background", "irreversible", "interval", "timeout",
    "when", "retries", "pause", "probe", "fault", "action", "use",
]  # fmt: skip
TOP_KEYS = [
    "title", "description", "tags", "config", "secrets", "setup", "steady_state", "method", "guards",
    "rollbacks", "teardown", "recovery", "x-anchors",
]  # fmt: skip
WORDS = [
    "", "x", "backend", "sleep", "1s", "250ms", "-1s", "1x", "10m", "0", "os:getpid", "json:dumps",
    "nomodule:f", "${port}", "${missing}", "${env:HOME}", "${secrets.token}", "${steps.a.output.x}",
    "http://127.0.0.1:1/", "127.0.0.1:1", "SIGKILL", "latency", "downstream", "ok", "[", "{", "*", "&a",
]  # fmt: skip
# Processes matched by the fuzzer must never exist: the dry run resolves targets for real.
PROCESS_NAMES = ["chaoskit-fuzz-nothing", "^chaoskit-fuzz-none$"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 70000),
    st.floats(-1e3, 1e3, allow_nan=False),
    st.sampled_from(WORDS),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(ARGS), inner, max_size=3),
    max_leaves=8,
)
expects = st.one_of(
    st.fixed_dictionaries(
        {"path": st.sampled_from(["status", "latency_ms.p99", "running", "x[0]", ""])},
        optional={
            "equals": scalars,
            "below": scalars,
            "above": scalars,
            "between": st.lists(scalars, max_size=3),
            "in": st.lists(scalars, max_size=3),
            "matches": scalars,
        },
    ),
    values,
)


def step_of(kind: str, names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {kind: st.sampled_from(names)},
        optional={
            "name": st.sampled_from(["a step", "b", ""]),
            "id": st.sampled_from(["a", "b", "a b", "1"]),
            "with": st.dictionaries(st.sampled_from(ARGS), values, max_size=4)
            | st.fixed_dictionaries({"name": st.sampled_from(PROCESS_NAMES)}),
            "expect": expects | st.lists(expects, max_size=2),
            "duration": scalars,
            "background": st.booleans() | scalars,
            "irreversible": st.sampled_from(["ok", "yes", True]),
        },
    )


def steps(faults: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        step_of("fault", faults),
        step_of("probe", PROBES),
        step_of("action", ACTIONS),
        st.fixed_dictionaries({"pause": scalars}),
    )


def experiments(faults: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    some = st.lists(steps(faults), max_size=3)
    return st.fixed_dictionaries(
        {"title": st.sampled_from(["fuzz", "", "a title"]), "method": some},
        optional={
            "steady_state": some,
            "guards": st.lists(st.fixed_dictionaries({"interval": scalars}) | steps(faults), max_size=2),
            "setup": some,
            "rollbacks": some,
            "teardown": some,
            "config": st.dictionaries(st.sampled_from(["port", "url", "name"]), scalars, max_size=3),
            "secrets": st.dictionaries(st.sampled_from(["token"]), values, max_size=1),
            "recovery": st.dictionaries(st.sampled_from(["within", "interval", "x"]), scalars, max_size=2),
            "tags": values,
        },
    )


def _paths(node: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*here, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*here, i))


def _mutate(doc: Any, data: st.DataObject) -> Any:
    """One structural mutation: delete, retype, misspell a key, add an unknown key, or duplicate."""
    paths = [p for p in _paths(doc) if p]
    if not paths:
        return data.draw(values)
    path = data.draw(st.sampled_from(paths))
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    op = data.draw(st.sampled_from(["delete", "replace", "misspell", "unknown", "wrap"]))
    if op == "delete":
        del parent[last]
    elif op == "replace":
        parent[last] = data.draw(values)
    elif op == "wrap":
        parent[last] = [parent[last]]
    elif isinstance(parent, dict):
        key = str(last)
        new = key[:-1] + "x" if op == "misspell" else data.draw(st.sampled_from(STEP_KEYS + TOP_KEYS))
        parent[new] = parent.pop(last) if op == "misspell" else data.draw(values)
    return doc


def _serialise(doc: Any, data: st.DataObject) -> tuple[str, str]:
    """The document as YAML or JSON, sometimes with a few characters dropped or inserted."""
    if data.draw(st.booleans()):
        text, suffix = yaml.safe_dump(doc, sort_keys=False), ".yaml"
    else:
        text, suffix = json.dumps(doc, indent=2), ".json"
    for _ in range(data.draw(st.integers(0, 2))):
        at = data.draw(st.integers(0, len(text)))
        if data.draw(st.booleans()):
            text = text[:at] + text[at + 1 :]
        else:
            text = (
                text[:at]
                + data.draw(st.sampled_from([":", "-", "\t", "'", '"', "{", "]", "\n  ", "&", "*"]))
                + text[at:]
            )
    return text, suffix


def documents(faults: list[str]) -> Callable[[st.DataObject], tuple[str, str]]:
    def draw(data: st.DataObject) -> tuple[str, str]:
        doc = data.draw(experiments(faults))
        for _ in range(data.draw(st.integers(0, 3))):
            doc = _mutate(doc, data)
        return _serialise(doc, data)

    return draw


LOCATED = re.compile(r"^(?P<file>.+):(?P<line>[1-9]\d*):(?P<col>[1-9]\d*): \S")


def check(args: list[str], text: str, suffix: str, folder: Path) -> int:
    """Run one command on one file; the checks a user relies on. Returns the exit code."""
    path = folder / f"experiment{suffix}"
    path.write_text(text)
    result = CliRunner().invoke(main.cli, [*[a.replace("FILE", str(path)) for a in args]])
    shown = f"$ chaoskit {' '.join(args)}\n--- file ---\n{text}\n--- output ---\n{result.output}"
    assert "Traceback" not in result.output, shown
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    assert result.exit_code in (0, 2), shown
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert lines and re.match(r"^error: \d+ problems? found$", lines[0]), shown
        for line in lines[1:]:
            match = LOCATED.match(line)
            assert match and match["file"] == str(path), f"no FILE:LINE:COL in {line!r}\n{shown}"
    return result.exit_code


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="chaoskit-fuzz-") as tmp:
        yield Path(tmp)


# Random cases on every run, like every property test here (scripts/test prints the seed that
# replays them). CHAOSKIT_FUZZ_EXAMPLES=5000 searches longer locally; `python -m bench fuzz` runs
# 10,000 cases with its own seeds.
FUZZ = settings(
    max_examples=int(os.environ.get("CHAOSKIT_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ
@given(st.data())
def test_validate_answers_every_mutated_experiment_with_located_problems(
    folder: Path, data: st.DataObject
) -> None:
    text, suffix = documents(LOCAL_FAULTS + REMOTE_FAULTS)(data)
    check(["validate", "FILE"], text, suffix, folder)


@FUZZ
@given(st.data())
def test_dry_run_answers_every_mutated_experiment_with_located_problems(
    folder: Path, data: st.DataObject
) -> None:
    text, suffix = documents(LOCAL_FAULTS)(data)
    check(["run", "FILE", "--dry-run", "--state-dir", str(folder / "state")], text, suffix, folder)


def test_the_checks_tell_a_valid_file_from_a_located_problem(folder: Path) -> None:
    ok = check(
        ["validate", "FILE"],
        "title: t\nmethod:\n  - probe: process.running\n    with: {name: x}\n",
        ".yaml",
        folder,
    )
    assert ok == 0
    broken = check(["validate", "FILE"], "title: t\nmethod:\n  - probe: process.runing\n", ".yaml", folder)
    assert broken == 2
