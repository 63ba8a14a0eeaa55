"""Revert latency of a real ``chaoskit run``, from the ledger's timestamps.

- SIGINT: 100 ``process.stop`` faults applied (100 ``sleep`` processes), then SIGINT; the time
  from the signal to the last ``reverted`` line (target <= 1 s).
- Guard trip: faults applied, a guard polls a canary process every ``--interval``; the canary is
  killed; the time from the kill to the last ``reverted`` line (target <= interval + 200 ms).

Both are checked on the system too: after the run no ``sleep`` is left stopped.

    python -m bench revert [-- --faults 100 --rounds 5 --interval 500ms --json bench/results/revert.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from chaoskit import durations

RESULTS = Path(__file__).parent / "results"


def missing() -> str | None:
    return None if Path("/proc/self/stat").exists() else "needs Linux /proc for the process driver"


def _ledger(state: Path) -> list[dict[str, Any]]:
    lines = []
    for path in (state / "ledgers").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                lines.append(json.loads(line))
    return lines


def _count(state: Path, kind: str) -> int:
    return sum(1 for line in _ledger(state) if line.get("type") == kind)


def _last(state: Path, kind: str) -> float:
    return max(
        datetime.fromisoformat(str(line["at"])).timestamp() for line in _ledger(state) if line["type"] == kind
    )


def _stopped(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


@contextlib.contextmanager
def _sleepers(count: int, token: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    # A unique duration in the command line marks our sleepers for the cmdline selector.
    made = [subprocess.Popen(["sleep", f"{token}"]) for _ in range(count)]
    try:
        yield made
    finally:
        for process in made:
            with contextlib.suppress(OSError):
                os.kill(process.pid, signal.SIGCONT)
            process.kill()
            process.wait(timeout=30)


def _start(folder: Path, experiment: str) -> subprocess.Popen[bytes]:
    path = folder / "experiment.yaml"
    path.write_text(experiment)
    argv = [sys.executable, "-m", "chaoskit", "run", str(path), "--quiet"]
    return subprocess.Popen(
        [*argv, "--journal", str(folder / "journal.json"), "--state-dir", str(folder / "state")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait(what: str, check: Any, runner: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if runner.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} (runner exit {runner.poll()})")
        time.sleep(0.01)


def sigint_round(faults: int) -> dict[str, Any]:
    token = f"{9000 + uuid.uuid4().int % 999}.{uuid.uuid4().int % 10**6}"
    with (
        tempfile.TemporaryDirectory(prefix="chaoskit-bench-revert-") as tmp,
        _sleepers(faults, token) as sleepers,
    ):
        folder = Path(tmp)
        runner = _start(
            folder,
            "title: many frozen processes, then Ctrl-C\n"
            "method:\n"
            "  - fault: process.stop\n"
            f"    with: {{cmdline: '^sleep {token}$', max_targets: {faults}}}\n"
            "    duration: 1h\n",
        )
        _wait(f"{faults} applied faults", lambda: _count(folder / "state", "applied") >= faults, runner)
        assert all(_stopped(p.pid) for p in sleepers)
        sent = time.time()
        runner.send_signal(signal.SIGINT)
        code = runner.wait(timeout=120)
        reverted = _count(folder / "state", "reverted")
        took = _last(folder / "state", "reverted") - sent if reverted else float("nan")
        left = sum(_stopped(p.pid) for p in sleepers)
        return {"faults": faults, "exit": code, "reverted": reverted, "still_stopped": left, "seconds": took}


def guard_round(faults: int, interval: str) -> dict[str, Any]:
    token = f"{9000 + uuid.uuid4().int % 999}.{uuid.uuid4().int % 10**6}"
    with (
        tempfile.TemporaryDirectory(prefix="chaoskit-bench-guard-") as tmp,
        _sleepers(faults, token) as sleepers,
        subprocess.Popen(["sleep", "3600"]) as canary,
    ):
        folder = Path(tmp)
        runner = _start(
            folder,
            "title: a guard trips while processes are frozen\n"
            "method:\n"
            "  - fault: process.stop\n"
            f"    with: {{cmdline: '^sleep {token}$', max_targets: {faults}}}\n"
            "    duration: 1h\n"
            "guards:\n"
            "  - name: the canary lives\n"
            "    probe: process.running\n"
            f"    with: {{pid: {canary.pid}}}\n"
            "    expect: {path: running, equals: true}\n"
            f"    interval: {interval}\n",
        )
        _wait(f"{faults} applied faults", lambda: _count(folder / "state", "applied") >= faults, runner)
        time.sleep(0.3)  # a moment anywhere in the guard's cycle
        killed = time.time()
        canary.kill()
        canary.wait(timeout=30)
        code = runner.wait(timeout=120)
        reverted = _count(folder / "state", "reverted")
        took = _last(folder / "state", "reverted") - killed if reverted else float("nan")
        left = sum(_stopped(p.pid) for p in sleepers)
        return {"faults": faults, "exit": code, "reverted": reverted, "still_stopped": left, "seconds": took}


def _row(name: str, rounds: list[dict[str, Any]], target: float) -> dict[str, Any]:
    times = [r["seconds"] for r in rounds]
    ok = all(r["reverted"] >= r["faults"] and r["still_stopped"] == 0 for r in rounds)
    return {
        "case": name,
        "rounds": len(rounds),
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "target_s": target,
        "target_met": max(times) <= target,
        "all_reverted": ok,
        "exit_codes": sorted({r["exit"] for r in rounds}),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench revert")
    parser.add_argument("--faults", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--interval", default="500ms", help="the guard's probe interval")
    parser.add_argument("--json", type=Path, default=RESULTS / "revert.json")
    args = parser.parse_args(argv)
    interval = durations.parse(args.interval)
    rows = [
        _row(f"SIGINT, {args.faults} faults", [sigint_round(args.faults) for _ in range(args.rounds)], 1.0),
        _row(
            f"guard trip ({args.interval}), {args.faults} faults",
            [guard_round(args.faults, args.interval) for _ in range(args.rounds)],
            round(interval + 0.2, 3),
        ),
    ]
    print(f"{'case':<36} {'median':>8} {'max':>8} {'target':>8}  all reverted")
    for row in rows:
        print(
            f"{row['case']:<36} {row['median_s']:>7.3f}s {row['max_s']:>7.3f}s {row['target_s']:>7.3f}s  "
            f"{'yes' if row['all_reverted'] else 'NO'}{'' if row['target_met'] else '  (target MISSED)'}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"bench": "revert", "results": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0 if all(r["all_reverted"] for r in rows) else 1
