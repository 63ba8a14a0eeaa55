"""Shared test helpers: the rule for real components that are missing.

Under ``CI=true`` a suite whose component is missing fails; locally it skips, saying how to get it.
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(component: str, available: bool, how: str) -> None:
    """Fail (in CI) or skip (locally) the calling test or fixture when ``component`` is missing."""
    if available:
        return
    message = f"{component} is not available: {how}"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)
