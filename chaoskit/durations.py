"""Durations as users write them (``250ms``, ``30s``, ``5m``, ``1h``, ``1m30s``), as seconds.

``Duration`` is a pydantic-ready annotated float: a bare number means seconds; negative values,
NaN and anything longer than ``MAX`` (30 days) are refused, and the error says what is accepted.
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
MAX = 30 * 86400.0
"""The longest duration accepted anywhere (30 days). No pause, fault or deadline in a run, nor gap
in a schedule, is meant to be longer; past it a value is a typo (``1e309``, 400 digits), and
sleeps, timers and dates overflow on such numbers."""


def _shown(value: object) -> str:
    if isinstance(value, int) and abs(value).bit_length() > 128:
        # repr() itself refuses ints of more than 4300 digits.
        return f"a number of about {int(abs(value).bit_length() * math.log10(2))} digits"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} characters)"


def parse(value: object) -> float:
    """Seconds for ``value``; raises ``ValueError`` with the accepted spellings."""
    if isinstance(value, bool):
        raise ValueError(f"{_shown(value)} is not a duration; {HINT}")
    too_long = f"a duration can be at most 30d (2592000 seconds), got {_shown(value)}"
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int with hundreds of digits
            negative = f"a duration can't be negative, got {_shown(value)}"
            raise ValueError(too_long if value > 0 else negative) from None
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if text.startswith("-"):
            raise ValueError(f"a duration can't be negative, got {_shown(value)}")
        try:
            seconds = float(text)
        except ValueError:
            if not _WHOLE.fullmatch(text):
                raise ValueError(f"not a duration: {_shown(value)}; {HINT}") from None
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    else:
        raise ValueError(f"{_shown(value)} is not a duration; {HINT}")
    if math.isnan(seconds):
        raise ValueError(f"not a duration: {_shown(value)}; {HINT}")
    if seconds < 0:
        raise ValueError(f"a duration can't be negative, got {_shown(value)}")
    if seconds > MAX:
        raise ValueError(too_long)
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
