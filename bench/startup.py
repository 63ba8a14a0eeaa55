"""Start-up time of the commands people type most, and what each start-up trick saves.

Times ``chaoskit --help``, ``chaoskit run --help`` and ``chaoskit validate
experiments/quickstart.yaml``, each a new process, interleaved rounds, median of N:

- ``this checkout``: the code as it is;
- ``REF`` (with ``--against REF``): the same commands from ``git archive REF``, so a change can be
  measured before and after on the same machine in the same minute;
- the tricks undone, one at a time, in this checkout: ``help imports commands`` (click's own
  ``format_commands``, which imports every command module for its short help instead of reading
  the short help declared in ``COMMANDS``) and ``docstrings at import`` (pydantic's
  ``use_attribute_docstrings`` on every model, which reads each model's source when its class is
  made, instead of ``chaoskit.describing`` doing it when a schema is shown).

    python -m bench startup [-- --runs 20 --against HEAD~3 --json bench/results/startup.json]

Every variant runs with the same interpreter (this one) through the same launcher, which is what
the ``chaoskit`` console script does, with the tree under test first on ``sys.path``.

Figures (2026-12-07, the shared 2-core development machine, Python 3.11.7, pydantic 2.14), median
and min of 20-30 runs. A quiet moment (load 0.4), before the change (44c251d, AST-parsed help):

    --help                 0.089 s  min 0.075    help imports commands     0.419 s  min 0.397
    run --help             0.317 s  min 0.286
    validate quickstart    0.258 s  min 0.234    docstrings at import      0.309 s  min 0.280

After (declared short help; ``--against 44c251d``, same run, load 8-9 so only ratios hold):

    --help                 0.185 s  min 0.060    44c251d: 0.280 s  min 0.090
    run --help             1.094 s  min 0.410    44c251d: 1.281 s  min 0.524
    validate quickstart    0.911 s  min 0.366    44c251d: 1.040 s  min 0.467
    help imports commands  1.464 s  min 0.598    docstrings at import: 1.139 s  min 0.513

Both tricks still pay: listing ``--help`` from imported commands costs 5-8x; attribute docstrings at
class creation add 20-40 % to ``validate``. Declaring the short help is faster than AST-parsing
18 modules for it (about 30 ms less at ``--help``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent

COMMANDS: dict[str, list[str]] = {
    "--help": ["--help"],
    "run --help": ["run", "--help"],
    "validate quickstart": ["validate", "experiments/quickstart.yaml"],
}

_LAUNCH = "import sys; sys.path.insert(0, {tree!r}); {before}from chaoskit.cli.main import main; main()"
UNDONE = {
    # variant: code run before chaoskit is imported, and the command it is measured with
    "help imports commands": (
        "import click, chaoskit.cli.main as m; m.LazyGroup.format_commands = click.Group.format_commands; ",
        ["--help"],
    ),
    "docstrings at import": (
        "import pydantic._internal._config as c; c.config_defaults['use_attribute_docstrings'] = True; ",
        ["validate", "experiments/quickstart.yaml"],
    ),
}


def missing() -> str | None:
    return (
        None if (ROOT / "experiments" / "quickstart.yaml").exists() else "needs the checkout's experiments/"
    )


def _argv(tree: Path, before: str, args: list[str]) -> list[str]:
    return [sys.executable, "-c", _LAUNCH.format(tree=str(tree), before=before), *args]


def _once(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=60)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[3:])} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return took


def _export(ref: str, into: Path) -> Path:
    """The tree of ``ref`` (its ``chaoskit/`` package is what gets imported) under ``into``."""
    archive = into / "tree.tar"
    with archive.open("wb") as out:
        subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "chaoskit"], stdout=out, check=True, timeout=60
        )
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def _variants(against: str | None, folder: Path) -> dict[tuple[str, str], list[str]]:
    variants = {("this checkout", name): _argv(ROOT, "", args) for name, args in COMMANDS.items()}
    if against:
        tree = _export(against, folder)
        variants |= {(against, name): _argv(tree, "", args) for name, args in COMMANDS.items()}
    for label, (before, args) in UNDONE.items():
        variants[(label, " ".join(args).replace("experiments/quickstart.yaml", "quickstart"))] = _argv(
            ROOT, before, args
        )
    return variants


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench startup")
    parser.add_argument("--runs", type=int, default=20, help="runs of each variant (median reported)")
    parser.add_argument("--against", metavar="REF", help="also time the commands at this git ref")
    parser.add_argument("--json", type=Path, default=RESULTS / "startup.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chaoskit-bench-startup-") as tmp:
        variants = _variants(args.against, Path(tmp))
        times: dict[tuple[str, str], list[float]] = {key: [] for key in variants}
        for argv_ in variants.values():
            _once(argv_)  # warm the file cache and the bytecode of every tree
        # Interleaved rounds, so that a burst of load elsewhere hits every variant alike.
        for _ in range(args.runs):
            for key, argv_ in variants.items():
                times[key].append(_once(argv_))
    rows: list[dict[str, Any]] = [
        {
            "variant": variant,
            "command": command,
            "median_s": round(statistics.median(took), 4),
            "min_s": round(min(took), 4),
            "runs": len(took),
        }
        for (variant, command), took in times.items()
    ]
    width = max(len(r["variant"]) for r in rows)
    print(f"{'variant':<{width}}  {'command':<20}  median    min")
    for r in rows:
        print(f"{r['variant']:<{width}}  {r['command']:<20}  {r['median_s']:.3f} s  {r['min_s']:.3f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"python": sys.version.split()[0], "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
