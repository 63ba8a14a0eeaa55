"""The live console, fed by a real run of the fake driver in virtual time."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from chaoskit import testing
from chaoskit.cli import rendering


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None, soft_wrap=True), out


def test_the_console_shows_phases_faults_recovery_time_and_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CK_RENDER_TOKEN", "tok-123456")
    console, out = _console()
    fake = testing.FakeDriver(recovery_delay=2.0)
    doc = {
        "title": "render me",
        "secrets": {"tok": {"env": "CK_RENDER_TOKEN"}},
        "steady_state": [
            {"name": "up", "probe": "fake.status", "expect": {"path": "status", "equals": 200}},
            {"name": "echo", "probe": "fake.value", "with": {"echo": "${secrets.tok}"}},
        ],
        "method": [{"name": "break", "fault": "fake.break", "with": {"targets": ["a"]}, "duration": "5s"}],
        "recovery": {"within": "10s", "interval": "1s"},
    }
    with rendering.LiveConsole(console, live=False) as live:
        journal = testing.run_experiment(doc, drivers=[fake.driver()], clock=fake.clock, subscribers=[live])
    text = out.getvalue()
    assert journal.verdict == "completed"
    for expected in (
        "render me",
        "steady state before",
        "⚡ fake.break on fake a (reverts after 5s)",
        "↺ reverted fake.break on fake a after 5s",
        "poll 1: not yet (0ms after the last revert)",
        "recovered in 2s (deadline 10s)",
        "completed (exit 0)",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"
    assert "tok-123456" not in text and "***" in text


def test_a_failed_check_says_expected_and_got() -> None:
    console, out = _console()
    fake = testing.FakeDriver()
    fake.applied.add("x")
    doc = {
        "title": "not steady",
        "steady_state": [{"name": "up", "probe": "fake.status", "expect": {"path": "status", "equals": 200}}],
    }
    with rendering.LiveConsole(console, live=False) as live:
        testing.run_experiment(doc, drivers=[fake.driver()], clock=fake.clock, subscribers=[live])
    text = out.getvalue()
    assert "✗ up fake.status  status 503 = 200 ✗" in text
    assert "not_steady (exit 3)" in text


def test_a_probe_with_until_shows_its_first_miss_then_how_it_ended() -> None:
    console, out = _console()
    fake = testing.FakeDriver()
    fake.script("seen", lambda t: t >= 3)
    fake.script("never", lambda t: False)
    polled = {"within": "5s", "interval": "1s"}
    doc = {
        "title": "waits",
        "setup": [
            {
                "name": "seen",
                "probe": "fake.value",
                "with": {"key": "seen"},
                "expect": {"equals": True},
                "until": polled,
            },
            {
                "name": "never",
                "probe": "fake.value",
                "with": {"key": "never"},
                "expect": {"equals": True},
                "until": polled,
            },
        ],
    }
    with rendering.LiveConsole(console, live=False) as live:
        testing.run_experiment(doc, drivers=[fake.driver()], clock=fake.clock, subscribers=[live])
    lines = out.getvalue().splitlines()
    seen = [line for line in lines if "seen fake.value" in line]
    assert seen == [
        "  ✗ seen fake.value  output false = true ✗  (polling until it holds)",
        "  ✓ seen fake.value  output true = true ✓  (held at poll 4)",
    ]
    never = [line for line in lines if "never" in line]
    assert never == [
        "  ✗ never fake.value  output false = true ✗  (polling until it holds)",
        "  never: did not hold within 5s (6 polls)",
    ]
