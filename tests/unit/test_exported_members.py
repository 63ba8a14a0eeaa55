"""The public API (``chaoskit.__all__``) is exactly what the README documents, and it loads lazily."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import chaoskit

README = Path(__file__).resolve().parents[2] / "README.md"


def _documented() -> set[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Python API", 1)[1].split("\n## ", 1)[0]
    return {m.group(1) for m in re.finditer(r"^\| `chaoskit\.([A-Za-z_]+)`", section, re.M)}


def test_all_matches_the_readme() -> None:
    assert set(chaoskit.__all__) == _documented()


def test_every_exported_name_resolves() -> None:
    for name in chaoskit.__all__:
        assert getattr(chaoskit, name) is not None


def test_importing_chaoskit_loads_no_library_face_or_heavy_client() -> None:
    code = (
        "import sys, chaoskit\n"
        "heavy = {'chaoskit.probes', 'chaoskit.faults', 'httpx', 'docker', 'kubernetes'} & set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_readme_lists_exactly_the_registered_faults_probes_and_actions() -> None:
    from chaoskit.drivers import registry

    loaded = registry.load()
    section = README.read_text(encoding="utf-8").split("## What it can do", 1)[1].split("\n\n", 2)[1]
    kinds: dict[str, set[str]] = {"faults": set(), "probes": set(), "actions": set()}
    for row in section.splitlines()[2:]:
        cells = row.split("|")[2:5]
        for kind, cell in zip(kinds, cells, strict=True):
            kinds[kind] |= set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)`", cell))
    assert kinds["faults"] == set(loaded.faults)
    assert kinds["probes"] == set(loaded.probes)
    assert kinds["actions"] == set(loaded.actions)
