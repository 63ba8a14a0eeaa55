"""Chaos Toolkit control modules (an experiment's ``controls``), called at the run's boundaries the
way Chaos Toolkit calls them, from the run's events.

A control module defines any of ``configure_control``, ``cleanup_control`` and
``before_/after_{experiment,hypothesis,method,rollback,activity}_control``. Each is called as
``function(context=..., **arguments)``, where ``arguments`` are the control's own, plus
``configuration``, ``secrets``, ``state`` and ``experiment`` for the functions that declare those
parameters (as Chaos Toolkit does). Mapping onto chaoskit's run:

- experiment: the whole run (``after_experiment_control`` once the verdict is reached);
- hypothesis: the steady state before the method, and after it (once recovery is judged);
- method and rollbacks: those sections;
- activity: each method and rollback step (pauses excepted), and each steady-state probe.

``context`` is the Chaos Toolkit shape of the experiment or activity, rebuilt from the translated
experiment; ``state`` is the Chaos Toolkit shape of what happened (a run, a list of runs, the
hypothesis's result, a journal summary). A function that raises is logged and the run goes on;
only ``configure_control`` raising refuses the run.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Any

from pydantic import JsonValue

from chaoskit import errors, pyrefs
from chaoskit.engine import events, journals
from chaoskit.engine.phases import Phase, StepKind
from chaoskit.spec import ctk_providers, models

FUNCTIONS = (
    "configure_control",
    "cleanup_control",
    "before_experiment_control",
    "after_experiment_control",
    "before_hypothesis_control",
    "after_hypothesis_control",
    "before_method_control",
    "after_method_control",
    "before_rollback_control",
    "after_rollback_control",
    "before_activity_control",
    "after_activity_control",
)
"""The Chaos Toolkit control functions chaoskit calls (the loading ones have no equivalent)."""

_CTK_STATUS = {
    journals.Verdict.COMPLETED: "completed",
    journals.Verdict.DEVIATED: "deviated",
    journals.Verdict.NOT_STEADY: "failed",
    journals.Verdict.ERROR: "failed",
    journals.Verdict.INVALID: "failed",
    journals.Verdict.VETOED: "aborted",
    journals.Verdict.HALTED: "interrupted",
    journals.Verdict.INTERRUPTED: "interrupted",
}
"""chaoskit's verdicts → the ``status`` of a Chaos Toolkit journal."""


def attach(
    experiment: models.Experiment,
    bus: events.Bus,
    *,
    secrets: Mapping[str, str],
    at: Callable[[], datetime],
) -> Controls | None:
    """Import the experiment's controls, call their ``configure_control`` and subscribe them to
    ``bus``; ``None`` when there are none. Raises ``errors.ChaoskitError`` (the run is refused)
    when a module can't be imported or ``configure_control`` raises."""
    if not experiment.controls:
        return None
    controls = Controls(experiment, secrets, bus, at)
    controls.configure()
    bus.subscribe(controls)
    return controls


def experiment_context(experiment: models.Experiment) -> dict[str, JsonValue]:
    """The experiment as Chaos Toolkit shapes it, for ``context`` (and ``experiment``)."""
    context: dict[str, JsonValue] = {"title": experiment.title}
    if experiment.description is not None:
        context["description"] = experiment.description
    if experiment.tags:
        context["tags"] = list(experiment.tags)
    context["configuration"] = dict(experiment.config)
    context["steady-state-hypothesis"] = {
        "title": experiment.title,
        "probes": [activity_context(step) for step in experiment.steady_state],
    }
    for section in ("method", "rollbacks"):
        steps = getattr(experiment, section)
        context[section] = [activity_context(s) for s in steps if not isinstance(s, models.PauseStep)]
    context["controls"] = [_control_context(c) for c in experiment.controls]
    return context


def activity_context(
    step: models.ProbeStep | models.FaultStep | models.ActionStep | models.PauseStep,
) -> dict[str, JsonValue]:
    """A step as a Chaos Toolkit activity: ``{type, name, provider}``. Steps translated from a
    Chaos Toolkit provider get that provider back (``ctk_providers.provider_of``); others get
    ``{type: chaoskit, activity, arguments}``."""
    if isinstance(step, models.PauseStep):
        return {
            "type": "action",
            "name": step.name or "pause",
            "provider": {"type": "chaoskit", "activity": "pause"},
        }
    kind = "probe" if isinstance(step, models.ProbeStep) else "action"
    arguments = {k: v for k, v in step.with_.items() if k != "dialect"}
    activity = step.activity
    provider = ctk_providers.provider_of(activity, arguments) or {
        "type": "chaoskit",
        "activity": activity,
        "arguments": arguments,
    }
    return {"type": kind, "name": step.name or activity, "provider": provider}


def _control_context(control: models.Control) -> dict[str, JsonValue]:
    provider: dict[str, JsonValue] = {"type": "python", "module": control.module}
    if control.arguments:
        provider["arguments"] = dict(control.arguments)
    context: dict[str, JsonValue] = {"name": control.name, "provider": provider}
    if control.scope is not None:
        context["scope"] = control.scope
    return context


