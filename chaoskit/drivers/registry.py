"""The registry of faults, probes and actions, built from the ``chaoskit.drivers`` entry points.

Built in a function, never at import time; built-in drivers load the same way as third-party ones.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from chaoskit.drivers import contract

GROUP = "chaoskit.drivers"


@dataclass(frozen=True)
class Registry:
    drivers: Mapping[str, contract.Driver]
    faults: Mapping[str, contract.Fault[Any, Any]]
    probes: Mapping[str, contract.Probe[Any]]
    actions: Mapping[str, contract.Action[Any]]
    broken: Mapping[str, str] = field(default_factory=dict)
    """Entry points that failed to load: name → why."""

    def suggest(self, name: str, kind: str) -> str | None:
        """The closest registered name of that kind ("fault", "probe", "action"), for 'did you mean'."""
        pool: Iterable[str] = {"fault": self.faults, "probe": self.probes, "action": self.actions}[
            kind
        ].keys()
        close = difflib.get_close_matches(name, list(pool), n=1, cutoff=0.6)
        return close[0] if close else None

    def driver_of(self, activity_name: str) -> contract.Driver | None:
        return self.drivers.get(activity_name.split(".", 1)[0])


def build(drivers: Iterable[contract.Driver]) -> Registry:
    """A registry of the given drivers; later names win (so tests can override a built-in)."""
    by_name: dict[str, contract.Driver] = {}
    faults: dict[str, contract.Fault[Any, Any]] = {}
    probes: dict[str, contract.Probe[Any]] = {}
    actions: dict[str, contract.Action[Any]] = {}
    for driver in drivers:
        by_name[driver.name] = driver
        faults.update((f.name, f) for f in driver.faults)
        probes.update((p.name, p) for p in driver.probes)
        actions.update((a.name, a) for a in driver.actions)
    return Registry(drivers=by_name, faults=faults, probes=probes, actions=actions)


def load(extra: Iterable[contract.Driver] = (), only: Collection[str] | None = None) -> Registry:
    """Every installed driver from the entry points (or ``only`` those named), then ``extra`` (tests,
    the fake driver)."""
    loaded: list[contract.Driver] = []
    broken: dict[str, str] = {}
    for entry in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
        if only is not None and entry.name not in only:
            continue
        try:
            factory: Callable[[], contract.Driver] = entry.load()
            loaded.append(factory())
        except Exception as e:
            broken[entry.name] = f"{type(e).__name__}: {e}"
    registry = build([*loaded, *extra])
    return Registry(
        drivers=registry.drivers,
        faults=registry.faults,
        probes=registry.probes,
        actions=registry.actions,
        broken=broken,
    )
