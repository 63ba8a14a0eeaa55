"""Loading experiment files: every problem, at its file:line:col and YAML path, with a fix."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from chaoskit import errors
from chaoskit.spec import models, parsing, reading


def problems(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(errors.SpecError) as caught:
        reading.load_text(textwrap.dedent(text), name="exp.yaml", **kwargs)  # type: ignore[arg-type]
    assert caught.value.exit_code == errors.ExitCode.INVALID
    return [p.render() for p in caught.value.problems]


GOOD = """\
title: Checkout survives a stopped worker
description: optional text
tags: [checkout]
config: {url: "http://127.0.0.1:8080/health"}
secrets: {token: {env: API_TOKEN}}
steady_state:
  - name: health ok
    id: health
    probe: http.request
    with: {url: "${url}", timeout: 2s}
    expect: {path: status, equals: 200}
method:
  - name: stop worker
    fault: process.stop
    with: {pidfile: /tmp/worker.pid}
    duration: 10s
  - pause: 2s
  - name: under fault
    probe: http.load
    with: {url: "${url}", requests: 200, concurrency: 4, auth: "Bearer ${secrets.token}"}
    expect: {path: success_ratio, above: 0.99}
guards:
  - name: not on fire
    probe: http.request
    with: {url: "${url}", previous: "${steps.health.output.status}"}
    expect: {path: status, equals: 200}
    interval: 1s
