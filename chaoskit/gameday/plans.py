"""The GameDay plan format: which experiments run (files and variables, in order or in parallel
groups), when to stop, whom to notify, and optionally when (``schedule:``, see ``schedules``).

Plans are read like experiments: every problem is collected, each as ``FILE:LINE:COL: path:
message``, with "did you mean" for misspelt keys. Relative experiment paths are relative to the
plan file.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pydantic
from pydantic import BaseModel, ConfigDict, Discriminator, Field, JsonValue, Tag, field_validator

from chaoskit import errors
from chaoskit.durations import Duration
from chaoskit.engine import planning
from chaoskit.gameday import schedules
from chaoskit.spec import models, parsing, reading, suggestions


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class ExperimentRef(Model):
    """One experiment of the plan."""

    file: str
    """Relative to the plan file."""
    vars: dict[str, JsonValue] = Field(default_factory=dict)
    """Like ``--var``: override the experiment's ``config``; on top of the plan's ``vars``."""
    var_files: list[str] = Field(default_factory=list)
    name: str | None = None
    """A label in reports; the experiment's title when not given."""


class Parallel(Model):
    """Experiments that run at the same time; the plan goes on when all of them are done."""

    parallel: list[ExperimentRef] = Field(min_length=1)


def _item_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "parallel" if "parallel" in value else "experiment"
    return "parallel" if isinstance(value, Parallel) else "experiment"


Item = Annotated[
    Annotated[ExperimentRef, Tag("experiment")] | Annotated[Parallel, Tag("parallel")],
    Discriminator(_item_kind),
]


class StopOn(enum.StrEnum):
    DEVIATED = "deviated"
    """Stop after an experiment that deviated, was not steady, errored or was interrupted."""
    NOT_STEADY = "not_steady"
    """Stop after an experiment that was not steady, errored or was interrupted."""
    ERROR = "error"
    """Stop only after an error (or an interruption)."""


class Webhook(Model):
    """Where the GameDay's JSON summary is POSTed when it ends."""

    url: str
    """``http://`` or ``https://``."""
    headers: dict[str, str] = Field(default_factory=dict)
    secret_headers: dict[str, models.SecretRef] = Field(default_factory=dict)
    """Header values read from the environment or a file (tokens); never logged."""
    timeout: Duration = 10.0
    attempts: int = Field(default=3, ge=1, le=10)
    """Tries before giving up (the GameDay's verdict does not depend on it)."""

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", value):
            raise ValueError(f"a webhook url starts with http:// or https:// and a host, got {value!r}")
        return value


class Notify(Model):
    webhook: Webhook | None = None


class Plan(Model):
    title: str
    name: str | None = None
    """Identifies the plan in history and schedule state; the file name without extension by default."""
    description: str | None = None
    vars: dict[str, JsonValue] = Field(default_factory=dict)
    """Variables for every experiment (each experiment's ``vars`` win)."""
    experiments: list[Item] = Field(min_length=1)
    stop_on: StopOn | None = None
    """Skip the remaining experiments once one ends this badly; by default all run."""
    notify: Notify = Field(default_factory=Notify)
    schedule: schedules.Schedule | None = None
    """For ``chaoskit gameday schedule`` (and the operator's ChaosSchedule)."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise ValueError(f"use letters, digits, '.', '_' and '-' only in a plan name, got {value!r}")
        return value

    def groups(self) -> Iterator[list[ExperimentRef]]:
        """Stages in order: a single experiment is a group of one."""
        for item in self.experiments:
            yield list(item.parallel) if isinstance(item, Parallel) else [item]


class Loaded(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    plan: Plan
    path: Path
    key: str
    """``plan.name`` or the file's stem."""

    def resolve(self, file: str) -> Path:
        path = Path(file).expanduser()
        return path if path.is_absolute() else self.path.parent / path


_NOISE = re.compile(r"experiment|parallel|Blackout|date|function-.*|[\w-]+\[.*\]")


def _clean(loc: tuple[int | str, ...], data: Any) -> tuple[int | str, ...]:
    out: list[int | str] = []
    node = data
    for segment in loc:
        is_key = isinstance(node, dict) and segment in node
        if isinstance(segment, str) and not is_key and _NOISE.fullmatch(segment):
            continue
        out.append(segment)
        if isinstance(node, dict):
            node = node.get(str(segment))
        elif isinstance(node, list) and isinstance(segment, int) and 0 <= segment < len(node):
            node = node[segment]
        else:
            node = None
    return tuple(out)


