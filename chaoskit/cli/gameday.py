"""``chaoskit gameday run|schedule|next PLAN``: run a GameDay plan now, on its schedule, or show when."""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click

from chaoskit import durations, errors, installing, metrics, wording
from chaoskit.cli import options
from chaoskit.drivers import registry
from chaoskit.engine import halts, ledgers
from chaoskit.gameday import daemons, firing, plans, playing, schedules, webhooks
from chaoskit.report import html, junit, markdown, scores

STATE_DIR = click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    help="Ledgers, history and schedule state (default $CHAOSKIT_STATE_DIR or ~/.local/state/chaoskit).",
)
JOURNAL_DIR = click.option(
    "--journal-dir",
    type=click.Path(path_type=Path),
    help="Where each experiment's journal goes (default STATE_DIR/journals).",
)
REPORT = click.option(
    "--report", type=click.Path(path_type=Path), help="Write the combined HTML report here."
)
MARKDOWN = click.option("--markdown", type=click.Path(path_type=Path), help="Write a Markdown report here.")
METRICS_PORT = click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve chaoskit's Prometheus metrics (runs, verdicts, active faults, recovery) on "
    "127.0.0.1:PORT while this command runs.",
)
JUNIT = click.option(
    "--junit", type=click.Path(path_type=Path), help="Write JUnit XML (one suite per run) here."
)


def _fail(e: errors.ChaoskitError) -> None:
    click.echo(f"chaoskit gameday: {installing.install_hints(e.render())}", err=True)
    sys.exit(int(e.exit_code))


def _refuse_if_halted(root: Path) -> None:
    """A GameDay never starts while a halt is in force (exit 5, as a refused run)."""
    watch = halts.Watch(root)
    try:
        halt = watch.check()
    finally:
        watch.close()
    if halt is not None:
        click.echo(
            f"chaoskit gameday: refused: {halt.describe()}\n  hint: `chaoskit resume` lifts the halt",
            err=True,
        )
        sys.exit(halts.EXIT_CODE)


def _load(path: Path) -> plans.Loaded:
    try:
        return plans.load(path)
    except errors.ChaoskitError as e:
        _fail(e)
        raise AssertionError("unreachable") from e


def _on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _execute(
    loaded: plans.Loaded,
    *,
    state_dir: Path,
    journal_dir: Path | None,
    stop: threading.Event,
    outputs: dict[str, Path | None],
    say: Any,
    telemetry: metrics.Metrics | None = None,
) -> playing.Result:
    result = playing.run(
        loaded,
        state_dir=state_dir,
        journal_dir=journal_dir or state_dir / "journals",
        stop=stop,
        log=say,
        observers=telemetry.observer if telemetry is not None else None,
    )
    runs = [o.journal for o in result.outcomes]
    summary = f"verdict {result.verdict.value}; skipped: {', '.join(result.skipped) or 'none'}"
    writers = {
        "report": lambda: html.render_gameday(loaded.plan.title, runs, summary),
        "markdown": lambda: markdown.render_gameday(loaded.plan.title, runs, summary),
        "junit": lambda: junit.render(runs),
    }
    for kind, path in outputs.items():
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(writers[kind](), encoding="utf-8")
            except OSError as e:  # checked before the GameDay; a daemon's folder can still vanish
                say(f"warning: can't write the {kind} {path}: {e.strerror or e}")
            else:
                say(f"wrote {kind} {path}")
    webhook = loaded.plan.notify.webhook
    if webhook is not None:
        delivery = webhooks.send(webhook, result.summary())
        if delivery.ok:
            say(f"notified {webhooks.where(webhook.url)} (HTTP {delivery.status})")
        else:
            say(
                f"warning: webhook not delivered after {wording.counted(delivery.attempts, 'attempt')}: "
                f"{delivery.error}"
            )
    return result


def _check_outputs(journal_dir: Path | None, outputs: dict[str, Path | None]) -> None:
    """Refuse (exit 2) output paths that can't be written, before the first experiment runs."""
    try:
        options.check_writable("--journal-dir", journal_dir, directory=True)
        for kind, path in outputs.items():
            options.check_writable(f"--{kind}", path)
    except errors.ChaoskitError as e:
        _fail(e)


def _schedule_of(loaded: plans.Loaded, plan: Path) -> schedules.Schedule | None:
    """The plan's schedule; without one, says how to add it (exit 2) and gives None."""
    if loaded.plan.schedule is None:
        _fail(
            errors.UsageError(
                f"{plan}: the plan has no schedule:", hint="add schedule: {cron: '0 10 * * mon-fri'}"
            )
        )
    return loaded.plan.schedule


