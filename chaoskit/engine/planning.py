"""Planning: every activity of an experiment resolved to a registered driver and its arguments
checked, before anything touches the system. ``--dry-run`` stops here and prints ``dry_run``.

Every problem is collected (with the file position of the step) and raised as one ``SpecError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from chaoskit import errors
from chaoskit.drivers import contract, registry
from chaoskit.engine import phases
from chaoskit.spec import catalogs, models, problems, suggestions, templates

PathParts = Sequence[str | int]


class Source(Protocol):
    """What planning needs from a loaded experiment (``chaoskit.spec.reading.Loaded`` is one)."""

    @property
    def experiment(self) -> models.Experiment: ...

    @property
    def name(self) -> str: ...

    def problem(self, path_parts: PathParts, message: str) -> errors.Problem: ...


@dataclass(frozen=True)
class Document:
    """An experiment given as a model in memory: problems carry the YAML path but no position."""

    experiment: models.Experiment
    name: str = "<experiment>"
    kind: str = "chaoskit"

    def problem(self, path_parts: PathParts, message: str) -> errors.Problem:
        return errors.Problem(file=self.name, line=0, col=0, path=render_path(path_parts), message=message)


def render_path(parts: PathParts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


AnyStep = models.ProbeStep | models.FaultStep | models.ActionStep | models.PauseStep


@dataclass(frozen=True)
class PlannedStep:
    phase: phases.Phase
    index: int
    step: AnyStep
    path: tuple[str | int, ...]
    """Where the step is in the file, e.g. ``("method", 2)``."""
    activity: contract.Fault[Any, Any] | contract.Probe[Any] | contract.Action[Any] | None
    """None for a pause."""
    args: contract.Args | None
    """Validated at plan time; None when ``with:`` has run-time templates (validated when run)."""

    @property
    def kind(self) -> phases.StepKind:
        return phases.StepKind(kind_of(self.step))

    @property
    def label(self) -> str:
        return self.step.name or self.step.activity

    @property
    def raw_args(self) -> dict[str, Any]:
        return {} if isinstance(self.step, models.PauseStep) else dict(self.step.with_)

    @property
    def background(self) -> bool:
        return not isinstance(self.step, models.PauseStep) and self.step.background

    @property
    def timeout(self) -> float | None:
        return None if isinstance(self.step, models.PauseStep) else self.step.timeout


@dataclass(frozen=True)
class Plan:
    experiment: models.Experiment
    source: str
    preflight: tuple[PlannedStep, ...] = ()
    setup: tuple[PlannedStep, ...] = ()
    steady_state: tuple[PlannedStep, ...] = ()
    method: tuple[PlannedStep, ...] = ()
    guards: tuple[PlannedStep, ...] = ()
    rollbacks: tuple[PlannedStep, ...] = ()
    teardown: tuple[PlannedStep, ...] = ()
    measures: tuple[PlannedStep, ...] = ()
    """The ``measure`` probes, in ``experiment.measure`` order (sampled, never judged)."""
    locate: Callable[[PathParts, str], errors.Problem] | None = field(default=None, compare=False, repr=False)
    """Turns a path and a message into a problem at its file position (for run-time templates)."""

    def problem(self, path_parts: PathParts, message: str) -> errors.Problem:
        if self.locate is not None:
            return self.locate(path_parts, message)
        return errors.Problem(self.source, 0, 0, render_path(path_parts), message)

    def sections(self) -> list[tuple[str, tuple[PlannedStep, ...]]]:
        """Every section with its steps, in ``models.STEP_SECTIONS`` order."""
        return [(name, getattr(self, name)) for name in models.STEP_SECTIONS]

    def faults(self) -> list[PlannedStep]:
        return [s for s in (*self.setup, *self.method, *self.rollbacks, *self.teardown) if s.kind == "fault"]


def kind_of(step: AnyStep) -> str:
    if isinstance(step, models.ProbeStep):
        return "probe"
    if isinstance(step, models.FaultStep):
        return "fault"
    if isinstance(step, models.ActionStep):
        return "action"
    return "pause"


def validation_messages(
    error: ValidationError, model: type[BaseModel] | None = None
) -> list[tuple[tuple[str | int, ...], str]]:
    """(location inside ``with``, message) for each pydantic error, in the user's words.

    Given the arguments ``model``, an unknown argument names the one it likely misspells; when that
    one is also reported missing, the typo is the whole problem and the "missing" goes unsaid."""
    items = error.errors(include_url=False)
    names = [field.alias or name for name, field in model.model_fields.items()] if model else []
    missing = {str(item["loc"][0]) for item in items if item["type"] == "missing" and len(item["loc"]) == 1}
    meant: set[str] = set()
    for item in items:
        if item["type"] == "extra_forbidden" and len(item["loc"]) == 1:
            match = suggestions.closest(str(item["loc"][0]), names)
            if match in missing:
                meant.add(match)
    out: list[tuple[tuple[str | int, ...], str]] = []
    for item in items:
        loc = tuple(p for p in item["loc"] if isinstance(p, str | int))
        kind = item["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1]) if loc else ""
            message = f"unknown argument {key!r}"
            if len(loc) == 1:
                message += suggestions.hint(key, names)
        elif kind == "missing":
            if len(loc) == 1 and loc[0] in meant:
                continue
            message = "required argument missing"
        elif (told := problems.value_message(kind, item.get("input"), item.get("ctx"))) is not None:
            message = told
        else:
            # A validator's own words, without pydantic's "Value error, " in front (as the loader does).
            message = item["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        out.append((loc, message))
    return out


def unknown_argument(message: str) -> bool:
    """Whether ``message`` (from ``validation_messages``) is about a key the arguments don't have:
    it is told at that key's place but under the path of ``with``, which the name is in already."""
    return message.startswith("unknown argument ")


