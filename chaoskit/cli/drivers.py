"""``chaoskit drivers``: every installed fault, probe and action, with its arguments."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from chaoskit import describing
from chaoskit.drivers import contract, registry


def _arguments(args: type[contract.Args]) -> list[dict[str, Any]]:
    try:
        describing.describe(args)
        schema = args.model_json_schema()
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


def describe(drivers: registry.Registry) -> list[dict[str, Any]]:
    """Every driver as JSON-ready data: what ``--output json`` prints."""
    out = []
    for name, driver in sorted(drivers.drivers.items()):
        entry: dict[str, Any] = {
            "name": name,
            "summary": driver.summary,
            "unavailable": driver.missing(),
            "faults": [
                {
                    "name": f.name,
                    "summary": f.summary,
                    "reversibility": f.reversibility.value,
                    "args": _arguments(f.args),
                }
                for f in driver.faults
            ],
            "probes": [
                {"name": p.name, "summary": p.summary, "args": _arguments(p.args)} for p in driver.probes
            ],
            "actions": [
                {"name": a.name, "summary": a.summary, "args": _arguments(a.args)} for a in driver.actions
            ],
        }
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


@click.command()
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(output: str) -> None:
    """List every fault, probe and action with its arguments and whether it is reversible."""
    data = describe(registry.load())
    if output == "json":
        click.echo(json.dumps(data, indent=2))
        return
    console = Console(highlight=False, soft_wrap=True)
    for driver in data:
        console.print(f"[bold]{driver['name']}[/]  {escape(driver['summary'])}")
        if driver["unavailable"]:
            console.print(f"  [yellow]unavailable: {escape(driver['unavailable'])}[/]")
        for kind in ("faults", "probes", "actions"):
            for item in driver[kind]:
                extra = f" [dim]({item['reversibility']})[/]" if kind == "faults" else ""
                console.print(f"  {kind[:-1]:6} [bold]{item['name']}[/]{extra}  {escape(item['summary'])}")
                for arg in item["args"]:
                    need = "required" if arg["required"] else f"default {json.dumps(arg['default'])}"
                    description = f" — {escape(arg['description'])}" if arg["description"] else ""
                    console.print(
                        f"           {arg['name']}: {escape(str(arg['type']))} [dim]({need})[/]{description}"
                    )
