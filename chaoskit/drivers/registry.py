"""The registry of faults, probes and actions, built from the ``chaoskit.drivers`` entry points.

Built in a function, never at import time; built-in drivers load the same way as third-party ones.
It refuses ambiguity: two drivers of one name, two activities of one kind and name, or an activity
named outside its driver's prefix are a ``DriverConflict`` naming every source, never a silent
winner. Tests and fakes that mean to stand in for a driver say so with ``replace``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from chaoskit import errors
from chaoskit.drivers import contract

GROUP = "chaoskit.drivers"
KINDS = ("faults", "probes", "actions")

Activity = contract.Fault[Any, Any] | contract.Probe[Any] | contract.Action[Any]


def source(activity: Activity) -> str:
    """Where an activity's code is: ``module:Class``."""
    cls = type(activity)
    return f"{cls.__module__}:{cls.__qualname__}"


@dataclass(frozen=True)
class Registry:
    drivers: Mapping[str, contract.Driver]
    faults: Mapping[str, contract.Fault[Any, Any]]
    probes: Mapping[str, contract.Probe[Any]]
    actions: Mapping[str, contract.Action[Any]]
    broken: Mapping[str, str] = field(default_factory=dict)
    """Entry points that failed to load: name → why."""
    origins: Mapping[str, str] = field(default_factory=dict)
    """Where each driver came from, by driver name: its entry point and distribution, or code."""

    def suggest(self, name: str, kind: str) -> str | None:
        """The closest registered name of that kind ("fault", "probe", "action"), for 'did you mean'."""
        pool: Iterable[str] = {"fault": self.faults, "probe": self.probes, "action": self.actions}[
            kind
        ].keys()
        close = difflib.get_close_matches(name, list(pool), n=1, cutoff=0.6)
        return close[0] if close else None


@dataclass(frozen=True)
class Loaded:
    """A driver and where it came from, for the messages that name both sides of a conflict."""

    driver: contract.Driver
    origin: str


def _in_code(driver: contract.Driver) -> Loaded:
    return Loaded(driver, f"driver {driver.name!r} given in code")


def _check_prefix(loaded: Loaded) -> None:
    driver = loaded.driver
    for kind in KINDS:
        for item in getattr(driver, kind):
            if not item.name.startswith(f"{driver.name}."):
                raise errors.DriverConflict(
                    f"{kind[:-1]} {item.name} ({source(item)}) is outside the prefix of its driver "
                    f"{driver.name!r} ({loaded.origin}): a name must start with '{driver.name}.'",
                    hint=f"rename it '{driver.name}.{item.name.split('.')[-1]}', or give it a driver "
                    f"of its own named '{item.name.split('.', 1)[0]}'",
                )


def _by_name(
    drivers: Iterable[contract.Driver | Loaded], replace: Iterable[contract.Driver]
) -> dict[str, Loaded]:
    by_name: dict[str, Loaded] = {}
    for item in drivers:
        loaded = item if isinstance(item, Loaded) else _in_code(item)
        earlier = by_name.get(loaded.driver.name)
        if earlier is not None:
            raise errors.DriverConflict(
                f"two drivers are called {loaded.driver.name!r}: {earlier.origin} and {loaded.origin}",
                hint="uninstall one of them (a driver meant to stand in for another is given as replace=)",
            )
        by_name[loaded.driver.name] = loaded
    for driver in replace:
        if driver.name not in by_name:
            raise errors.DriverConflict(
                f"replace= names driver {driver.name!r}, which is not registered "
                f"(registered: {', '.join(sorted(by_name)) or 'none'})",
                hint="pass it with the other drivers instead, or load the driver it replaces",
            )
        by_name[driver.name] = Loaded(driver, f"driver {driver.name!r} given as replace=")
    return by_name


def _tables(drivers: Iterable[Loaded]) -> dict[str, dict[str, Any]]:
    """Each kind's activities by name; one name given twice in a kind is refused, naming both."""
    tables: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
    owners: dict[tuple[str, str], Loaded] = {}
    for loaded in drivers:
        for kind in KINDS:
            for item in getattr(loaded.driver, kind):
                earlier = tables[kind].get(item.name)
                if earlier is not None:
                    raise errors.DriverConflict(
                        f"{kind[:-1]} {item.name} is registered twice: {source(earlier)} from "
                        f"{owners[kind, item.name].origin}, and {source(item)} from {loaded.origin}",
                        hint="uninstall one of them or rename one activity under its own driver's prefix",
                    )
                tables[kind][item.name] = item
                owners[kind, item.name] = loaded
    return tables


def build(
    drivers: Iterable[contract.Driver | Loaded], *, replace: Iterable[contract.Driver] = ()
) -> Registry:
    """A registry of ``drivers``, refusing any ambiguity (``DriverConflict``, exit 2). Each driver
    in ``replace`` stands in for the one of its name, activities and all (a test's fake of a
    built-in); replacing a driver that is not there is refused too, so a typo can't hide."""
    by_name = _by_name(drivers, replace)
    tables = _tables(by_name.values())
    for loaded in by_name.values():
        _check_prefix(loaded)
    return Registry(
        drivers={name: loaded.driver for name, loaded in by_name.items()},
        faults=tables["faults"],
        probes=tables["probes"],
        actions=tables["actions"],
        origins={name: loaded.origin for name, loaded in by_name.items()},
    )


def _origin(entry: metadata.EntryPoint) -> str:
    dist = entry.dist
    where = f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"
    return f"entry point {entry.name!r} = {entry.value} of {where}"


def _entries() -> Sequence[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=GROUP), key=lambda e: (e.name, e.value))


def load(
    extra: Iterable[contract.Driver] = (),
    only: Collection[str] | None = None,
    *,
    replace: Iterable[contract.Driver] = (),
) -> Registry:
    """Every installed driver from the entry points (or ``only`` those named), then ``extra`` (the
    fake driver); ``replace`` stands in for installed drivers by name (see ``build``)."""
    loaded: list[Loaded] = []
    broken: dict[str, str] = {}
    for entry in _entries():
        if only is not None and entry.name not in only:
            continue
        try:
            factory: Callable[[], contract.Driver] = entry.load()
            loaded.append(Loaded(factory(), _origin(entry)))
        except Exception as e:
            broken[entry.name] = f"{type(e).__name__}: {e}"
    registry = build([*loaded, *extra], replace=replace)
    return Registry(
        drivers=registry.drivers,
        faults=registry.faults,
        probes=registry.probes,
        actions=registry.actions,
        broken=broken,
        origins=registry.origins,
    )
