"""``chaoskit recover [RUN_ID]``: take back faults a crashed run left applied, from the ledger."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chaoskit import errors
from chaoskit.cli import options
from chaoskit.drivers import registry
from chaoskit.engine import ledgers, recovering
from chaoskit.report import outputs


@click.command()
@click.argument("run_id", required=False)
@click.option("--run-id", "run_id_option", default=None, help="The same as RUN_ID.")
@click.option(
    "--sweep", is_flag=True, help="Also ask each driver to find and clean leftovers without the ledger."
)
@click.option(
    "--force",
    is_flag=True,
    help="With RUN_ID: take back that run's faults even though it is live (its runner holds the ledger).",
)
@options.state_dir
def command(
    run_id: str | None, run_id_option: str | None, sweep: bool, force: bool, state_dir: Path | None
) -> None:
    """Revert every fault that dead runs (or RUN_ID) left applied, last applied first, undo
    actions' leftovers, and report each. Live runs are skipped: their faults are their own to take
    back. Exit 0 when everything it tried was taken back, else 4."""
    if run_id and run_id_option and run_id != run_id_option:
        raise errors.UsageError(f"two run ids given: {run_id} and --run-id {run_id_option}", hint="give one")
    run_id = run_id or run_id_option
    if run_id is not None:
        ledgers.check_run_id(run_id)
    if force and run_id is None:
        raise errors.UsageError("--force needs a RUN_ID", hint="chaoskit status lists the runs; name one")
    root = ledgers.state_dir(state_dir)
    report = recovering.recover(root, registry.load(), run_id, sweep=sweep, force=force)
    outputs.after_recover(report, state_dir=root, warn=lambda message: click.echo(message, err=True))
    if not report.outcomes and not report.swept and not report.skipped and not report.notes:
        click.echo("Nothing to recover.")
        return
    for line in report.lines():
        click.echo(line)
    if not report.outcomes and not report.swept and not report.skipped:
        click.echo("Nothing to recover.")
    if not report.ok:
        click.echo("Some faults could not be taken back; fix the cause and run recover again.", err=True)
        sys.exit(int(errors.ExitCode.ERROR))
