"""Soak of the embedded proxy, smaller than ``python -m bench soak``: 1,000 concurrent connections
x 64 KiB echoed through a real proxy while latency and slicer toxics are added, changed and
removed in both directions. Every byte comes back in order and open descriptors return to
their baseline."""

from __future__ import annotations

import pytest

from bench import soak


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_thousand_connections_keep_every_byte_in_order_while_toxics_churn() -> None:
    # Half-close: each client shuts down its writes and waits for the echo's EOF, so connections
    # still on the splice path when a toxic moves them carry an EOF across the move.
    result = soak.run(connections=1000, size=64 * 1024, seed=9, timeout=240, half_close=True)
    assert result.toxic_changes >= 6, "the toxics never went through a whole add/change/remove cycle"
    assert not result.toxic_errors, result.toxic_errors[:5]
    assert not result.broken, f"{len(result.broken)} connections broken, e.g. {result.broken[:5]}"
    assert result.verified_bytes == 1000 * 64 * 1024
    assert result.fds_peak > result.fds_baseline + 1000, "the connections were never open at once"
    assert result.fds_after <= result.fds_baseline, (result.fds_baseline, result.fds_after)
