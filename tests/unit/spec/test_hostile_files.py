"""Files nobody means to write, through the CLI: nested hundreds of levels deep, durations with
hundreds of digits, bytes that are not UTF-8. Each is exit 2 with FILE:LINE:COL, never a traceback."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from chaoskit import durations
from chaoskit.cli.main import cli

OK = "title: t\nmethod:\n  - pause: 10ms\n"


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def problems(result: Result, path: Path) -> list[tuple[int, int, str]]:
    """(line, col, rest) of each problem line; every line must be located in ``path``."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert re.fullmatch(r"error: \d+ problems? found", lines[0]), result.stderr
    found = []
    for line in lines[1:]:
        match = re.fullmatch(rf"{re.escape(str(path))}:([1-9]\d*):([1-9]\d*): (.*)", line)
        assert match, f"not FILE:LINE:COL: {line!r}"
        found.append((int(match[1]), int(match[2]), match[3]))
    return found


# --- nesting --------------------------------------------------------------------------------

DEEP = 500


@pytest.mark.parametrize(
    ("suffix", "text", "where"),
    [
        (".yaml", f"title: t\nmethod: []\nx-a: {'[' * DEEP}{']' * DEEP}\n", (3, 105)),
        (
            ".yaml",
            "title: t\nmethod: []\nx-a:\n"
            + "".join("  " * (i + 1) + "k:\n" for i in range(DEEP))
            + "  " * (DEEP + 1)
            + "1\n",
            (102, 199),
        ),
        (".json", '{"title": "t", "method": [], "a": ' + "[" * 5000 + "]" * 5000 + "}", (1, 134)),
        (".json", '{"a": ' + '{"b": ' * DEEP + "1" + "}" * DEEP + "}", (1, 601)),
    ],
    ids=["yaml-lists", "yaml-mappings", "json-lists", "json-mappings"],
)
def test_a_document_nested_hundreds_deep_is_a_located_problem(
    tmp_path: Path, suffix: str, text: str, where: tuple[int, int]
) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text(text, encoding="utf-8")
    [(line, col, message)] = problems(invoke("validate", str(path)), path)
    assert (line, col) == where
    assert "nested more than 100 levels deep" in message


def test_aliases_that_stack_past_the_limit_are_a_problem_at_their_key(tmp_path: Path) -> None:
    # Each alias nests 60 levels (within the limit); one inside the other they make 180.
    path = tmp_path / "aliases.yaml"
    path.write_text(
        "title: t\nmethod: []\n"
        f"x-a: &a {'[' * 60}1{']' * 60}\n"
        f"x-b: &b {'[' * 60}*a{']' * 60}\n"
        f"config: {{c: {'[' * 60}*b{']' * 60}}}\n",
        encoding="utf-8",
    )
    found = problems(invoke("validate", str(path)), path)
    assert [(line, rest.split(":")[0]) for line, _, rest in found] == [(4, "x-b"), (5, "config")]
    assert all("nested more than 100 levels deep" in rest for _, _, rest in found)


def test_a_var_file_nested_hundreds_deep_is_a_located_problem(tmp_path: Path) -> None:
    experiment = tmp_path / "ok.yaml"
    experiment.write_text(OK, encoding="utf-8")
    var_file = tmp_path / "vars.yaml"
    var_file.write_text(f"a: {'[' * DEEP}{']' * DEEP}\n", encoding="utf-8")
    result = invoke("run", str(experiment), "--var-file", str(var_file), "--dry-run")
    [(line, _, message)] = problems(result, var_file)
    assert line == 1 and "nested more than 100 levels deep" in message


# --- durations ------------------------------------------------------------------------------

STEPS = """title: t
method:
  - fault: process.stop
    with: {{name: chaoskit-no-such-process}}
    duration: {duration}
    timeout: {timeout}
  - probe: process.running
    with: {{name: chaoskit-no-such-process}}
    until: {{within: {within}, interval: {interval}}}
  - pause: {pause}
guards:
  - {{probe: process.running, with: {{name: x}}, interval: {guard}}}
recovery: {{within: {recovery}, interval: 1s}}
"""