def _keys(model: type[BaseModel]) -> list[str]:
    return sorted(info.alias or name for name, info in model.model_fields.items())


_KEY_POOLS = {
    "experiments": [*_keys(ExperimentRef), "parallel"],
    "parallel": _keys(ExperimentRef),
    "schedule": _keys(schedules.Schedule),
    "windows": _keys(schedules.Window),
    "random": _keys(schedules.RandomMode),
    "webhook": _keys(Webhook),
    "notify": _keys(Notify),
    "blackouts": _keys(schedules.Blackout),
}


def _pool(parent: tuple[int | str, ...]) -> list[str]:
    for segment in reversed(parent):
        if isinstance(segment, str):
            return _KEY_POOLS.get(segment, [])
    return _keys(Plan)


def load(path: Path) -> Loaded:
    """Read and validate a plan; raises ``errors.SpecError`` with every problem."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise errors.SpecError(
            [errors.Problem(name, 0, 0, "", f"can't read the plan: {e.strerror or e}")]
        ) from e
    except UnicodeDecodeError as e:
        raise errors.SpecError([parsing.not_utf8(name, e)]) from e
    parsed = parsing.parse(text, name)
    locator = parsing.Locator(name, parsed.positions)
    problems = [errors.Problem(name, line, col, _render(at), m) for at, line, col, m in parsed.problems]
    if problems:
        raise errors.SpecError(problems)
    if not isinstance(parsed.data, dict):
        raise errors.SpecError([locator.problem((), "a plan is a mapping with title: and experiments:")])
    try:
        plan = Plan.model_validate(parsed.data)
    except pydantic.ValidationError as e:
        for err in e.errors():
            at = _clean(tuple(err["loc"]), parsed.data)
            if err["type"] == "extra_forbidden":
                key = str(at[-1])
                message = f"unknown key '{key}'{suggestions.hint(key, _pool(at[:-1]))}"
                line, col = locator.locate(at)
                problems.append(errors.Problem(name, line, col, _render(at[:-1]), message))
            elif err["type"] == "missing":
                problems.append(locator.problem(at[:-1], f"missing required key '{at[-1]}'"))
            else:
                message = str(err["msg"]).removeprefix("Value error, ")
                problems.append(locator.problem(at, message))
        raise errors.SpecError(_dedupe(problems)) from None
    loaded = Loaded(plan=plan, path=path, key=plan.name or path.stem)
    for index, item in enumerate(plan.experiments):
        refs = item.parallel if isinstance(item, Parallel) else [item]
        for inner, ref in enumerate(refs):
            where: tuple[int | str, ...] = (
                ("experiments", index, "parallel", inner, "file")
                if isinstance(item, Parallel)
                else ("experiments", index, "file")
            )
            if not loaded.resolve(ref.file).is_file():
                problems.append(
                    locator.problem(where, f"no such experiment file: {loaded.resolve(ref.file)}")
                )
    if problems:
        raise errors.SpecError(problems)
    return loaded


def _render(at: tuple[int | str, ...]) -> str:
    out = ""
    for part in at:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _dedupe(problems: list[errors.Problem]) -> list[errors.Problem]:
    return list(dict.fromkeys(problems))


def planned_duration(loaded: Loaded) -> float:
    """Seconds a GameDay of the plan is planned to take: its stages one after another, each as
    long as its longest experiment (``planning.planned_duration``, what ``--dry-run`` shows).
    Raises ``errors.SpecError`` for an experiment that does not load."""
    total = 0.0
    problems: list[errors.Problem] = []
    for group in loaded.plan.groups():
        longest = 0.0
        for ref in group:
            try:
                experiment = reading.load(
                    loaded.resolve(ref.file),
                    variables={**loaded.plan.vars, **ref.vars},
                    var_files=[loaded.resolve(f) for f in ref.var_files],
                )
            except errors.SpecError as e:
                problems.extend(e.problems)
                continue
            longest = max(longest, planning.planned_duration(experiment.experiment))
        total += longest
    if problems:
        raise errors.SpecError(problems)
    return total