_UNTIL_ELSEWHERE = {
    phases.Phase.BEFORE: (
        "until: is not for the steady state, which is judged as it stands before the method and "
        "polled after it (set recovery: {within, interval}); to wait for the system first, put a "
        "probe with until: in setup"
    ),
    phases.Phase.GUARD: "until: is not for guards, which are polled already (set interval: and failures:)",
    phases.Phase.PREFLIGHT: (
        "until: is not for preflight checks, which are asked once: a 'no' vetoes the run as it stands"
    ),
}
_SCHEDULED_BY_THE_ENGINE = frozenset(_UNTIL_ELSEWHERE)  # when, and how often, is chaoskit's
_BACKGROUND_ELSEWHERE = {
    phases.Phase.BEFORE: (
        "background: is not for the steady state, whose probes are judged in order, before and after "
        "the method"
    ),
    phases.Phase.GUARD: "background: is not for guards, which are polled beside the method already",
    phases.Phase.PREFLIGHT: "background: is not for preflight checks, which are asked before anything runs",
}


def plan(
    source: Source,
    drivers: registry.Registry,
    *,
    probes_path: Sequence[Path] = (),
    live: contract.RunContext | None = None,
) -> Plan:
    """Resolve and check every step; raise one ``SpecError`` with every problem found.

    With ``live``, probes also get their ``Probe.validate`` checks against the live system
    (e.g. Prometheus parsing a query); without it planning touches nothing."""
    experiment = source.experiment
    problems: list[errors.Problem] = []

    def section(name: str, steps: Sequence[AnyStep], phase: phases.Phase) -> tuple[PlannedStep, ...]:
        planned = []
        for index, step in enumerate(steps):
            if phase in _SCHEDULED_BY_THE_ENGINE and isinstance(step, models.ProbeStep) and step.until:
                problems.append(source.problem((name, index, "until"), _UNTIL_ELSEWHERE[phase]))
            if phase in _SCHEDULED_BY_THE_ENGINE and isinstance(step, models.ProbeStep) and step.background:
                problems.append(source.problem((name, index, "background"), _BACKGROUND_ELSEWHERE[phase]))
            resolved = _resolve(
                source,
                drivers,
                step,
                (name, index),
                phase=phase,
                index=index,
                probes_path=probes_path,
                problems=problems,
                live=live,
            )
            if resolved is not None:
                planned.append(resolved)
        return tuple(planned)

    result = Plan(
        experiment=experiment,
        source=source.name,
        locate=source.problem,
        preflight=section("preflight", experiment.preflight, phases.Phase.PREFLIGHT),
        setup=section("setup", experiment.setup, phases.Phase.SETUP),
        steady_state=section("steady_state", experiment.steady_state, phases.Phase.BEFORE),
        method=section("method", experiment.method, phases.Phase.METHOD),
        guards=section("guards", experiment.guards, phases.Phase.GUARD),
        rollbacks=section("rollbacks", experiment.rollbacks, phases.Phase.ROLLBACKS),
        teardown=section("teardown", experiment.teardown, phases.Phase.TEARDOWN),
        # Resolved and checked as probes; the phase only tells the planner how to treat them.
        measures=section("measure", [m.as_probe() for m in experiment.measure], phases.Phase.GUARD),
    )
    problems += _stacked(result, source)
    problems += _ramps(result, source)
    if problems:
        raise errors.SpecError(problems)
    return result


