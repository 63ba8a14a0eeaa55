"""Target selection shared by every driver: after a driver filters candidates (by name, label,
regex), pick ``count``, ``percent`` or ``all`` of them at random with the run's seeded RNG, and
enforce the blast-radius caps."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Self

from pydantic import Field, model_validator

from chaoskit.drivers import contract
from chaoskit.errors import TargetError


class Selection(contract.Args):
    """How many of the matching targets to hit. Mix into a fault's ``Args``."""

    count: int | None = Field(default=None, ge=1)
    """Hit this many of the matches, chosen at random (seeded)."""
    percent: float | None = Field(default=None, gt=0, le=100)
    """Hit this share of the matches (rounded up, at least one), chosen at random (seeded)."""
    all: bool | None = None
    """Hit every match; the default when neither count nor percent is given."""
    max_targets: int | None = Field(default=None, ge=1)
    """Refuse to run if more than this many targets would be hit."""
    max_percent: float | None = Field(default=None, gt=0, le=100)
    """Refuse to run if more than this share of the matches would be hit."""

    @model_validator(mode="after")
    def _one_mode(self) -> Self:
        modes = [m for m in ("count", "percent") if getattr(self, m) is not None]
        if self.all:
            modes.append("all")
        if len(modes) > 1:
            raise ValueError(f"give only one of count, percent or all (got {', '.join(modes)})")
        return self


def choose(
    candidates: Sequence[contract.Target],
    selection: Selection,
    rng: random.Random,
    *,
    what: str = "targets",
) -> list[contract.Target]:
    """Pick from ``candidates`` as ``selection`` says; raise ``TargetError`` on an empty match
    or a blast radius larger than the caps (naming the number that would have been hit)."""
    ordered = sorted(candidates, key=lambda t: t.id)  # stable order, so a seed always picks the same
    if not ordered:
        raise TargetError(f"no {what} matched", hint="check the selector; `--dry-run` shows what matches")
    if selection.count is not None:
        n = min(selection.count, len(ordered))
    elif selection.percent is not None:
        n = max(1, math.ceil(len(ordered) * selection.percent / 100))
    else:
        n = len(ordered)
    chosen = ordered if n == len(ordered) else sorted(rng.sample(ordered, n), key=lambda t: t.id)
    if selection.max_targets is not None and len(chosen) > selection.max_targets:
        raise TargetError(
            f"{len(chosen)} {what} would be hit, more than max_targets={selection.max_targets}",
            hint="narrow the selector, lower count/percent, or raise max_targets",
        )
    if selection.max_percent is not None:
        share = 100 * len(chosen) / len(ordered)
        if share > selection.max_percent + 1e-9:
            raise TargetError(
                f"{len(chosen)} of {len(ordered)} {what} ({share:.3g}%) would be hit, "
                f"more than max_percent={selection.max_percent:g}",
                hint="narrow the selector, lower count/percent, or raise max_percent",
            )
    return chosen
