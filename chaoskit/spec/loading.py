"""Reading experiment files (YAML or JSON, chaoskit or Chaos Toolkit) into a validated ``Experiment``.

Every problem is collected before failing, each with ``FILE:LINE:COL: yaml.path: message``, so a
user fixes a file in one go. Positions come from the YAML node tree, which is why the document is
composed rather than just loaded.
"""

from __future__ import annotations

import json
import math
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import JsonValue

from chaoskit import errors
from chaoskit.spec import chaostoolkit, models, paths, suggestions, templates

Location = tuple[paths.Segment, ...]
STEP_LISTS = ("setup", "method", "rollbacks", "teardown")
STEP_KINDS = ("probe", "use", "fault", "action", "pause")
_SCHEMA_NOISE = re.compile(r"[\w-]+\[.*\]")
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Locator:
    """File positions of the nodes of a document, and (for converted files) where each node came from."""

    name: str
    positions: Mapping[Location, tuple[int, int]] = field(default_factory=dict)
    origins: Mapping[Location, Location] | None = None
    """Converted path → path in the original Chaos Toolkit document."""

    def original(self, at: Sequence[paths.Segment]) -> Location:
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


@dataclass(frozen=True)
class Loaded:
    """A loaded experiment and what is needed to report later problems at the right place."""

    experiment: models.Experiment
    path: Path | None
    name: str
    """What messages call the file: the path as given, or ``<stdin>``."""
    kind: Literal["chaoskit", "chaostoolkit"]
    document: Mapping[str, Any]
    """The raw document after conversion and variable substitution (``with:`` keys and all)."""
    _locator: Locator = field(repr=False, compare=False)
    warnings: tuple[errors.Problem, ...] = ()
    """What runs as Chaos Toolkit runs it but deserves a change (deprecated forms)."""

    def locate(self, path: Sequence[str | int]) -> tuple[int, int]:
        """1-based (line, col) of the node at ``path``, else of its nearest existing parent, else (0, 0)."""
        return self._locator.locate(path)

    def problem(self, path: Sequence[str | int], message: str) -> errors.Problem:
        """A problem at ``path`` (e.g. ``["method", 0, "fault"]``), for the planner's own checks."""
        return self._locator.problem(path, message)


# --- parsing --------------------------------------------------------------------------------


@dataclass
class Parsed:
    """A parsed file: its data, the position of every node, and (location, line, col, message) problems."""

    data: object = None
    positions: dict[Location, tuple[int, int]] = field(default_factory=dict)
    problems: list[tuple[Location, int, int, str]] = field(default_factory=list)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _index(node: yaml.Node, at: Location, parsed: Parsed, seen: set[int] | None = None) -> None:
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


def yaml_problem(e: yaml.YAMLError, text: str | None = None) -> tuple[Location, int, int, str]:
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
        # Positions are a bonus for JSON: YAML 1.1 reads nearly all JSON, but not all of it. A raw
        # tab in valid JSON is whitespace between tokens (never inside a string), and YAML refuses
        # it there: a space in its place keeps every line and column.
        try:
            _compose(text.replace("\t", " "), parsed, construct=False)
        except yaml.YAMLError:
            parsed.positions.clear()
            parsed.problems.clear()
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


def _to_json(value: object, at: Location, issues: list[tuple[Location, str]]) -> JsonValue:
    """``value`` as plain JSON data; recursive aliases and non-JSON types become issues."""
    budget = [MAX_VALUES]

    def convert(value: object, at: Location, stack: frozenset[int]) -> JsonValue:
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


# --- loading --------------------------------------------------------------------------------


def load(
    path: Path,
    *,
    variables: Mapping[str, JsonValue] | None = None,
    var_files: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
) -> Loaded:
    """Read, convert (Chaos Toolkit), substitute and validate the experiment at ``path``.

    Raises ``errors.SpecError`` with every problem found.
    """
    name = str(path)
    text = _read(path, name)
    return load_text(text, name=name, path=path, variables=variables, var_files=var_files, env=env)


def _read(path: Path, name: str) -> str:
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


@dataclass
class VarFiles:
    """What ``--var-file`` files give: variables, environment (``.env`` files) and, from Chaos
    Toolkit's ``{"configuration": ..., "secrets": ...}`` form, secret values by scope."""

    variables: dict[str, JsonValue] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)


_DOTENV = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*")


