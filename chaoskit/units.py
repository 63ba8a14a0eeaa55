"""The units of the Toxiproxy API's toxic attributes, and the one place that converts them.

Shared by the ``toxiproxy`` driver (durations typed by users → the API's integers) and the
embedded proxy (the API's integers → seconds for its timers); neither imports the other.
"""

from __future__ import annotations

import enum


class Unit(enum.Enum):
    """What an integer toxic attribute counts."""

    MS = "ms"
    US = "µs"
    BYTES = "bytes"
    KB_PER_S = "KB/s"


KB = 1000
"""Bytes in the bandwidth toxic's KB (Toxiproxy's: not 1024)."""

DAY_MS = 24 * 60 * 60 * 1000
"""A day in milliseconds: the longest wait a toxic attribute may ask for."""

_PER_SECOND = {Unit.MS: 1000, Unit.US: 1_000_000}


def to_ms(seconds: float) -> int:
    """``seconds`` as the whole milliseconds the API takes (``latency``, ``timeout``, ...)."""
    return round(seconds * 1000)


def to_us(seconds: float) -> int:
    """``seconds`` as the whole microseconds the API takes (the slicer's ``delay``)."""
    return round(seconds * 1_000_000)


def seconds(value: int, unit: Unit) -> float:
    """A time attribute (``MS`` or ``US``) in seconds."""
    return value / _PER_SECOND[unit]


def most(unit: Unit, largest: int) -> int:
    """The largest value an attribute in ``unit`` may take: a day for times (a longer wait is a
    toxic that never ends, and overflows the event loop's timers), else ``largest``."""
    return DAY_MS * (_PER_SECOND[unit] // 1000) if unit in _PER_SECOND else largest


def bytes_per_second(rate: int) -> int:
    """A bandwidth ``rate`` (KB/s) in bytes per second."""
    return rate * KB
