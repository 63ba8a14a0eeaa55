"""``chaoskit status``: the faults that are applied and not yet reverted, from the ledgers."""

from __future__ import annotations

import json
from pathlib import Path

import click

from chaoskit.cli import options
from chaoskit.engine import ledgers

CLEAN = "No outstanding faults."


@click.command()
@options.state_dir
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(state_dir: Path | None, output: str) -> None:
    """List outstanding faults (and leftovers) of every run; prints "No outstanding faults." when clean."""
    left = ledgers.outstanding(ledgers.state_dir(state_dir))
    if output == "json":
        data = [
            {
                "run_id": e.run_id,
                "id": e.id,
                "kind": e.kind,
                "activity": e.activity,
                "step": e.step,
                "state": e.state,
                "target": e.target,
            }
            for e in left
        ]
        click.echo(json.dumps(data, indent=2))
        return
    if not left:
        click.echo(CLEAN)
        return
    runs = sorted({e.run_id for e in left})
    for entry in left:
        click.echo(f"{entry.run_id}: {entry.describe()}")
    for run in runs:
        click.echo(f"take back: chaoskit recover {run}" + (f" --state-dir {state_dir}" if state_dir else ""))
