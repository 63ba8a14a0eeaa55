"""Validation problems in chaoskit's words, at the key the user must change: pydantic's errors
about an experiment become ``FILE:LINE:COL: yaml.path: message`` problems (placed by
``parsing.Locator``, through a Chaos Toolkit translation where the file has one).
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pydantic

from chaoskit import errors
from chaoskit.spec import models, parsing, paths, suggestions

_UNION_SECTIONS = tuple(s for s in models.STEP_SECTIONS if s not in models.PROBE_SECTIONS)
"""Sections whose steps are of several kinds: pydantic puts the kind's tag in their error paths."""
_SCHEMA_NOISE = re.compile(r"[\w-]+\[.*\]")


def ordered(problems: Iterable[errors.Problem]) -> list[errors.Problem]:
    """Each problem once, in the file's order; problems without a position last."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line == 0, p.line, p.col))


def _covered(at: paths.Location, spots: set[paths.Location]) -> bool:
    """Whether a template problem was already reported at ``at`` or above it: the type error there
    comes from the unfilled template, so a second message would only confuse."""
    return any(at[: len(spot)] == spot for spot in spots if spot)


def from_validation(
    e: pydantic.ValidationError,
    document: Mapping[str, Any],
    locator: parsing.Locator,
    *,
    reported: set[paths.Location],
) -> list[errors.Problem]:
    """The problems of a document that did not validate, in chaoskit's words; none at or under a
    place in ``reported`` (a template problem there already explains it)."""
    found: list[errors.Problem] = []
    for err in e.errors():
        problem = _problem_from(err, document, locator)
        if problem is not None and not _covered(problem[0], reported):
            found.append(locator.problem(problem[0], problem[1]) if problem[2] is None else problem[2])
    return found


# --- pydantic errors → problems -------------------------------------------------------------


def _clean(loc: Sequence[int | str], document: Mapping[str, Any]) -> paths.Location:
    """Drop union tags and schema names that pydantic puts in error locations."""
    out: list[paths.Segment] = []
    node: Any = document
    for i, segment in enumerate(loc):
        if isinstance(segment, str):
            if (
                i == 2
                and loc[0] in _UNION_SECTIONS
                and isinstance(loc[1], int)
                and segment in models.STEP_KINDS
            ):
                continue
            if out and out[-1] == "expect" and segment in ("one", "many"):
                continue
            is_key = isinstance(node, dict) and segment in node
            if not is_key and _SCHEMA_NOISE.fullmatch(segment):
                continue
        out.append(segment)
        if isinstance(node, dict):
            node = node.get(str(segment))
        elif isinstance(node, list) and isinstance(segment, int) and -len(node) <= segment < len(node):
            node = node[segment]
        else:
            node = None
    return tuple(out)


def _at(document: Any, at: paths.Location) -> Any:
    node = document
    for segment in at:
        if isinstance(node, dict):
            node = node.get(str(segment))
        elif isinstance(node, list) and isinstance(segment, int) and -len(node) <= segment < len(node):
            node = node[segment]
        else:
            return None
    return node


def _unwrap(annotation: Any, raw: Any) -> Any:
    """The one type inside Annotated/Optional/unions that fits ``raw``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin is typing.Union or origin is types.UnionType:
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            models_only = [_unwrap(m, raw) for m in members]
            if isinstance(raw, list):
                lists = [m for m in models_only if typing.get_origin(m) is list]
                annotation = lists[0] if lists else models_only[0]
            else:
                classes = [
                    m for m in models_only if isinstance(m, type) and issubclass(m, pydantic.BaseModel)
                ]
                if not classes:
                    return models_only[0]
                keys = set(raw) if isinstance(raw, dict) else set()
                annotation = max(classes, key=lambda m: len(keys & _keys_of(m)))
            continue
        return annotation


