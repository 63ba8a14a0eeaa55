"""The live console of ``chaoskit run``: phases, steps, fault timers, probe results, recovery and
the verdict, from the run's events (already redacted). Only what a person watching needs."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime

from pydantic import JsonValue
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from chaoskit import durations, installing
from chaoskit.engine import events, journals, phases, planning
from chaoskit.spec import models, paths

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


UNITS = {"_ms": "ms", "_s": "s", "_seconds": "s", "_pct": "%", "_percent": "%", "_bytes": "B"}
"""What a path segment's suffix says about its unit (``latency_ms.p99`` is in ms)."""

_OPS = re.compile(r" and (?=(?:equals|below|above|between|in|matches|accepted by) )")
"""Where one ``expect``'s phrases join (``below 200 and above 0``); ``between A and B`` keeps its
own ``and``."""
_OP = re.compile(r"(equals|below|above|between|in|matches|accepted by) (.*)", re.DOTALL)
_BETWEEN = re.compile(r"(\S+) and (\S+)")
STOPPED = {
    "cancelled": "cancelled: the run stopped while it ran",
    "skipped": "skipped: the run stopped before it",
}
"""What a step that did not run to its end says, by status (a newer engine may add ``skipped``)."""
_NUMBERS = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
SYMBOLS = {"equals": "=", "below": "<", "above": ">"}


def _unit(path: str) -> str:
    for segment in reversed(path.split(".")):
        for suffix, unit in UNITS.items():
            if segment.endswith(suffix):
                return unit
    return ""


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: float, unit: str = "", near: Sequence[float] = ()) -> str:
    """A measured number as a person reads it: 182.4 ms, 0.996, 12; never ``182.43700000001``.
    Exact when rounding would make it read as one of the bounds it was judged against: 199.96
    below 200 must not show as ``200.0 ms < 200 ms ✓``."""
    if float(value).is_integer() and abs(value) < 1e15:
        text = str(int(value))
    elif abs(value) >= 100:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:.3g}"
    if any(float(text) == bound != value for bound in near):
        text = f"{value:.15g}"
    return f"{text}%" if unit == "%" else f"{text} {unit}".rstrip()


def _shown(value: JsonValue, unit: str = "", near: Sequence[float] = (), width: int = 60) -> str:
    """A value as a person reads it: numbers with their unit, text quoted (its start, when long),
    a small list or object as JSON, a big one by its size and keys (the journal has all of it)."""
    if _is_number(value):
        assert isinstance(value, int | float)
        return _number(value, unit, near)
    if isinstance(value, str):
        return repr(value) if len(value) <= width else repr(value[:width]) + "…"
    text = json.dumps(value, separators=(", ", ": "))
    if len(text) <= width:
        return text
    if isinstance(value, list):
        return f"[{len(value)} items]"
    if isinstance(value, dict):
        keys = list(value)
        more = f", +{len(keys) - 4} more" if len(keys) > 4 else ""
        return "{" + ", ".join(keys[:4]) + more + "}"
    return text


def _bound(text: str, unit: str) -> str:
    """A bound as the expectation phrased it (``200``), with the path's unit (``200 ms``)."""
    try:
        number = float(text)
    except ValueError:
        return text
    return _number(number, unit) if math.isfinite(number) else text


def _comparison(op: str, unit: str) -> str:
    """``below 200`` → ``< 200 ms``; ``between 0.99 and 1`` → ``in [0.99, 1]``."""
    match = _OP.fullmatch(op)
    if match is None:
        return op
    word, rest = match.groups()
    if word in SYMBOLS:
        return f"{SYMBOLS[word]} {_bound(rest, unit)}"
    if word == "between" and (pair := _BETWEEN.fullmatch(rest)):
        return f"in [{_bound(pair[1], unit)}, {_bound(pair[2], unit)}]"
    return op


