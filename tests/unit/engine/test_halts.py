"""Halt levers: the local file, a shared file, a URL (a real local server), a driver's scheme;
remote reads rate-limited; the lock holder found by /proc/locks; and who honours the lever without
a run (the metrics gauge, the GameDay scheduler, the operator's decisions)."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from chaoskit import errors, metrics
from chaoskit.drivers import contract
from chaoskit.engine import events, halts
from chaoskit.gameday import daemons, firing, schedules
from chaoskit.operator import chaosschedules as operator_scheduling
from chaoskit.operator import resources, statuses
from tests import servers

HALTED = {"halted": True, "reason": "incident 42", "by": "ana@ops", "at": "2030-01-01T00:00:00+00:00"}


class Lever(http.server.BaseHTTPRequestHandler):
    """An incident tool's endpoint: answers what ``answer`` says and counts the requests."""

    answer: tuple[int, bytes] = (404, b"")
    hits = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).hits += 1
        status, body = type(self).answer
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def lever_url() -> Iterator[str]:
    Lever.answer, Lever.hits = (404, b""), 0
    with servers.serving(Lever) as url:
        yield f"{url}/halt"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_local_lever_halts_and_resume_releases_it(tmp_path: Path) -> None:
    watch = halts.Watch(tmp_path, environ={})
    assert watch.check() is None
    halts.write_file(halts.local_path(tmp_path), halts.Halt("db failover", "ana@ops", "2030-01-01T00:00:00"))
    found = watch.check()
    assert found is not None
    assert found.describe() == f"halted by ana@ops at 2030-01-01T00:00:00: db failover ({tmp_path}/halt.json)"
    halts.clear_file(halts.local_path(tmp_path), halts.new("safe again"))
    assert watch.check() is None
    assert json.loads(halts.local_path(tmp_path).read_text())["by"].count("@") == 1  # who resumed


