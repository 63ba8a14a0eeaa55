"""``chaoskit recover [RUN_ID]``: take back faults a crashed run left applied, from the ledger."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chaoskit import errors
from chaoskit.cli import options
from chaoskit.drivers import registry
from chaoskit.engine import ledgers, recovering


@click.command()
@click.argument("run_id", required=False)
@click.option("--run-id", "run_id_option", default=None, help="The same as RUN_ID.")
@click.option(
    "--sweep", is_flag=True, help="Also ask each driver to find and clean leftovers without the ledger."
)
@options.state_dir
def command(run_id: str | None, run_id_option: str | None, sweep: bool, state_dir: Path | None) -> None:
    """Revert every fault that is applied and not reverted (of RUN_ID, or of every run), undo
    actions' leftovers, and report each. Exit 0 when everything was taken back, else 4."""
    if run_id and run_id_option and run_id != run_id_option:
        raise errors.UsageError(f"two run ids given: {run_id} and --run-id {run_id_option}", hint="give one")
    run_id = run_id or run_id_option
    report = recovering.recover(ledgers.state_dir(state_dir), registry.load(), run_id, sweep=sweep)
    if not report.outcomes and not report.swept:
        click.echo("Nothing to recover.")
        return
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        click.echo("Some faults could not be taken back; fix the cause and run recover again.", err=True)
        sys.exit(int(errors.ExitCode.ERROR))
