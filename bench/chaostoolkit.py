"""chaoskit against Chaos Toolkit on the same machine, in the same run: ``--help``, ``validate`` and
``run`` of the same trivial experiment (one HTTP probe against a local server as the steady state,
one process action), as separate processes, median of N runs each. Target: chaoskit at most half
of Chaos Toolkit's time for each.

    python -m bench chaostoolkit [-- --runs 15 --json bench/results/chaostoolkit.json]

Both tools are installed the same way, each into its own throwaway virtualenv with the same Python:
Chaos Toolkit from PyPI under ``$CHAOSKIT_CACHE/bench/ctk-venv`` (made once, then reused), chaoskit
from this checkout (``pip install .``, not editable) under ``$CHAOSKIT_CACHE/bench/ck-venv``
(reinstalled on every run, so the figures are this checkout's). A development virtualenv with the
test tools in it starts ~10 ms slower, which would not be chaoskit's doing.

The floor rows time what no code of chaoskit's can remove: the interpreter starting, and importing
the libraries each command is built on (pydantic, click, PyYAML; for ``run`` also asyncio, rich and
httpx), in chaoskit's virtualenv, in the same run.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
CACHE = Path(os.environ.get("CHAOSKIT_CACHE", "/var/cache/chaoskit"))
VENV = CACHE / "bench" / "ctk-venv"
OURS = CACHE / "bench" / "ck-venv"
ROOT = Path(__file__).resolve().parent.parent

_MODELS = "from pydantic import BaseModel, Field"
FLOORS = {
    # command: the libraries it is built on, imported as a whole program does
    "--help": "import click",
    "validate": f"import click, yaml; {_MODELS}",
    "run": f"import click, yaml, asyncio, rich.console, httpx, httpcore; {_MODELS}",
}


def missing() -> str | None:
    if (VENV / "bin" / "chaos").exists():
        return None
    if not os.access(CACHE, os.W_OK) and not (CACHE / "bench").exists():
        return f"can't write {CACHE} to install Chaos Toolkit (set CHAOSKIT_CACHE)"
    return None


def _install() -> str | None:
    """The ``chaos`` executable, installed once; None (after saying why) if it can't be."""
    chaos = VENV / "bin" / "chaos"
    if chaos.exists():
        return str(chaos)
    print(f"installing chaostoolkit into {VENV} (once)")
    VENV.parent.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        [sys.executable, "-m", "venv", "--clear", str(VENV)], check=False, capture_output=True, text=True
    )
    pip = subprocess.run(
        [str(VENV / "bin" / "pip"), "install", "-q", "chaostoolkit"],
        check=False,
        capture_output=True,
        text=True,
    )
    if made.returncode or pip.returncode or not chaos.exists():
        print(f"skipped: could not install chaostoolkit: {(made.stderr + pip.stderr).strip()[-500:]}")
        shutil.rmtree(VENV, ignore_errors=True)
        return None
    return str(chaos)


