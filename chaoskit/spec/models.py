"""The experiment format as typed, frozen pydantic models: the contract users' files depend on.

Extend, don't rename. Step kinds are told apart by their key (``probe:``, ``fault:``,
``action:``, ``pause:``); templates such as ``${url}`` are already substituted when a model is
built, except run-time ones (``${steps.<id>.output...}``, ``${secrets.<name>}``), which stay
as text until the engine renders a step's arguments just before calling the driver.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    Tag,
    field_validator,
    model_validator,
)

from chaoskit.durations import Duration
from chaoskit.patterns import Regex
from chaoskit.spec import paths

CHECKS = ("equals", "below", "above", "between", "in", "matches", "jsonpath", "count", "call")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class Expect(Model):
    """What a probe's output must be. Every check given must hold."""

    path: str | None = None
    """Where in the output to look: ``status``, ``json.items[0].name``, ``latency.p99``."""
    equals: JsonValue = None
    below: float | None = None
    above: float | None = None
    between: tuple[float, float] | None = None
    in_: list[JsonValue] | None = Field(default=None, alias="in")
    matches: Regex | None = None
    """A regular expression searched in the value's text."""
    jsonpath: str | None = None
    """A JSONPath (``$.items[*].status``) into the value at ``path``; the other checks then apply
    to every match, and at least one match is needed (Chaos Toolkit's ``jsonpath`` tolerance)."""
    count: int | None = Field(default=None, ge=0)
    """With ``jsonpath``: how many matches there must be."""
    call: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """``module:function`` called as ``function(value=..., **arguments)``; truthy means it holds
    (Chaos Toolkit's ``probe`` tolerance)."""
    arguments: dict[str, JsonValue] = Field(default_factory=dict)
    """Extra keyword arguments for ``call``."""

    @field_validator("jsonpath")
    @classmethod
    def _jsonpath_parses(cls, value: str | None) -> str | None:
        if value is not None:
            paths.jsonpath_parse(value)
        return value

    @field_validator("path")
    @classmethod
    def _path_parses(cls, value: str | None) -> str | None:
        if value is not None:
            paths.parse(value)
        return value

    @field_validator("between")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError(f"between needs [low, high], got [{value[0]}, {value[1]}]")
        return value

    @model_validator(mode="after")
    def _parts_need_their_check(self) -> Self:
        if self.count is not None and self.jsonpath is None:
            raise ValueError("count: needs jsonpath: (it counts the JSONPath's matches)")
        if self.arguments and self.call is None:
            raise ValueError("arguments: needs call: (they are passed to that function)")
        return self

    @model_validator(mode="after")
    def _has_a_check(self) -> Self:
        given = self.model_fields_set - {"path", "arguments"}
        if not given:
            raise ValueError(f"give at least one check: {', '.join(CHECKS)}")
        return self


class StepBase(Model):
    id: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    """Lets later steps use ``${steps.<id>.output.<path>}``."""
    name: str | None = None
    background: bool = False
    """Run concurrently with the steps after it; its section (setup, method, rollbacks, teardown)
    waits for it at its end. Not on the steady state or guards."""
    timeout: Duration | None = None
    """Give up on the step after this long (a probe then fails, an action errors)."""


class Until(Model):
    """Poll a probe until it holds, instead of judging its first answer."""

    within: Duration
    """Give up (the step then fails) when the probe has not held after this long."""
    interval: Duration = 1.0
    """How often the probe is polled meanwhile."""


class ProbeStep(StepBase):
    """Reads the system; ``expect`` decides whether it holds."""

    probe: str | None = None
    """A registered probe, e.g. ``http.request``."""
    use: str | None = None
    """Or a catalog probe by name (``probes/`` or ``--probes-path``), e.g. ``http-availability``."""
    with_: dict[str, JsonValue] = Field(default_factory=dict, alias="with")
    expect: (
        Annotated[
            Annotated[Expect, Tag("one")] | Annotated[list[Expect], Tag("many")],
            # One branch per input shape, so that errors name the check, not both union members.
            Discriminator(lambda v: "many" if isinstance(v, list) else "one"),
        ]
        | None
    ) = None
    """Without ``expect`` a probe holds when it does not error; a list means every item must hold."""
    until: Until | None = None
    """Poll until the probe holds, e.g. until Prometheus scrapes what ``setup`` started. Only in
    setup, method, rollbacks and teardown: the steady state is judged as it stands, and is polled
    after the method by ``recovery``."""

    @model_validator(mode="after")
    def _probe_or_use(self) -> Self:
        if (self.probe is None) == (self.use is None):
            raise ValueError("give exactly one of probe: (a registered probe) or use: (a catalog probe)")
        return self

    @property
    def expects(self) -> list[Expect]:
        if self.expect is None:
            return []
        return self.expect if isinstance(self.expect, list) else [self.expect]

    @property
    def activity(self) -> str:
        return self.probe or f"use:{self.use}"


