"""What ``chaoskit validate`` says about a newcomer's slips: a typo'd argument, a value of the
wrong type, a YAML syntax error. Each is one problem, at the place to change, in chaoskit's words."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from chaoskit.cli import main


def _problems(tmp_path: Path, text: str) -> list[str]:
    """``chaoskit validate``'s problem lines, without the file name; it must exit 2 without a traceback."""
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main.cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return [
        line.removeprefix(f"{path}:") for line in result.output.splitlines() if line.startswith(str(path))
    ]


HEAD = "title: t\ndescription: d\n"


def test_a_typo_in_with_is_one_problem_at_the_typo_naming_the_argument_meant(tmp_path: Path) -> None:
    found = _problems(
        tmp_path,
        HEAD + "method:\n"
        "  - fault: toxiproxy.latency\n"
        "    with: {url: 'http://127.0.0.1:9', proxy: backend, latncy: 300ms}\n"
        "    duration: 1s\n",
    )
    # Not also "latency: required argument missing": the typo is that argument.
    assert found == ["5:55: method[0].with: unknown argument 'latncy' (did you mean 'latency'?)"]


def test_an_unknown_argument_far_from_any_still_leaves_the_missing_one_reported(tmp_path: Path) -> None:
    found = _problems(
        tmp_path,
        HEAD + "method:\n"
        "  - fault: toxiproxy.latency\n"
        "    with: {url: 'http://127.0.0.1:9', proxy: backend, colour: red}\n"
        "    duration: 1s\n",
    )
    assert set(found) == {
        "5:5: method[0].with.latency: required argument missing",
        "5:55: method[0].with: unknown argument 'colour'",
    }


def test_type_errors_name_the_value_given_in_chaoskits_words(tmp_path: Path) -> None:
    found = _problems(
        tmp_path,
        HEAD + "steady_state:\n"
        "  - probe: http.load\n"
        "    with: {url: 'http://127.0.0.1:9/', requests: 2, concurrency: four, timeout: [1]}\n"
        "method:\n"
        "  - action: process.command\n"
        "    with: {argv: [true]}\n"
        "    timeout: [1]\n",
    )
    assert set(found) == {
        "5:53: steady_state[0].with.concurrency: 'four' is not an integer",
        "5:72: steady_state[0].with.timeout: [1] is not a duration; "
        "write a duration like 250ms, 30s, 5m, 1h or 1m30s",
        "9:5: method[0].timeout: [1] is not a duration; write a duration like 250ms, 30s, 5m, 1h or 1m30s",
    }
    assert not any("Input should be" in line for line in found)


def test_bounds_in_with_name_the_bound_and_the_value(tmp_path: Path) -> None:
    found = _problems(
        tmp_path,
        HEAD + "method:\n"
        "  - fault: toxiproxy.latency\n"
        "    with: {url: 'http://127.0.0.1:9', proxy: b, latency: 1s, toxicity: 7}\n"
        "    duration: 1s\n",
    )
    assert found == ["5:62: method[0].with.toxicity: must be at most 1.0, got 7"]


def test_type_errors_outside_with_read_the_same_way(tmp_path: Path) -> None:
    found = _problems(
        tmp_path,
        HEAD + "tags: checkout\nmethod:\n  - action: process.command\n"
        "    with: {argv: [x]}\n    background: maybe\n",
    )
    assert found == [
        "3:1: tags: 'checkout' is not a list",
        "7:5: method[0].background: 'maybe' is not true or false",
    ]


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        pytest.param(
            HEAD + "method:\n  - fault: toxiproxy.latency\n    with: {url: x, proxy: b\n    duration: 1s\n",
            5,
            "5:28: not valid YAML: the '{' opened at line 5 col 11 is not closed; end it with '}' here",
            id="unclosed brace, the next line reads on",
        ),
        pytest.param(
            HEAD + "config: {a: 1, b: 2   # the end\n\n\nmethod: []\n",
            3,
            "3:20: not valid YAML: the '{' opened at line 3 col 9 is not closed",
            id="unclosed brace before blank lines and a comment",
        ),
        pytest.param(
            HEAD + "tags: [a, b\nmethod: []\n",
            3,
            "3:12: not valid YAML: the '[' opened at line 3 col 7 is not closed; end it with ']' here",
            id="unclosed bracket",
        ),
        pytest.param(
            HEAD + "method:\n  - pause: 1s\n     timeout: 2s\n",
            5,
            "5:13: not valid YAML: mapping values are not allowed here",
            id="bad indentation",
        ),
        pytest.param(
            HEAD + "method:\n\t- pause: 1s\n",
            4,
            "4:1: not valid YAML: found character '\\t' that cannot start any token",
            id="tab",
        ),
        pytest.param(
            HEAD + 'tags: ["a, b]\nmethod:\n  - pause: 1s\n',
            3,
            "3:8: not valid YAML: this quote is never closed",
            id="unclosed quote",
        ),
    ],
)
def test_a_yaml_syntax_error_names_the_line_to_change(
    tmp_path: Path, text: str, line: int, says: str
) -> None:
    found = _problems(tmp_path, text)
    assert len(found) == 1
    assert found[0].split(":")[0] == str(line)
    assert found[0].startswith(says)