@dataclass
class _Loaded:
    spec: models.Control
    module: ModuleType


@dataclass
class _Open:
    """A Chaos Toolkit phase (hypothesis, method, rollback) under way, and its runs so far."""

    level: str
    runs: list[dict[str, JsonValue]] = field(default_factory=list)
    poll: int = 0


class Controls:
    """Calls the control functions as the run's events go by (a bus subscriber)."""

    def __init__(
        self,
        experiment: models.Experiment,
        secrets: Mapping[str, str],
        bus: events.Bus,
        at: Callable[[], datetime],
    ) -> None:
        self.experiment = experiment
        self.at = at
        self.bus = bus
        self.secrets = secrets
        self.context = experiment_context(experiment)
        self.loaded = [_Loaded(spec, _import(spec)) for spec in experiment.controls]
        self.calls = 0
        self._open: _Open | None = None
        self._steps: dict[tuple[Phase, int], dict[str, JsonValue]] = {}
        self._started: dict[tuple[Phase, int], datetime] = {}
        self._hypotheses: dict[str, JsonValue] = {"before": None, "after": None}
        self._method: list[dict[str, JsonValue]] = []
        self._rollbacks: list[dict[str, JsonValue]] = []
        self._run_started: datetime | None = None

    def configure(self) -> None:
        for loaded in self._experiment_level():
            function = getattr(loaded.module, "configure_control", None)
            if function is None:
                continue
            offered: dict[str, Any] = {
                "configuration": dict(self.experiment.config),
                "config": dict(self.experiment.config),
                "secrets": self._secrets(loaded.spec),
                "experiment": self.context,
                "settings": None,
            }
            try:
                function(**loaded.spec.arguments, **_declared(loaded.module, "configure_control", offered))
            except Exception as e:
                raise errors.ChaoskitError(
                    f"control {loaded.spec.name!r} ({loaded.spec.module}): configure_control raised "
                    f"{type(e).__name__}: {e}",
                    hint="the run did not start; fix what the control needs (its arguments, its "
                    "configuration) or remove the control",
                ) from e

    # ---- the run's events -----------------------------------------------------------------

    def __call__(self, event: events.Event) -> None:
        match event:
            case events.RunStarted(at=at):
                self._run_started = at
                self._call("before_experiment_control", self.context)
            case events.PhaseStarted(phase=phase):
                self._close()
                if phase in (Phase.BEFORE, Phase.AFTER):
                    self._call("before_hypothesis_control", self.context["steady-state-hypothesis"])
                    self._open = _Open("hypothesis-" + phase.value)
                elif phase == Phase.METHOD:
                    self._call("before_method_control", self.context)
                    self._open = _Open("method")
                elif phase == Phase.ROLLBACKS:
                    self._call("before_rollback_control", self.context)
                    self._open = _Open("rollback")
            case events.StepStarted(phase=phase, index=index, kind=kind, at=at) if (
                phase in (Phase.METHOD, Phase.ROLLBACKS) and kind != StepKind.PAUSE
            ):
                step = self._step(phase, index)
                self._steps[(phase, index)] = step
                self._started[(phase, index)] = at
                self._activity("before_activity_control", step, None)
            case events.StepEnded(record=record) if (record.phase, record.index) in self._steps:
                step = self._steps.pop((record.phase, record.index))
                started = self._started.pop((record.phase, record.index))
                run = _run(
                    step, record.status == journals.StepStatus.OK, record.output, started, record.ended
                )
                if record.error is not None:
                    run["exception"] = [record.error]
                if self._open is not None:
                    self._open.runs.append(run)
                self._activity("after_activity_control", step, run)
            case events.CheckDone(record=record) if record.phase in (Phase.BEFORE, Phase.AFTER):
                self._probe(record)
            case events.VerdictReached(verdict=verdict, at=at):
                self._close()
                self._call("after_experiment_control", self.context, self._journal(verdict, at))
                for loaded in self._experiment_level():
                    self._invoke(loaded, "cleanup_control", {})
            case _:
                pass

    def _probe(self, record: journals.CheckRecord) -> None:
        unknown: dict[str, JsonValue] = {
            "type": "probe",
            "name": record.step,
            "provider": {"type": "chaoskit", "activity": record.activity},
        }
        step = next(
            (
                activity_context(s)
                for s in self.experiment.steady_state
                if (s.name or s.activity) == record.step
            ),
            unknown,
        )
        # chaoskit reports a steady-state probe once it is judged: both calls come then.
        self._activity("before_activity_control", step, None)
        run = _run(step, record.error is None, record.value, record.at, record.at, elapsed=record.elapsed)
        run["tolerance_met"] = record.ok
        if record.error is not None:
            run["exception"] = [record.error]
        if self._open is not None and self._open.level.startswith("hypothesis"):
            if (record.poll or 0) > self._open.poll:  # a new poll of the after-hypothesis
                self._open.runs, self._open.poll = [], record.poll or 0
            self._open.runs.append(run)
        self._activity("after_activity_control", step, run)

    def _close(self) -> None:
        """End the Chaos Toolkit phase under way: its ``after_*`` call, with its state."""
        opened, self._open = self._open, None
        if opened is None:
            return
        if opened.level.startswith("hypothesis"):
            state: JsonValue = {
                "steady_state_met": all(r.get("tolerance_met") is True for r in opened.runs),
                "probes": list(opened.runs),
            }
            self._hypotheses[opened.level.removeprefix("hypothesis-")] = state
            self._call("after_hypothesis_control", self.context["steady-state-hypothesis"], state)
        elif opened.level == "method":
            self._method = opened.runs
            self._call("after_method_control", self.context, list(opened.runs))
        else:
            self._rollbacks = opened.runs
            self._call("after_rollback_control", self.context, list(opened.runs))

    def _journal(self, verdict: journals.Verdict, ended: datetime) -> dict[str, JsonValue]:
        started = self._run_started or ended
        return {
            "experiment": self.context,
            "status": _CTK_STATUS.get(verdict, "failed"),
            "deviated": verdict == journals.Verdict.DEVIATED,
            "start": started.isoformat(),
            "end": ended.isoformat(),
            "duration": (ended - started).total_seconds(),
            "steady_states": {**self._hypotheses, "during": []},
            "run": list(self._method),
            "rollbacks": list(self._rollbacks),
        }

    # ---- calling --------------------------------------------------------------------------

    def _step(self, phase: Phase, index: int) -> dict[str, JsonValue]:
        steps = self.experiment.method if phase == Phase.METHOD else self.experiment.rollbacks
        return activity_context(steps[index])

    def _experiment_level(self) -> list[_Loaded]:
        return [loaded for loaded in self.loaded if loaded.spec.activity is None]

    def _activity(self, name: str, step: dict[str, JsonValue], state: JsonValue) -> None:
        for loaded in self.loaded:
            if loaded.spec.activity is None or loaded.spec.activity == step.get("name"):
                self._one(loaded, name, step, state)

    def _call(self, name: str, context: JsonValue, state: JsonValue = None) -> None:
        for loaded in self._experiment_level():
            self._one(loaded, name, context, state)

    def _one(self, loaded: _Loaded, name: str, context: JsonValue, state: JsonValue) -> None:
        scope = loaded.spec.scope
        if scope is not None and not name.startswith(scope + "_"):
            return
        offered: dict[str, Any] = {
            "state": state,
            "configuration": dict(self.experiment.config),
            "secrets": self._secrets(loaded.spec),
            "experiment": self.context,
            "extensions": None,
            "settings": None,
        }
        self._invoke(
            loaded,
            name,
            {"context": context, **loaded.spec.arguments, **_declared(loaded.module, name, offered)},
        )

    def _invoke(self, loaded: _Loaded, name: str, arguments: dict[str, Any]) -> None:
        function = getattr(loaded.module, name, None)
        if function is None:
            return
        self.calls += 1
        try:
            function(**arguments)
        except Exception as e:
            # As in Chaos Toolkit: a control is an observer; its failure does not fail the run.
            self.bus.emit(
                events.Log(
                    f"control {loaded.spec.name!r} ({loaded.spec.module}): {name} raised "
                    f"{type(e).__name__}: {e} (the run goes on)",
                    self.at(),
                )
            )

    def _secrets(self, control: models.Control) -> dict[str, str]:
        return {name: self.secrets[name] for name in control.secrets if name in self.secrets}


