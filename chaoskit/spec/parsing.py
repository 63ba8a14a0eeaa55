"""Experiment text (YAML or JSON) as data, with the ``line:col`` of every node and the problems
found on the way (syntax, duplicate keys, nesting too deep, values that are not JSON).

Positions come from the YAML node tree, which is why the document is composed rather than just
loaded; ``Locator`` turns a place in the data back into ``FILE:LINE:COL: yaml.path``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import JsonValue

from chaoskit import errors
from chaoskit.spec import jsonpositions, paths, templates


@dataclass(frozen=True)
class Locator:
    """File positions of the nodes of a document, and (for converted files) where each node came from."""

    name: str
    positions: Mapping[paths.Location, tuple[int, int]] = field(default_factory=dict)
    origins: Mapping[paths.Location, paths.Location] | None = None
    """Converted path → path in the original Chaos Toolkit document."""

    def original(self, at: Sequence[paths.Segment]) -> paths.Location:
        """``at`` as the file spells it (for a translated Chaos Toolkit file, the CTK path)."""
        at = tuple(at)
        if self.origins is None:
            return at
        for cut in range(len(at), -1, -1):
            if at[:cut] in self.origins:
                return self.origins[at[:cut]] + at[cut:]
        return at

    def locate(self, at: Sequence[paths.Segment]) -> tuple[int, int]:
        """1-based (line, col) of ``at``, else of its nearest parent with a position, else (0, 0)."""
        source = self.original(at)
        for cut in range(len(source), -1, -1):
            position = self.positions.get(source[:cut])
            if position:
                return position
        return (0, 0)

    def problem(self, at: Sequence[paths.Segment], message: str) -> errors.Problem:
        """A problem at ``at``, shown with the path as the user's file spells it."""
        line, col = self.locate(at)
        return errors.Problem(self.name, line, col, paths.render(self.original(at)), message)


@dataclass
class Parsed:
    """A parsed file: its data, the position of every node, and (location, line, col, message) problems."""

    data: object = None
    positions: dict[paths.Location, tuple[int, int]] = field(default_factory=dict)
    problems: list[tuple[paths.Location, int, int, str]] = field(default_factory=list)

    def file_problems(self, name: str) -> list[errors.Problem]:
        """The parse problems, as problems of the file called ``name``."""
        return [errors.Problem(name, line, col, paths.render(at), m) for at, line, col, m in self.problems]


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _index(node: yaml.Node, at: paths.Location, parsed: Parsed, seen: set[int] | None = None) -> None:
    """Record every node's position, and report duplicate keys, which YAML would silently drop."""
    seen = set() if seen is None else seen
    parsed.positions.setdefault(at, _mark(node))
    if id(node) in seen:
        # An alias: its inside was indexed where the anchor is; walking it again could go on forever.
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            if key == "<<":
                continue
            if key in first:
                line, col = _mark(key_node)
                parsed.problems.append(
                    (
                        at,
                        line,
                        col,
                        f"duplicate key '{key}' (first at line {_mark(first[key])[0]}); "
                        "keep one (otherwise only the last one would count)",
                    )
                )
                continue
            first[key] = key_node
            parsed.positions[(*at, key)] = _mark(key_node)
            _index(value_node, (*at, key), parsed, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*at, i), parsed, seen)


_CLOSERS = {"flow mapping": ("{", "}"), "flow sequence": ("[", "]")}


def _end_of_line_before(text: str, line: int) -> tuple[int, int] | None:
    """1-based (line, col) just past the last non-blank line before 0-based ``line``."""
    lines = text.splitlines()
    for index in range(min(line, len(lines)) - 1, -1, -1):
        content = lines[index].split(" #", 1)[0].rstrip()
        if content.strip():
            return index + 1, len(content) + 1
    return None


def yaml_problem(e: yaml.YAMLError, text: str | None = None) -> tuple[paths.Location, int, int, str]:
    """(location, line, col, message) for a YAML syntax error, at the place the user must change.

    PyYAML notices an unclosed bracket or quote only where the next token can't belong to it, a
    line (or the whole file) later; the bracket is missing at the end of the last line that belongs
    to it, and a quote where it was opened."""
    if not isinstance(e, yaml.MarkedYAMLError):
        return ((), 0, 0, f"not valid YAML: {e}")
    what = " ".join(part for part in (e.problem, f"({e.context})" if e.context else None) if part)
    problem, context = e.problem_mark, e.context_mark
    flow = next((v for k, v in _CLOSERS.items() if e.context and k in e.context), None)
    if problem is not None and context is not None and problem.line > context.line:
        source = text if text is not None else str(problem.buffer or "").rstrip("\0")
        opened = f"line {context.line + 1} col {context.column + 1}"
        if flow is not None and (end := _end_of_line_before(source, problem.line)) is not None:
            opener, closer = flow
            return (
                (),
                *end,
                f"not valid YAML: the '{opener}' opened at {opened} is not closed; "
                f"end it with '{closer}' here",
            )
        if e.context and "quoted scalar" in e.context:
            return ((), context.line + 1, context.column + 1, "not valid YAML: this quote is never closed")
    mark = problem or context
    if mark is not None:
        return ((), mark.line + 1, mark.column + 1, f"not valid YAML: {what}")
    return ((), 0, 0, f"not valid YAML: {what}")


