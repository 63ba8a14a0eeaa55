"""``chaoskit run FILE``: validate, plan, run, journal; the exit code is the verdict's."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from chaoskit import errors
from chaoskit.cli import loading, options, rendering
from chaoskit.drivers import contract
from chaoskit.engine import events, journals, ledgers, planning, running
from chaoskit.report import outputs
from chaoskit.spec import reading, templates

if TYPE_CHECKING:
    from chaoskit import metrics


_OUTPUT_OPTIONS: list[Callable[[Any], Any]] = [
    click.option(
        "--journal",
        "journal_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Write the journal exactly here [default: ./chaoskit-journal-RUN_ID.json, one per run, "
        "and a copy as ./chaoskit-journal.json, the newest].",
    ),
    click.option("--quiet", "-q", is_flag=True, help="Print only the verdict line."),
    click.option(
        "--output",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="json: print the journal on stdout (the live console goes to stderr).",
    ),
    click.option(
        "--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write JUnit XML."
    ),
    click.option(
        "--report",
        "report_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Also write an HTML report.",
    ),
]
"""Where the journal, JUnit XML and report go, and what the console prints."""


_RUN_OPTIONS: list[Callable[[Any], Any]] = [
    click.option(
        "--dry-run", is_flag=True, help="Validate, resolve targets and print the plan; inject nothing."
    ),
    click.option("--seed", type=int, default=None, help="Seed for random target choices (journaled)."),
    click.option(
        "--run-id",
        envvar="CHAOSKIT_RUN_ID",
        default=None,
        help="Use this run id instead of a new one (the operator gives each resource a fixed one).",
    ),
    click.option(
        "--context",
        "kube_context",
        envvar="CHAOSKIT_KUBE_CONTEXT",
        default=None,
        help="The kubeconfig context for kubernetes.* steps that don't name one (default: the current one).",
    ),
    click.option(
        "--metrics-port",
        type=click.IntRange(0, 65535),
        default=None,
        metavar="PORT",
        help="Serve chaoskit's own metrics on 127.0.0.1:PORT/metrics while the run lasts.",
    ),
    click.option(
        "--pushgateway", metavar="URL", help="Push chaoskit's own metrics to this Pushgateway at the end."
    ),
    click.option(
        "--max-duration",
        type=options.DURATION,
        default=None,
        metavar="DURATION",
        help="End the run as halted past this long (faults reverted, rollbacks run); overrides the "
        "experiment's max_duration (default 2h).",
    ),
]
"""How the run is identified, bounded, observed, and which cluster it talks to."""


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@options.variables
@options.group(_OUTPUT_OPTIONS)
@options.group(_RUN_OPTIONS)
@options.rollback_strategy
@options.state_dir
@options.probes_path
def command(
    file: Path,
    *,
    variables: tuple[str, ...],
    var_files: tuple[Path, ...],
    dry_run: bool,
    journal_path: Path | None,
    quiet: bool,
    output: str,
    seed: int | None,
    run_id: str | None,
    junit_path: Path | None,
    report_path: Path | None,
    state_dir: Path | None,
    probes_path: tuple[Path, ...],
    kube_context: str | None,
    metrics_port: int | None,
    pushgateway: str | None,
    max_duration: float | None,
    rollback_strategy: str | None,
) -> None:
    """Run the experiment in FILE (chaoskit or Chaos Toolkit format).

    Exit codes: 0 completed, 1 deviated, 2 invalid, 3 not steady before, 4 error, 5 halted (a halt
    lever, or max_duration), 6 vetoed (a preflight check said no), 130 interrupted.
    """
    # For kubernetes steps that name no context of their own; the driver reads it from the run's context.
    driver_settings = {KUBE_CONTEXT: kube_context} if kube_context else {}
    loaded, _, plan = loading.load_and_plan(file, variables, var_files, probes_path)
    options.print_warnings(loaded.warnings)
    if rollback_strategy is not None:
        plan = _with_rollback_strategy(plan, rollback_strategy, chaostoolkit=loaded.kind == "chaostoolkit")
    if not dry_run:
        _check_outputs(journal_path, junit_path, report_path)
    console = Console(stderr=output == "json", highlight=False, soft_wrap=True)
    root = ledgers.state_dir(state_dir)
    if dry_run:
        _dry_run(console, plan, root, driver_settings)
        return
    settings = _settings(
        file,
        loaded,
        root,
        var_files,
        seed=seed,
        run_id=run_id,
        max_duration=max_duration,
        driver_settings=driver_settings,
    )
    journal, telemetry = _execute(
        running.Runner(plan, settings, bus=(bus := events.Bus())),
        bus,
        console,
        quiet=quiet,
        metrics_port=metrics_port,
        pushgateway=pushgateway,
    )
    sys.exit(
        _finish(
            journal,
            telemetry,
            console,
            root,
            journal_path=journal_path,
            junit_path=junit_path,
            report_path=report_path,
            quiet=quiet,
            output=output,
        )
    )


def _check_outputs(journal_path: Path | None, junit_path: Path | None, report_path: Path | None) -> None:
    """Refuse, before anything runs, an output path that could not be written afterwards."""
    if journal_path is None:
        _check_latest()
    options.check_writable("--journal", journal_path or LATEST)
    options.check_writable("--junit", junit_path)
    options.check_writable("--report", report_path)


def _finish(
    journal: journals.Journal,
    telemetry: metrics.Telemetry | None,
    console: Console,
    root: Path,
    *,
    journal_path: Path | None,
    junit_path: Path | None,
    report_path: Path | None,
    quiet: bool,
    output: str,
) -> int:
    """Keep the journal (and the JUnit file and report) and say where; the exit code."""
    # The run is over and everything is taken back; a late signal must not cut the journal short.
    # A Python-level no-op, not SIG_IGN: an ignored signal would stay ignored in every process
    # started after this one (exec keeps SIG_IGN), e.g. by a test that runs this command in-process.
    previous = {sig: signal.signal(sig, _late_signal) for sig in TERMINATING}

    def warn(message: str) -> None:
        console.print(message, highlight=False, markup=False)

    if telemetry is not None:
        telemetry.finish(warn=warn)
    exit_code, written = _keep(
        journal, root, warn, journal_path=journal_path, junit_path=junit_path, report_path=report_path
    )
    _say_done(console, journal, written, journal_path, quiet=quiet, output=output)
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    return exit_code


def _say_done(
    console: Console,
    journal: journals.Journal,
    written: Path | None,
    journal_path: Path | None,
    *,
    quiet: bool,
    output: str,
) -> None:
    """The last words: the verdict line when quiet, the journal on stdout for ``--output json``,
    else where the journal went."""
    if quiet:
        console.print(
            f"{journal.verdict.value} (exit {journal.exit_code}): {journal.reason}", highlight=False
        )
    if output == "json":
        sys.stdout.write(journals.dumps(journal))
    elif not quiet and written is not None:
        mine = written == (journal_path or own_journal(journal.run_id)) and journal_path is None
        newest = f" (the newest: {LATEST})" if mine else ""
        console.print(f"[dim]journal: {written}{newest} · run {journal.run_id}[/]", highlight=False)


def _dry_run(console: Console, plan: planning.Plan, root: Path, driver_settings: dict[str, str]) -> None:
    """Resolve every target and print the plan; nothing is injected, nothing is ledgered."""
    ctx = contract.RunContext(run_id="dry-run", dry_run=True, state_dir=root, settings=driver_settings)
    try:
        touches = planning.dry_run(plan, ctx)
    finally:
        ctx.close()
    rendering.show_plan(console, plan, touches)


def _settings(
    file: Path,
    loaded: reading.Loaded,
    root: Path,
    var_files: tuple[Path, ...],
    *,
    seed: int | None,
    run_id: str | None,
    max_duration: float | None,
    driver_settings: dict[str, str],
) -> running.Settings:
    """What the runner needs besides the plan: the secrets resolved now (a missing one is exit 2
    before anything runs) and what the journal says about the file."""
    try:
        secrets = templates.resolve_secrets(loaded.experiment, {**os.environ, **options.dotenv(var_files)})
    except errors.ChaoskitError as e:
        raise errors.UsageError(e.message, hint=e.hint) from e
    info = journals.ExperimentInfo(
        title=loaded.experiment.title,
        file=str(file),
        kind=loaded.kind,
        tags=list(loaded.experiment.tags),
        sha256=hashlib.sha256(file.read_bytes()).hexdigest(),
    )
    return running.Settings(
        state_dir=root,
        seed=seed,
        experiment=info,
        secrets=secrets,
        run_id=run_id,
        max_duration=max_duration,
        driver_settings=driver_settings,
    )


def _execute(
    runner: running.Runner,
    bus: events.Bus,
    console: Console,
    *,
    quiet: bool,
    metrics_port: int | None,
    pushgateway: str | None,
) -> tuple[journals.Journal, metrics.Telemetry | None]:
    """Run, with the live console (or, when quiet, only what is still applied) and the metrics
    asked for; the journal, and the metrics still to be finished."""
    live = rendering.LiveConsole(console) if not quiet else None
    if live is not None:
        bus.subscribe(live)
    else:
        bus.subscribe(
            lambda e: rendering.show_still_applied(console, e) if isinstance(e, events.StillApplied) else None
        )
    telemetry = None
    if metrics_port is not None or pushgateway:
        from chaoskit import metrics  # prometheus_client only when asked for

        telemetry = metrics.attach(bus, port=metrics_port, pushgateway=pushgateway)
    with live or contextlib.nullcontext():
        return asyncio.run(_run(runner)), telemetry


def _keep(
    journal: journals.Journal,
    root: Path,
    warn: Callable[[str], None],
    *,
    journal_path: Path | None,
    junit_path: Path | None,
    report_path: Path | None,
) -> tuple[int, Path | None]:
    """Write the journal and the outputs asked for; the exit code (the verdict's, or 4 when the
    journal could not go where it was asked) and where the journal went (None: nowhere)."""
    exit_code = journal.exit_code
    path = journal_path or own_journal(journal.run_id)
    written: Path | None = path
    try:
        journals.write(journal, path)
    except OSError as e:
        # The run is over and its faults are reverted; CI must still not mistake this for a pass,
        # and the journal is not thrown away: it goes to the state directory instead.
        written = _rescue(journal, root)
        saved = f"; saved it as {written} instead" if written else ""
        warn(f"error: can't write the journal {path}: {e.strerror or e}{saved}")
        exit_code = int(errors.ExitCode.ERROR)
    else:
        if journal_path is None and not _update_latest(journal, warn):
            # A stale chaoskit-journal.json would let `chaoskit gate chaoskit-journal.json` judge
            # an older run: this run must not pass for a success.
            exit_code = int(errors.ExitCode.ERROR)
    outputs.after_run(
        journal,
        state_dir=root,
        journal_path=written,
        junit_path=junit_path,
        report_path=report_path,
        warn=warn,
    )
    return exit_code, written


def _late_signal(signum: int, frame: object) -> None:
    """A signal after the run: everything is taken back already; the journal is written first."""


LATEST = Path("chaoskit-journal.json")
KUBE_CONTEXT = "kubernetes.context"
"""The kubernetes driver's ``RunContext.settings`` key for ``--context`` (``chaoskit.kube.kubeconfigs.
CONTEXT_SETTING``; the CLI does not import the driver)."""
"""Without ``--journal``: a copy of the newest run's journal in the working directory, the path
``chaoskit gate``, ``chaoskit report`` and CI read; each run's own file stays beside it."""