def _duration_of(loaded: plans.Loaded, schedule: schedules.Schedule) -> float:
    """The plan's planned length when runs must fit their windows, else 0 (a bad experiment: exit 2)."""
    if schedule.fit is not schedules.Fit.RUN or not schedule.windows:
        return 0.0
    try:
        return plans.planned_duration(loaded)
    except errors.ChaoskitError as e:
        _fail(e)
        raise AssertionError("unreachable") from e


def _serve_metrics(port: int | None, say: Any) -> tuple[metrics.Metrics | None, metrics.Serving | None]:
    """chaoskit's metrics for every run this command makes, served for as long as it runs."""
    if port is None:
        return None, None
    telemetry = metrics.Metrics()
    serving = telemetry.serve(port)
    say(f"metrics on http://127.0.0.1:{serving.port}/metrics")
    return telemetry, serving


@click.group(name="gameday")
def command() -> None:
    """GameDays: several experiments as one event, with one report and score, now or on a schedule."""


@command.command(name="run")
@click.argument("plan", type=click.Path(path_type=Path))
@STATE_DIR
@JOURNAL_DIR
@REPORT
@MARKDOWN
@JUNIT
@METRICS_PORT
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def run_command(  # noqa: PLR0917 - click passes options positionally
    plan: Path,
    state_dir: Path | None,
    journal_dir: Path | None,
    report: Path | None,
    markdown: Path | None,
    junit: Path | None,
    metrics_port: int | None,
    output: str,
) -> None:
    """Run the plan's experiments now; exit with the worst verdict's code (0 when all completed).

    Refused (exit 5) while a halt is in force (`chaoskit halt`; `chaoskit status` shows it)."""
    loaded = _load(plan)
    _check_outputs(journal_dir, {"report": report, "markdown": markdown, "junit": junit})
    stop = threading.Event()
    _on_signals(stop)

    def say(line: str) -> None:
        click.echo(line, err=output == "json")

    root = ledgers.state_dir(state_dir)
    _refuse_if_halted(root)
    try:
        telemetry, serving = _serve_metrics(metrics_port, say)
    except errors.ChaoskitError as e:
        _fail(e)
        return
    try:
        with daemons.holding(root, loaded.key) as locked:
            if not locked:
                raise errors.ChaoskitError(
                    f"another GameDay of plan {loaded.key!r} is running (it holds "
                    f"{daemons.lock_path(root, loaded.key)}); GameDays of one plan never overlap",
                    hint="wait for it to finish, or give this plan another name:",
                )
            result = _execute(
                loaded,
                state_dir=root,
                journal_dir=journal_dir,
                stop=stop,
                outputs={"report": report, "markdown": markdown, "junit": junit},
                say=say,
                telemetry=telemetry,
            )
    except errors.ChaoskitError as e:
        _fail(e)
        return
    finally:
        if serving is not None:
            serving.stop()
    if output == "json":
        click.echo(json.dumps(result.summary(), indent=2))
    else:
        click.echo(f"GameDay {loaded.plan.title}: {result.verdict.value}, score {scores.show(result.score)}")
        for outcome in result.outcomes:
            click.echo(
                f"  {outcome.journal.verdict.value:12} {scores.show(outcome.score):>7}  {outcome.label}"
            )
        for label in result.skipped:
            click.echo(f"  {'skipped':12} {'':>7}  {label}")
    sys.exit(result.exit_code)


@command.command(name="schedule")
@click.argument("plan", type=click.Path(path_type=Path))
@STATE_DIR
@JOURNAL_DIR
@REPORT
@MARKDOWN
@JUNIT
@METRICS_PORT
@click.option(
    "--max-runs", type=click.IntRange(1), help="Exit after this many fires (for tests and cron-like use)."
)
def schedule_command(  # noqa: PLR0917 - click passes options positionally
    plan: Path,
    state_dir: Path | None,
    journal_dir: Path | None,
    report: Path | None,
    markdown: Path | None,
    junit: Path | None,
    metrics_port: int | None,
    max_runs: int | None,
) -> None:
    """Run the plan on its schedule: a foreground daemon for systemd, logging to stdout.

    SIGTERM or SIGINT stops it: at once while it waits; during a run, the running experiments are
    interrupted (their faults reverted, journals written) and then it exits.

    While a halt is in force (`chaoskit halt`), each run that comes due is skipped and logged as
    such, not queued for later.
    """
    loaded = _load(plan)
    schedule = _schedule_of(loaded, plan)
    if schedule is None:
        return
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True
    )
    log = logging.getLogger("chaoskit.gameday")
    stop = threading.Event()
    _on_signals(stop)
    root = ledgers.state_dir(state_dir)
    outputs = {"report": report, "markdown": markdown, "junit": junit}
    _check_outputs(journal_dir, outputs)
    duration = _duration_of(loaded, schedule)

    try:
        telemetry, serving = _serve_metrics(metrics_port, log.info)
    except errors.ChaoskitError as e:
        _fail(e)
        return

    def fire(due: firing.Fire) -> daemons.Outcome:
        result = _execute(
            loaded,
            state_dir=root,
            journal_dir=journal_dir,
            stop=stop,
            outputs=outputs,
            say=log.info,
            telemetry=telemetry,
        )
        return daemons.Outcome(verdict=result.verdict.value, score=result.score)

    log.info("scheduling %s (%s) from %s", loaded.key, loaded.plan.title, plan)
    try:
        daemons.Scheduler(schedule, loaded.key, root, fire, stop=stop, duration=duration).serve(
            max_fires=max_runs
        )
    except errors.ChaoskitError as e:
        _fail(e)
    finally:
        if serving is not None:
            serving.stop()


