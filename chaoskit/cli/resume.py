"""``chaoskit resume``: release the halt levers that ``chaoskit halt`` pulled."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chaoskit import errors
from chaoskit.cli import halt as halting
from chaoskit.cli import options
from chaoskit.engine import halts, ledgers


@click.command()
@click.option("--reason", default="", help="Why it is safe again (recorded on the levers).")
@options.state_dir
@halting.levers_option
def command(
    reason: str, state_dir: Path | None, lever_uris: tuple[str, ...], kubernetes: bool, namespace: str
) -> None:
    """Lift a halt: release the local lever and the shared ones named, so runs may start again.

    Says which halt (who, when, why) each lever held, then checks every lever a run here would
    watch ($CHAOSKIT_HALT too) and warns when one still says halted.

    \b
    Exit codes:
      0  no lever a run here watches says halted any more
      2  bad flags or lever URI
      4  a lever could not be released
      5  a lever still says halted (one resume can't release: a URL, another state dir's)
    """
    root = ledgers.state_dir(state_dir)
    uris = halting.shared_levers(lever_uris, kubernetes, namespace)
    levers = [halts.open_lever(uri) for uri in uris]
    resume = halts.new(reason or "resumed")
    failed = False
    try:
        was = halts.read_file(halts.local_path(root))
    except errors.ChaoskitError as e:
        click.echo(f"warning: {e.message}; releasing it anyway", err=True)
        was = None
    halts.clear_file(halts.local_path(root), resume)
    _lifted(halts.local_path(root), was)
    for lever in levers:
        try:
            try:
                before = halts.read_lever(lever, halting.WRITE_TIMEOUT)
            except errors.ChaoskitError:
                before = None
            lever.write(halts.fields_of(resume, halted=False), halting.WRITE_TIMEOUT)
            _lifted(lever.uri, before)
        except errors.UsageError:
            raise
        except errors.ChaoskitError as e:
            click.echo(f"error: the lever {lever.uri} could not be released: {e.render()}", err=True)
            failed = True
        finally:
            lever.close()
    click.echo(f"resumed by {resume.by} at {resume.at}: {resume.reason}")
    watch = halts.Watch(root, levers=uris)
    try:
        still = watch.check()
    finally:
        watch.close()
    if still is not None:
        click.echo(f"warning: still {still.describe()}; runs here are refused until it is released", err=True)
        sys.exit(halts.EXIT_CODE)
    if failed:
        sys.exit(int(errors.ExitCode.ERROR))


def _lifted(where: Path | str, was: halts.Halt | None) -> None:
    if was is None:
        click.echo(f"{where}: was not halted")
    else:
        click.echo(f"{where}: lifted the halt by {was.by} at {was.at}: {was.reason}")
