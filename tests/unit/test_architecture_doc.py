"""docs/architecture.md names modules, files and functions: each one it names exists, so the map
can't send a newcomer to code that moved."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = (
    "spec|engine|drivers|report|gameday|probes|cli|operator|kube|proxy|describing|installing|errors|testing"
)
DOTTED = re.compile(rf"`(?:chaoskit\.)?((?:{PACKAGES})(?:\.\w+)+)`")
FILES = re.compile(r"`((?:chaoskit/)?[\w.-]+(?:/[\w.-]+)*/?)`")


def _resolve(dotted: str) -> object:
    """The object ``chaoskit.<dotted>`` names: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module("chaoskit." + ".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise ModuleNotFoundError(f"chaoskit.{dotted}")


def test_every_dotted_name_the_page_gives_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    names = set(DOTTED.findall(text))
    assert len(names) > 20  # the page is read, not skipped
    missing = []
    for name in sorted(names):
        try:
            _resolve(name)
        except (ModuleNotFoundError, AttributeError) as e:
            missing.append(f"{name}: {e}")
    assert not missing, "docs/architecture.md names code that is not there:\n" + "\n".join(missing)


def test_every_path_the_page_gives_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    paths = {p for p in FILES.findall(text) if "/" in p and not p.startswith(("http", "-"))}
    assert len(paths) > 10
    missing = [p for p in sorted(paths) if not (ROOT / p).exists() and not (ROOT / "chaoskit" / p).exists()]
    assert not missing, f"docs/architecture.md names paths that are not there: {missing}"