def dotenv(text: str, name: str, problems: list[errors.Problem]) -> dict[str, str]:
    """``NAME=value`` lines (``export`` allowed, ``#`` comments, quotes removed), as Chaos
    Toolkit's ``--var-file x.env`` reads them into the environment."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _DOTENV.fullmatch(line)
        if match is None:
            problems.append(errors.Problem(name, number, 1, "", "expected NAME=value (a .env file)"))
            continue
        value = match.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        found[match.group(1)] = value
    return found


def read_var_files(paths_: Sequence[Path], problems: list[errors.Problem]) -> VarFiles:
    """Every ``--var-file``, later files winning."""
    out = VarFiles()
    for path in paths_:
        _var_file(path, problems, out)
    return out


def _var_file(path: Path, problems: list[errors.Problem], out: VarFiles) -> None:
    name = str(path)
    try:
        text = _read(path, name)
    except errors.SpecError as e:
        problems.extend(e.problems)
        return
    if path.name == ".env" or path.suffix == ".env":
        out.env.update(dotenv(text, name, problems))
        return
    parsed = parse(text, name)
    problems.extend(
        errors.Problem(name, line, col, paths.render(at), m) for at, line, col, m in parsed.problems
    )
    if parsed.problems:
        return
    locator = Locator(name, parsed.positions)
    if parsed.data is None:
        return
    if not isinstance(parsed.data, dict):
        problems.append(locator.problem((), "a variables file must be a mapping of name: value"))
        return
    issues: list[tuple[Location, str]] = []
    data = _to_json(parsed.data, (), issues)
    problems.extend(locator.problem(at, m) for at, m in issues)
    assert isinstance(data, dict)
    if data and set(data) <= {"configuration", "secrets"}:
        # Chaos Toolkit's form: configuration values, and secret values by scope.
        config = data.get("configuration", {})
        if isinstance(config, dict):
            out.variables.update(config)
        else:
            problems.append(locator.problem(("configuration",), "expected a mapping of name: value"))
        secrets = data.get("secrets", {})
        for scope, values in secrets.items() if isinstance(secrets, dict) else []:
            if not isinstance(values, dict):
                problems.append(locator.problem(("secrets", scope), "expected a mapping of name: value"))
                continue
            out.secrets.setdefault(scope, {}).update(
                (key, value if isinstance(value, str) else json.dumps(value)) for key, value in values.items()
            )
        if not isinstance(secrets, dict):
            problems.append(
                locator.problem(("secrets",), "expected secrets by scope: {scope: {name: value}}")
            )
        return
    out.variables.update(data)


def load_text(
    text: str,
    *,
    name: str,
    path: Path | None = None,
    variables: Mapping[str, JsonValue] | None = None,
    var_files: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
) -> Loaded:
    """Like ``load``, from text; ``name`` is what messages call it (``<stdin>``, a test name)."""
    environ: Mapping[str, str] = os.environ if env is None else env
    file_problems: list[errors.Problem] = []
    files = read_var_files(var_files, file_problems)
    if files.env:
        environ = {**environ, **files.env}
    parsed = parse(text, name)
    if parsed.problems and parsed.data is None:
        raise errors.SpecError(
            errors.Problem(name, line, col, paths.render(at), m) for at, line, col, m in parsed.problems
        )
    source = Locator(name, parsed.positions)
    problems: list[errors.Problem] = [
        errors.Problem(name, line, col, paths.render(at), m) for at, line, col, m in parsed.problems
    ]
    if parsed.data is None:
        raise errors.SpecError(
            # Line 1, column 1: where the missing content belongs, so the message has a place too.
            [errors.Problem(name, 1, 1, "", "the file is empty; an experiment needs title: and method:")]
        )
    if not isinstance(parsed.data, dict):
        kind_of = "a list" if isinstance(parsed.data, list) else f"{_show(parsed.data)}"
        raise errors.SpecError(
            [source.problem((), f"expected a mapping (title:, method:, ...) at the top, got {kind_of}")]
        )
    shape_issues: list[tuple[Location, str]] = []
    raw = _to_json(parsed.data, (), shape_issues)
    assert isinstance(raw, dict)
    problems.extend(source.problem(at, m) for at, m in shape_issues)
    problems.extend(file_problems)

    kind: Literal["chaoskit", "chaostoolkit"] = "chaoskit"
    locator = source
    warnings: list[errors.Problem] = []
    if chaostoolkit.is_chaostoolkit(raw):
        kind = "chaostoolkit"
        conversion = chaostoolkit.translate(raw)
        problems.extend(source.problem(at, m) for at, m in conversion.issues)
        warnings = [source.problem(at, m) for at, m in conversion.warnings]
        raw = conversion.document
        locator = Locator(name, parsed.positions, conversion.origins)
        raw = _secrets_from_files(raw, files, conversion.secret_names, problems, name)
    else:
        if files.secrets:
            problems.append(
                errors.Problem(
                    name,
                    0,
                    0,
                    "secrets",
                    '--var-file secrets (Chaos Toolkit\'s {"secrets": {scope: {name: value}}}) apply to '
                    "Chaos Toolkit experiments only; declare chaoskit secrets with env: or file:",
                )
            )
        problems.extend(_native_only(raw, locator))
        # x- keys are a place for YAML anchors (as in Compose files); they mean nothing to chaoskit.
        raw = {key: value for key, value in raw.items() if not key.startswith("x-")}

    document, template_spots = _substitute(
        raw,
        overrides=variables or {},
        files=files,
        env=environ,
        locator=locator,
        problems=problems,
    )
    problems.extend(_references(document, locator))
    if path is not None:
        document = _secret_files_beside(document, path.parent)

    experiment: models.Experiment | None = None
    try:
        experiment = models.Experiment.model_validate(document)
    except pydantic.ValidationError as e:
        for err in e.errors():
            problem = _problem_from(err, document, locator)
            if problem is not None and not _covered(problem[0], template_spots):
                problems.append(locator.problem(problem[0], problem[1]) if problem[2] is None else problem[2])
    if problems or experiment is None:
        partial = _partial(document, problems, kind=kind, name=name, path=path, locator=locator)
        raise InvalidExperiment(_ordered(problems), partial=partial)
    return Loaded(
        experiment=experiment,
        path=path,
        name=name,
        kind=kind,
        document=_without_inline_secrets(document),
        _locator=locator,
        warnings=tuple(warnings),
    )


def _secrets_from_files(
    raw: dict[str, JsonValue],
    files: VarFiles,
    names: Mapping[tuple[str, str], str],
    problems: list[errors.Problem],
    name: str,
) -> dict[str, JsonValue]:
    """A Chaos Toolkit experiment with the secret values ``--var-file`` gives (by scope)."""
    if not files.secrets:
        return raw
    declared = raw.get("secrets")
    secrets: dict[str, JsonValue] = dict(declared) if isinstance(declared, dict) else {}
    for scope, values in files.secrets.items():
        for key, value in values.items():
            if (scope, key) not in names:
                known = ", ".join(f"{s}.{k}" for s, k in names) or "none"
                problems.append(
                    errors.Problem(
                        name,
                        0,
                        0,
                        f"secrets.{scope}.{key}",
                        f"--var-file sets secret {scope}.{key}, which the experiment does not declare "
                        f"(declared: {known})",
                    )
                )
                continue
            secrets[names[(scope, key)]] = {"value": value}
    return {**raw, "secrets": secrets}


def missing_secrets(loaded: Loaded, env: Mapping[str, str] | None = None) -> list[errors.Problem]:
    """A problem, at its declaration, for every ``env:`` secret whose variable is not set: what
    ``validate`` says before a run would fail on it."""
    environ = os.environ if env is None else env
    return [
        loaded.problem(
            ("secrets", secret, "env"),
            f"environment variable {ref.env} is not set (secret '{secret}'); export {ref.env}=... "
            "before running",
        )
        for secret, ref in loaded.experiment.secrets.items()
        if ref.env is not None and ref.env not in environ
    ]


class InvalidExperiment(errors.SpecError):
    """The experiment has problems of format. ``partial`` is what the planner can still check (its
    steps without a problem, see ``_partial``), so that a user sees every problem at once, not the
    planner's only after the format's are fixed."""

    def __init__(self, problems: Iterable[errors.Problem], partial: Loaded | None = None) -> None:
        super().__init__(problems)
        self.partial = partial

    def together_with(self, more: Iterable[errors.Problem]) -> errors.SpecError:
        """One error with these problems and ``more``, in the file's order."""
        return errors.SpecError(_ordered([*self.problems, *more]))


