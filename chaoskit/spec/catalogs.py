"""The probe catalog: ready-made, parameterised probe definitions that a step includes by name.

A step ``use: http-availability`` with ``with: {url: ...}`` is expanded by ``resolve`` into a
plain probe step (``probe``, ``with``, ``expect``) from a YAML definition. Definitions are looked
up in the user's ``--probes-path`` directories first, then in the catalog shipped with chaoskit
(``probes/`` at the repo root, installed as ``chaoskit/catalog_probes``); the first found wins.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from chaoskit import durations
from chaoskit.errors import ChaoskitError, ExitCode, Problem, SpecError
from chaoskit.spec import models, parsing, templates

ParameterType = Literal["string", "number", "integer", "boolean", "duration", "list", "object", "any"]

_PARAM_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""``${name}`` with a plain name; dotted ones (``${secrets.x}``, ``${steps.a.output}``) are
run-time templates that pass through untouched."""

_Step = TypeVar("_Step", bound=models.ProbeStep)


class CatalogError(ChaoskitError):
    """A ``use:`` step names an unknown catalog probe or gives it wrong parameters."""

    exit_code = ExitCode.INVALID

    def __init__(self, message: str, *, key: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.key = key
        """Where in the step the problem is, relative to the step: ``use``, ``with.url``, ``with``."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class Parameter(_Model):
    """One ``with:`` parameter a catalog probe takes."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: ParameterType = "string"
    """What the value must be; ``duration`` accepts ``250ms``, ``30s``, ``5m``."""
    default: JsonValue = None
    required: bool = False
    """The step must give it; a required parameter has no default."""
    description: str = ""


class Template(_Model):
    """The probe step a definition expands to, with ``${param}`` placeholders."""

    probe: str
    with_: dict[str, JsonValue] = Field(default_factory=dict, alias="with")
    expect: JsonValue = None


class Definition(_Model):
    """One catalog entry, as written in ``probes/<name>.yaml``."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str
    parameters: list[Parameter] = Field(default_factory=list)
    probe: Template
    example: dict[str, JsonValue] = Field(default_factory=dict)
    """Parameters that make a working step, shown by ``chaoskit probes``."""
    source: str = ""
    """The file the definition was read from (set by the loader)."""

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)


def builtin_dir() -> Path:
    """The catalog shipped with chaoskit."""
    return Path(str(resources.files("chaoskit") / "catalog_probes"))


def _dirs(search_paths: Sequence[Path]) -> list[Path]:
    return [*search_paths, builtin_dir()]


def _files(directory: Path) -> Iterator[Path]:
    if directory.is_dir():
        yield from sorted(p for p in directory.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())


def load_definition(path: Path) -> Definition:
    """Read and check one definition file; a broken one is a ``SpecError`` naming the file."""
    where = str(path)
    try:
        # The loader of experiment files: it bounds nesting, which safe_load would recurse through.
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=templates.TextDatesLoader)
    except OSError as e:
        raise SpecError([Problem(where, 0, 0, "", f"can't read the catalog file: {e.strerror}")]) from e
    except UnicodeDecodeError as e:
        raise SpecError([parsing.not_utf8(where, e)]) from e
    except yaml.YAMLError as e:
        _, line, col, message = parsing.yaml_problem(e)
        raise SpecError([Problem(where, line, col, "", message)]) from e
    if not isinstance(raw, dict):
        raise SpecError(
            [Problem(where, 0, 0, "", "a catalog file holds one mapping: name, description, ...")]
        )
    try:
        definition = Definition.model_validate({**raw, "source": where})
    except ValidationError as e:
        raise SpecError(
            Problem(where, 0, 0, ".".join(str(p) for p in err["loc"]), err["msg"]) for err in e.errors()
        ) from e
    problems = _check_definition(definition)
    if problems:
        raise SpecError(Problem(where, 0, 0, path_, message) for path_, message in problems)
    return definition


def _check_definition(definition: Definition) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    declared = {p.name for p in definition.parameters}
    if len(declared) != len(definition.parameters):
        problems.append(("parameters", "a parameter name is declared twice"))
    for i, parameter in enumerate(definition.parameters):
        if parameter.required and parameter.default is not None:
            problems.append(
                (f"parameters[{i}]", f"{parameter.name!r} is required, so it can't have a default")
            )
        if parameter.default is not None and (why := _type_problem(parameter, parameter.default)):
            problems.append((f"parameters[{i}].default", why))
    template = definition.probe.model_dump(by_alias=True)
    for name in sorted(_references(template) - declared):
        problems.append(("probe", f"${{{name}}} is used but not declared in parameters"))
    for name, value in definition.example.items():
        declared_as = definition.parameter(name)
        if declared_as is None:
            problems.append((f"example.{name}", "not a declared parameter"))
        elif why := _type_problem(declared_as, value):
            problems.append((f"example.{name}", why))
    return problems


def _references(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_PARAM_REF.findall(value))
    if isinstance(value, dict):
        return set().union(*(_references(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value)) if value else set()
    return set()


def list_catalog(search_paths: Sequence[Path] = ()) -> list[Definition]:
    """Every definition that ``use:`` can name, sorted; user directories shadow the shipped ones."""
    found: dict[str, Definition] = {}
    for directory in _dirs(search_paths):
        for path in _files(directory):
            definition = load_definition(path)
            found.setdefault(definition.name, definition)
    return [found[name] for name in sorted(found)]


def find(name: str, search_paths: Sequence[Path] = ()) -> Definition:
    """The definition called ``name``: ``<dir>/<name>.yaml`` in the first directory that has it."""
    for directory in _dirs(search_paths):
        for suffix in (".yaml", ".yml"):
            path = directory / f"{name}{suffix}"
            if path.is_file():
                definition = load_definition(path)
                if definition.name != name:
                    raise SpecError(
                        [
                            Problem(
                                str(path),
                                0,
                                0,
                                "name",
                                f"is {definition.name!r}, the file name says {name!r}",
                            )
                        ]
                    )
                return definition
    # Suggestions come from file names, so that a broken file elsewhere does not hide this error.
    known = sorted({p.stem for directory in _dirs(search_paths) for p in _files(directory)})
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    suggestion = f" (did you mean {close[0]!r}?)" if close else ""
    searched = ", ".join(str(d) for d in search_paths) or "none"
    raise CatalogError(
        f"unknown catalog probe {name!r}{suggestion}; searched --probes-path: {searched}, "
        "and the shipped catalog",
        key="use",
        hint="run `chaoskit probes` to list the catalog",
    )


def _type_problem(parameter: Parameter, value: JsonValue) -> str | None:
    """Why ``value`` does not fit ``parameter``, or None. Run-time templates fit anything."""
    if _is_template(value):
        return None
    kind = parameter.type
    ok = {
        "string": isinstance(value, str),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "list": isinstance(value, list),
        "object": isinstance(value, dict),
        "any": True,
    }.get(kind)
    if kind == "duration":
        try:
            durations.parse(value)
        except ValueError as e:
            return str(e)
        return None
    if not ok:
        return f"expected {'an' if kind[0] in 'aeiou' else 'a'} {kind}, got {value!r}"
    return None


def _substitute(value: JsonValue, params: Mapping[str, JsonValue]) -> JsonValue:
    if isinstance(value, str):
        whole = _PARAM_REF.fullmatch(value)
        if whole:
            # A value that is exactly ``${x}`` keeps x's type (a number stays a number).
            return params[whole.group(1)]
        return _PARAM_REF.sub(lambda m: _as_text(params[m.group(1)]), value)
    if isinstance(value, dict):
        return {k: _substitute(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, params) for v in value]
    return value


def _as_text(value: JsonValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _drop_nulls(value: JsonValue) -> JsonValue:
    """Optional parameters left unset become absent keys, so the probe's own default applies."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def bind(definition: Definition, given: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """The parameter values for ``given``: defaults filled in; unknown, missing or mistyped ones refused."""
    declared = [p.name for p in definition.parameters]
    for name in given:
        if definition.parameter(name) is None:
            close = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
            suggestion = f" (did you mean {close[0]!r}?)" if close else ""
            raise CatalogError(
                f"{definition.name} has no parameter {name!r}{suggestion}; "
                f"its parameters are: {', '.join(declared) or 'none'}",
                key=f"with.{name}",
            )
    missing = [p.name for p in definition.parameters if p.required and p.name not in given]
    if missing:
        raise CatalogError(
            f"{definition.name} needs {', '.join(missing)} (required); "
            f"add {', '.join(f'{m}: ...' for m in missing)} under with:",
            key="with",
        )
    values: dict[str, JsonValue] = {}
    for parameter in definition.parameters:
        value = given.get(parameter.name, parameter.default)
        if parameter.name in given and (why := _type_problem(parameter, value)):
            raise CatalogError(f"{definition.name}: {why}", key=f"with.{parameter.name}")
        if parameter.type == "duration" and value is not None and not _is_template(value):
            # Seconds, so that the value fits both a probe's Duration argument and an expect bound.
            value = durations.parse(value)
        values[parameter.name] = value
    return values


def _is_template(value: JsonValue) -> bool:
    return isinstance(value, str) and "${" in value


def expand(definition: Definition, given: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """The plain probe step (``probe``, ``with``, ``expect``) for ``given`` parameters."""
    values = bind(definition, given)
    template = definition.probe.model_dump(by_alias=True, exclude_none=True)
    expanded = _substitute(template, values)
    assert isinstance(expanded, dict)
    expanded["with"] = _drop_nulls(expanded.get("with") or {})
    return expanded


def resolve(step: _Step, search_paths: Sequence[Path] = ()) -> _Step:
    """``step`` with ``use:`` replaced by the catalog probe it names; plain probe steps are returned
    as they are. The step's own ``name``, ``id``, ``timeout`` (and guard settings) are kept; its own
    ``expect``, when given, replaces the definition's."""
    if step.use is None:
        return step
    definition = find(step.use, search_paths)
    expanded = expand(definition, step.with_)
    data = step.model_dump(by_alias=True, exclude_unset=True)
    data.pop("use", None)
    data["probe"] = expanded["probe"]
    data["with"] = expanded["with"]
    if step.expect is None and expanded.get("expect") is not None:
        data["expect"] = expanded["expect"]
    data.setdefault("name", step.use)
    try:
        return type(step).model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CatalogError(
            f"{step.use}: the expanded probe is invalid at {where}: {first['msg']} "
            f"(catalog file {definition.source})",
            key="with",
        ) from e
