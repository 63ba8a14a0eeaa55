"""experiments/http-abort-retries.yaml end to end, through ``chaoskit run`` as a user runs it: under
5% http_abort on the demo's backend, the retrying frontend holds and a client without retries
loses about 5% of its requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoskit.drivers import registry
from tests.integration.proxy import test_quickstart


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.skipif(
    "toxiproxy.http_abort" not in registry.load().faults,
    reason="toxiproxy.http_* are not registered yet (README's driver table must list them first)",
)
def test_retries_ride_out_five_percent_of_aborts_and_no_retries_do_not(tmp_path: Path) -> None:
    result, journal = test_quickstart.run("http-abort-retries.yaml", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert journal["verdict"] == "completed"
    (fault,) = journal["faults"]  # type: ignore[misc]
    assert fault["activity"] == "toxiproxy.http_abort" and fault["revert"] == "reverted"
    ratios = {
        step["name"]: step["output"]["success_ratio"]
        for step in journal["steps"]  # type: ignore[attr-defined]
        if step["phase"] == "method" and step["activity"] == "http.load"
    }
    assert ratios["the frontend retries and keeps 99% success"] >= 0.99
    assert 0.88 <= ratios["the client without retries loses about 5% of its requests"] <= 0.985
    assert "status_503" in result.stdout  # the no-retry client's failures are the proxy's answers