def _install_ours() -> str | None:
    """``chaoskit`` from this checkout in its own virtualenv (like Chaos Toolkit's); None if it
    can't be installed."""
    python = OURS / "bin" / "python"
    if not python.exists():
        made = subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(OURS)], check=False, capture_output=True, text=True
        )
        if made.returncode:
            print(f"skipped: could not make {OURS}: {made.stderr.strip()[-500:]}")
            return None
    # Dependencies once; chaoskit itself on every run, so the figures are this checkout's.
    pip = [str(OURS / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run([*pip, str(ROOT)], check=False, capture_output=True, text=True)
    if done.returncode == 0:
        done = subprocess.run(
            [*pip, "--no-deps", "--force-reinstall", str(ROOT)], check=False, capture_output=True, text=True
        )
    if done.returncode:
        print(f"skipped: could not install chaoskit into {OURS}: {done.stderr.strip()[-500:]}")
        return None
    return str(OURS / "bin" / "chaoskit")


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _experiments(folder: Path, url: str) -> tuple[Path, Path]:
    ctk = {
        "version": "1.0.0",
        "title": "the service answers while a command runs",
        "description": "benchmark experiment",
        "steady-state-hypothesis": {
            "title": "service ok",
            "probes": [
                {
                    "type": "probe",
                    "name": "service-answers",
                    "tolerance": 200,
                    "provider": {"type": "http", "url": url, "timeout": 5},
                }
            ],
        },
        "method": [{"type": "action", "name": "run-true", "provider": {"type": "process", "path": "true"}}],
        "rollbacks": [],
    }
    ours = (
        "title: the service answers while a command runs\n"
        "steady_state:\n"
        "  - name: service answers\n"
        "    probe: http.request\n"
        f"    with: {{url: '{url}', timeout: 5s}}\n"
        "    expect: {path: status, equals: 200}\n"
        "method:\n"
        "  - name: run true\n"
        "    action: process.command\n"
        "    with: {argv: ['true']}\n"
    )
    ctk_path, ours_path = folder / "experiment.json", folder / "experiment.yaml"
    ctk_path.write_text(json.dumps(ctk, indent=2))
    ours_path.write_text(ours)
    return ctk_path, ours_path


def _time(argv: list[str], cwd: Path, runs: int, ok: tuple[int, ...] = (0,)) -> list[float]:
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
        took.append(time.perf_counter() - start)
        if done.returncode not in ok:
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return took


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench chaostoolkit")
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (median reported)")
    parser.add_argument("--json", type=Path, default=RESULTS / "chaostoolkit.json")
    args = parser.parse_args(argv)
    chaos = _install()
    if chaos is None:
        return 0
    version = subprocess.run([chaos, "--version"], check=False, capture_output=True, text=True).stdout.strip()
    ours_bin = _install_ours()
    if ours_bin is None:
        return 0
    python = str(OURS / "bin" / "python")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="chaoskit-bench-ctk-") as tmp:
            folder = Path(tmp)
            ctk_file, ours_file = _experiments(folder, url)
            ctk_journal = ["--journal-path", str(folder / "ctk-journal.json")]
            our_journal = ["--journal", str(folder / "journal.json"), "--state-dir", str(folder / "state")]
            commands = {
                "--help": ([chaos, "--help"], [ours_bin, "--help"]),
                "validate": ([chaos, "validate", str(ctk_file)], [ours_bin, "validate", str(ours_file)]),
                "run": (
                    [chaos, "--log-file", str(folder / "ctk.log"), "run", *ctk_journal, str(ctk_file)],
                    [ours_bin, "run", str(ours_file), "--quiet", *our_journal],
                ),
            }
            interpreter = [python, "-c", "pass"]
            for name, (theirs, ours) in commands.items():
                floor = [python, "-c", FLOORS[name]]
                # Interleaved rounds, so that a burst of load elsewhere hits all alike.
                ctk_times: list[float] = []
                our_times: list[float] = []
                floor_times: list[float] = []
                start_times: list[float] = []
                for _ in range(args.runs):
                    ctk_times += _time(theirs, folder, 1)
                    our_times += _time(ours, folder, 1)
                    floor_times += _time(floor, folder, 1)
                    start_times += _time(interpreter, folder, 1)
                ctk_median, our_median = statistics.median(ctk_times), statistics.median(our_times)
                floor_median = statistics.median(floor_times)
                rows.append(
                    {
                        "command": name,
                        "chaostoolkit_s": round(ctk_median, 4),
                        "chaoskit_s": round(our_median, 4),
                        "ratio": round(our_median / ctk_median, 3),
                        "target_met": our_median <= ctk_median / 2,
                        "target_s": round(ctk_median / 2, 4),
                        "interpreter_s": round(statistics.median(start_times), 4),
                        "floor_s": round(floor_median, 4),
                        "floor_imports": FLOORS[name],
                        "target_reachable": floor_median <= ctk_median / 2,
                        "runs": args.runs,
                    }
                )
    finally:
        server.shutdown()
    print(f"{'command':<10} {'Chaos Toolkit':>14} {'chaoskit':>10} {'ratio':>7}  target <= 0.5")
    for row in rows:
        print(
            f"{row['command']:<10} {row['chaostoolkit_s']:>13.3f}s {row['chaoskit_s']:>9.3f}s "
            f"{row['ratio']:>7.2f}  {'met' if row['target_met'] else 'MISSED'}"
        )
    print()
    print(f"{'command':<10} {'0.5 x CTK':>10} {'python':>8} {'libraries':>10}  within the target?")
    for row in rows:
        print(
            f"{row['command']:<10} {row['target_s']:>9.3f}s {row['interpreter_s']:>7.3f}s "
            f"{row['floor_s']:>9.3f}s  {'yes' if row['target_reachable'] else 'no'}: "
            f"python -c '{row['floor_imports']}'"
        )
    print(
        f"median of {args.runs} runs each; {version}; Python {sys.version.split()[0]}; {os.cpu_count()} cores"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"bench": "chaostoolkit", "chaostoolkit_version": version, "results": rows}, indent=2)
        + "\n"
    )
    print(f"wrote {args.json}")
    return 0
