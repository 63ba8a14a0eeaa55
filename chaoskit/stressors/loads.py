"""What a stressor is asked to do: the arguments of each kind of load (CPU, memory, disk fill, IO),
shared by the drivers that run stressors, and the revert data that finds a stressor again."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, Field, model_validator

from chaoskit.drivers import contract
from chaoskit.durations import Duration

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]*)")


def parse_size(value: Any) -> int:
    """Bytes from ``268435456``, ``"256MiB"``, ``"256Mi"``, ``"1GB"`` or ``"512k"``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 256MiB or a number of bytes, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        found = _SIZE.fullmatch(value.strip())
        if found is not None and found.group(2).lower() in _UNITS:
            return int(float(found.group(1)) * _UNITS[found.group(2).lower()])
        raise ValueError(f"expected a size like 256MiB, 1GB or 4096 (bytes), got {value!r}")
    raise ValueError(f"expected a size like 256MiB or a number of bytes, got {type(value).__name__}")


def human(size: int) -> str:
    """``size`` for a person: ``32MiB``, ``1.5GiB``, ``4096 bytes``."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:.4g}{unit}"
    return f"{size} bytes"


Size = Annotated[int, BeforeValidator(parse_size)]
"""A number of bytes; also written with a unit: ``k``/``KB``, ``Mi``/``MiB``, ``G``/``GB``..."""


class Load(contract.Args):
    max_duration: Duration = Field(default=600.0, gt=0)
    """The stressor stops by itself this long after it started, even if chaoskit is gone; the step
    normally ends it sooner (default ``10m``)."""


class CpuLoad(Load):
    workers: int = Field(default=1, ge=1, le=256)
    """How many busy processes, each as much as one CPU."""
    load: float = Field(default=100.0, gt=0, le=100)
    """Percent of one CPU each worker keeps busy."""


class MemoryLoad(Load):
    size: Size = Field(gt=0)
    """How much memory to allocate and hold resident, e.g. ``256MiB``."""


class FillLoad(Load):
    path: str = Field(min_length=1)
    """A directory on the filesystem to fill; the file is written there and removed on revert."""
    size: Size | None = Field(default=None, gt=0)
    """How much to write, e.g. ``1GiB``."""
    percent_full: float | None = Field(default=None, gt=0, le=100)
    """Or: write until the filesystem is this percent full (nothing when it already is). Not
    ``percent``, which chooses a share of the targets."""

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.size is None) == (self.percent_full is None):
            raise ValueError("give exactly one of size or percent_full")
        return self


class IoLoad(Load):
    path: str = Field(min_length=1)
    """A directory to read and write in; the workers' files are removed on revert."""
    workers: int = Field(default=1, ge=1, le=64)
    """How many processes read and write at once, each in its own file."""
    size: Size = Field(default=64 * 1024**2, ge=1024**2)
    """How much each worker writes (then reads back) per round, e.g. ``64MiB``."""
    mode: Literal["read", "write", "both"] = "both"
    """``write`` (with fsync), ``read`` (from the device: the page cache is dropped first) or ``both``."""


Kind = Literal["cpu", "memory", "fill", "io"]


class StressRevert(contract.Revert):
    """A stressor, found again by its mark; and the files it writes, removed even after a SIGKILL."""

    kind: Kind
    """What it loads (``cpu``, ``memory``, ``fill``, ``io``), for the messages."""
    mark: str = Field(min_length=1)
    """``<run id>/<ledger entry>``: the value of ``CHAOSKIT_ENTRY`` in the stressor's environment.
    The revert stops every process that carries it."""
    files: tuple[str, ...] = ()
    """Files it writes (a fill's file; an IO worker's, one per worker), as this host sees them."""
    pid: int | None = Field(default=None, gt=0)
    """The stressor's process, once started (for the messages)."""
