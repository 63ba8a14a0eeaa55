"""The crash-safety matrix at length: ``tests/integration/crash`` with 50 SIGKILL moments per fault
(CI runs 5). Each moment kills a real ``chaoskit run`` after its fault is applied, runs
``chaoskit recover`` and checks the system through the driver's own probes.

    python -m bench crash_soak [-- --moments 50 --seed 9 --json bench/results/crash_soak.json]

Suites whose component is missing here (dockerd, an API server) are skipped and listed as such.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
SUITE = Path(__file__).parent.parent / "tests" / "integration" / "crash"


def missing() -> str | None:
    return None if SUITE.is_dir() else f"{SUITE} is not there (run from a checkout)"


def _cases(report: Path) -> list[dict[str, Any]]:
    cases = []
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        outcome = "passed"
        detail = ""
        for child in case:
            if child.tag in {"failure", "error", "skipped"}:
                outcome = {"failure": "FAILED", "error": "ERROR", "skipped": "skipped"}[child.tag]
                detail = (child.get("message") or "").splitlines()[0][:160] if child.get("message") else ""
        cases.append(
            {
                "test": case.get("name", "?"),
                "module": case.get("classname", "").rsplit(".", 1)[-1],
                "seconds": round(float(case.get("time", "0")), 1),
                "outcome": outcome,
                "detail": detail,
            }
        )
    return cases


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench crash_soak")
    parser.add_argument("--moments", type=int, default=50, help="SIGKILL moments per fault")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--parallel", type=int, default=5, help="moments of one fault at a time")
    parser.add_argument("--json", type=Path, default=RESULTS / "crash_soak.json")
    args = parser.parse_args(argv)
    env = {
        **os.environ,
        "CHAOSKIT_CRASH_MOMENTS": str(args.moments),
        "CHAOSKIT_CRASH_SEED": str(args.seed),
        "CHAOSKIT_CRASH_PARALLEL": str(args.parallel),
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chaoskit-crash-soak-") as tmp:
        report = Path(tmp) / "junit.xml"
        pytest = [sys.executable, "-m", "pytest", str(SUITE), "-q", "-p", "no:randomly", "--timeout", "3600"]
        done = subprocess.run(
            [*pytest, f"--junitxml={report}", "-o", "junit_family=xunit1"],
            env=env,
            cwd=SUITE.parent.parent.parent,
            check=False,
        )
        cases = _cases(report) if report.exists() else []
    took = time.monotonic() - started
    print(f"\n{'fault':<34} {'moments':>7} {'seconds':>8}  outcome")
    for case in cases:
        test, module = str(case["test"]), str(case["module"]).removeprefix("test_")
        param = test[test.index("[") + 1 : -1] if "[" in test else ""
        slug = test.removeprefix("test_").split("_is_recovered")[0]
        name = param if "." in param else f"{module} {param or slug}"
        print(f"{name:<34} {args.moments:>7} {case['seconds']:>8.1f}  {case['outcome']} {case['detail']}")
    ran = [c for c in cases if c["outcome"] != "skipped"]
    print(f"{len(ran)} fault tests x {args.moments} moments in {took:.0f} s, seed {args.seed}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "bench": "crash_soak",
                "moments": args.moments,
                "seed": args.seed,
                "seconds": round(took),
                "cases": cases,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.json}")
    return 0 if done.returncode in (0, 5) and all(c["outcome"] in {"passed", "skipped"} for c in cases) else 1
