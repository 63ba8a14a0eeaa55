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


EXTENSIONS = (".yaml", ".yml", ".json")
"""What an experiment file may be called by, besides its stem."""


def _runs(state_dir: Path, experiment: str | None, limit: int) -> list[history.Run]:
    """The runs ``experiment`` names, also by its file's stem (``quickstart-deviates`` finds
    ``experiments/quickstart-deviates.yaml``)."""
    found = {run.run_id: run for run in history.runs(state_dir, experiment, limit=limit)}
    if experiment and not experiment.endswith(EXTENSIONS):
        for extension in EXTENSIONS:
            found.update((r.run_id, r) for r in history.runs(state_dir, experiment + extension, limit=limit))
    return sorted(found.values(), key=lambda run: (history.started(run), run.run_id))[-limit:]


def _verdict(run: history.Run) -> str:
    """The verdict, and whether ``chaoskit recover`` had to take back what the run left applied:
    ``crashed, recovered`` is a run that died without a journal and was cleaned up after."""
    if run.recovered_at is None:
        return run.verdict
    if run.recover_failed:
        return f"{run.verdict}, recover incomplete ({run.recover_failed} left)"
    return f"{run.verdict}, recovered"


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

    EXPERIMENT filters by title, file path, file name (with or without its extension) or GameDay
    name.
    """
    try:
        found = _runs(ledgers.state_dir(state_dir), experiment, limit)
    except errors.ChaoskitError as e:
        click.echo(f"chaoskit history: {e.render()}", err=True)
        sys.exit(int(e.exit_code))
    if output == "json":
        click.echo(json.dumps([r.as_json() for r in found], indent=2))
        return
    if not found:
        click.echo("no runs recorded" + (f" for {experiment!r}" if experiment else ""))
        return
    width = max(len("started"), *(len(run.started) for run in found))
    verdicts = {run.run_id: _verdict(run) for run in found}
    wide = max(12, *(len(v) for v in verdicts.values()))
    click.echo(f"{'started':{width}} {'verdict':{wide}} {'recovery':>10} {'score':>7}  experiment")
    for run in found:
        recovery = "-" if run.recovery_measured is None else f"{run.recovery_measured:.2f}s"
        click.echo(
            f"{run.started:{width}} {verdicts[run.run_id]:{wide}} {recovery:>10} "
            f"{scores.show(run.score):>7}  {run.experiment}"
        )
    click.echo(f"score trend: {''.join(_bar(r.score) for r in found)}")