def ramp_stage(ramp: models.Ramp, value: Any) -> dict[str, Any]:
    """The ``with:`` arguments one ramp stage sets: ``ramp.by``, or the number of targets."""
    if ramp.by is not None:
        return {ramp.by: value}
    if isinstance(value, int) and not isinstance(value, bool):
        return {"count": value}
    if isinstance(value, str) and value.endswith("%"):
        return {"percent": float(value[:-1])}
    raise ValueError(f"a stage of targets is a count (3) or a percentage ('10%'), not {value!r}")


def show_stage(ramp: models.Ramp, value: Any) -> str:
    return f"{ramp.by} {value}" if ramp.by is not None else f"{value} of the targets"


def _ramps(plan: Plan, source: Source) -> list[errors.Problem]:
    """Each ramp names an argument its fault has, and each stage makes valid arguments."""
    problems: list[errors.Problem] = []
    for planned in plan.faults():
        step, fault = planned.step, planned.activity
        if not isinstance(step, models.FaultStep) or step.ramp is None or fault is None:
            continue
        fields = fault.args.model_fields
        wanted = [step.ramp.by] if step.ramp.by is not None else ["count", "percent"]
        if not any(name in fields for name in wanted):
            what = f"argument '{step.ramp.by}'" if step.ramp.by else "count or percent of targets"
            problems.append(
                source.problem(
                    (*planned.path, "ramp"),
                    f"{fault.name} has no {what} to ramp; give by: one of {', '.join(sorted(fields))}",
                )
            )
            continue
        for index, value in enumerate(step.ramp.stages):
            try:
                stage = ramp_stage(step.ramp, value)
            except ValueError as e:
                problems.append(source.problem((*planned.path, "ramp", "stages", index), str(e)))
                continue
            if templates.has_runtime_refs(planned.raw_args):
                continue
            try:
                fault.args.model_validate({**planned.raw_args, **stage})
            except ValidationError as e:
                for loc, msg in validation_messages(e, fault.args):
                    where = ".".join(str(p) for p in loc)
                    problems.append(
                        source.problem((*planned.path, "ramp", "stages", index), f"{where}: {msg}")
                    )
    return problems


def _stacked(plan: Plan, source: Source) -> list[errors.Problem]:
    """Faults that would stack on what an earlier step of the same run holds, where that can be
    seen in the file: the same reversible fault with the same arguments. (Where only the targets
    tell, the lease refuses it when it is injected.)"""
    problems: list[errors.Problem] = []
    first: dict[tuple[str, str], PlannedStep] = {}
    for planned in plan.faults():
        fault, step = planned.activity, planned.step
        if not isinstance(fault, contract.Fault) or not isinstance(step, models.FaultStep):
            continue
        if fault.reversibility is not contract.Reversibility.REVERSIBLE:
            continue
        key = (fault.name, json.dumps(planned.raw_args, sort_keys=True, default=str))
        if key not in first:
            first[key] = planned
        elif not step.allow_overlap:
            earlier = render_path(first[key].path)
            problems.append(
                source.problem(
                    planned.path,
                    f"{fault.name} with the same arguments as {earlier} would stack on the target that "
                    "step holds (its revert would record the faulted state as the one to restore); "
                    "remove one, or say allow_overlap: true on this step",
                )
            )
    return problems


