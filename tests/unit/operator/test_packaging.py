"""docs/operator.md says what ``pip install 'chaoskit[operator]'`` brings; pyproject.toml decides it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower()


def test_the_operator_extra_is_exactly_what_the_operator_doc_says_it_installs() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installed = {_name(r) for r in extras["operator"]}
    doc = (ROOT / "docs" / "operator.md").read_text()
    said = re.search(r"`chaoskit\[operator\]` installs (.+?);", doc, flags=re.S)
    assert said is not None, "docs/operator.md no longer says what chaoskit[operator] installs"
    assert set(re.findall(r"`([a-z0-9_.-]+)`", said.group(1))) == installed
    if "kopf" not in installed:
        assert "kopf is not installed" in doc
        assert not re.search(r"kopf[^.]*installed with the `operator` extra", doc)