def test_a_shared_file_lever_from_the_environment(tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "halt.json"
    watch = halts.Watch(tmp_path / "state", environ={halts.ENV: str(shared)})
    assert watch.check() is None  # no file yet: not halted
    shared.parent.mkdir()
    shared.write_text(json.dumps(HALTED))
    found = watch.check()
    assert found is not None and (found.reason, found.lever) == ("incident 42", str(shared))


def test_a_url_lever_200_halts_404_and_204_do_not(lever_url: str) -> None:
    clock = Clock()
    watch = halts.Watch(Path("/nonexistent"), environ={halts.ENV: lever_url}, clock=clock)
    assert watch.check() is None
    Lever.answer = (200, json.dumps(HALTED).encode())
    clock.now += 1.0
    found = watch.check()
    assert found is not None and (found.by, found.lever) == ("ana@ops", lever_url)
    Lever.answer = (204, b"")
    clock.now += 1.0
    assert watch.check() is None
    Lever.answer = (200, json.dumps({**HALTED, "halted": False}).encode())
    clock.now += 1.0
    assert watch.check() is None
    assert watch.problems == []


def test_a_url_lever_is_read_at_most_once_a_second(lever_url: str) -> None:
    clock = Clock()
    Lever.answer = (200, json.dumps(HALTED).encode())
    watch = halts.Watch(Path("/nonexistent"), environ={halts.ENV: lever_url}, clock=clock)
    for _ in range(20):
        assert watch.check() is not None  # the last answer stands in between
        clock.now += 0.04
    assert Lever.hits == 1
    clock.now += 1.0
    watch.check()
    assert Lever.hits == 2


def test_a_lever_that_fails_or_cant_be_reached_is_no_halt_and_is_said_once(lever_url: str) -> None:
    clock = Clock()
    Lever.answer = (500, b"oops")
    said: list[str] = []
    watch = halts.Watch(Path("/nonexistent"), environ={halts.ENV: lever_url}, clock=clock, report=said.append)
    for _ in range(3):
        assert watch.check() is None
        clock.now += 1.0
    assert said == [f"the halt lever {lever_url} answered 500 Internal Server Error"]
    # Unreachable: a closed port answers at once with a refusal; the read is bounded anyway.
    closed = halts.Watch(Path("/nonexistent"), environ={halts.ENV: "http://127.0.0.1:9/halt"}, timeout=0.5)
    started = time.monotonic()
    assert closed.check() is None
    assert time.monotonic() - started < 2
    assert len(closed.problems) == 1 and "can't be reached" in closed.problems[0]


def test_a_driver_offers_a_lever_by_scheme(tmp_path: Path) -> None:
    class Memory(contract.Lever):
        value: Mapping[str, str] | None = None

        def read(self, timeout: float) -> Mapping[str, str] | None:
            return Memory.value

        def write(self, fields: Mapping[str, str], timeout: float) -> None:
            Memory.value = dict(fields)

    lever = halts.open_lever("mem://a/b", {"mem": Memory})
    watch = halts.Watch(tmp_path, environ={halts.ENV: "mem://a/b"}, drivers={"mem": Memory}, interval=0)
    assert watch.check() is None
    lever.write(halts.fields_of(halts.Halt("zone down", "bo@ops", "2030")), 1)
    found = watch.check()
    assert found is not None and (found.reason, found.lever) == ("zone down", "mem://a/b")
    lever.write(halts.fields_of(halts.Halt("ok", "bo@ops", "2030"), halted=False), 1)
    assert watch.check() is None


def test_an_unknown_scheme_is_refused_where_named_and_a_problem_where_watched(tmp_path: Path) -> None:
    with pytest.raises(errors.UsageError, match="unknown scheme 'ftp'"):
        halts.open_lever("ftp://x/y", {})
    watch = halts.Watch(tmp_path, environ={halts.ENV: "ftp://x/y"}, drivers={})
    assert watch.check() is None
    assert watch.problems == ["halt lever ftp://x/y: unknown scheme 'ftp'"]


def test_the_kubernetes_scheme_comes_from_the_kubernetes_driver() -> None:
    lever = halts.open_lever("kubernetes://chaoskit/chaoskit-halt")
    assert type(lever).__name__ == "ConfigMapLever"
    with pytest.raises(errors.UsageError, match="kubernetes://<namespace>/<configmap name>"):
        halts.open_lever("kubernetes://Bad_NS")


def test_the_http_schemes_come_from_the_http_driver_so_the_engine_opens_no_socket() -> None:
    assert type(halts.open_lever("https://status.example/halt")).__name__ == "HttpLever"
    with pytest.raises(errors.UsageError, match="unknown scheme 'http'"):
        halts.open_lever("http://127.0.0.1:9/halt", {})


def test_a_damaged_lever_file_is_a_problem_not_a_halt(tmp_path: Path) -> None:
    halts.local_path(tmp_path).write_text("{not json")
    watch = halts.Watch(tmp_path, environ={})
    assert watch.check() is None
    assert len(watch.problems) == 1 and "can't be read" in watch.problems[0]


def test_the_holder_of_a_ledger_lock_is_found_by_the_lock(tmp_path: Path) -> None:
    ledger = tmp_path / "run.jsonl"
    ledger.write_text("")
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
            str(ledger),
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            assert halts.holders(ledger) == [holder.pid]
        finally:
            holder.kill()
            holder.wait(timeout=10)
    assert halts.holders(ledger) == []


def test_no_proc_means_no_holder_rather_than_a_guess(tmp_path: Path) -> None:
    ledger = tmp_path / "run.jsonl"
    ledger.write_text("")
    assert halts.holders(ledger, proc=tmp_path / "no-proc") == []


# ---- who honours the lever -------------------------------------------------------------


def test_the_halted_gauge_follows_the_run() -> None:
    m = metrics.Metrics()
    now = dt.datetime.now(dt.UTC)
    assert "chaoskit_halted 0.0" in m.text()
    m.observe(events.Halted(by="ana@ops", reason="incident", since="2030", lever="halt.json", at=now))
    assert "chaoskit_halted 1.0" in m.text()


class FakeClock:
    def __init__(self, start: dt.datetime) -> None:
        self.current = start

    def now(self) -> dt.datetime:
        return self.current

    def wait(self, seconds: float, stop: Any) -> bool:
        self.current += dt.timedelta(seconds=seconds)
        return bool(stop.is_set())


def test_the_gameday_scheduler_skips_fires_while_halted_and_records_them(tmp_path: Path) -> None:
    start = dt.datetime(2026, 11, 25, 8, 10, tzinfo=dt.UTC)
    clock = FakeClock(start)
    ran: list[dt.datetime] = []
    halt: list[halts.Halt | None] = [halts.Halt("incident 42", "ana@ops", "2026-11-25T08:00:00")]

    def run(fire: firing.Fire) -> daemons.Outcome:
        ran.append(fire.nominal)
        return daemons.Outcome(verdict="completed")

    hourly = schedules.Schedule.model_validate({"cron": "0 * * * *", "misfire_grace": "30m"})
    daemon = daemons.Scheduler(hourly, "checkout", tmp_path, run, clock=clock, halt=lambda: halt[0])
    daemon.serve(max_fires=2)
    assert ran == []
    halt[0] = None
    daemon.serve(max_fires=1)
    states = daemons.States(tmp_path)
    try:
        records = [(r.nominal.strftime("%H:%M"), r.status.value, r.detail) for r in states.fires("checkout")]
    finally:
        states.close()
    why = "halted by ana@ops at 2026-11-25T08:00:00: incident 42"
    assert records == [("09:00", "halted", why), ("10:00", "halted", why), ("11:00", "finished", None)]
    assert [n.strftime("%H:%M") for n in ran] == ["11:00"]  # skipped ones are not queued


def test_the_gameday_scheduler_watches_the_state_dirs_lever_by_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    halts.write_file(halts.local_path(tmp_path), halts.Halt("incident 42", "ana@ops", "2030"))
    ran: list[firing.Fire] = []

    def run(fire: firing.Fire) -> daemons.Outcome:
        ran.append(fire)
        return daemons.Outcome(verdict="completed")

    hourly = schedules.Schedule.model_validate({"cron": "0 * * * *", "misfire_grace": "30m"})
    clock = FakeClock(dt.datetime(2026, 11, 25, 8, 10, tzinfo=dt.UTC))
    with caplog.at_level("WARNING", logger="chaoskit.gameday"):
        daemons.Scheduler(hourly, "k", tmp_path, run, clock=clock).serve(max_fires=1)
    assert ran == []
    assert "skipping run due 2026-11-25T09:00:00+00:00: halted by ana@ops at 2030: incident 42" in caplog.text


def _schedule() -> dict[str, Any]:
    return {
        "apiVersion": resources.API_VERSION,
        "kind": resources.SCHEDULE_KIND,
        "metadata": {
            "name": "hourly",
            "namespace": "shop",
            "uid": "s",
            "creationTimestamp": "2030-01-07T00:00:00Z",
        },
        "spec": {
            "schedule": {"cron": "0 * * * *"},
            "template": {"spec": {"experiment": {"title": "t", "method": [{"pause": "1s"}]}}},
        },
    }


def test_a_chaos_schedule_skips_a_fire_due_while_halted() -> None:
    obj = _schedule()
    now = dt.datetime(2030, 1, 7, 9, 0, 30, tzinfo=dt.UTC)
    halt = halts.Halt("incident 42", "ana@ops", "2030-01-07T08:59:00Z", "kubernetes://chaoskit/chaoskit-halt")
    skipped = operator_scheduling.plan(obj, resources.schedule_spec(obj), [], now, halt)
    assert skipped.create is None
    assert skipped.skipped is not None and "halted by ana@ops" in skipped.skipped
    assert skipped.status["lastScheduleTime"] == "2030-01-07T09:00:00Z"  # not run later either
    assert operator_scheduling.plan(obj, resources.schedule_spec(obj), [], now).create is not None


def test_a_chaos_experiment_whose_run_was_halted_is_marked_halted() -> None:
    summary = {"verdict": "halted", "exitCode": 5, "reason": "halted by ana@ops at 2030: incident 42"}
    job = {"status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    pod = {
        "status": {
            "containerStatuses": [
                {"name": "chaoskit", "state": {"terminated": {"exitCode": 5, "message": json.dumps(summary)}}}
            ]
        }
    }
    status, emitted = statuses.of_run({}, job, [pod], run_id="r", job_name="j", now="2030-01-01T00:00:00Z")
    assert (status["phase"], status["verdict"], status["exitCode"]) == ("Halted", "halted", 5)
    assert [(e.type, e.reason) for e in emitted] == [("Warning", "Halted")]
    assert statuses.finished(status)
    assert statuses.of_run(status, None, [], run_id="r", job_name="j", now="x") == (status, [])
