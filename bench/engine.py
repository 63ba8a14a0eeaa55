"""Engine overhead: what the runner adds per step with real threads and the real clock, and what an
fsync'd ledger line costs on this disk. Prints JSON lines; no pass/fail.

    python -m bench engine [-- --faults N --probes N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from chaoskit import testing
from chaoskit.drivers import contract
from chaoskit.engine import clocks, ledgers


def missing() -> str | None:
    return None


def _ledger_lines(root: Path, count: int) -> list[float]:
    ledger = ledgers.Ledger.create(root, "bench")
    target = contract.Target(kind="bench", id="t", name="t")
    took = []
    for i in range(count):
        start = time.perf_counter()
        ledger.intent(f"f{i}", "bench.fault", "step", target, {"i": i})
        took.append(time.perf_counter() - start)
    return took


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench engine")
    parser.add_argument("--faults", type=int, default=50)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--ledger-lines", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chaoskit-bench-") as tmp:
        root = Path(tmp)
        lines = _ledger_lines(root, args.ledger_lines)
        print(
            json.dumps(
                {
                    "bench": "ledger_line_fsync",
                    "lines": len(lines),
                    "p50_ms": round(statistics.median(lines) * 1000, 3),
                    "max_ms": round(max(lines) * 1000, 3),
                }
            )
        )
        doc = {
            "title": "engine overhead",
            "steady_state": [{"probe": "fake.status"}] * args.probes,
            "method": [{"fault": "fake.break", "with": {"targets": [f"t{i}" for i in range(args.faults)]}}],
            "recovery": {"within": "1m", "interval": "10ms"},
        }
        start = time.perf_counter()
        journal = testing.run_experiment(doc, clock=clocks.RealClock(), state_dir=root / "state")
        took = time.perf_counter() - start
        calls = args.probes * 2 + args.faults * 2
        print(
            json.dumps(
                {
                    "bench": "run_overhead",
                    "verdict": journal.verdict.value,
                    "probes": args.probes * 2,
                    "faults": args.faults,
                    "seconds": round(took, 3),
                    "ms_per_driver_call": round(took / calls * 1000, 3),
                }
            )
        )
    return 0