def test_absurd_durations_are_refused_with_their_path_and_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "durations.yaml"
    path.write_text(
        STEPS.format(
            duration="1e309",
            timeout="1e300",
            within=".inf",
            interval="-1",
            pause="9" * 400,
            guard=".nan",
            recovery="31d",
        ),
        encoding="utf-8",
    )
    found = {
        rest.split(": ", 1)[0]: rest.split(": ", 1)[1]
        for _, _, rest in problems(invoke("validate", str(path)), path)
    }
    bound = "a duration can be at most 30d (2592000 seconds)"
    assert found["method[0].duration"] == f"{bound}, got '1e309'"
    assert found["method[0].timeout"] == f"{bound}, got '1e300'"
    assert found["method[1].until.within"] == f"{bound}, got inf"
    assert found["method[1].until.interval"] == "a duration can't be negative, got -1"
    assert found["method[2].pause"].startswith(f"{bound}, got a number of about 400 digits")
    assert found["guards[0].interval"].startswith("not a duration: nan")
    assert found["recovery.within"] == f"{bound}, got '31d'"


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_number_with_more_digits_than_python_converts_is_a_refused_duration(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"pause{suffix}"
    digits = "9" * 5000
    text = (
        f"title: t\nmethod:\n  - pause: {digits}\n"
        if suffix == ".yaml"
        else f'{{"title": "t", "method": [{{"pause": {digits}}}]}}'
    )
    path.write_text(text, encoding="utf-8")
    [(_, _, message)] = problems(invoke("validate", str(path)), path)
    assert message.startswith("method[0].pause: a duration can be at most 30d")


def test_thirty_days_is_still_a_duration(tmp_path: Path) -> None:
    path = tmp_path / "month.yaml"
    path.write_text("title: t\nmethod:\n  - pause: 30d\nrecovery: {within: 2592000}\n", encoding="utf-8")
    assert invoke("validate", str(path)).exit_code == 0


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**500), 10**500))
def test_a_duration_is_a_finite_number_of_seconds_from_0_to_30_days(value: float) -> None:
    try:
        seconds = durations.parse(value)
    except ValueError as e:
        assert (isinstance(value, float) and math.isnan(value)) or not 0 <= value <= durations.MAX, e
        assert len(str(e)) < 200
    else:
        assert 0 <= seconds <= durations.MAX and seconds == float(value)


@given(st.integers(0, 10**6), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_a_spelled_duration_is_refused_exactly_when_longer_than_30_days(amount: int, unit: str) -> None:
    seconds = amount * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    try:
        assert durations.parse(f"{amount}{unit}") == pytest.approx(seconds)
    except ValueError as e:
        assert seconds > durations.MAX and "at most 30d" in str(e)
    else:
        assert seconds <= durations.MAX


# --- encodings ------------------------------------------------------------------------------

LATIN_1 = "title: t\nmethod: []\ndescription: caf\u00e9\n".encode("latin-1")


@pytest.mark.parametrize(
    ("content", "where"),
    [(LATIN_1, (3, 17)), (bytes(range(256)), (2, 118))],
    ids=["latin-1", "random-bytes"],
)
def test_validate_locates_the_first_byte_that_is_not_utf8(
    tmp_path: Path, content: bytes, where: tuple[int, int]
) -> None:
    path = tmp_path / "experiment.yaml"
    path.write_bytes(content)
    [(line, col, message)] = problems(invoke("validate", str(path)), path)
    assert (line, col) == where
    assert message.startswith("not UTF-8 text (byte 0x") and "save the file as UTF-8" in message


def test_a_var_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    experiment = tmp_path / "ok.yaml"
    experiment.write_text(OK, encoding="utf-8")
    var_file = tmp_path / "vars.yaml"
    var_file.write_bytes(b"a: caf\xe9\n")
    result = invoke("run", str(experiment), "--var-file", str(var_file), "--dry-run")
    [(line, col, message)] = problems(result, var_file)
    assert (line, col) == (1, 7) and "not UTF-8" in message


def test_catalog_probe_files_deep_or_not_utf8_are_located_problems(tmp_path: Path) -> None:
    probes = tmp_path / "probes"
    probes.mkdir()
    (probes / "latin.yaml").write_bytes(b"name: x\ndescription: caf\xe9\n")
    result = invoke("probes", "--probes-path", str(probes))
    [(line, col, message)] = problems(result, probes / "latin.yaml")
    assert (line, col) == (2, 17) and message.startswith("not UTF-8 text")
    (probes / "latin.yaml").unlink()
    (probes / "deep.yaml").write_text(
        f"name: y\ndescription: d\nprobe: {{probe: x, with: {{a: {'[' * DEEP}{']' * DEEP}}}}}\n",
        encoding="utf-8",
    )
    result = invoke("probes", "--probes-path", str(probes))
    [(line, _, message)] = problems(result, probes / "deep.yaml")
    assert line == 3 and message == "not valid YAML: nested more than 100 levels deep; flatten the document"