def _partial(
    document: Mapping[str, JsonValue],
    problems: Sequence[errors.Problem],
    *,
    kind: Literal["chaoskit", "chaostoolkit"],
    name: str,
    path: Path | None,
    locator: Locator,
) -> Loaded | None:
    """The steps of an invalid document that have no problem, for the planner to check. The
    others are left out, and the locator maps each kept step back to its place in the file (through
    the Chaos Toolkit translation, for such a file), so the planner's messages point at the right
    step. Top-level keys other than the step lists are left out too (their problems are already
    reported). None when even that does not validate."""
    # Problems name places as the file spells them: find the step (or step list) each is in.
    step_at: dict[Location, tuple[str, int]] = {}
    section_at: dict[Location, str] = {}
    for section in STEP_SECTIONS:
        section_at[locator.original((section,))] = section
        listed = document.get(section)
        for index in range(len(listed) if isinstance(listed, list) else 0):
            step_at[locator.original((section, index))] = (section, index)
    bad_steps: set[tuple[str, int]] = set()
    bad_sections: set[str] = set()
    for problem in problems:
        try:
            at = tuple(paths.parse(problem.path)) if problem.path else ()
        except ValueError:
            return None
        if at in section_at:  # the list itself (not a list, say)
            bad_sections.add(section_at[at])
        for cut in range(len(at), 0, -1):  # the innermost step that holds the place, if any
            if at[:cut] in step_at:
                bad_steps.add(step_at[at[:cut]])
                break
    steps: dict[str, JsonValue] = {}
    origins: dict[Location, Location] = {}
    for section in STEP_SECTIONS:
        listed = document.get(section)
        if section in bad_sections or not isinstance(listed, list):
            continue
        kept: list[JsonValue] = []
        for index, step in enumerate(listed):
            if (section, index) in bad_steps:
                continue
            origins[(section, len(kept))] = locator.original((section, index))
            for inner, original in (locator.origins or {}).items():  # places inside the step
                if inner[:2] == (section, index) and len(inner) > 2:
                    origins[(section, len(kept), *inner[2:])] = original
            kept.append(step)
        steps[section] = kept
    try:
        experiment = models.Experiment.model_validate({"title": "(partial)", **steps})
    except pydantic.ValidationError:
        return None
    shifted = Locator(name, locator.positions, origins)
    return Loaded(experiment=experiment, path=path, name=name, kind=kind, document=steps, _locator=shifted)