def _ramp_short_form(value: Any) -> Any:
    # ramp: [1, 10%, 50%] is the short form of ramp: {stages: [1, 10%, 50%]} (targets).
    return {"stages": value} if isinstance(value, list) else value


class Ramp(Model):
    """Grow a fault's blast radius in stages, checking the steady state after each; the first stage
    that breaks it ends the ramp (a deviation naming the stage)."""

    stages: list[JsonValue] = Field(min_length=1, max_length=100)
    """The values, smallest first. Without ``by``: how many targets, ``3`` (count) or ``"10%"``
    (percent); with ``by``: the values of that argument, e.g. ``[100ms, 300ms, 1s]``."""
    by: str | None = None
    """The ``with:`` argument that grows; default: the number of targets (``count``/``percent``)."""
    hold: Duration = 10.0
    """How long each stage is held before the steady state is checked."""


class FaultStep(StepBase):
    """Changes the system; reversible faults are taken back automatically."""

    fault: str
    with_: dict[str, JsonValue] = Field(default_factory=dict, alias="with")
    duration: Duration | None = None
    """Revert after this long, concurrently with later steps; else at the end of the method."""
    irreversible: Literal["ok"] | None = None
    """Required, as ``irreversible: ok``, for a fault that can't be undone."""
    allow_overlap: bool = False
    ramp: Annotated[Ramp | None, BeforeValidator(_ramp_short_form)] = None
    """Inject in stages of growing size, each checked against the steady state (see ``Ramp``)."""
    """Allow this fault on a target that another applied fault of the same kind already holds
    (refused by default: stacking loses the state to restore). The original state still comes
    back, whatever order the two end in."""

    @property
    def activity(self) -> str:
        return self.fault


class ActionStep(StepBase):
    """A one-shot change: run a command, start a process, create a proxy."""

    action: str
    with_: dict[str, JsonValue] = Field(default_factory=dict, alias="with")

    @property
    def activity(self) -> str:
        return self.action


class PauseStep(Model):
    pause: Duration
    name: str | None = None

    @property
    def activity(self) -> str:
        return "pause"


STEP_KINDS = ("probe", "use", "fault", "action", "pause")
"""The keys that say what a step is (``use:`` is another name for ``probe:``)."""
ONE_STEP_KIND = (
    f"a step needs exactly one of {', '.join(k + ':' for k in STEP_KINDS[:-1])} or {STEP_KINDS[-1]}:"
)
"""What a step with none or several of them is told."""


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        keys = [k for k in STEP_KINDS if k in value]
        if len(keys) == 1 or keys == ["probe", "use"]:
            return "probe" if keys[0] == "use" else keys[0]
        return None
    if isinstance(value, BaseModel):
        return {
            ProbeStep: "probe",
            FaultStep: "fault",
            ActionStep: "action",
            PauseStep: "pause",
        }.get(type(value))
    return None


Step = Annotated[
    Annotated[ProbeStep, Tag("probe")]
    | Annotated[FaultStep, Tag("fault")]
    | Annotated[ActionStep, Tag("action")]
    | Annotated[PauseStep, Tag("pause")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message=ONE_STEP_KIND,
    ),
]


class Guard(ProbeStep):
    """A probe polled while the method runs; when it fails, the method stops and faults revert."""

    interval: Duration = 1.0
    failures: int = Field(default=1, ge=1)
    """How many failed polls in a row trip the guard."""


class Recovery(Model):
    within: Duration = 60.0
    """After the last revert, the steady state must hold again within this long."""
    interval: Duration = 1.0
    """How often the after-hypothesis is polled while waiting."""


class SecretRef(Model):
    """Where a secret comes from. Its value is redacted from every journal, report and log."""

    env: str | None = None
    file: str | None = None
    """A path; the file's content, stripped of a final newline."""
    value: str | None = Field(default=None, exclude=True, repr=False)
    """Inline, only in converted Chaos Toolkit experiments (native files must use env: or file:).
    Left out of dumps and reprs so that it can't reach a journal or a log."""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if [self.env, self.file, self.value].count(None) != 2:
            raise ValueError("a secret needs exactly one of env: NAME or file: PATH")
        return self

    @property
    def source(self) -> str:
        """Where the value comes from, for messages: ``env API_TOKEN``, ``file /run/token``."""
        if self.env is not None:
            return f"env {self.env}"
        if self.file is not None:
            return f"file {self.file}"
        return "inline value"


def _one_or_many(value: Any) -> Any:
    # measure: {probe: ...} is the short form of measure: [{probe: ...}].
    return [value] if isinstance(value, dict) else value