def _judged(record: journals.CheckRecord) -> list[str]:
    """Each ``expect`` as what it judged: ``latency_ms.p99 182.4 ms < 200 ms ✓``.

    The record keeps each expectation in words (``latency_ms.p99 below 200``: the path, then what
    it must be) and the probe's whole output, so the value at each path is looked up again here;
    which expectations failed is read from the message the check wrote."""
    parts = []
    blamed = False
    for phrase in record.expected:
        where, _, rest = phrase.partition(" ")
        ops = _OPS.split(rest)
        failed = not record.ok and (
            f"expected {phrase}," in record.message
            or f"expected {phrase} " in record.message
            or any(f"expected {where} {op}," in record.message for op in ops)
        )
        blamed = blamed or failed
        mark = "[red]✗[/]" if failed else "[green]✓[/]"
        if rest.startswith("$"):  # a JSONPath: its matches are a list, the phrase says it best
            parts.append(f"{escape(phrase)} {mark}")
            continue
        try:
            value = record.value if where == "output" else paths.lookup(record.value, paths.parse(where))
        except ValueError:  # the path is not there (the message says what is) or not a path
            parts.append(f"{escape(phrase)} {mark}")
            continue
        unit = _unit(where)
        bounds = [float(n) for n in _NUMBERS.findall(rest)]
        judged = " and ".join(_comparison(op, unit) for op in ops)
        parts.append(f"{escape(f'{where} {_shown(value, unit, bounds)}')} {escape(judged)} {mark}")
    if not record.ok and not blamed and record.message:
        parts.append(escape(record.message))  # a failure none of the phrases explains: say it whole
    return parts


def _load_summary(value: Mapping[str, JsonValue]) -> str | None:
    """An ``http.load`` output in a few words: how many requests and which errors, by kind."""
    requests, kinds = value.get("requests"), value.get("errors")
    if not isinstance(requests, int) or not isinstance(kinds, dict):
        return None
    counts = {str(k): n for k, n in kinds.items() if isinstance(n, int) and n}
    if not counts:
        return f"{requests} requests, none failed"
    failed = sum(counts.values())
    by_kind = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"{failed} of {requests} requests failed: {by_kind}"


def _recorded(value: JsonValue) -> str:
    """A probe without ``expect``: what it saw, in brief (the journal keeps all of it)."""
    if not isinstance(value, dict):
        return f"{escape(_shown(value))}  [dim](not judged)[/]"
    parts = []
    if (load := _load_summary(value)) is not None:
        parts.append(load)
        latency = value.get("latency_ms")
        if isinstance(latency, dict):
            for key in ("p50", "p99"):
                if isinstance(n := latency.get(key), int | float) and _is_number(n):
                    parts.append(f"{key} {_number(n, 'ms')}")
    else:
        brief = [(k, v) for k, v in value.items() if _is_number(v) or isinstance(v, bool | str)]
        parts += [f"{k} {_shown(v, _unit(k), width=30)}" for k, v in brief[:4]]
    shown = escape(" · ".join(parts)) if parts else ""
    return f"{shown}  [dim](not judged; all of it is in the journal)[/]".lstrip()


def _detail(record: journals.CheckRecord) -> str:
    """What a check line says after its name: each judged value, or why the probe gave none."""
    if record.error is not None:
        return escape(record.message or record.error)
    if not record.expected:
        return _recorded(record.value)
    parts = _judged(record)
    if isinstance(record.value, dict) and (load := _load_summary(record.value)) is not None:
        parts.append(escape(load))
    return " · ".join(parts)


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
                self._print(f"  [bold red]error:[/] {escape(installing.install_hints(record.message))}")
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
        if record.detail:  # the action's own words for it ("sleep pid 4242") say more
            pid = f" {escape(record.detail)}"
        what = escape(record.step)
        if record.step != record.activity:
            what += f" [dim]{escape(record.activity)}[/]"
        error = f": {escape(record.error)}" if record.error else ""
        style = "red" if record.outcome is journals.RevertStatus.FAILED else "dim"
        self._print(f"  [{style}]undone:[/] {what}{pid} [{style}]({record.outcome.value}){error}[/]")

    def _step(self, record: journals.StepRecord) -> None:
        stopped = STOPPED.get(record.status.value)
        if record.kind is phases.StepKind.PROBE and stopped is None:
            return  # its check line says it all (a probe stopped midway has none)
        took = durations.format((record.ended - record.started).total_seconds())
        marks = {
            journals.StepStatus.OK: "[green]✓[/]",
            journals.StepStatus.FAILED: "[yellow]✗[/]",
            journals.StepStatus.ERROR: "[red]✗[/]",
        }
        mark = marks.get(record.status, "[dim]■[/]")
        background = " [dim](background)[/]" if record.background else ""
        what = record.name if record.name == record.activity else f"{record.name} [dim]{record.activity}[/]"
        error = f": {escape(record.error)}" if record.error else ""
        status = "" if record.status is journals.StepStatus.OK else f" {record.status.value}"
        if stopped is not None:
            status = f" [yellow]{stopped}[/]"
        self._print(f"  {mark} {what}{background} [dim]{took}[/]{status}{error}")

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
        detail = _detail(record)
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
