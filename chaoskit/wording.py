"""Words for people: a count with its noun in the right number ("1 fault", "2 faults")."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, plural unless the count is one; ``plural`` for an irregular noun."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
