"""Durations as users write them (``250ms``, ``30s``, ``5m``, ``1h``, ``1m30s``), as seconds.

``Duration`` is a pydantic-ready annotated float: a bare number means seconds, negative values
are refused, and the error says which spellings are accepted.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")

HINT = "write a duration like 250ms, 30s, 5m, 1h or 1m30s"


def parse(value: object) -> float:
    """Seconds for ``value``; raises ``ValueError`` with the accepted spellings."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}; {HINT}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if text.startswith("-"):
            raise ValueError(f"a duration can't be negative, got {value!r}")
        try:
            seconds = float(text)
        except ValueError:
            if not _WHOLE.fullmatch(text):
                raise ValueError(f"not a duration: {value!r}; {HINT}") from None
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    else:
        raise ValueError(f"expected a duration, got {type(value).__name__}; {HINT}")
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"not a duration: {value!r}; {HINT}")
    if seconds < 0:
        raise ValueError(f"a duration can't be negative, got {value!r}")
    return seconds


def format(seconds: float) -> str:
    """A short human spelling: ``0.25`` → ``250ms``, ``90`` → ``1m30s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.3g}s" if seconds != int(seconds) else f"{int(seconds)}s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{rest}s" if rest else "")


Duration = Annotated[
    float,
    BeforeValidator(parse),
    PlainSerializer(lambda s: s, return_type=float),
]
"""Seconds, parsed from ``250ms``/``30s``/``5m``/``1h`` or a bare number of seconds."""
