"""``chaoskit gameday run|schedule|next`` as real subprocesses, against a real local HTTP server
that is both the system under test (GET) and the notification webhook (POST)."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import junitparser
import pytest

from chaoskit.gameday import daemons, firing, plans
from tests import servers


@dataclass
class Server:
    port: int = 0
    hooks: list[dict[str, object]] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(servers.Quiet):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            state.hooks.append(json.loads(body))
            state.auth.append(self.headers.get("authorization"))
            self.send_response(204)
            self.end_headers()

    with servers.serving(Handler) as url:
        state.port = int(url.rsplit(":", 1)[1])
        yield state


EXPERIMENT = """
title: answers ${status}
config: {status: 200}
steady_state:
  - name: answers
    probe: http.request
    with: {url: "${url}", timeout: 5s}
    expect: {path: status, equals: "${status}"}
method:
  - pause: 200ms
  - name: still answers
    probe: http.request
    with: {url: "${url}", timeout: 5s}
    expect: {path: status, equals: 200}
recovery: {within: 30s, interval: 250ms}
"""


def write_plan(tmp_path: Path, server: Server, extra: str = "", experiments: str = "") -> Path:
    (tmp_path / "answers.yaml").write_text(EXPERIMENT, encoding="utf-8")
    url = f"http://127.0.0.1:{server.port}"
    body = experiments or (
        "  - file: answers.yaml\n"
        "  - parallel:\n"
        "      - {file: answers.yaml, name: left}\n"
        "      - {file: answers.yaml, name: right}\n"
    )
    path = tmp_path / "plan.yaml"
    path.write_text(
        "title: Integration GameDay\n"
        "name: integration\n"
        f"vars: {{url: '{url}/health'}}\n"
        f"experiments:\n{body}"
        "notify:\n"
        "  webhook:\n"
        f"    url: {url}/hook/SECRET-PATH\n"
        "    secret_headers: {Authorization: {env: HOOK_TOKEN}}\n" + extra,
        encoding="utf-8",
    )
    return path


def chaoskit(tmp_path: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHAOSKIT_STATE_DIR": str(tmp_path / "state"), "HOOK_TOKEN": "Bearer t0ken"}
    return subprocess.run(
        [sys.executable, "-m", "chaoskit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=tmp_path,
        check=False,
    )


def test_gameday_run_reports_scores_records_and_notifies(tmp_path: Path, server: Server) -> None:
    plan = write_plan(tmp_path, server)
    done = chaoskit(
        tmp_path,
        "gameday",
        "run",
        str(plan),
        "--report",
        "gd.html",
        "--junit",
        "gd.xml",
        "--markdown",
        "gd.md",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "GameDay Integration GameDay: completed, score" in done.stdout
    (hook,) = server.hooks
    assert server.auth == ["Bearer t0ken"]
    assert hook["kind"] == "chaoskit.gameday" and hook["verdict"] == "completed" and hook["exit_code"] == 0
    experiments = hook["experiments"]
    assert isinstance(experiments, list)
    assert [e["name"] for e in experiments] == ["answers 200", "left", "right"]
    assert isinstance(hook["score"], float) and 50 < hook["score"] <= 100
    suites = list(junitparser.JUnitXml.fromfile(str(tmp_path / "gd.xml")))
    assert len(suites) == 3 and all(case.is_passed for suite in suites for case in suite)
    page = (tmp_path / "gd.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 3 and "GameDay score" in page
    assert "GameDay score **" in (tmp_path / "gd.md").read_text(encoding="utf-8")
    assert "SECRET-PATH" not in done.stdout + done.stderr
    history = chaoskit(tmp_path, "history", "integration", "--output", "json")
    assert sorted(r["run_id"] for r in json.loads(history.stdout)) == sorted(e["run_id"] for e in experiments)


def test_stop_on_deviated_skips_the_rest_and_exits_1(tmp_path: Path, server: Server) -> None:
    plan = write_plan(
        tmp_path,
        server,
        extra="stop_on: deviated\n",
        experiments=(
            "  - {file: answers.yaml, name: deviates}\n  - {file: answers.yaml, name: never runs}\n"
        ),
    )
    # The method's probe now expects a status the server never sends: the experiment deviates.
    (tmp_path / "answers.yaml").write_text(
        EXPERIMENT.replace("expect: {path: status, equals: 200}", "expect: {path: status, equals: 418}"),
        encoding="utf-8",
    )
    done = chaoskit(tmp_path, "gameday", "run", str(plan), "--output", "json")
    assert done.returncode == 1, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary["verdict"] == "deviated" and summary["skipped"] == ["never runs"]
    assert server.hooks == [summary]


def test_a_gameday_never_overlaps_another_of_the_same_plan(tmp_path: Path, server: Server) -> None:
    plan = write_plan(tmp_path, server)
    with daemons.holding(tmp_path / "state", "integration") as locked:
        assert locked
        done = chaoskit(tmp_path, "gameday", "run", str(plan))
    assert done.returncode == 4
    assert "another GameDay of plan 'integration' is running" in done.stderr
    assert server.hooks == []
    assert chaoskit(tmp_path, "gameday", "run", str(plan)).returncode == 0


def test_a_bad_plan_exits_2_with_its_location(tmp_path: Path, server: Server) -> None:
    plan = write_plan(tmp_path, server, extra="stop_onn: deviated\n")
    done = chaoskit(tmp_path, "gameday", "run", str(plan))
    assert done.returncode == 2
    assert f"{plan}:13:1: unknown key 'stop_onn' (did you mean 'stop_on'?)" in done.stderr
    assert "Traceback" not in done.stderr and server.hooks == []


def test_the_daemon_runs_on_schedule_and_records_the_fire(tmp_path: Path, server: Server) -> None:
    plan = write_plan(tmp_path, server, extra="schedule: {random: {mean: 2s, min_interval: 1s}}\n")
    done = chaoskit(tmp_path, "gameday", "schedule", str(plan), "--max-runs", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "starting run of integration" in done.stdout
    assert "run of integration finished: completed" in done.stdout
    with sqlite3.connect(tmp_path / "state" / "schedules.sqlite3") as db:
        rows = db.execute("SELECT status, verdict FROM fires WHERE key = 'integration'").fetchall()
    assert rows == [("finished", "completed")]
    assert len(server.hooks) == 1
    # Random mode continues from the daemon's last fire: `next` prints the daemon's own chain of draws.
    shown = chaoskit(tmp_path, "gameday", "next", str(plan), "-n", "3", "--output", "json")
    assert shown.returncode == 0, shown.stderr
    fires = [datetime.fromisoformat(f["at"]) for f in json.loads(shown.stdout)]
    loaded = plans.load(plan)
    assert loaded.plan.schedule is not None
    with sqlite3.connect(tmp_path / "state" / "schedules.sqlite3") as db:
        (last,) = db.execute("SELECT max(nominal) FROM fires").fetchone()
    chain = [
        f.at for f in firing.upcoming(loaded.plan.schedule, datetime.fromisoformat(last), "integration", 500)
    ]
    assert len(fires) == 3 and fires[0] in chain
    start = chain.index(fires[0])
    assert fires == chain[start : start + 3]


def read_until(process: subprocess.Popen[str], marker: str, seconds: float = 90) -> str:
    assert process.stdout is not None
    seen = ""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + seconds
    while marker not in seen and time.monotonic() < deadline and process.poll() is None:
        if selector.select(timeout=1):
            seen += process.stdout.readline()
    return seen


def test_sigterm_stops_the_waiting_daemon_cleanly(tmp_path: Path, server: Server) -> None:
    plan = write_plan(tmp_path, server, extra="schedule: {cron: '0 3 1 1 *', timezone: Europe/Berlin}\n")
    env = {**os.environ, "CHAOSKIT_STATE_DIR": str(tmp_path / "state")}
    process = subprocess.Popen(
        [sys.executable, "-m", "chaoskit", "gameday", "schedule", str(plan)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        seen = read_until(process, "next run of integration at")
        assert "next run of integration at" in seen and "-01-01T03:00:00+01:00" in seen, seen
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
        assert process.returncode == 0, seen + rest
        assert "scheduler for integration stopped" in rest
        assert server.hooks == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_sigterm_during_a_run_interrupts_it_records_it_and_exits_0(tmp_path: Path, server: Server) -> None:
    plan = write_plan(
        tmp_path,
        server,
        extra="schedule: {random: {mean: 2s, min_interval: 1s}}\n",
        experiments="  - file: answers.yaml\n  - {file: answers.yaml, name: never runs}\n",
    )
    (tmp_path / "answers.yaml").write_text(
        EXPERIMENT.replace("pause: 200ms", "pause: 300s"), encoding="utf-8"
    )
    env = {**os.environ, "CHAOSKIT_STATE_DIR": str(tmp_path / "state"), "HOOK_TOKEN": "x"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chaoskit",
            "gameday",
            "schedule",
            str(plan),
            "--journal-dir",
            str(tmp_path / "j"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        seen = read_until(process, "running answers 200")
        assert "running answers 200" in seen, seen
        time.sleep(1)  # let the experiment get into its pause
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=90)
        assert process.returncode == 0, seen + rest
        assert "run of integration finished: interrupted" in rest
        assert "skipping never runs" in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    (journal,) = (tmp_path / "j").glob("*.json")
    assert json.loads(journal.read_text(encoding="utf-8"))["verdict"] == "interrupted"
    with sqlite3.connect(tmp_path / "state" / "schedules.sqlite3") as db:
        assert db.execute("SELECT status, verdict FROM fires").fetchall() == [("finished", "interrupted")]


def test_next_prints_the_fire_times_the_daemon_will_use(tmp_path: Path, server: Server) -> None:
    plan = write_plan(
        tmp_path,
        server,
        extra=(
            "schedule:\n"
            "  cron: '30 9 * * *'\n"
            "  timezone: America/New_York\n"
            "  windows: [{days: weekdays, start: '09:00', end: '17:00'}]\n"
            "  jitter: 10m\n"
        ),
    )
    first = chaoskit(tmp_path, "gameday", "next", str(plan), "-n", "4", "--output", "json")
    assert first.returncode == 0, first.stderr
    fires = json.loads(first.stdout)
    assert len(fires) == 4
    for fire in fires:
        local = datetime.fromisoformat(fire["at"]).astimezone(ZoneInfo("America/New_York"))
        assert local.weekday() < 5 and local.hour == 9 and 30 <= local.minute <= 40
    again = chaoskit(tmp_path, "gameday", "next", str(plan), "-n", "4", "--output", "json")
    later = json.loads(again.stdout)
    # Jitter is reproducible (the second call may start one fire later if one just went by).
    assert later[:3] in (fires[:3], fires[1:4]), (fires, later)
    text = chaoskit(tmp_path, "gameday", "next", str(plan), "-n", "2")
    times = [line for line in text.stdout.splitlines() if " EST " in line or " EDT " in line]
    assert len(times) == 2, text.stdout
    assert "each run ends inside its window" in text.stdout  # the fit it applied, said under them


def test_the_daemon_serves_chaoskit_metrics_for_its_runs(tmp_path: Path, server: Server) -> None:
    both = (
        "  - parallel:\n      - {file: answers.yaml, name: left}\n      - {file: answers.yaml, name: right}\n"
    )
    plan = write_plan(
        tmp_path, server, extra="schedule: {random: {mean: 2s, min_interval: 1s}}\n", experiments=both
    )
    env = {**os.environ, "CHAOSKIT_STATE_DIR": str(tmp_path / "state"), "HOOK_TOKEN": "Bearer t0ken"}
    command = ["gameday", "schedule", str(plan), "--metrics-port", "0", "--max-runs", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "chaoskit", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    completed = re.compile(
        r'^chaoskit_runs_total\{experiment="answers 200",verdict="completed"\} (\S+)$', re.M
    )
    try:
        seen = read_until(process, "metrics on http://127.0.0.1:")
        assert "metrics on http://127.0.0.1:" in seen, seen
        url = seen.split("metrics on ", 1)[1].split()[0]
        # Scrape while the daemon runs (bounded): after a fire, both parallel runs are counted, each
        # labelled with its own experiment; the endpoint closes when the daemon exits.
        counted = 0.0
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline and counted < 2:
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    found = completed.search(answer.read().decode())
            except OSError:
                break
            counted = float(found.group(1)) if found else 0.0
            time.sleep(0.2)
        rest, _ = process.communicate(timeout=180)
        assert process.returncode == 0, seen + rest
        assert counted >= 2, seen + rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.parametrize("command", ["schedule", "next"])
def test_a_plan_without_a_schedule_says_how_to_add_one(tmp_path: Path, server: Server, command: str) -> None:
    plan = write_plan(tmp_path, server)
    done = chaoskit(tmp_path, "gameday", command, str(plan), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "the plan has no schedule" in done.stderr and "add schedule: {cron:" in done.stderr


@pytest.mark.parametrize(
    ("command", "option"),
    [("run", "--journal-dir"), ("run", "--report"), ("schedule", "--junit"), ("schedule", "--markdown")],
)
def test_an_output_path_that_cant_be_written_is_refused_before_anything_runs(
    tmp_path: Path, server: Server, command: str, option: str
) -> None:
    plan = write_plan(tmp_path, server, extra="schedule: {random: {mean: 2s, min_interval: 1s}}\n")
    (tmp_path / "a-file").write_text("")
    where = tmp_path / "a-file" / "out"  # under a file: nothing can be made there
    once = ["--max-runs", "1"] if command == "schedule" else []
    done = chaoskit(tmp_path, "gameday", command, str(plan), option, str(where), *once)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{option} {where}: can't write in {tmp_path / 'a-file'}" in done.stderr
    assert "Traceback" not in done.stderr and server.hooks == []
    assert not (tmp_path / "state" / "history.sqlite3").exists()
