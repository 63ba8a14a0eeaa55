"""Experiment fuzzing at length: the checks of ``tests/unit/test_fuzz_experiments.py`` (exit 0 or 2,
no traceback, every problem at FILE:LINE:COL) on many more generated and mutated files.

    python -m bench fuzz [-- --cases 10000 --seed 1 --json bench/results/fuzz.json]

Half the cases go through ``chaoskit validate``, half through ``chaoskit run --dry-run``. The first
failing case is printed in full (Hypothesis shrinks it first) and the exit code is 1.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

RESULTS = Path(__file__).parent / "results"


def missing() -> str | None:
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        return "hypothesis is not installed (pip install -e '.[test]')"
    return None


def _fuzz(
    command: list[str], faults: list[str], cases: int, seed_: int, exits: collections.Counter[str]
) -> str:
    """Run ``cases`` generated files through ``command``; the first failure's text, or ""."""
    from tests.unit import test_fuzz_experiments as fuzzing

    draw = fuzzing.documents(faults)
    with tempfile.TemporaryDirectory(prefix="chaoskit-fuzz-") as tmp:
        folder = Path(tmp)
        argv = [a.replace("STATE", str(folder / "state")) for a in command]

        @seed(seed_)
        @settings(max_examples=cases, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(st.data())
        def case(data: st.DataObject) -> None:
            text, suffix = draw(data)
            exits[f"{command[0]} exit {fuzzing.check(argv, text, suffix, folder)}"] += 1

        try:
            case()
        except AssertionError as e:
            return str(e)
    return ""


def main(argv: list[str]) -> int:
    from tests.unit import test_fuzz_experiments as fuzzing

    parser = argparse.ArgumentParser(prog="python -m bench fuzz")
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=RESULTS / "fuzz.json")
    args = parser.parse_args(argv)
    exits: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    failure = _fuzz(
        ["validate", "FILE"], fuzzing.LOCAL_FAULTS + fuzzing.REMOTE_FAULTS, args.cases // 2, args.seed, exits
    ) or _fuzz(
        ["run", "FILE", "--dry-run", "--state-dir", "STATE"],
        fuzzing.LOCAL_FAULTS,
        args.cases - args.cases // 2,
        args.seed,
        exits,
    )
    took = time.monotonic() - started
    total = sum(exits.values())
    for name, count in sorted(exits.items()):
        print(f"{name:<22} {count:>7}")
    print(f"{'cases':<22} {total:>7}  in {took:.0f} s ({total / max(took, 1e-9):.0f}/s)")
    print("verdict: " + ("every case exit 0 or 2, located, no traceback" if not failure else "FAILED"))
    if failure:
        print(failure)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "bench": "fuzz",
                "cases": total,
                "seconds": round(took, 1),
                "exits": dict(exits),
                "failure": failure,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.json}")
    return 1 if failure else 0
