"""docs/cli-reference.md is what the commands say about themselves (regenerate it, don't edit it)."""

from __future__ import annotations

from pathlib import Path

from chaoskit.cli import main, reference

DOC = Path(__file__).resolve().parents[3] / "docs" / "cli-reference.md"


def test_the_committed_reference_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == reference.render(), (
        "docs/cli-reference.md is out of date: python -m chaoskit.cli.reference > docs/cli-reference.md"
    )


def test_every_command_has_a_section() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in main.COMMANDS:
        assert f"## `chaoskit {name}`" in text
