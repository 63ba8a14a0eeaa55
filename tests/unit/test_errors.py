"""``errors.text``: how chaoskit shows any exception, in one place."""

from __future__ import annotations

from chaoskit import errors


def test_a_chaoskit_error_shows_its_hint_and_anything_else_its_message() -> None:
    error = errors.DriverError("the proxy is gone", hint="start it again")
    assert errors.text(error) == "the proxy is gone\n  hint: start it again"
    assert errors.text(error, typed=True) == "the proxy is gone\n  hint: start it again"
    assert errors.text(TimeoutError("timed out after 2s")) == "timed out after 2s"
    assert errors.text(KeyError("pid"), typed=True) == "KeyError: 'pid'"
