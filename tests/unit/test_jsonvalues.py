"""``jsonvalues``: the one normaliser of Python values into JSON values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from chaoskit import jsonvalues


def test_lenient_keeps_json_and_writes_everything_else_as_text() -> None:
    value = {"a": (1, 2.5, None), 3: Path("/tmp/x"), "nan": math.inf}
    assert jsonvalues.lenient(value) == {"a": [1, 2.5, None], "3": "/tmp/x", "nan": math.inf}


def test_strict_names_the_first_part_that_is_not_json() -> None:
    assert jsonvalues.strict({"ok": [True, "x"]}) == {"ok": [True, "x"]}
    with pytest.raises(ValueError, match=r"the result\['when'\]\[1\] is a pathlib.PosixPath"):
        jsonvalues.strict({"when": [1, Path("/")]}, "the result")
    with pytest.raises(ValueError, match="has a key of type int; JSON keys are text"):
        jsonvalues.strict({1: "a"})
    with pytest.raises(ValueError, match="is nan, which JSON can't hold"):
        jsonvalues.strict([math.nan])


def test_strict_can_keep_keys_as_text_and_infinities_for_a_validator() -> None:
    assert jsonvalues.strict({1: math.inf}, text_keys=True, nonfinite=True) == {"1": math.inf}
