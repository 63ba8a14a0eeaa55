""" "Did you mean" hints for misspelled keys, variables, step ids and secret names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, pool: Iterable[str]) -> str | None:
    """The name in ``pool`` that ``word`` most likely misspells, if any is close enough."""
    candidates = sorted(set(pool))
    lowered = {c.lower(): c for c in candidates}
    if word.lower() in lowered:
        return lowered[word.lower()]
    found = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return found[0] if found else None


def hint(word: str, pool: Iterable[str]) -> str:
    """`` (did you mean 'below'?)`` or the empty string."""
    match = closest(word, pool)
    return f" (did you mean {match!r}?)" if match else ""
