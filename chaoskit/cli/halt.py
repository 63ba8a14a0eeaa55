"""``chaoskit halt``: the big red button. Pull the levers, wait for every live run to stop, and
stop (then recover) those that don't."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from chaoskit import errors
from chaoskit.cli import options
from chaoskit.engine import halts, ledgers

WRITE_TIMEOUT = 10.0
"""A shared lever's write may take longer than a poll's read: it is the point of the command."""
POLL = 0.05
AFTER_KILL = 3.0
"""How long a killed runner's lock may take to go (the kernel drops it as the process exits)."""


def levers_option(function: Callable[..., object]) -> Callable[..., object]:
    function = click.option(
        "--namespace",
        default="chaoskit",
        show_default=True,
        help="The namespace of the --kubernetes lever (ConfigMap chaoskit-halt).",
    )(function)
    function = click.option(
        "--kubernetes",
        is_flag=True,
        help="Also the cluster's lever (ConfigMap chaoskit-halt in --namespace, of $KUBECONFIG), "
        "which the operator's Jobs watch.",
    )(function)
    return click.option(
        "--lever",
        "lever_uris",
        multiple=True,
        metavar="URI",
        help="Also this shared lever: a file path, or kubernetes://NAMESPACE/NAME (repeatable).",
    )(function)


def shared_levers(lever_uris: tuple[str, ...], kubernetes: bool, namespace: str) -> list[str]:
    uris = list(lever_uris)
    if kubernetes:
        uris.append(f"kubernetes://{namespace}/chaoskit-halt")
    return list(dict.fromkeys(uris))


def write_shared(uri: str, fields: dict[str, str], say: Callable[[str], None]) -> bool:
    """Set one shared lever; False (said on stderr) when it can't be."""
    lever = halts.open_lever(uri)
    try:
        lever.write(fields, WRITE_TIMEOUT)
    except errors.UsageError:
        raise
    except errors.ChaoskitError as e:
        click.echo(f"error: the lever {uri} could not be set: {e.render()}", err=True)
        return False
    finally:
        lever.close()
    say(uri)
    return True


@click.command()
@click.option("--reason", default="", help="Why: shown to everyone the halt stops or refuses.")
@options.state_dir
@levers_option
@click.option(
    "--wait",
    type=click.FloatRange(0),
    default=10.0,
    show_default=True,
    help="Seconds the live runs have to stop by themselves.",
)
@click.option(
    "--grace",
    type=click.FloatRange(0),
    default=5.0,
    show_default=True,
    help="Seconds between SIGTERM and SIGKILL for a runner that did not stop.",
)
def command(  # noqa: PLR0917 - click passes options positionally
    reason: str,
    state_dir: Path | None,
    lever_uris: tuple[str, ...],
    kubernetes: bool,
    namespace: str,
    wait: float,
    grace: float,
) -> None:
    """Halt every experiment: pull the levers, wait for the live runs to stop, and refuse new runs
    until `chaoskit resume`.

    Pulls the local lever (halt.json in the state dir: every run sharing that state dir) and the
    shared levers named by --lever and --kubernetes. Runs that see a lever revert their faults,
    run their rollbacks, write their journal and end as "halted" (exit 5). A run still live after
    --wait (hung in a driver call) gets SIGTERM, then SIGKILL after --grace; its faults are then
    taken back from its ledger.

    \b
    Exit codes:
      0  the levers are pulled; every live run ended with nothing left applied
      2  bad flags or lever URI
      4  a lever could not be set, a run could not be stopped, or a fault could not be taken back
    """
    root = ledgers.state_dir(state_dir)
    uris = shared_levers(lever_uris, kubernetes, namespace)
    for uri in uris:
        halts.open_lever(uri).close()  # a bad URI is refused before anything is pulled
    halt = halts.new(reason)
    failed = False
    halts.write_file(halts.local_path(root), halt)
    click.echo(f"{halt.describe()}")
    click.echo(f"lever pulled: {halts.local_path(root)}")
    for uri in uris:
        ok = write_shared(uri, halts.fields_of(halt), lambda u: click.echo(f"lever pulled: {u}"))
        failed = failed or not ok
    failed = not stop_runs(root, wait=wait, grace=grace) or failed
    click.echo("new runs are refused until `chaoskit resume`")
    if failed:
        sys.exit(int(errors.ExitCode.ERROR))