def _import(control: models.Control) -> ModuleType:
    try:
        return pyrefs.module(control.module)
    except pyrefs.Unresolvable as e:
        raise errors.ChaoskitError(
            f"control {control.name!r}: module {control.module!r} can't be imported ({e})",
            hint="install the package that provides it in the environment chaoskit runs in, or "
            "remove the control",
        ) from e


def _declared(module: ModuleType, name: str, offered: Mapping[str, Any]) -> dict[str, Any]:
    """The offered values whose names ``module.name`` declares as parameters (Chaos Toolkit passes
    ``configuration``, ``secrets``, ``state`` and ``experiment`` only to functions that ask)."""
    function = getattr(module, name, None)
    if function is None:
        return {}
    parameters = _parameters(function)
    return {key: value for key, value in offered.items() if key in parameters}


def _parameters(function: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return set()


def _run(
    activity: dict[str, JsonValue],
    succeeded: bool,
    output: JsonValue,
    started: datetime,
    ended: datetime,
    *,
    elapsed: float | None = None,
) -> dict[str, JsonValue]:
    """A Chaos Toolkit run (the ``state`` of ``after_activity_control``)."""
    return {
        "activity": activity,
        "status": "succeeded" if succeeded else "failed",
        "output": output,
        "start": started.isoformat(),
        "end": ended.isoformat(),
        "duration": elapsed if elapsed is not None else (ended - started).total_seconds(),
    }
