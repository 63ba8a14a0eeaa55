"""``chaoskit history [EXPERIMENT]``: past runs with verdicts, recovery times and scores over time."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from chaoskit import errors
from chaoskit.engine import ledgers
from chaoskit.report import history, scores

BARS = " ▁▂▃▄▅▆▇█"


def _bar(score: float | None) -> str:
    if score is None:
        return "·"
    return BARS[min(len(BARS) - 1, round(score / 100 * (len(BARS) - 1)))]


@click.command()
@click.argument("experiment", required=False)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--limit", type=click.IntRange(1), default=50, show_default=True, help="Show the newest N runs."
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    help="Where the history lives (default $CHAOSKIT_STATE_DIR or ~/.local/state/chaoskit).",
)
def command(experiment: str | None, output: str, limit: int, state_dir: Path | None) -> None:
    """Runs recorded so far, oldest first: verdict, recovery time and score.

    EXPERIMENT filters by title, file path, file name or GameDay name.
    """
    try:
        found = history.runs(ledgers.state_dir(state_dir), experiment, limit=limit)
    except errors.ChaoskitError as e:
        click.echo(f"chaoskit history: {e.render()}", err=True)
        sys.exit(int(e.exit_code))
    if output == "json":
        click.echo(json.dumps([r.as_json() for r in found], indent=2))
        return
    if not found:
        click.echo("no runs recorded" + (f" for {experiment!r}" if experiment else ""))
        return
    click.echo(f"{'started':25} {'verdict':12} {'recovery':>10} {'score':>7}  experiment")
    for run in found:
        recovery = "-" if run.recovery_measured is None else f"{run.recovery_measured:.2f}s"
        click.echo(
            f"{run.started[:25]:25} {run.verdict:12} {recovery:>10} "
            f"{scores.show(run.score):>7}  {run.experiment}"
        )
    click.echo(f"score trend: {''.join(_bar(r.score) for r in found)}")
