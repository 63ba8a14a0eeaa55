"""The console's undo lines say which process each undo stopped: its step and its pid."""

from __future__ import annotations

import io
import re

from rich.console import Console

from chaoskit import testing
from chaoskit.cli import rendering
from chaoskit.drivers.process import driver as process_driver


def test_each_undone_process_start_names_its_step_and_pid() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None, soft_wrap=True)
    fake = testing.FakeDriver()
    doc = {
        "title": "three processes",
        "setup": [
            {"action": "process.start", "with": {"argv": ["sleep", "60"]}},
            {"action": "process.start", "with": {"argv": ["sleep", "61"]}},
            {"name": "the api", "action": "process.start", "with": {"argv": ["sleep", "62"]}},
        ],
        "steady_state": [{"name": "up", "probe": "fake.status", "expect": {"path": "status", "equals": 200}}],
    }
    with rendering.LiveConsole(console, live=False) as live:
        journal = testing.run_experiment(
            doc, drivers=[fake.driver(), process_driver()], clock=fake.clock, subscribers=[live]
        )
    text = out.getvalue()
    assert journal.verdict == "completed", text
    started = [step.output["pid"] for step in journal.steps if step.activity == "process.start"]
    undone = re.findall(r"undone: (.*)", text)
    # Newest first, each with the pid it stopped.
    assert undone == [
        f"the api process.start sleep pid {started[2]} (reverted)",
        f"process.start sleep pid {started[1]} (reverted)",
        f"process.start sleep pid {started[0]} (reverted)",
    ], text
