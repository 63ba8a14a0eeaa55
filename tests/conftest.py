"""Shared test helpers: the rule for real components that are missing.

Under ``CI=true`` a suite whose component is missing fails; locally it skips, saying how to get it.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Fixtures more than one suite uses, each defined once (one instance per session).
pytest_plugins = ["tests.k8s.clusters"]

# Property tests check behaviour, not speed: no per-example deadline and no "too slow" health check
# (a loaded 2-core CI machine with coverage on is slow). Examples are random everywhere, CI too:
# derandomized runs test the same few cases forever (a trailing-newline bug in an anchored regex
# hid that way). scripts/test prints the seed it passes (`hypothesis seed: N`); a failure in CI is
# replayed with `HYPOTHESIS_SEED=N scripts/test --unit`, or `pytest --hypothesis-seed=N ...`.
settings.register_profile("chaoskit", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("chaoskit")


def require(component: str, available: bool, how: str) -> None:
    """Fail (in CI) or skip (locally) the calling test or fixture when ``component`` is missing."""
    if available:
        return
    message = f"{component} is not available: {how}"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)