def _secret_files_beside(document: dict[str, JsonValue], directory: Path) -> dict[str, JsonValue]:
    """Relative ``file:`` secrets are read beside the experiment, wherever chaoskit is run from."""
    secrets = document.get("secrets")
    if not isinstance(secrets, dict):
        return document
    moved: dict[str, JsonValue] = {}
    for name, ref in secrets.items():
        file = ref.get("file") if isinstance(ref, dict) else None
        if (
            isinstance(ref, dict)
            and isinstance(file, str)
            and file
            and not Path(file).expanduser().is_absolute()
        ):
            moved[name] = {**ref, "file": str(directory / file)}
        else:
            moved[name] = ref
    return {**document, "secrets": moved}


def _without_inline_secrets(document: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """The document with inline (Chaos Toolkit) secret values masked: it may be shown or logged."""
    secrets = document.get("secrets")
    if not isinstance(secrets, dict):
        return document
    masked = {
        name: {**ref, "value": "***"} if isinstance(ref, dict) and "value" in ref else ref
        for name, ref in secrets.items()
    }
    return {**document, "secrets": masked}


def read_chaostoolkit(path: Path) -> dict[str, JsonValue]:
    """The chaoskit document for the Chaos Toolkit experiment at ``path`` (``chaoskit convert``).

    Variables stay as templates; raises ``errors.SpecError`` with positions in the original file.
    """
    name = str(path)
    parsed = parse(_read(path, name), name)
    source = Locator(name, parsed.positions)
    if parsed.problems:
        raise errors.SpecError(
            errors.Problem(name, line, col, paths.render(at), m) for at, line, col, m in parsed.problems
        )
    if not chaostoolkit.is_chaostoolkit(parsed.data):
        raise errors.SpecError(
            [
                source.problem(
                    (),
                    "not a Chaos Toolkit experiment (no steady-state-hypothesis:, no type: action/probe "
                    "in method:); chaoskit runs it as it is",
                )
            ]
        )
    issues: list[tuple[Location, str]] = []
    raw = _to_json(parsed.data, (), issues)
    assert isinstance(raw, dict)
    conversion = chaostoolkit.translate(raw)
    issues.extend(conversion.issues)
    if issues:
        raise errors.SpecError(_ordered([source.problem(at, m) for at, m in issues]))
    return conversion.document


def _ordered(problems: list[errors.Problem]) -> list[errors.Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line == 0, p.line, p.col))


