"""The pattern catalog (experiments/patterns/) discriminates: each experiment, run as a user runs
it against ``chaoskit demo``, ends ``completed`` (exit 0) with its pattern on and ``deviated``
(exit 1) with ``--var pattern=off``, and deviates in the method (the pattern's evidence), not in
setup or the steady state. The fourteen runs share a small pool of workers so the whole catalog
takes about a minute; each run starts its own demo on free ports."""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PATTERNS = (
    "timeout",
    "retry",
    "circuit-breaker",
    "bulkhead",
    "health-check",
    "load-shedding",
    "latency-budget",
)
PARALLEL = int(os.environ.get("CHAOSKIT_PATTERN_RUNS", "4"))
"""Runs at once: each is a chaoskit process and a demo; more than this on two shared cores makes
the latency evidence noisy."""


@dataclass(frozen=True)
class Outcome:
    returncode: int
    journal: dict[str, object]
    output: str


def free_ports(count: int) -> list[int]:
    """Ports free now, below the ephemeral range: a port the kernel picked for ``bind(0)`` could be
    handed out again, while the runs wait, to a demo's own proxies or a client's connection."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports: list[int] = []
    for port in range(max(1024, low - 12000), low):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError(f"no {count} free ports below {low}")


def run(pattern: str, state: str, ports: list[int], tmp: Path) -> Outcome:
    here = tmp / f"{pattern}-{state}"
    here.mkdir()
    port, backend, proxy, api = ports
    env = dict(os.environ)
    # The experiment starts `chaoskit demo`: the one installed next to this interpreter.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["CHAOSKIT_STATE_DIR"] = str(here / "state")
    journal = here / "journal.json"
    argv = [
        sys.executable,
        "-m",
        "chaoskit",
        "run",
        str(ROOT / "experiments" / "patterns" / f"{pattern}.yaml"),
    ]
    argv += ["--journal", str(journal), "--var", f"pattern={state}"]
    for name, value in (("port", port), ("backend_port", backend), ("proxy_port", proxy), ("proxy_api", api)):
        argv += ["--var", f"{name}={value}"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90, check=False, cwd=here)
    return Outcome(result.returncode, json.loads(journal.read_text()), result.stdout + result.stderr)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Outcome]:
    tmp = tmp_path_factory.mktemp("patterns")
    runs = [(pattern, state) for pattern in PATTERNS for state in ("on", "off")]
    # Distinct ports for every run, chosen before any starts.
    ports = free_ports(4 * len(runs))
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        futures = {key: pool.submit(run, *key, ports[4 * i : 4 * i + 4], tmp) for i, key in enumerate(runs)}
        return {key: future.result() for key, future in futures.items()}


def test_every_pattern_has_an_experiment_and_a_doc() -> None:
    shipped = sorted(path.stem for path in (ROOT / "experiments" / "patterns").glob("*.yaml"))
    assert shipped == sorted(PATTERNS)
    doc = (ROOT / "docs" / "patterns.md").read_text()
    for pattern in PATTERNS:
        assert f"experiments/patterns/{pattern}.yaml" in doc


@pytest.mark.slow
@pytest.mark.timeout(400)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_experiment_tells_the_pattern_on_from_off(
    pattern: str, outcomes: dict[tuple[str, str], Outcome]
) -> None:
    on, off = outcomes[pattern, "on"], outcomes[pattern, "off"]
    assert (on.returncode, on.journal["verdict"]) == (0, "completed"), on.output
    assert (off.returncode, off.journal["verdict"]) == (1, "deviated"), off.output
    # Off deviates because the pattern's evidence failed in the method, not because the demo
    # failed to start or was not steady to begin with.
    assert "method" in off.output.rsplit("deviated", 1)[1].splitlines()[0], off.output
    for outcome in (on, off):
        faults = outcome.journal["faults"]
        assert isinstance(faults, list) and faults
        assert all(fault["revert"] == "reverted" for fault in faults), outcome.output
