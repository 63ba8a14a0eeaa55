"""The driver author's guide (docs/drivers/writing.md) stays true: its example driver and its tests
run, as written, against this chaoskit."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaoskit.drivers import registry

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "drivers" / "writing.md"


@pytest.fixture
def guide() -> Iterator[types.ModuleType]:
    """The guide's Python blocks, run in order as one module (``acme_guide``)."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)
    assert len(blocks) == 2, "the guide has a driver block and a tests block"
    module = types.ModuleType("acme_guide")
    sys.modules[module.__name__] = module
    try:
        for block in blocks:
            exec(compile(block, f"{GUIDE}", "exec"), module.__dict__)
        yield module
    finally:
        del sys.modules[module.__name__]


def test_the_guides_tests_pass(guide: types.ModuleType, tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    guide.test_touch_is_injected_and_reverted(tmp_path / "one")
    guide.test_revert_works_from_the_ledger_alone(tmp_path / "two")


def test_the_guides_driver_registers_cleanly(guide: types.ModuleType) -> None:
    loaded = registry.build([guide.driver()])
    assert registry.source(loaded.faults["acme.file.touch"]) == "acme_guide:Touch"
    assert loaded.probes["acme.file.exists"].args is guide.ExistsArgs
