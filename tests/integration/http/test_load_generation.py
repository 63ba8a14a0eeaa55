"""``http.load`` as a load generator, against a fast asyncio server in its own process (the
bench's): the engine's event loop keeps its cadence while a heavy load runs in a driver thread;
open-loop latency counts from each request's due time (coordinated omission corrected), and a
generator that cannot keep up says so instead of reporting its backlog as latency."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Iterator

import pytest

from bench import http_load
from chaoskit.drivers import contract
from chaoskit.drivers.http import spreading, traffic


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with http_load.serve() as port:
        yield f"http://127.0.0.1:{port}"


def load(**args: object) -> dict[str, contract.JsonValue]:
    out = traffic.LoadProbe().run(traffic.LoadArgs.model_validate(args), contract.RunContext(run_id="load"))
    assert isinstance(out, dict)
    return out


@pytest.mark.parametrize("seconds", [1.5, 3.0], ids=["in-process", "handed-over-to-workers"])
def test_the_engine_loop_keeps_its_cadence_while_a_heavy_load_runs(
    server: str, seconds: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 3 s is long enough for the load to be handed over to worker processes (spreading.py):
    # the loop keeps its cadence while they start and once they run. Workers are spread on a
    # machine with a CPU to spare beside them: this one is told it has three.
    assert (seconds >= spreading.MIN_SECONDS) == (seconds == 3.0)
    monkeypatch.setattr(spreading, "cpus", lambda: 3)
    interval = 0.05

    async def engine() -> tuple[list[float], dict[str, contract.JsonValue]]:
        # Like the engine: the probe runs in a worker thread while a guard ticks on the loop.
        loop = asyncio.get_running_loop()
        running = loop.run_in_executor(
            None, lambda: load(url=f"{server}/delay/0", requests=10_000_000, concurrency=32, duration=seconds)
        )
        ticks: list[float] = []
        while not running.done():
            ticks.append(time.perf_counter())
            await asyncio.sleep(interval)
        return [b - a for a, b in itertools.pairwise(ticks)], await running

    gaps, out = asyncio.run(engine())
    assert isinstance(out["requests"], int) and out["requests"] > 2_000  # it was a heavy load
    assert len(gaps) >= seconds / interval / 2
    # A starved loop shows gaps of the whole load's length; a responsive one keeps ~50 ms.
    assert statistics.median(gaps) < interval + 0.02, gaps
    assert max(gaps) < interval + 0.25, gaps


def test_open_loop_latency_is_the_servers_delay(server: str) -> None:
    out = load(url=f"{server}/delay/10", rate=200, duration="2s")
    assert out["success_ratio"] == 1.0 and out["generator_saturated"] is False
    assert out["latency_from"] == "due" and out["target_rps"] == 200
    assert isinstance(out["requests"], int) and 360 <= out["requests"] <= 400  # on schedule
    lat = out["latency_ms"]
    assert isinstance(lat, dict) and isinstance(lat["p50"], float)
    assert 9.0 <= lat["p50"] <= 14.0, lat  # the server's 10 ms, give or take timer granularity


def test_open_loop_counts_waiting_for_a_busy_server_as_latency(server: str) -> None:
    # One connection, a request due every 10 ms, each answered in 50 ms: requests queue behind
    # the server. A closed-loop reading would say 50 ms; users waited far longer.
    out = load(url=f"{server}/delay/50", rate=100, duration="1s", concurrency=1, timeout="3s")
    assert out["generator_saturated"] is False and out["connections"] == 1
    lat = out["latency_ms"]
    assert isinstance(lat, dict) and isinstance(lat["p50"], float) and isinstance(lat["p99"], float)
    assert lat["p50"] > 500 and lat["p99"] > 1500, lat


def test_a_generator_that_cannot_keep_up_says_so(server: str) -> None:
    out = load(url=f"{server}/delay/0", rate=2_000_000, duration="1s")
    assert out["generator_saturated"] is True
    assert isinstance(out["rate_rps"], float) and out["rate_rps"] < 2_000_000 * 0.98
    assert out["latency_from"] == "sent" and out["success_ratio"] == 1.0
    lat = out["latency_ms"]
    # The server answers at once: a p50 of seconds would be the generator's own backlog.
    assert isinstance(lat, dict) and isinstance(lat["p50"], float) and lat["p50"] < 100, lat