def own_journal(run_id: str) -> Path:
    """Without ``--journal``: the run's own journal, so that runs in a row never overwrite each
    other's (run ids start with the time, so the files sort oldest first)."""
    return Path(f"chaoskit-journal-{run_id}.json")


def _check_latest() -> None:
    """Refuse (exit 2) to start when ``chaoskit-journal.json`` is a link or not a file: it is
    replaced, never written through, and a run whose newest journal can't go there exits 4."""
    if LATEST.is_symlink() or (LATEST.exists() and not LATEST.is_file()):
        kind = "a symlink" if LATEST.is_symlink() else "not a regular file"
        raise errors.UsageError(
            f"{LATEST.absolute()} is {kind}; without --journal chaoskit replaces it with a copy of the "
            "newest run's journal",
            hint=f"move {LATEST} away, or pass --journal PATH",
        )


def _update_latest(journal: journals.Journal, warn: Callable[[str], None]) -> bool:
    """Copy the journal to ``chaoskit-journal.json`` (atomically: a reader sees the previous run's
    or this one's). A copy, not a symlink: output paths refuse symlinks, and CI uploads it whole."""
    try:
        journals.write(journal, LATEST)
    except OSError as e:
        warn(
            f"error: can't update {LATEST} (the newest run's journal): {e.strerror or e}; "
            f"this run's journal is {own_journal(journal.run_id)}"
        )
        return False
    return True


