"""Helpers the Chaos Toolkit corpus experiments call as python providers."""

from __future__ import annotations

from pathlib import Path


def up_unless_just_broken(path: str) -> bool:
    """False once right after the method wrote ``down`` to ``path``, True from then on: a system
    that recovers a moment after the method, which Chaos Toolkit still calls a deviation."""
    file = Path(path)
    if file.read_text() == "down":
        file.write_text("up")
        return False
    return True


def takes(url: str, retries: int = 1) -> bool:
    return bool(url) and retries >= 0


def equals(a: object, b: object) -> bool:
    return a == b