def _covered(at: Location, spots: set[Location]) -> bool:
    """Whether a template problem was already reported at ``at`` or above it: the type error there
    comes from the unfilled template, so a second message would only confuse."""
    return any(at[: len(spot)] == spot for spot in spots if spot)


def _native_only(raw: dict[str, JsonValue], locator: Locator) -> list[errors.Problem]:
    found: list[errors.Problem] = []
    secrets = raw.get("secrets")
    if isinstance(secrets, dict):
        for secret_name, ref in secrets.items():
            if isinstance(ref, dict) and "value" in ref:
                found.append(
                    locator.problem(
                        ("secrets", secret_name, "value"),
                        "inline secret values are not allowed (they would sit in the file); "
                        "use env: NAME or file: PATH",
                    )
                )
    return found


def _substitute(
    raw: dict[str, JsonValue],
    *,
    overrides: Mapping[str, JsonValue],
    files: VarFiles,
    env: Mapping[str, str],
    locator: Locator,
    problems: list[errors.Problem],
) -> tuple[dict[str, JsonValue], set[Location]]:
    config = raw.get("config")
    issues: list[templates.Issue] = []
    variables: dict[str, JsonValue] = {}
    if isinstance(config, dict):
        resolved, issues = templates.resolve_config(config, env=env)
        variables.update(resolved)
    variables.update(files.variables)
    variables.update(overrides)
    document: dict[str, JsonValue] = {}
    for key, value in raw.items():
        if key == "config":
            document[key] = dict(variables) if isinstance(config, dict) else value
            continue
        substituted, found = templates.substitute(value, variables, env=env, at=(key,))
        document[key] = substituted
        issues.extend(found)
    problems.extend(locator.problem(issue.at, issue.message) for issue in issues)
    return document, {issue.at for issue in issues}


def _steps(document: Mapping[str, JsonValue], section: str) -> list[tuple[Location, dict[str, JsonValue]]]:
    items = document.get(section)
    if not isinstance(items, list):
        return []
    return [((section, i), step) for i, step in enumerate(items) if isinstance(step, dict)]


def _references(document: dict[str, JsonValue], locator: Locator) -> list[errors.Problem]:
    """Step ids are unique; ``${steps.<id>...}`` names an earlier step; ``${secrets.x}`` a declared one."""
    found: list[errors.Problem] = []
    order = models.STEP_SECTIONS
    where: dict[str, Location] = {}
    for section in order:
        for at, step in _steps(document, section):
            step_id = step.get("id")
            if isinstance(step_id, str) and _ID.fullmatch(step_id):
                if step_id in where:
                    found.append(
                        locator.problem(
                            (*at, "id"),
                            f"step id '{step_id}' is already used by {paths.render(where[step_id])}; "
                            "ids must be unique",
                        )
                    )
                else:
                    where[step_id] = at

    seen: set[str] = set()
    before_method: set[str] = set()
    for section in order:
        for at, step in _steps(document, section):
            # Guards are polled during the method, so only outputs from before it are certain.
            visible_now = before_method if section == "guards" else seen
            for rel, ref in templates.step_refs({k: v for k, v in step.items() if k != "id"}):
                found.extend(
                    _check_step_ref(
                        (*at, *rel),
                        ref=ref,
                        own_id=step.get("id"),
                        visible=visible_now,
                        where=where,
                        locator=locator,
                    )
                )
            step_id = step.get("id")
            if isinstance(step_id, str) and section != "guards":
                seen.add(step_id)
        if section == "steady_state":
            before_method = set(seen)

    secrets = document.get("secrets")
    declared = list(secrets) if isinstance(secrets, dict) else []
    for key, value in document.items():
        if key in ("secrets", "config"):
            continue
        for rel, secret_name in templates.secret_refs(value):
            at = (key, *rel)
            if not secret_name:
                found.append(locator.problem(at, "write a secret reference as ${secrets.<name>}"))
            elif secret_name not in declared:
                hint = suggestions.hint(secret_name, declared)
                found.append(
                    locator.problem(at, f"unknown secret '{secret_name}'{hint}; declare it under secrets:")
                )
        found.extend(_misplaced_runtime_refs(key, value, locator))
    return found