def _with_rollback_strategy(plan: planning.Plan, flag: str, *, chaostoolkit: bool) -> planning.Plan:
    """``--rollback-strategy`` in Chaos Toolkit's words, as the experiment's ``rollback_strategy``;
    ``default`` is that of the file's format."""
    from chaoskit.spec import ctk_settings

    if flag == "default":
        strategy = ctk_settings.ROLLBACK_STRATEGIES["default"] if chaostoolkit else "method-started"
    else:
        strategy = ctk_settings.ROLLBACK_STRATEGIES[flag]
    experiment = plan.experiment.model_copy(update={"rollback_strategy": strategy})
    return dataclasses.replace(plan, experiment=experiment)


def _rescue(journal: journals.Journal, state_dir: Path) -> Path | None:
    """Write the journal where it can still go: under the state directory, else the temporary
    directory (another file system, when the state dir's disk is full or read-only), else the
    working directory. None when every one of them fails."""
    name = f"{journal.run_id}.json"
    places = [
        state_dir / "journals" / name,
        Path(tempfile.gettempdir()) / f"chaoskit-journal-{name}",
        Path.cwd() / f"chaoskit-journal-{name}",
    ]
    for path in places:
        try:
            journals.write(journal, path)
        except OSError:
            continue
        return path
    return None


TERMINATING = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
"""Every signal that would otherwise end chaoskit with faults applied: each stops the run the same
way (revert, rollbacks, journal; exit 130)."""


async def _run(runner: running.Runner) -> journals.Journal:
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        # The first stops the run; later ones say what is still applied. None of them skips the
        # revert, the rollbacks or the journal: `kill -9` is the way out that skips them, and the
        # ledger covers it (chaoskit recover).
        runner.interrupt(sig.name)

    # Signals become a cancellation event in the runner, never an exception mid-revert.
    for sig in TERMINATING:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await runner.run()
    finally:
        for sig in TERMINATING:
            loop.remove_signal_handler(sig)