def stop_runs(root: Path, *, wait: float, grace: float) -> bool:
    """Wait for every live run on ``root`` to end; stop and recover those that don't. True when
    every one ended with nothing left applied."""
    live = halts.live_ledgers(root)
    if not live:
        click.echo("no run was live")
        return True
    click.echo(f"waiting up to {wait:g}s for {len(live)} live run{'s' if len(live) != 1 else ''} to stop")
    ok = True
    pending = list(live)
    deadline = time.monotonic() + wait
    while pending:
        for path in [p for p in pending if not ledgers.is_live(p)]:
            pending.remove(path)
            ok = _ended(root, path) and ok
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(POLL)
    for path in pending:
        ok = _force(root, path, grace) and ok
    return ok


def _run_id(path: Path) -> str:
    return path.name.removesuffix(ledgers.SUFFIX)


def _ended(root: Path, path: Path) -> bool:
    """Say how a run that let go of its ledger ended; recover what it left applied."""
    try:
        run = ledgers.load(path)
    except errors.LedgerError as e:
        click.echo(f"run {_run_id(path)} ended; its ledger can't be read: {e.message}", err=True)
        return False
    verdict = run.ended or "no verdict (it died)"
    if not run.outstanding:
        click.echo(f"run {run.run_id} ended: {verdict}; nothing left applied")
        return True
    click.echo(f"run {run.run_id} ended: {verdict}; {len(run.outstanding)} left applied: recovering")
    return _recover(root, run.run_id)


def _force(root: Path, path: Path, grace: float) -> bool:
    """A run that did not stop by itself (hung in a driver call): SIGTERM the process that holds
    its ledger, SIGKILL after ``grace``, then take its faults back from the ledger."""
    run_id = _run_id(path)
    pids = halts.holders(path)
    if not pids:
        if not ledgers.is_live(path):
            return _ended(root, path)
        click.echo(
            f"run {run_id} is still live and the process holding {path} can't be found "
            f"(/proc/locks): stop it by hand, then `chaoskit recover {run_id}`",
            err=True,
        )
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, AFTER_KILL)):
        for pid in pids:
            click.echo(f"run {run_id} did not stop: {sig.name} to pid {pid} (it holds {path.name})")
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
            except PermissionError:
                click.echo(f"not allowed to signal pid {pid} (another user's?)", err=True)
        deadline = time.monotonic() + wait
        while ledgers.is_live(path) and time.monotonic() < deadline:
            time.sleep(POLL)
        if not ledgers.is_live(path):
            return _ended(root, path)
        pids = halts.holders(path) or pids
    click.echo(
        f"run {run_id} is still live after SIGKILL: `chaoskit recover {run_id}` once it is gone", err=True
    )
    return False


def _recover(root: Path, run_id: str) -> bool:
    from chaoskit.drivers import registry
    from chaoskit.engine import recovering

    try:
        report = recovering.recover(root, registry.load(), run_id)
    except errors.ChaoskitError as e:
        click.echo(f"run {run_id}: recovering failed: {e.render()}", err=True)
        return False
    from chaoskit.report import outputs

    outputs.after_recover(report, state_dir=root, warn=lambda message: click.echo(message, err=True))
    for line in report.lines():
        click.echo(f"  {line}")
    if not report.ok:
        click.echo(
            f"run {run_id}: some faults could not be taken back; `chaoskit recover {run_id}`", err=True
        )
    return report.ok