recovery: {within: 30s, interval: 1s}
"""


def test_the_issue_example_loads_into_typed_steps() -> None:
    loaded = reading.load_text(GOOD, name="exp.yaml", env={})
    exp = loaded.experiment
    assert loaded.kind == "chaoskit"
    assert exp.title == "Checkout survives a stopped worker"
    assert isinstance(exp.method[0], models.FaultStep)
    assert exp.method[0].duration == 10
    assert isinstance(exp.method[1], models.PauseStep)
    assert exp.method[1].pause == 2
    assert exp.steady_state[0].with_["url"] == "http://127.0.0.1:8080/health"
    # Run-time templates stay as text for the engine to render just before the step runs.
    assert exp.method[2].with_["auth"] == "Bearer ${secrets.token}"  # type: ignore[union-attr]
    assert exp.guards[0].with_["previous"] == "${steps.health.output.status}"
    assert exp.recovery.within == 30


def test_locate_points_at_nodes_and_falls_back_to_the_parent() -> None:
    loaded = reading.load_text(GOOD, name="exp.yaml", env={})
    assert loaded.locate(["method", 0, "fault"]) == (14, 5)
    assert loaded.locate(["method", 0, "with", "pidfile"]) == (15, 12)
    assert loaded.locate(["method", 0, "with", "nope"]) == (15, 5)
    problem = loaded.problem(["method", 0, "fault"], "unknown fault 'process.stop'")
    assert problem.render() == "exp.yaml:14:5: method[0].fault: unknown fault 'process.stop'"
    assert loaded.document["method"][0]["with"] == {"pidfile": "/tmp/worker.pid"}


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    found = problems(
        """\
        title: t
        config: {url: "http://x"}
        steady_state:
          - probe: http.request
            with: {url: "${urll}"}
            expect: {path: status, bellow: 200}
        method:
          - prob: http.load
          - fault: process.stop
            duration: -10s
          - probe: http.request
            timeout: abc
            expect: {path: status, below: abc}
        recovery: {within: 30s, intervall: 1s}
        """
    )
    assert found == [
        "exp.yaml:5:12: steady_state[0].with.url: unknown variable 'urll' (did you mean 'url'?); "
        "define it under config: or pass --var urll=VALUE",
        "exp.yaml:6:28: steady_state[0].expect: unknown key 'bellow' (did you mean 'below'?)",
        "exp.yaml:8:5: method[0]: a step needs exactly one of probe:, use:, fault:, action: or pause:; "
        "unknown key 'prob' (did you mean 'probe'?)",
        "exp.yaml:10:5: method[1].duration: a duration can't be negative, got '-10s'",
        "exp.yaml:12:5: method[2].timeout: not a duration: 'abc'; "
        "write a duration like 250ms, 30s, 5m, 1h or 1m30s",
        "exp.yaml:13:28: method[2].expect.below: 'abc' is not a number",
        "exp.yaml:14:25: recovery: unknown key 'intervall' (did you mean 'interval'?)",
    ]


def test_missing_title_and_wrong_types_read_like_english() -> None:
    found = problems(
        """\
        tags: checkout
        method:
          - action: process.command
            background: maybe
            with: [a]
        """
    )
    assert found == [
        "exp.yaml:1:1: missing required key 'title'",
        "exp.yaml:1:1: tags: 'checkout' is not a list",
        "exp.yaml:4:5: method[0].background: 'maybe' is not true or false",
        'exp.yaml:5:5: method[0].with: ["a"] is not a mapping',
    ]


def test_malformed_yaml_is_one_problem_at_the_parser_position() -> None:
    assert problems("title: x\nmethod:\n  - pause: 1s\n   bad: [\n") == [
        "exp.yaml:4:4: not valid YAML: expected <block end>, but found '<block mapping start>' "
        "(while parsing a block collection)"
    ]


def test_malformed_json_is_one_problem_at_the_parser_position() -> None:
    with pytest.raises(errors.SpecError) as caught:
        reading.load_text('{\n  "title": "x",\n}\n', name="exp.json")
    assert [p.render() for p in caught.value.problems] == [
        "exp.json:3:1: not valid JSON: Expecting property name enclosed in double quotes"
    ]


def test_json_files_load_with_positions() -> None:
    text = json.dumps({"title": "t", "method": [{"pause": "1s", "nam": "x"}]}, indent=2)
    with pytest.raises(errors.SpecError) as caught:
        reading.load_text(text, name="exp.json")
    assert [p.render() for p in caught.value.problems] == [
        "exp.json:6:7: method[0]: unknown key 'nam' (did you mean 'name'?)"
    ]


def test_json_that_yaml_cannot_read_keeps_its_positions_and_duplicate_keys() -> None:
    """Positions came from reading the JSON as YAML, which refuses a key over 1024 characters:
    every problem of such a file lost its FILE:LINE:COL, and duplicate keys went unreported
    (found by the experiment fuzzer)."""
    long_key = "k" * 1100
    text = (
        '{"title": "t",\n "config": {"' + long_key + '": 1, "x": 1,\n   "x": 2},\n'
        ' "method": [{"pause": "1s", "nam": "x"}]}'
    )
    with pytest.raises(errors.SpecError) as caught:
        reading.load_text(text, name="exp.json")
    assert [p.render() for p in caught.value.problems] == [
        "exp.json:3:4: config: duplicate key 'x' (first at line 2); "
        "keep one (otherwise only the last one would count)",
        "exp.json:4:29: method[0]: unknown key 'nam' (did you mean 'name'?)",
    ]


def test_duplicate_keys_are_problems_not_silently_dropped() -> None:
    assert problems("title: a\nmethod: []\ntitle: b\n") == [
        "exp.yaml:3:1: duplicate key 'title' (first at line 1); "
        "keep one (otherwise only the last one would count)"
    ]
    with pytest.raises(errors.SpecError) as caught:
        reading.load_text('{"title": "a",\n "config": {"x": 1,\n  "x": 2}}', name="exp.json")
    assert [p.render() for p in caught.value.problems] == [
        "exp.json:3:3: config: duplicate key 'x' (first at line 2); "
        "keep one (otherwise only the last one would count)"
    ]


def test_unreadable_and_missing_files_name_the_path_and_the_reason(tmp_path: Path) -> None:
    with pytest.raises(errors.SpecError) as caught:
        reading.load(tmp_path / "nope.yaml")
    assert caught.value.problems[0].render() == (
        f"{tmp_path / 'nope.yaml'}: can't read the file: No such file or directory (check the path)"
    )
    with pytest.raises(errors.SpecError, match=r"Is a directory"):
        reading.load(tmp_path)


def test_step_ids_are_unique_and_references_point_backwards() -> None:
    found = problems(
        """\
        title: t
        setup:
          - {id: boot, action: process.start, with: {argv: [x]}}
        method:
          - {id: first, probe: p, with: {a: "${steps.later.output.x}", b: "${steps.boot.output.pid}"}}
          - {id: first, probe: p, with: {a: "${steps.frist.output}", b: "${steps.first.output}"}}
          - {id: later, probe: p, with: {a: "${steps.later.output}", b: "${steps.first}"}}
        """
    )
    assert found == [
        "exp.yaml:5:34: method[0].with.a: step 'later' (method[2]) does not run before this one; "
        "a step can only use the output of an earlier step",
        "exp.yaml:6:6: method[1].id: step id 'first' is already used by method[0]; ids must be unique",
        "exp.yaml:6:34: method[1].with.a: no step has id 'frist' (did you mean 'first'?)",
        "exp.yaml:7:34: method[2].with.a: step 'later' can't use its own output",
        "exp.yaml:7:62: method[2].with.b: write a step output reference as ${steps.<id>.output.<path>}",
    ]


def test_guards_only_see_outputs_from_before_the_method() -> None:
    found = problems(
        """\
        title: t
        method:
          - {id: m, probe: p}
        guards:
          - {probe: p, with: {a: "${steps.m.output}"}}
        """
    )
    assert found == [
        "exp.yaml:5:23: guards[0].with.a: step 'm' (method[0]) does not run before this one; "
        "a step can only use the output of an earlier step"
    ]


def test_inline_secret_values_are_refused_in_native_files() -> None:
    assert problems("title: t\nsecrets: {token: {value: hunter2}}\n") == [
        "exp.yaml:2:19: secrets.token.value: inline secret values are not allowed (they would sit in the "
        "file); use env: NAME or file: PATH"
    ]


def test_loading_from_a_real_file_keeps_its_path(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(GOOD)
    loaded = reading.load(path, env={})
    assert loaded.path == path
    assert loaded.name == str(path)


def test_shape_mistakes_in_steps_and_expects_say_what_is_wanted() -> None:
    found = problems(
        """\
        title: t
        steady_state:
          - fault: process.stop
        method:
          - probe: p
            expect: [{path: a, equals: 1}, {bellow: 3}, 5]
          - {probe: p, fault: f}
          - probe: p
            expect: {between: [1]}
        secrets: {b: {}}
        """
    )
    assert found == [
        "exp.yaml:3:5: steady_state[0]: unknown key 'fault': steady_state holds probes only (probe: or use:)",
        "exp.yaml:6:37: method[0].expect[1]: unknown key 'bellow' (did you mean 'below'?)",
        "exp.yaml:6:49: method[0].expect[2]: 5 is not a mapping",
        "exp.yaml:7:5: method[1]: a step needs exactly one of probe:, use:, fault:, action: or pause:; "
        "this one has probe:, fault:",
        "exp.yaml:9:14: method[2].expect.between: expected [low, high], got one number",
        "exp.yaml:10:11: secrets.b: a secret needs exactly one of env: NAME or file: PATH",
    ]


def test_a_matches_pattern_that_does_not_compile_is_refused_at_its_place() -> None:
    found = problems("title: t\nmethod:\n  - probe: p\n    expect: {path: body, matches: 'ok('}\n")
    assert found == [
        "exp.yaml:4:26: method[0].expect.matches: not a valid regular expression: "
        "missing ), unterminated subpattern at position 2"
    ]


def test_top_level_typos_get_a_suggestion() -> None:
    assert problems("title: t\nstedy_state: []\nmethdo: []\n") == [
        "exp.yaml:2:1: unknown key 'stedy_state' (did you mean 'steady_state'?)",
        "exp.yaml:3:1: unknown key 'methdo' (did you mean 'method'?)",
    ]


def test_text_from_stdin_is_named_in_problems() -> None:
    with pytest.raises(errors.SpecError) as caught:
        reading.load_text("title: [", name="<stdin>")
    assert caught.value.problems[0].file == "<stdin>"
    assert caught.value.render().startswith("1 problem found\n<stdin>:1:")


def test_step_outputs_and_secrets_are_only_filled_in_with() -> None:
    found = problems(
        """\
        title: "t ${secrets.a}"
        secrets: {a: {env: A}}
        method:
          - {id: x, probe: p}
          - probe: p
            with: {a: "${steps.x.output.y}", b: "${secrets.a}"}
            expect: {equals: "${steps.x.output.y}"}
        """
    )
    assert found == [
        "exp.yaml:1:1: title: ${secrets...} can only be used in a step's with: "
        "(it is filled in when the step runs)",
        "exp.yaml:7:14: method[1].expect.equals: ${steps...} can only be used in a step's with: "
        "(it is filled in when the step runs)",
    ]


def test_yaml_anchors_and_merge_keys_work() -> None:
    text = textwrap.dedent(
        """\
        title: t
        x-probe: &health {probe: http.request, with: {url: "http://127.0.0.1:1/"}}
        steady_state:
          - <<: *health
            name: first
          - *health
        """
    )
    loaded = reading.load_text(text, name="exp.yaml")
    assert [s.name for s in loaded.experiment.steady_state] == ["first", None]
    assert [s.probe for s in loaded.experiment.steady_state] == ["http.request", "http.request"]
    assert "x-probe" not in loaded.document
    # Other unknown top-level keys are still refused.
    assert problems(text.replace("x-probe", "probe_defaults")) == [
        "exp.yaml:2:1: unknown key 'probe_defaults'"
    ]


def test_alias_loops_and_alias_bombs_are_problems_not_hangs() -> None:
    assert problems("title: t\nconfig: {a: &x [*x]}\n") == [
        "exp.yaml:2:13: config.a[0]: a YAML alias refers to the mapping or list that contains it; "
        "remove the loop"
    ]
    lines = ["title: t", "config:", "  a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    assert problems("\n".join(lines)) == [
        f"exp.yaml:1:1: the document expands to more than {parsing.MAX_VALUES} values (YAML aliases?)"
    ]


def test_json_indented_with_tabs_keeps_its_positions() -> None:
    with pytest.raises(errors.SpecError) as caught:
        reading.load_text('{\n\t"title": "t",\n\t"method": [{"pause": "-1s"}]\n}\n', name="exp.json")
    assert [p.render() for p in caught.value.problems] == [
        "exp.json:3:14: method[0].pause: a duration can't be negative, got '-1s'"
    ]
