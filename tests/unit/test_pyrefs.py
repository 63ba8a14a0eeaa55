"""``pyrefs``: the one resolver of ``module:function`` references."""

from __future__ import annotations

import os.path
from pathlib import Path

import pytest

from chaoskit import pyrefs


def test_a_reference_resolves_to_its_function_through_dotted_attributes() -> None:
    assert pyrefs.resolve("os.path:join") is os.path.join
    assert pyrefs.resolve("pathlib:Path.cwd")() is not None


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no_such_module_here:f", "can't import no_such_module_here: No module named"),
        ("os.path:nope", "os.path has no attribute 'nope'"),
        ("os:sep", "sep is of type str, not a function"),
    ],
)
def test_what_is_missing_is_named(ref: str, message: str) -> None:
    with pytest.raises(pyrefs.Unresolvable, match=message):
        pyrefs.resolve(ref)


def test_a_module_that_raises_while_importing_is_unresolvable_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "explodes_on_import.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(pyrefs.Unresolvable, match="importing explodes_on_import raised RuntimeError: boom"):
        pyrefs.module("explodes_on_import")
