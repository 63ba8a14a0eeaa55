"""Reading experiment files (YAML or JSON, chaoskit or Chaos Toolkit) into a validated ``Experiment``.

Every problem is collected before failing, each with ``FILE:LINE:COL: yaml.path: message``, so a
user fixes a file in one go: parsing (``parsing``), translating a Chaos Toolkit file
(``chaostoolkit``), variables and references (``references``), then the model, whose validation
errors ``problems`` puts in chaoskit's words.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import JsonValue

from chaoskit import errors
from chaoskit.spec import chaostoolkit, models, parsing, paths, problems, references, varfiles


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
    _locator: parsing.Locator = field(repr=False, compare=False)
    warnings: tuple[errors.Problem, ...] = ()
    """What runs as Chaos Toolkit runs it but deserves a change (deprecated forms)."""

    def locate(self, path: Sequence[str | int]) -> tuple[int, int]:
        """1-based (line, col) of the node at ``path``, else of its nearest existing parent, else (0, 0)."""
        return self._locator.locate(path)

    def problem(self, path: Sequence[str | int], message: str) -> errors.Problem:
        """A problem at ``path`` (e.g. ``["method", 0, "fault"]``), for the planner's own checks."""
        return self._locator.problem(path, message)


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
    text = parsing.read(path, name)
    return load_text(text, name=name, path=path, variables=variables, var_files=var_files, env=env)


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
    files = varfiles.read_var_files(var_files, file_problems)
    if files.env:
        environ = {**environ, **files.env}
    parsed = parsing.parse(text, name)
    raw, found = _top_mapping(parsed, name)
    found.extend(file_problems)
    translated = _translated(raw, parsed, files, name=name, found=found)
    document, template_spots = references.substitute(
        translated.raw,
        overrides=variables or {},
        files=files,
        env=environ,
        locator=translated.locator,
        problems=found,
    )
    found.extend(references.check(document, translated.locator))
    if path is not None:
        document = _secret_files_beside(document, path.parent)
    experiment: models.Experiment | None = None
    try:
        experiment = models.Experiment.model_validate(document)
    except pydantic.ValidationError as e:
        found.extend(problems.from_validation(e, document, translated.locator, reported=template_spots))
    kind, locator = translated.kind, translated.locator
    if found or experiment is None:
        partial = _partial(document, found, kind=kind, name=name, path=path, locator=locator)
        raise InvalidExperiment(problems.ordered(found), partial=partial)
    return Loaded(
        experiment=experiment,
        path=path,
        name=name,
        kind=kind,
        document=_without_inline_secrets(document),
        _locator=locator,
        warnings=tuple(translated.warnings),
    )


def _top_mapping(parsed: parsing.Parsed, name: str) -> tuple[dict[str, JsonValue], list[errors.Problem]]:
    """The document as JSON data, and the problems found so far; raises when there is no mapping
    to go on with."""
    if parsed.problems and parsed.data is None:
        raise errors.SpecError(parsed.file_problems(name))
    source = parsing.Locator(name, parsed.positions)
    found = parsed.file_problems(name)
    if parsed.data is None:
        raise errors.SpecError(
            # Line 1, column 1: where the missing content belongs, so the message has a place too.
            [errors.Problem(name, 1, 1, "", "the file is empty; an experiment needs title: and method:")]
        )
    if not isinstance(parsed.data, dict):
        kind_of = "a list" if isinstance(parsed.data, list) else f"{problems.show(parsed.data)}"
        raise errors.SpecError(
            [source.problem((), f"expected a mapping (title:, method:, ...) at the top, got {kind_of}")]
        )
    shape_issues: list[tuple[paths.Location, str]] = []
    raw = parsing.to_json(parsed.data, (), shape_issues)
    assert isinstance(raw, dict)
    found.extend(source.problem(at, m) for at, m in shape_issues)
    return raw, found


@dataclass
class _Translated:
    """A document in chaoskit's format, and how to place its problems in the file as written."""

    raw: dict[str, JsonValue]
    kind: Literal["chaoskit", "chaostoolkit"]
    locator: parsing.Locator
    warnings: list[errors.Problem] = field(default_factory=list)


def _translated(
    raw: dict[str, JsonValue],
    parsed: parsing.Parsed,
    files: varfiles.VarFiles,
    *,
    name: str,
    found: list[errors.Problem],
) -> _Translated:
    """A Chaos Toolkit document translated (with ``--var-file`` secret values); a chaoskit one
    checked for what only Chaos Toolkit allows, and without its ``x-`` keys. Problems go to
    ``found``."""
    source = parsing.Locator(name, parsed.positions)
    if chaostoolkit.is_chaostoolkit(raw):
        conversion = chaostoolkit.translate(raw)
        found.extend(source.problem(at, m) for at, m in conversion.issues)
        locator = parsing.Locator(name, parsed.positions, conversion.origins)
        document = varfiles.secrets_from_files(
            conversion.document, files, conversion.secret_names, found, name
        )
        warnings = [source.problem(at, m) for at, m in conversion.warnings]
        return _Translated(document, "chaostoolkit", locator, warnings)
    if files.secrets:
        found.append(
            errors.Problem(
                name,
                0,
                0,
                "secrets",
                '--var-file secrets (Chaos Toolkit\'s {"secrets": {scope: {name: value}}}) apply to '
                "Chaos Toolkit experiments only; declare chaoskit secrets with env: or file:",
            )
        )
    found.extend(_native_only(raw, source))
    # x- keys are a place for YAML anchors (as in Compose files); they mean nothing to chaoskit.
    native = {key: value for key, value in raw.items() if not key.startswith("x-")}
    return _Translated(native, "chaoskit", source)


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
        return errors.SpecError(problems.ordered([*self.problems, *more]))


def _partial(
    document: Mapping[str, JsonValue],
    problems: Sequence[errors.Problem],
    *,
    kind: Literal["chaoskit", "chaostoolkit"],
    name: str,
    path: Path | None,
    locator: parsing.Locator,
) -> Loaded | None:
    """The steps of an invalid document that have no problem, for the planner to check. The
    others are left out, and the locator maps each kept step back to its place in the file (through
    the Chaos Toolkit translation, for such a file), so the planner's messages point at the right
    step. Top-level keys other than the step lists are left out too (their problems are already
    reported). None when even that does not validate."""
    # Problems name places as the file spells them: find the step (or step list) each is in.
    step_at: dict[paths.Location, tuple[str, int]] = {}
    section_at: dict[paths.Location, str] = {}
    for section in models.STEP_SECTIONS:
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
    origins: dict[paths.Location, paths.Location] = {}
    for section in models.STEP_SECTIONS:
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
    shifted = parsing.Locator(name, locator.positions, origins)
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
    parsed = parsing.parse(parsing.read(path, name), name)
    source = parsing.Locator(name, parsed.positions)
    if parsed.problems:
        raise errors.SpecError(parsed.file_problems(name))
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
    issues: list[tuple[paths.Location, str]] = []
    raw = parsing.to_json(parsed.data, (), issues)
    assert isinstance(raw, dict)
    conversion = chaostoolkit.translate(raw)
    issues.extend(conversion.issues)
    if issues:
        raise errors.SpecError(problems.ordered([source.problem(at, m) for at, m in issues]))
    return conversion.document


def _native_only(raw: dict[str, JsonValue], locator: parsing.Locator) -> list[errors.Problem]:
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