@command.command(name="validate")
@click.argument("plan", type=click.Path(path_type=Path))
def validate_command(plan: Path) -> None:
    """Check PLAN and every experiment it names (with the plan's vars) without running anything.
    Exit 0 when all are valid, 2 with every problem listed."""
    loaded = _load(plan)
    try:
        stages = playing.prepare(loaded, registry.load())
    except errors.ChaoskitError as e:
        _fail(e)
        return
    count = sum(len(stage) for stage in stages)
    schedule = "a schedule" if loaded.plan.schedule is not None else "no schedule"
    click.echo(
        f"{plan}: valid ({wording.counted(count, 'experiment')} in "
        f"{wording.counted(len(stages), 'stage')}, {schedule})"
    )


EFFECTIVE_RUNS = 1000
"""How many future runs ``gameday next`` averages to show the effective mean."""


@command.command(name="next")
@click.argument("plan", type=click.Path(path_type=Path))
@click.option("-n", "count", type=click.IntRange(1, 1000), default=5, show_default=True)
@STATE_DIR
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def next_command(plan: Path, count: int, state_dir: Path | None, output: str) -> None:
    """Print the plan's next fire times, as the daemon will pick them.

    Random mode continues from the daemon's last fire (or its first start); before the daemon ever
    ran the plan, the times shown start from now and change from call to call. Under the times,
    random mode shows the mean gap the schedule really produces over the next 1000 runs, in the
    unit random.mean counts (eligible days, or hours of window time).
    """
    loaded = _load(plan)
    schedule = _schedule_of(loaded, plan)
    if schedule is None:
        return
    duration = _duration_of(loaded, schedule)
    now = dt.datetime.now(dt.UTC)
    root = ledgers.state_dir(state_dir)
    after = now
    started = 0
    if (root / daemons.DB_NAME).exists():
        states = daemons.States(root)
        try:
            resume = states.resume_point(loaded.key)
            if resume is not None:
                # Random draws chain from the last fire; cron times are simply the next ones from now.
                after = resume if schedule.random is not None else max(now, resume)
            started = states.started_on(loaded.key, schedule, after)
        finally:
            states.close()
    fires: list[firing.Fire] = []
    try:
        # Fires the daemon missed while it was down are its business (run late or recorded as missed).
        while len(fires) < count:
            fire = firing.next_fire(schedule, after, loaded.key, duration=duration, started=started)
            same_day = firing.local_day(schedule, fire.nominal) == firing.local_day(schedule, after)
            started = started + 1 if same_day else 1
            after = fire.nominal
            if fire.at > now:
                fires.append(fire)
    except errors.ChaoskitError as e:
        _fail(e)
        return
    try:
        effective = firing.effective_mean(
            schedule, fires[0].nominal, loaded.key, duration=duration, runs=EFFECTIVE_RUNS
        )
        mean = effective.describe() if effective is not None else None
    except errors.ChaoskitError as e:  # the times shown stand; only the long run can't be measured
        mean = (
            f"effective mean over the next {wording.counted(EFFECTIVE_RUNS, 'run')}: can't tell ({e.message})"
        )
    if output == "json":
        click.echo(
            json.dumps([{"at": f.at.isoformat(), "nominal": f.nominal.isoformat()} for f in fires], indent=2)
        )
        return
    for f in fires:
        local = f.at.astimezone(schedule.zone)
        click.echo(f"{local:%a %Y-%m-%d %H:%M:%S %Z}  ({f.at.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ})")
    if duration:
        click.echo(f"each run ends inside its window (planned to take {durations.format(duration)})")
    if mean is not None:
        click.echo(mean)
