"""``chaoskit status``: a halt in force, then the faults that are applied and not yet reverted,
from the ledgers."""

from __future__ import annotations

import json
from pathlib import Path

import click

from chaoskit.cli import options
from chaoskit.engine import halts, ledgers

CLEAN = "No outstanding faults."


@click.command()
@options.state_dir
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(state_dir: Path | None, output: str) -> None:
    """List outstanding faults (and leftovers) of every run, and whether each run is live; prints
    "No outstanding faults." when clean.

    A halt in force (the state dir's lever or $CHAOSKIT_HALT) comes first: who, when, why and
    which lever. With --output json the list on stdout is unchanged and the halt is one line on
    stderr: `halt: {"reason": ..., "by": ..., "at": ..., "lever": ...}`."""
    root = ledgers.state_dir(state_dir)
    watch = halts.Watch(root)
    try:
        halt = watch.check()
    finally:
        watch.close()
    for problem in watch.problems:
        click.echo(f"warning: {problem}", err=True)
    if halt is not None and output == "json":
        click.echo(f"halt: {json.dumps(halt.to_json())}", err=True)
    elif halt is not None:
        click.echo(f"HALTED by {halt.by} at {halt.at}: {halt.reason}")
        click.echo(f"  lever: {halt.lever}; new runs are refused until `chaoskit resume`")
    found = ledgers.survey(root, set_aside=False)
    for problem in found.problems:
        click.echo(f"warning: {problem}", err=True)
    left = list(found.outstanding())
    live = {run.run_id: ledgers.is_live(run.path) for run, _ in left}
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
                "live": live[run.run_id],
            }
            for run, e in left
        ]
        click.echo(json.dumps(data, indent=2))
        return
    if not left:
        click.echo(CLEAN)
        return
    for _, entry in left:
        click.echo(f"{entry.run_id}: {entry.describe()}")
    flag = f" --state-dir {state_dir}" if state_dir else ""
    for run_id in dict.fromkeys(run.run_id for run, _ in left):
        if live[run_id]:
            click.echo(f"{run_id} is live: it takes back its own faults when it ends")
        else:
            click.echo(f"{run_id} is dead; take back: chaoskit recover {run_id}{flag}")