def _keys_of(model: type[pydantic.BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def _model_at(at: paths.Location, document: Mapping[str, Any]) -> type[pydantic.BaseModel] | None:
    annotation: Any = models.Experiment
    for depth, segment in enumerate(at):
        current = _unwrap(annotation, _at(document, at[:depth]))
        if isinstance(current, type) and issubclass(current, pydantic.BaseModel):
            fields = {info.alias or name: info for name, info in current.model_fields.items()}
            if str(segment) not in fields:
                return None
            annotation = fields[str(segment)].annotation
        elif typing.get_origin(current) is list and isinstance(segment, int):
            annotation = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            annotation = typing.get_args(current)[1]
        else:
            return None
    current = _unwrap(annotation, _at(document, at))
    return current if isinstance(current, type) and issubclass(current, pydantic.BaseModel) else None


def show(value: Any) -> str:
    """A value, short, as a message shows it (YAML's words: true, null; a mapping, a list)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


_EXPECTED = {
    "float_parsing": "a number",
    "float_type": "a number",
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "finite_number": "a finite number",
}


def _given(value: Any) -> str:
    """The value as the user wrote it, short; a long list or mapping by what it is."""
    if isinstance(value, list | tuple | dict):
        text = json.dumps(value, default=str, ensure_ascii=False)
        if len(text) <= 40:
            return text
    return show(value)


_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least"),
    "greater_than": ("gt", "must be more than"),
    "less_than_equal": ("le", "must be at most"),
    "less_than": ("lt", "must be less than"),
}


def value_message(kind: str, value: Any, ctx: Mapping[str, Any] | None = None) -> str | None:
    """``'four' is not an integer`` (or ``must be at least 1, got 0``, ...) for a pydantic error of
    ``kind`` about ``value``: the value given, in chaoskit's words, not pydantic's. None when
    ``kind`` is not about the value's type, choices or bounds."""
    ctx = ctx or {}
    if kind in _EXPECTED:
        return f"{_given(value)} is not {_EXPECTED[kind]}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected', 'one of the allowed values')}, got {show(value)}"
    if kind in _BOUNDS:
        key, phrase = _BOUNDS[kind]
        return f"{phrase} {ctx.get(key)}, got {show(value)}"
    return None


def _problem_from(
    err: Any, document: Mapping[str, Any], locator: parsing.Locator
) -> tuple[paths.Location, str, errors.Problem | None] | None:
    """(path, message, or a ready problem when its position differs from its path) for one error."""
    kind: str = err["type"]
    at = _clean(err["loc"], document)
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "missing":
        parent, key = at[:-1], at[-1]
        if isinstance(key, int):
            if parent and parent[-1] == "between":
                return parent, "expected [low, high], got one number", None
            return parent, f"expected at least {key + 1} items", None
        return parent, f"missing required key '{key}'", None
    if kind == "extra_forbidden":
        parent, key = at[:-1], str(at[-1])
        model = _model_at(parent, document)
        pool = sorted(_keys_of(model)) if model else []
        # The key itself may be in the pool (a key of another step kind): no "did you mean" itself.
        message = f"unknown key '{key}'{suggestions.hint(key, [k for k in pool if k != key])}"
        if key in models.STEP_KINDS and parent and parent[0] in models.PROBE_SECTIONS:
            message = f"unknown key '{key}': {parent[0]} holds probes only (probe: or use:)"
        line, col = locator.locate(at)
        shown = paths.render(locator.original(parent))
        return parent, message, errors.Problem(locator.name, line, col, shown, message)
    if kind == "step_kind":
        return at, _step_kind_message(value), None
    if (told := value_message(kind, value, ctx)) is not None:
        return at, told, None
    if kind in ("too_short", "too_long") and at and at[-1] == "between":
        return (
            at,
            f"expected [low, high], got {len(value) if isinstance(value, list) else show(value)} items",
            None,
        )
    if kind == "string_pattern_mismatch":
        last = at[-1] if at else ""
        if last == "id":
            return (
                at,
                f"not a valid step id: {show(value)}; use letters, digits, '_' and '-', "
                "starting with a letter or '_'",
                None,
            )
        if last == "call":
            return at, f"expected module:function, got {show(value)}", None
        return at, f"{show(value)} does not match {ctx.get('pattern')}", None
    if kind in ("value_error", "assertion_error"):
        message = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return at, message, None
    return at, str(err["msg"]), None


def _step_kind_message(value: Any) -> str:
    base = models.ONE_STEP_KIND
    if not isinstance(value, dict):
        return f"{base}; got {show(value)}"
    given = [k for k in models.STEP_KINDS if k in value]
    if len(given) > 1:
        return f"{base}; this one has {', '.join(k + ':' for k in given)}"
    for key in value:
        hint = suggestions.hint(str(key), models.STEP_KINDS)
        if hint and key not in models.STEP_KINDS:
            return f"{base}; unknown key '{key}'{hint}"
    return base