class Measure(Model):
    """A probe sampled every ``every`` from the start of the method until recovery is judged, each
    sample journaled and never judged: what the HTML report plots over time (p50/p99, errors)."""

    name: str | None = None
    probe: str
    """A registered probe: ``http.load`` (p50, p99, error ratio), ``prometheus.query`` (its value),
    or any probe whose output is a number or has the paths given in ``keep``."""
    with_: dict[str, JsonValue] = Field(default_factory=dict, alias="with")
    every: Duration = 1.0
    """How often a sample starts. One sample at a time: a tick that finds the previous one still
    running is skipped (and counted)."""
    timeout: Duration | None = None
    """Give up on one sample after this long (it is journaled with its error)."""
    keep: dict[Annotated[str, Field(pattern=r"^[A-Za-z_]\w*$")], str] = Field(default_factory=dict)
    """Which numbers of each output to journal: ``label: path``, e.g. ``{p999_ms: latency_ms.p99_9}``
    (default: by probe). A label ending in ``_ms`` is plotted in milliseconds, one ending in
    ``_ratio`` as a percentage."""

    @field_validator("every")
    @classmethod
    def _not_too_often(cls, value: float) -> float:
        if value < 0.1:
            raise ValueError("every: must be at least 100ms (a sample is a whole probe run)")
        return value

    @field_validator("keep")
    @classmethod
    def _paths_parse(cls, value: dict[str, str]) -> dict[str, str]:
        for path in value.values():
            paths.parse(path)
        return value

    @property
    def activity(self) -> str:
        return self.probe

    @property
    def label(self) -> str:
        return self.name or self.probe

    def as_probe(self) -> ProbeStep:
        """The probe each sample runs, for the planner to resolve and check like any other."""
        return ProbeStep(probe=self.probe, with_=self.with_, name=self.name, timeout=self.timeout)


class Control(Model):
    """A Chaos Toolkit control module called at the run's boundaries (see
    ``chaoskit.engine.controlling``): ``before_experiment_control``, ``after_activity_control``,
    ... whichever of Chaos Toolkit's functions the module defines."""

    name: str
    module: str = Field(pattern=r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
    """The Python module that defines the control functions, e.g. ``chaosaddons.controls.repeat``."""
    arguments: dict[str, JsonValue] = Field(default_factory=dict)
    """Extra keyword arguments for every function called."""
    scope: Literal["before", "after"] | None = None
    """Only the ``before_*`` (or only the ``after_*``) functions are called; default: both."""
    secrets: list[str] = Field(default_factory=list)
    """Secrets (by name) passed as ``secrets={name: value}`` to functions that take ``secrets``."""
    activity: str | None = None
    """Only for the step of this name, and only its ``before/after_activity_control`` (a control
    declared on one activity in a Chaos Toolkit file)."""


STEP_SECTIONS = ("preflight", "setup", "steady_state", "guards", "method", "rollbacks", "teardown")
"""Every section of an experiment that holds steps, in the order a run reaches them (guards are
polled while the method runs). The one list the loader, the planner and the CLI use."""
PROBE_SECTIONS = ("preflight", "steady_state", "guards")
"""The sections that hold probes only."""


class Experiment(Model):
    """One experiment file. Top-level keys starting with ``x-`` are ignored: a place for YAML anchors."""

    model_config = ConfigDict(**Model.model_config, json_schema_extra={"patternProperties": {"^x-": {}}})

    title: str
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    max_duration: Duration | None = None
    """The longest the whole run may take (default 2h; ``--max-duration`` overrides): past it the
    run ends as if halted - faults reverted, rollbacks run, verdict ``halted``."""
    preflight: list[ProbeStep] = Field(default_factory=list)
    """Asked before anything runs (even setup): a probe that does not hold vetoes the run (verdict
    ``vetoed``, exit 6) - e.g. no chaos while an alert fires or an incident is open."""
    config: dict[str, JsonValue] = Field(default_factory=dict)
    """Variables for ``${name}``; ``--var``/``--var-file`` override them."""
    secrets: dict[str, SecretRef] = Field(default_factory=dict)
    """Used as ``${secrets.<name>}``; resolved only when a step runs."""
    setup: list[Step] = Field(default_factory=list)
    steady_state: list[ProbeStep] = Field(default_factory=list)
    method: list[Step] = Field(default_factory=list)
    guards: list[Guard] = Field(default_factory=list)
    recovery: Recovery = Field(default_factory=Recovery)
    rollbacks: list[Step] = Field(default_factory=list)
    rollback_strategy: Literal["method-started", "always", "never", "deviated", "not-deviated"] = (
        "method-started"
    )
    """When ``rollbacks`` run: ``method-started`` once the method started, whatever happened then;
    ``always`` also when it did not start (the steady state did not hold before); ``never``;
    ``deviated`` only when the run deviated; ``not-deviated`` once the method started unless the
    run deviated (Chaos Toolkit's default). ``--rollback-strategy`` overrides it."""
    teardown: list[Step] = Field(default_factory=list)
    controls: list[Control] = Field(default_factory=list)
    """Chaos Toolkit control modules the run calls (see ``Control``); translated from a Chaos
    Toolkit file's ``controls``."""
    measure: Annotated[list[Measure], BeforeValidator(_one_or_many)] = Field(default_factory=list)
    """Probes sampled all along the method and the recovery (see ``Measure``), for the report's
    latency and error lanes: ``measure: {probe: http.load, with: {...}, every: 1s}``."""