def _compose(text: str, parsed: Parsed, *, construct: bool) -> None:
    loader = templates.TextDatesLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return
        _index(node, (), parsed)
        if construct:
            parsed.data = loader.construct_document(node)
    finally:
        loader.dispose()


def _looks_like_json(text: str, name: str) -> bool:
    return name.lower().endswith(".json") or text.lstrip().startswith(("{", "["))


def _json_duplicate(
    parsed: Parsed, at: paths.Location, key_at: tuple[int, int], key: str, first: tuple[int, int]
) -> None:
    parsed.problems.append(
        (
            at,
            *key_at,
            f"duplicate key '{key}' (first at line {first[0]}); keep one (otherwise only the last one "
            "would count)",
        )
    )


def parse(text: str, name: str) -> Parsed:
    """YAML or JSON text as data, with node positions and the parse problems (never raises)."""
    parsed = Parsed()
    if _looks_like_json(text, name):
        too_deep = _json_too_deep(text)
        if too_deep is not None:
            line, col = too_deep
            parsed.problems.append(((), line, col, _TOO_DEEP))
            return parsed
        try:
            parsed.data = json.loads(text, parse_int=_json_int)
        except json.JSONDecodeError as e:
            parsed.problems.append(((), e.lineno, e.colno, f"not valid JSON: {e.msg}"))
            return parsed
        jsonpositions.index(text, parsed.positions, functools.partial(_json_duplicate, parsed))
        return parsed
    try:
        _compose(text, parsed, construct=True)
    except yaml.YAMLError as e:
        parsed.problems.append(yaml_problem(e, text))
    return parsed


_TOO_DEEP = f"nested more than {templates.MAX_DEPTH} levels deep; flatten the document"
_JSON_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _json_too_deep(text: str) -> tuple[int, int] | None:
    """(line, col) where JSON text nests deeper than ``MAX_DEPTH``, else None. Checked before
    parsing: the parser (and everything after it) would otherwise run out of stack."""
    depth = 0
    for match in _JSON_NESTING.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > templates.MAX_DEPTH:
                line = text.count("\n", 0, match.start()) + 1
                return line, match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
        elif token in "]}":
            depth -= 1
    return None


def _json_int(digits: str) -> int | float:
    try:
        return int(digits)
    except ValueError:
        # More digits than int() converts: as in YAML, an infinity that the field then refuses.
        return -math.inf if digits.startswith("-") else math.inf


MAX_VALUES = 100_000
"""YAML aliases can make a small file expand into a huge document; past this many values, stop."""


def to_json(value: object, at: paths.Location, issues: list[tuple[paths.Location, str]]) -> JsonValue:
    """``value`` as plain JSON data; recursive aliases and non-JSON types become issues."""
    budget = [MAX_VALUES]

    def convert(value: object, at: paths.Location, stack: frozenset[int]) -> JsonValue:
        budget[0] -= 1
        if budget[0] == 0:
            issues.append(((), f"the document expands to more than {MAX_VALUES} values (YAML aliases?)"))
        if budget[0] <= 0:
            return None
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if len(at) >= templates.MAX_DEPTH:
            # The file nests within the limit, but aliases of aliases can stack it deeper.
            issues.append((at[:1], f"{_TOO_DEEP} (YAML aliases that nest other aliases?)"))
            return None
        if id(value) in stack:
            issues.append(
                (at, "a YAML alias refers to the mapping or list that contains it; remove the loop")
            )
            return None
        inner = stack | {id(value)}
        if isinstance(value, list):
            return [convert(item, (*at, i), inner) for i, item in enumerate(value)]
        if isinstance(value, dict):
            return {str(k): convert(v, (*at, str(k)), inner) for k, v in value.items()}
        issues.append(
            (at, f"unsupported value of type {type(value).__name__}; use text, numbers, lists or mappings")
        )
        return None

    return convert(value, at, frozenset())


def read(path: Path, name: str) -> str:
    """The UTF-8 text of the file at ``path``; raises ``errors.SpecError`` saying why it can't be read."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        reason = e.strerror or str(e)
        hint = " (check the path)" if isinstance(e, FileNotFoundError) else ""
        raise errors.SpecError(
            [errors.Problem(name, 0, 0, "", f"can't read the file: {reason}{hint}")]
        ) from e
    except UnicodeDecodeError as e:
        raise errors.SpecError([not_utf8(name, e)]) from e


def not_utf8(name: str, e: UnicodeDecodeError) -> errors.Problem:
    """The problem for a file that is not UTF-8, placed at the first bad byte as an editor counts
    (its line, and the character in that line)."""
    before = e.object[: e.start]
    line = before.count(b"\n") + 1
    col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", errors="replace")) + 1
    message = f"not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}); save the file as UTF-8"
    return errors.Problem(name, line, col, "", message)