def _resolve(
    source: Source,
    drivers: registry.Registry,
    step: AnyStep,
    where: tuple[str | int, ...],
    *,
    phase: phases.Phase,
    index: int,
    probes_path: Sequence[Path],
    problems: list[errors.Problem],
    live: contract.RunContext | None = None,
) -> PlannedStep | None:
    if isinstance(step, models.PauseStep):
        return PlannedStep(phase, index, step, where, None, None)
    if isinstance(step, models.ProbeStep) and step.use is not None:
        try:
            step = catalogs.resolve(step, probes_path)
        except errors.ChaoskitError as e:
            key = getattr(e, "key", "") or "use"
            parts = [p for p in key.split(".") if p]
            problems.append(source.problem((*where, *parts), e.message))
            return None
    assert not isinstance(step, models.PauseStep)
    kind = kind_of(step)
    name = step.activity
    pools: dict[str, Any] = {"fault": drivers.faults, "probe": drivers.probes, "action": drivers.actions}
    activity = pools[kind].get(name)
    if activity is None:
        problems.append(source.problem((*where, kind), _unknown(drivers, name, kind)))
        return None
    raw = dict(step.with_)
    args: contract.Args | None = None
    if not templates.has_runtime_refs(raw):
        try:
            args = activity.args.model_validate(raw)
        except ValidationError as e:
            for loc, message in validation_messages(e, activity.args):
                problem = source.problem((*where, "with", *loc), message)
                if unknown_argument(message):
                    shown = source.problem((*where, "with", *loc[:-1]), message).path
                    problem = replace(problem, path=shown)
                problems.append(problem)
            return None
    if (
        isinstance(step, models.FaultStep)
        and activity.reversibility is contract.Reversibility.IRREVERSIBLE
        and step.irreversible != "ok"
    ):
        problems.append(
            source.problem(
                (*where, "fault"),
                f"{name} can't be undone; add `irreversible: ok` to the step if that is really meant",
            )
        )
        return None
    if live is not None and args is not None and isinstance(activity, contract.Probe):
        try:
            activity.validate(args, live)
        except errors.ChaoskitError as e:
            # Only a refusal counts here; a system that can't be asked now fails the run clearly.
            if e.exit_code == errors.ExitCode.INVALID:
                problems.append(source.problem((*where, "with"), e.message))
                return None
    return PlannedStep(phase, index, step, where, activity, args)


def _unknown(drivers: registry.Registry, name: str, kind: str) -> str:
    prefix = name.split(".", 1)[0]
    driver = drivers.drivers.get(prefix)
    if driver is not None and (why := driver.missing()):
        return f"driver {prefix} is installed but can't be used: {why}"
    if prefix in drivers.broken:
        return f"driver {prefix} failed to load: {drivers.broken[prefix]}"
    for other in ("fault", "probe", "action"):
        pool = {"fault": drivers.faults, "probe": drivers.probes, "action": drivers.actions}[other]
        if other != kind and name in pool:
            return f"{name} is a {other}, not a {kind}; write `{other}: {name}`"
    message = f"unknown {kind} {name!r}"
    suggestion = drivers.suggest(name, kind)
    if suggestion:
        return f"{message} (did you mean {suggestion!r}?)"
    return f"{message}; `chaoskit drivers` lists what is installed"


@dataclass(frozen=True)
class Touch:
    """One fault step of the dry run: what it would hit, or why that can't be known yet."""

    step: str
    phase: phases.Phase
    activity: str
    targets: list[contract.Target] = field(default_factory=list)
    note: str | None = None
    """Run-time arguments, or the selection failed (the error)."""


def dry_run(planned: Plan, ctx: contract.RunContext) -> list[Touch]:
    """Resolve the targets of every fault step, injecting nothing."""
    touches: list[Touch] = []
    for step in planned.faults():
        fault = step.activity
        assert isinstance(fault, contract.Fault)
        if step.args is None:
            touches.append(
                Touch(step.label, step.phase, fault.name, note="targets known at run time (uses ${...})")
            )
            continue
        try:
            targets = list(fault.targets(step.args, ctx))
        except errors.ChaoskitError as e:
            touches.append(Touch(step.label, step.phase, fault.name, note=e.message))
            continue
        touches.append(Touch(step.label, step.phase, fault.name, targets=targets))
    return touches


def planned_duration(experiment: models.Experiment) -> float:
    """Seconds the run is planned to take, from what the file states: pauses, probes' ``until.within``,
    ramp holds and fault durations (a fault is held while later steps run; one without a duration
    until the method ends), then ``recovery.within``; capped by ``max_duration``. Steps that state
    no duration count as instant. GameDay schedules fit this inside their windows."""

    def span(steps: Sequence[AnyStep]) -> float:
        clock = end = 0.0
        for step in steps:
            if isinstance(step, models.PauseStep):
                clock += step.pause
            elif isinstance(step, models.ProbeStep) and step.until is not None and not step.background:
                clock += step.until.within
            elif isinstance(step, models.FaultStep):
                if step.ramp is not None:
                    clock += len(step.ramp.stages) * step.ramp.hold
                end = max(end, clock + (step.duration or 0.0))
        return max(end, clock)

    total = (
        span(experiment.setup)
        + span(experiment.method)
        + experiment.recovery.within
        + span(experiment.rollbacks)
        + span(experiment.teardown)
    )
    return total if experiment.max_duration is None else min(total, experiment.max_duration)
