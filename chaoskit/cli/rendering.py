"""The live console of ``chaoskit run``: phases, steps, fault timers, probe results, recovery and
the verdict, from the run's events (already redacted). Only what a person watching needs."""

from __future__ import annotations

import json
import time
from datetime import datetime

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from chaoskit import durations
from chaoskit.engine import events, journals, phases, planning
from chaoskit.spec import models

PHASES = {
    phases.Phase.PREFLIGHT: "preflight",
    phases.Phase.SETUP: "setup",
    phases.Phase.BEFORE: "steady state before",
    phases.Phase.METHOD: "method",
    phases.Phase.AFTER: "steady state after (recovery)",
    phases.Phase.ROLLBACKS: "rollbacks",
    phases.Phase.TEARDOWN: "teardown",
}
VERDICT_STYLE = {
    journals.Verdict.COMPLETED: "bold green",
    journals.Verdict.DEVIATED: "bold yellow",
    journals.Verdict.NOT_STEADY: "bold yellow",
    journals.Verdict.ERROR: "bold red",
    journals.Verdict.INTERRUPTED: "bold red",
    journals.Verdict.HALTED: "bold red",
    journals.Verdict.VETOED: "bold yellow",
    journals.Verdict.INVALID: "bold red",
}


def _short(value: object, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


class _Timers:
    """The faults now applied, with how long each has been in place; redrawn by ``Live``."""

    def __init__(self) -> None:
        self.applied: dict[tuple[str, str, str], tuple[str, float, float | None]] = {}

    def __rich__(self) -> RenderableType:
        now = time.monotonic()
        lines = []
        for label, since, limit in self.applied.values():
            line = Text.assemble(
                ("  ⏱ ", "cyan"),
                (durations.format(now - since), "bold"),
                (f" / {durations.format(limit)}" if limit else "", "dim"),
                f"  {label}",
            )
            # One screen line each, however narrow the terminal: Live redraws by counting lines.
            line.no_wrap = True
            line.overflow = "ellipsis"
            lines.append(line)
        return Group(*lines)


class LiveConsole:
    """An ``events.Subscriber`` that prints the run as it goes."""

    def __init__(self, console: Console, *, live: bool | None = None) -> None:
        self.console = console
        self.timers = _Timers()
        use_live = console.is_terminal if live is None else live
        self._live = (
            Live(self.timers, console=console, transient=True, refresh_per_second=4) if use_live else None
        )
        self._injected: dict[tuple[str, str, str], datetime] = {}
        self._since = "the method ended"
        """What recovery time is counted from: the last revert, or the method's end without faults."""
        self._pids: dict[str, list[int]] = {}
        """The pids that steps' actions started (``process.start``'s output), by step, for the
        lines that say which process an undo stopped."""

    def __enter__(self) -> LiveConsole:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()

    def _print(self, *parts: RenderableType | str) -> None:
        self.console.print(*parts, highlight=False)

    def __call__(self, event: events.Event) -> None:
        match event:
            case events.RunStarted():
                self._print(
                    f"[bold]{escape(event.title)}[/]  [dim]run {event.run_id} · seed {event.seed} · "
                    f"ledger {escape(event.ledger)}[/]"
                )
            case events.PhaseStarted(phase=phase):
                if phase in PHASES:
                    self.console.rule(f"[bold]{PHASES[phase]}[/]", align="left", style="dim")
            case events.StepEnded(record=record):
                self._remember(record)
                self._step(record)
            case events.CheckDone(record=record):
                self._check(record)
            case events.FaultInjected():
                key = (event.step, event.activity, event.target.id)
                self._injected[key] = event.at
                until = f" (reverts after {durations.format(event.duration)})" if event.duration else ""
                self._print(
                    f"  [bold magenta]⚡ {escape(event.activity)}[/] on {escape(str(event.target))}{until}"
                )
                self.timers.applied[key] = (
                    f"{event.activity} on {event.target}",
                    time.monotonic(),
                    event.duration,
                )
            case events.FaultReverted():
                key = (event.step, event.activity, event.target.id)
                self.timers.applied.pop(key, None)
                self._since = "the last revert"
                since = self._injected.pop(key, None)
                held = f" after {durations.format((event.at - since).total_seconds())}" if since else ""
                if event.status is journals.RevertStatus.FAILED:
                    self._print(
                        f"  [bold red]✗ revert of {escape(event.activity)} on {escape(str(event.target))} "
                        f"failed:[/] {escape(event.error or '')}"
                    )
                elif event.status is not journals.RevertStatus.NOT_NEEDED:
                    self._print(
                        f"  [green]↺ reverted[/] {escape(event.activity)} "
                        f"on {escape(str(event.target))}{held}"
                    )
            case events.GuardTripped(trip=trip):
                self._print(f"  [bold yellow]⚠ guard tripped:[/] {escape(trip.message)}")
            case events.RecoveryPolled():
                mark = "[green]holds[/]" if event.held else "[yellow]not yet[/]"
                self._print(
                    f"  poll {event.poll + 1}: {mark} "
                    f"[dim]({durations.format(event.elapsed)} after {self._since})[/]"
                )
            case events.RecoveryDone(record=record):
                if record.measured is not None:
                    style = "green" if record.met else "yellow"
                    self._print(
                        f"  [{style}]recovered in {durations.format(record.measured)}[/] "
                        f"(deadline {durations.format(record.required)})"
                    )
                else:
                    self._print(f"  [yellow]did not recover within {durations.format(record.required)}[/]")
            case events.UndoDone(record=record):
                self._undone(record)
            case events.ErrorRaised(record=record):
                self._print(f"  [bold red]error:[/] {escape(record.message)}")
            case events.Log():
                self._print(f"  [dim]{escape(event.message)}[/]")
            case events.StillApplied():
                show_still_applied(self.console, event)
            case events.VerdictReached():
                style = VERDICT_STYLE.get(event.verdict, "bold")
                self.console.rule(style="dim")
                self._print(
                    f"[{style}]{event.verdict.value}[/] (exit {event.exit_code}): {escape(event.reason)}"
                )
            case _:
                pass

    def _remember(self, record: journals.StepRecord) -> None:
        output = record.output
        if isinstance(output, dict) and isinstance(pid := output.get("pid"), int):
            self._pids.setdefault(record.name, []).append(pid)

    def _undone(self, record: journals.UndoRecord) -> None:
        """Which step's leftover was undone, and its process: several unnamed ``process.start``
        steps would otherwise read the same."""
        pids = self._pids.get(record.step)
        pid = f" pid {pids.pop()}" if pids else ""  # undone newest first
        what = escape(record.step)
        if record.step != record.activity:
            what += f" [dim]{escape(record.activity)}[/]"
        error = f": {escape(record.error)}" if record.error else ""
        style = "red" if record.outcome is journals.RevertStatus.FAILED else "dim"
        self._print(f"  [{style}]undone:[/] {what}{pid} [{style}]({record.outcome.value}){error}[/]")

    def _step(self, record: journals.StepRecord) -> None:
        if record.kind is phases.StepKind.PROBE:
            return  # its check line says it all
        took = durations.format((record.ended - record.started).total_seconds())
        marks = {
            journals.StepStatus.OK: "[green]✓[/]",
            journals.StepStatus.FAILED: "[yellow]✗[/]",
            journals.StepStatus.ERROR: "[red]✗[/]",
            journals.StepStatus.CANCELLED: "[dim]■[/]",
        }
        background = " [dim](background)[/]" if record.background else ""
        what = record.name if record.name == record.activity else f"{record.name} [dim]{record.activity}[/]"
        error = f": {escape(record.error)}" if record.error else ""
        status = "" if record.status is journals.StepStatus.OK else f" {record.status.value}"
        self._print(f"  {marks[record.status]} {what}{background} [dim]{took}[/]{status}{error}")

    def _check(self, record: journals.CheckRecord) -> None:
        if record.phase in {phases.Phase.GUARD, phases.Phase.AFTER} and record.ok:
            return  # guard and recovery polls are summarised; only failures are worth a line
        if record.phase is phases.Phase.AFTER and (record.poll or 0) > 0:
            return
        polling = ""
        if record.poll is not None and record.phase not in {phases.Phase.GUARD, phases.Phase.AFTER}:
            # A probe with until: its first miss, then how it ends (a hold here, a log line if not).
            if not record.ok:
                if record.poll > 0:
                    return
                polling = "  [dim](polling until it holds)[/]"
            elif record.poll > 0:
                polling = f"  [dim](held at poll {record.poll + 1})[/]"
        mark = "[green]✓[/]" if record.ok else "[red]✗[/]"
        guard = "guard " if record.phase is phases.Phase.GUARD else ""
        detail = escape(record.message) if not record.ok else escape(_short(record.value))
        self._print(f"  {mark} {guard}{escape(record.step)} [dim]{record.activity}[/]  {detail}{polling}")


def show_still_applied(console: Console, event: events.StillApplied) -> None:
    if event.faults:
        console.print("[bold red]Still applied (being reverted):[/]")
        for line in event.faults:
            console.print(f"  - {escape(line)}", highlight=False)
    console.print(
        f"If chaoskit can't finish, take them back with:\n  [bold]{escape(event.command)}[/]", highlight=False
    )


def _planned(step: planning.PlannedStep) -> str:
    """One step of the dry run: its name, activity and when it ends."""
    spec = step.step
    if isinstance(spec, models.PauseStep):
        pause = durations.format(spec.pause)
        return f"{escape(spec.name)} [dim]{pause}[/]" if spec.name else pause
    extra = ""
    if isinstance(spec, models.FaultStep):
        extra = f" for {durations.format(spec.duration)}" if spec.duration else " until the method ends"
    if isinstance(spec, models.ProbeStep) and spec.until is not None:
        extra = (
            f", polled every {durations.format(spec.until.interval)} until it holds "
            f"(up to {durations.format(spec.until.within)})"
        )
    if spec.background:
        extra += ", in the background"
    return f"{escape(step.label)} [dim]{spec.activity}{extra}[/]"


def show_plan(console: Console, plan: planning.Plan, touches: list[planning.Touch]) -> None:
    """The dry run: every step in order, and what each fault would hit."""
    console.print(f"[bold]{escape(plan.experiment.title)}[/] [dim](dry run: nothing is injected)[/]")
    sections = [(name.replace("_", " "), steps) for name, steps in plan.sections()]
    by_step = {(t.phase, t.step): t for t in touches}
    for title, steps in sections:
        if not steps:
            continue
        console.rule(f"[bold]{title}[/]", align="left", style="dim")
        for step in steps:
            console.print(f"  {step.kind.value:6} {_planned(step)}", highlight=False)
            touch = by_step.get((step.phase, step.label))
            if touch is not None:
                for target in touch.targets:
                    console.print(f"           → {escape(str(target))}", highlight=False)
                    for key, value in sorted(target.detail.items()):
                        console.print(
                            f"               [dim]{escape(key)}: {escape(value)}[/]", highlight=False
                        )
                if touch.note:
                    console.print(f"           [yellow]{escape(touch.note)}[/]", highlight=False)
    recovery = plan.experiment.recovery
    console.print(
        f"recovery: steady state must hold within {durations.format(recovery.within)}, "
        f"polled every {durations.format(recovery.interval)}",
        highlight=False,
    )