STEP_SECTIONS = models.STEP_SECTIONS


def _misplaced_runtime_refs(key: str, value: JsonValue, locator: Locator) -> list[errors.Problem]:
    """Step outputs and secrets are filled in only in a step's ``with:``, just before it runs."""
    found: list[errors.Problem] = []
    refs = [(rel, "steps") for rel, _ in templates.step_refs(value)]
    refs += [(rel, "secrets") for rel, _ in templates.secret_refs(value)]
    for rel, kind in refs:
        if key in STEP_SECTIONS and len(rel) >= 2 and rel[1] == "with":
            continue
        found.append(
            locator.problem(
                (key, *rel),
                f"${{{kind}...}} can only be used in a step's with: (it is filled in when the step runs)",
            )
        )
    return found


def _check_step_ref(
    at: Location,
    *,
    ref: str,
    own_id: JsonValue,
    visible: set[str],
    where: Mapping[str, Location],
    locator: Locator,
) -> list[errors.Problem]:
    if not ref:
        return [locator.problem(at, "write a step output reference as ${steps.<id>.output.<path>}")]
    if ref in visible:
        return []
    if ref == own_id:
        return [locator.problem(at, f"step '{ref}' can't use its own output")]
    if ref in where:
        return [
            locator.problem(
                at,
                f"step '{ref}' ({paths.render(where[ref])}) does not run before this one; "
                "a step can only use the output of an earlier step",
            )
        ]
    hint = suggestions.hint(ref, list(where))
    return [locator.problem(at, f"no step has id '{ref}'{hint}")]


# --- pydantic errors → problems -------------------------------------------------------------


def _clean(loc: Sequence[int | str], document: Mapping[str, Any]) -> Location:
    """Drop union tags and schema names that pydantic puts in error locations."""
    out: list[paths.Segment] = []
    node: Any = document
    for i, segment in enumerate(loc):
        if isinstance(segment, str):
            if i == 2 and loc[0] in STEP_LISTS and isinstance(loc[1], int) and segment in STEP_KINDS:
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


def _at(document: Any, at: Location) -> Any:
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


def _model_at(at: Location, document: Mapping[str, Any]) -> type[pydantic.BaseModel] | None:
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


def _show(value: Any) -> str:
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
    return _show(value)


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
        return f"expected {ctx.get('expected', 'one of the allowed values')}, got {_show(value)}"
    if kind in _BOUNDS:
        key, phrase = _BOUNDS[kind]
        return f"{phrase} {ctx.get(key)}, got {_show(value)}"
    return None


def _problem_from(
    err: Any, document: Mapping[str, Any], locator: Locator
) -> tuple[Location, str, errors.Problem | None] | None:
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
        if key in STEP_KINDS and parent and parent[0] in models.PROBE_SECTIONS:
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
            f"expected [low, high], got {len(value) if isinstance(value, list) else _show(value)} items",
            None,
        )
    if kind == "string_pattern_mismatch":
        last = at[-1] if at else ""
        if last == "id":
            return (
                at,
                f"not a valid step id: {_show(value)}; use letters, digits, '_' and '-', "
                "starting with a letter or '_'",
                None,
            )
        if last == "call":
            return at, f"expected module:function, got {_show(value)}", None
        return at, f"{_show(value)} does not match {ctx.get('pattern')}", None
    if kind in ("value_error", "assertion_error"):
        message = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return at, message, None
    return at, str(err["msg"]), None


def _step_kind_message(value: Any) -> str:
    base = "a step needs exactly one of probe:, use:, fault:, action: or pause:"
    if not isinstance(value, dict):
        return f"{base}; got {_show(value)}"
    given = [k for k in STEP_KINDS if k in value]
    if len(given) > 1:
        return f"{base}; this one has {', '.join(k + ':' for k in given)}"
    for key in value:
        hint = suggestions.hint(str(key), STEP_KINDS)
        if hint and key not in STEP_KINDS:
            return f"{base}; unknown key '{key}'{hint}"
    return base


# Earlier names, kept for callers that used them (the GameDay plan loader).
_Locator = Locator
_Parsed = Parsed
_parse = parse
