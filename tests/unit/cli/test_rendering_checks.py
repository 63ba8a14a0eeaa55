"""Check lines show what each ``expect`` judged: the value at its path, with its unit, against the
bound; ``http.load`` outputs add their error kinds; never the probe's output as a JSON blob."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from pydantic import JsonValue
from rich.console import Console

from chaoskit import testing
from chaoskit.cli import rendering
from chaoskit.engine import events, journals, phases


def _load_output(success_ratio: float, p99: float, errors: dict[str, int]) -> JsonValue:
    """What ``http.load`` returns (abridged to the fields a line may show, plus a histogram)."""
    kinds: dict[str, JsonValue] = dict(errors)
    return {
        "requests": 200,
        "successes": 200 - sum(errors.values()),
        "success_ratio": success_ratio,
        "errors": kinds,
        "statuses": {"2xx": 200 - sum(errors.values())},
        "latency_ms": {"p50": 12.25, "p90": 80.0, "p99": p99, "p99_9": 190.0, "max": 199.0},
        "histogram": {"unit": "ms", "le": [1.0, 2.0, 4.0, 8.0] * 10, "counts": [5, 5, 5, 5] * 10},
        "protocol": "http/1.1",
    }


EXPECTS: list[dict[str, object]] = [
    {"path": "success_ratio", "between": [0.99, 1.0]},
    {"path": "latency_ms.p99", "below": 200},
]


def _run(value: JsonValue, expect: list[dict[str, object]] | None = EXPECTS) -> str:
    out = io.StringIO()
    console = Console(file=out, width=300, color_system=None, soft_wrap=True)
    fake = testing.FakeDriver()
    fake.script("load", lambda t: value)
    probe: dict[str, object] = {"name": "frontend", "probe": "fake.value", "with": {"key": "load"}}
    if expect is not None:
        probe["expect"] = expect
    doc = {"title": "judged", "steady_state": [probe]}
    with rendering.LiveConsole(console, live=False) as live:
        testing.run_experiment(doc, drivers=[fake.driver()], clock=fake.clock, subscribers=[live])
    return next(line for line in out.getvalue().splitlines() if "frontend fake.value" in line)


def test_a_held_check_shows_each_judged_value_with_its_unit_and_bound() -> None:
    line = _run(_load_output(1.0, 182.437, {}))
    assert line == (
        "  ✓ frontend fake.value  success_ratio 1 in [0.99, 1] ✓ · latency_ms.p99 182.4 ms < 200 ms ✓"
        " · 200 requests, none failed"
    )


def test_a_failed_check_marks_the_expect_that_failed_and_counts_errors_by_kind() -> None:
    line = _run(_load_output(0.955, 150.0, {"timeout": 8, "status_503": 1}))
    assert "success_ratio 0.955 in [0.99, 1] ✗" in line
    assert "latency_ms.p99 150 ms < 200 ms ✓" in line  # the one that held says so
    assert "9 of 200 requests failed: 8 timeout, 1 status_503" in line
    assert "{" not in line and "…" not in line  # no JSON, nothing cut


def test_a_probe_without_expect_shows_what_it_saw_in_brief() -> None:
    line = _run(_load_output(1.0, 30.5, {"connect": 2}), expect=None)
    assert line.startswith(
        "  ✓ frontend fake.value  2 of 200 requests failed: 2 connect · p50 12.25 ms · p99 30.5 ms"
    )
    assert "not judged" in line
    assert "{" not in line


def test_a_missing_path_says_which_expect_and_why() -> None:
    line = _run({"status": 200}, expect=[{"path": "latency_ms.p99", "below": 200}])
    assert "✗ frontend fake.value" in line
    assert "latency_ms.p99 below 200 ✗" in line


def test_a_probe_cancelled_midway_says_so() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None, soft_wrap=True)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    record = journals.StepRecord(
        phase=phases.Phase.METHOD,
        index=1,
        name="users under the latency",
        kind=phases.StepKind.PROBE,
        activity="http.load",
        status=journals.StepStatus.CANCELLED,
        started=at,
        ended=at,
    )
    rendering.LiveConsole(console, live=False)(events.StepEnded(record))
    assert "■ users under the latency http.load 0ms cancelled: the run stopped while it ran" in out.getvalue()


@pytest.mark.parametrize(
    ("value", "expect", "shown"),
    [
        (199.96, {"path": "latency_ms.p99", "below": 200}, "latency_ms.p99 199.96 ms < 200 ms ✓"),
        (200.04, {"path": "latency_ms.p99", "below": 200}, "latency_ms.p99 200.04 ms < 200 ms ✗"),
        (0.9899, {"path": "success_ratio", "between": [0.99, 1]}, "success_ratio 0.9899 in [0.99, 1] ✗"),
        (0.9951, {"path": "success_ratio", "between": [0.99, 1]}, "success_ratio 0.995 in [0.99, 1] ✓"),
    ],
)
def test_a_value_rounded_for_reading_never_reads_as_its_bound(
    value: float, expect: dict[str, object], shown: str
) -> None:
    path = str(expect["path"])
    output: JsonValue = (
        {"latency_ms": {"p99": value}} if path.startswith("latency") else {"success_ratio": value}
    )
    assert shown in _run(output, expect=[expect])


def test_big_outputs_are_summed_up_and_markup_in_them_is_printed_as_is() -> None:
    big: JsonValue = {"items": [{"name": f"pod-{i}", "ready": True} for i in range(40)], "kind": "[bold]List"}
    line = _run(big, expect=[{"path": "items", "between": [0, 1]}])
    assert "items [40 items] in [0, 1] ✗" in line
    recorded = _run(big, expect=None)
    assert "kind '[bold]List'" in recorded and "not judged" in recorded
    assert _run([1] * 50, expect=None).startswith("  ✓ frontend fake.value  [50 items]  (not judged)")


@pytest.mark.parametrize(
    ("output", "expect", "shown"),
    [
        ({"status": 503}, {"path": "status", "in": [200, 204]}, "status 503 in [200, 204] ✗"),
        ({"body": "fail"}, {"path": "body", "matches": "ok"}, "body 'fail' matches /ok/ ✗"),
        ({"v": -1}, {"path": "v", "below": 10, "above": 0}, "v -1 < 10 and > 0 ✗"),
        (
            {"items": [{"ready": True}, {"ready": False}]},
            {"jsonpath": "$.items[*].ready", "equals": True},
            "output $.items[*].ready equals true ✗",
        ),
    ],
)
def test_every_kind_of_expect_marks_its_own_failure(
    output: JsonValue, expect: dict[str, object], shown: str
) -> None:
    line = _run(output, expect=[expect])
    assert line.startswith("  ✗ frontend fake.value  ")
    assert shown in line
