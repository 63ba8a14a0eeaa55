"""The crash matrix over the shipped experiments at length: ``tests/integration/crash/
test_experiments.py``'s moments, 100 per experiment (CI runs 3). Each moment SIGKILLs a real
``chaoskit run`` in a seeded phase, runs ``chaoskit recover`` and checks the machine (no process
of the run, no listener on its ports, no container of it). Prints recovered/total per experiment
and per phase the kill really landed in.

    python -m bench crash [-- --moments 100 --seed 9 --parallel 4 --only quickstart.yaml]

Docker experiments run when a Docker engine with the test images answers (scripts/test starts
one; DOCKER_HOST), the Prometheus demo when Debian's prometheus is installed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent
RESULTS = Path(__file__).parent / "results"


def missing() -> str | None:
    return None if (ROOT / "tests" / "integration" / "crash").is_dir() else "run from a checkout"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench crash")
    parser.add_argument("--moments", type=int, default=100, help="SIGKILL moments per experiment")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--parallel", type=int, default=4, help="moments at a time")
    parser.add_argument("--only", action="append", default=[], help="experiment file(s) to run")
    parser.add_argument("--json", type=Path, default=RESULTS / "crash.json")
    args = parser.parse_args(argv)
    os.environ["CHAOSKIT_CRASH_SEED"] = str(args.seed)  # read by killing.py at import
    sys.path.insert(0, str(ROOT))
    from tests.integration.crash import killing
    from tests.integration.crash import test_experiments as matrix

    cases: list[tuple[matrix.Shipped, dict[str, Any]]] = [(s, {}) for s in matrix.LOCAL]
    cases += _docker(matrix, killing)
    if args.only:
        cases = [c for c in cases if c[0].file in args.only]
    table: dict[str, collections.Counter[str]] = {}
    failures: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chaoskit-bench-crash-") as tmp:
        for shipped, options in cases:
            counts: collections.Counter[str] = collections.Counter()
            moments = killing.plan(shipped.file, shipped.phases, args.moments)

            def one(
                index: int, phase: str, delay: float, shipped: Any = shipped, options: Any = options
            ) -> str:
                folder = Path(tmp) / shipped.file / f"m{index}"
                try:
                    variables = {
                        k: v(index) if callable(v) else v for k, v in options.get("vars", {}).items()
                    }
                    moment = matrix.crash(
                        folder,
                        shipped,
                        index,
                        phase,
                        delay,
                        variables,
                        options.get("survived"),
                        options.get("nothing_left"),
                    )
                    return f"ok:{moment.seen}"
                except Exception as e:  # a failed moment is a figure, not a stop
                    first = (str(e).splitlines() or [""])[0][:200]
                    failures.append(f"{shipped.file} #{index} {phase}+{delay}s: {first}")
                    return f"failed:{phase}"

            with futures.ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
                for outcome in pool.map(lambda m: one(*m), [(i, p, d) for i, (p, d) in enumerate(moments)]):
                    counts[outcome] += 1
            killing.clean_up(killing.STARTED)  # what failed moments left running
            table[shipped.file] = counts
            _print_one(shipped.file, counts)
    took = time.monotonic() - started
    print(f"{sum(sum(c.values()) for c in table.values())} moments in {took:.0f} s, seed {args.seed}")
    for line in failures[:20]:
        print(f"  FAILED {line}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "bench": "crash",
                "moments": args.moments,
                "seed": args.seed,
                "seconds": round(took),
                "results": {k: dict(v) for k, v in table.items()},
                "failures": failures,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.json}")
    return 1 if failures else 0


def _print_one(name: str, counts: collections.Counter[str]) -> None:
    total = sum(counts.values())
    ok = sum(n for k, n in counts.items() if k.startswith("ok:"))
    phases = sorted({k.split(":", 1)[1] for k in counts})
    by_phase = []
    for phase in phases:
        good, bad = counts[f"ok:{phase}"], counts[f"failed:{phase}"]
        by_phase.append(f"{phase} {good}/{good + bad}")
    print(f"{name:<28} recovered {ok}/{total}   " + "  ".join(by_phase))


def _docker(matrix: Any, killing: Any) -> list[tuple[Any, dict[str, Any]]]:
    """The docker experiments, when an engine with the test images answers."""
    from tests.integration.docker import conftest

    engine = conftest._engine()
    if engine is None:
        print("docker experiments skipped: no Docker engine with the test images (DOCKER_HOST)")
        return []
    os.environ.setdefault("CHAOSKIT_DOCKER_HELPER_IMAGE", conftest.HELPER_IMAGE)

    def mine(run: Any) -> list[Any]:
        # ignore_removed: a container removed between the list and its inspect is gone, not an error.
        label = {"label": f"chaoskit.run-id={run.run_id}"}
        return list(engine.containers.list(all=True, filters=label, ignore_removed=True))

    def nothing_left(run: Any) -> None:
        assert not mine(run), f"containers of run {run.run_id} left: {[c.name for c in mine(run)]}"

    net = None
    cases = []
    for shipped in matrix.DOCKER:
        prefix = f"ck-bench-{shipped.file.split('.')[0]}"
        variables: dict[str, Any] = {"image": conftest.HTTP_IMAGE, "name": _names(prefix)}
        if "disconnect" in shipped.file:
            import docker.types

            ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.216.9.0/24")])
            found = engine.networks.list(names=["ck-bench-crash"])
            net = net or (found[0] if found else None)
            net = net or engine.networks.create("ck-bench-crash", driver="bridge", ipam=ipam)
            variables["network"] = net.name
        cases.append((shipped, {"vars": variables, "survived": mine, "nothing_left": nothing_left}))
    return cases


def _names(prefix: str) -> Callable[[int], str]:
    return lambda index: f"{prefix}-{index}"
