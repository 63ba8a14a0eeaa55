"""``chaoskit drivers [NAME]``: the installed drivers in one line each; a driver's faults, probes and
actions with their arguments; or one activity. ``--source`` says where each one's code is.

Only the driver a NAME needs is imported, and arguments are described (which reads their source)
only when shown.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from chaoskit import describing, errors, installing
from chaoskit.drivers import contract, registry

KINDS = ("faults", "probes", "actions")


def _arguments(args: type[contract.Args]) -> list[dict[str, Any]]:
    try:
        schema = describing.json_schema(args)
    except Exception as e:  # a driver's model that pydantic can't describe must not hide the rest
        return [{"name": "?", "type": "?", "required": False, "default": None, "description": str(e)}]
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type") or " | ".join(
            str(p.get("type", p.get("$ref", "?")).split("/")[-1]) for p in prop.get("anyOf", [])
        )
        out.append(
            {
                "name": name,
                "type": kind or "any",
                "required": name in required,
                "default": prop.get("default"),
                "description": " ".join(str(prop.get("description", "")).split()),
            }
        )
    return out


def _activity(item: registry.Activity, kind: str, *, full: bool, source: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": item.name, "summary": item.summary}
    if isinstance(item, contract.Fault):
        entry["reversibility"] = item.reversibility.value
    if source:
        entry["source"] = registry.source(item)
    if full:
        entry["args"] = _arguments(item.args)
    return entry


def describe(drivers: registry.Registry, *, full: bool = True, source: bool = False) -> list[dict[str, Any]]:
    """Every driver as JSON-ready data: what ``--output json`` prints; without ``full``, no
    arguments (which are slow to describe); with ``source``, where each driver came from
    (``origin``) and each activity's ``module:Class`` (``source``)."""
    out = []
    for name, driver in sorted(drivers.drivers.items()):
        missing = driver.missing()
        entry: dict[str, Any] = {
            "name": name,
            "summary": driver.summary,
            "unavailable": installing.install_hints(missing) if missing else missing,
        }
        if source:
            entry["origin"] = drivers.origins.get(name, "")
        for kind in KINDS:
            entry[kind] = [_activity(item, kind, full=full, source=source) for item in getattr(driver, kind)]
        out.append(entry)
    for name, why in sorted(drivers.broken.items()):
        out.append(
            {
                "name": name,
                "summary": "",
                "unavailable": f"failed to load: {why}",
                "faults": [],
                "probes": [],
                "actions": [],
            }
        )
    return out


def _pick(data: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The driver called ``name``, or each driver with only its activities called ``name`` (a probe
    and an action may share one)."""
    drivers = [d for d in data if d["name"] == name]
    if drivers:
        return drivers
    picked = []
    for driver in data:
        activities = {kind: [a for a in driver[kind] if a["name"] == name] for kind in KINDS}
        if any(activities.values()):
            picked.append({**driver, **activities})
    return picked


def _described(drivers: registry.Registry, name: str, *, source: bool) -> list[dict[str, Any]]:
    """``_pick`` of ``drivers``, with the arguments of only what was picked."""
    picked = _pick(describe(drivers, full=False, source=source), name)
    activities: dict[str, Mapping[str, Any]] = {
        "faults": drivers.faults,
        "probes": drivers.probes,
        "actions": drivers.actions,
    }
    for driver in picked:
        for kind in KINDS:
            for item in driver[kind]:
                item["args"] = _arguments(activities[kind][item["name"]].args)
    return picked


def _select(name: str, *, source: bool = False) -> list[dict[str, Any]]:
    """What ``chaoskit drivers NAME`` shows; a name that matches nothing is a usage error with the
    closest name."""
    # An activity's name starts with its driver's (the registry sees to it): load only that driver.
    found = _described(registry.load(only={name.split(".", 1)[0]}), name, source=source)
    if found:
        return found
    everything = describe(registry.load(), full=False)
    owners = {d["name"] for d in _pick(everything, name)}
    if owners:  # a third party's entry point may be named other than its driver
        return _described(registry.load(), name, source=source)
    names = [d["name"] for d in everything] + [a["name"] for d in everything for k in KINDS for a in d[k]]
    close = difflib.get_close_matches(name, sorted(set(names)), n=1, cutoff=0.6)
    raise errors.UsageError(
        f"no driver, fault, probe or action is called {name!r}",
        hint=(f"did you mean {close[0]!r}? " if close else "") + "chaoskit drivers lists them all",
    )


def _summary(console: Console, data: list[dict[str, Any]]) -> None:
    width = max((len(d["name"]) for d in data), default=0)
    for driver in data:
        names = "; ".join(
            f"{kind} {', '.join(a['name'] for a in driver[kind])}" for kind in KINDS if driver[kind]
        )
        console.print(f"[bold]{driver['name']:{width}}[/]  {escape(names)}")
        if driver["unavailable"]:
            console.print(f"{'':{width}}  [yellow]unavailable: {escape(driver['unavailable'])}[/]")
    console.print(
        "[dim]chaoskit drivers NAME shows a driver's (or one activity's) arguments, "
        "e.g. chaoskit drivers toxiproxy.latency; --source shows where each one's code is[/]"
    )


def _full(console: Console, data: list[dict[str, Any]]) -> None:
    for driver in data:
        console.print(f"[bold]{driver['name']}[/]  {escape(driver['summary'])}")
        if driver["unavailable"]:
            console.print(f"  [yellow]unavailable: {escape(driver['unavailable'])}[/]")
        for kind in KINDS:
            for item in driver[kind]:
                extra = f" [dim]({item['reversibility']})[/]" if kind == "faults" else ""
                console.print(f"  {kind[:-1]:6} [bold]{item['name']}[/]{extra}  {escape(item['summary'])}")
                for arg in item["args"]:
                    need = "required" if arg["required"] else f"default {json.dumps(arg['default'])}"
                    # Docstrings quote names the reStructuredText way; a terminal shows one backtick.
                    text = arg["description"].replace("``", "`")
                    description = f" — {escape(text)}" if text else ""
                    console.print(
                        f"           {arg['name']}: {escape(str(arg['type']))} [dim]({need})[/]{description}"
                    )


def _sources(console: Console, data: list[dict[str, Any]]) -> None:
    """Each driver with where it came from, then each activity with its ``module:Class``."""
    for driver in data:
        console.print(f"[bold]{driver['name']}[/]  [dim]{escape(driver.get('origin') or '')}[/]")
        if driver["unavailable"]:
            console.print(f"  [yellow]unavailable: {escape(driver['unavailable'])}[/]")
        width = max((len(a["name"]) for kind in KINDS for a in driver[kind]), default=0)
        for kind in KINDS:
            for item in driver[kind]:
                console.print(f"  {kind[:-1]:6} {item['name']:{width}}  {escape(item['source'])}")


@click.command()
@click.argument("name", required=False)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--source",
    is_flag=True,
    help="Where each activity's code is (module:Class) and where each driver came from (entry "
    "point and distribution).",
)
def command(name: str | None, output: str, source: bool) -> None:
    """The installed drivers, each with its faults, probes and actions; NAME (a driver such as
    toxiproxy, or an activity such as toxiproxy.latency) shows its arguments.

    Without NAME, --output json gives every driver with every argument.
    """
    if name is not None:
        data = _select(name, source=source)
    else:
        data = describe(registry.load(), full=output == "json", source=source)
    if output == "json":
        click.echo(json.dumps(data, indent=2))
        return
    console = Console(highlight=False, soft_wrap=True)
    if source:
        _sources(console, data)
    elif name is None:
        _summary(console, data)
    else:
        _full(console, data)
