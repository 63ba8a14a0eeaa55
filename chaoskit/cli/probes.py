"""``chaoskit probes``: the catalog of ready-made probes that ``use:`` steps name, with their parameters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.markup import escape

from chaoskit.cli import options
from chaoskit.spec import catalogs


def describe(definition: catalogs.Definition) -> dict[str, Any]:
    """One catalog entry as JSON-ready data: what ``--output json`` prints."""
    return {
        "name": definition.name,
        "description": definition.description,
        "probe": definition.probe.probe,
        "parameters": [p.model_dump() for p in definition.parameters],
        "example": definition.example,
        "source": definition.source,
    }


def _usage(definition: catalogs.Definition) -> str:
    step: dict[str, Any] = {"name": definition.description.split(".")[0], "use": definition.name}
    if definition.example:
        step["with"] = definition.example
    return yaml.safe_dump([step], sort_keys=False, width=100).rstrip()


@click.command()
@click.argument("name", required=False)
@options.probes_path
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(name: str | None, probes_path: tuple[Path, ...], output: str) -> None:
    """List the probe catalog (``use:`` in an experiment), or show one entry with an example."""
    definitions = [catalogs.find(name, probes_path)] if name else catalogs.list_catalog(probes_path)
    if output == "json":
        click.echo(json.dumps([describe(d) for d in definitions], indent=2))
        return
    console = Console(highlight=False, soft_wrap=True)
    for definition in definitions:
        console.print(
            f"[bold]{definition.name}[/]  {escape(definition.description)} [dim]({definition.probe.probe})[/]"
        )
        for p in definition.parameters:
            need = "required" if p.required else f"default {json.dumps(p.default)}"
            description = f" — {escape(p.description)}" if p.description else ""
            console.print(f"    {p.name}: {p.type} [dim]({need})[/]{description}")
        if name:
            console.print(f"  [dim]from {escape(definition.source)}[/]\n  example:")
            console.print("\n".join(f"    {line}" for line in _usage(definition).splitlines()))
