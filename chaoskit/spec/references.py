"""Variables filled in, and references checked: ``${steps.<id>...}`` names an earlier step,
``${secrets.<name>}`` a declared secret, each where it can be filled in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import JsonValue

from chaoskit import errors
from chaoskit.spec import models, parsing, paths, suggestions, templates, varfiles

_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def substitute(
    raw: dict[str, JsonValue],
    *,
    overrides: Mapping[str, JsonValue],
    files: varfiles.VarFiles,
    env: Mapping[str, str],
    locator: parsing.Locator,
    problems: list[errors.Problem],
) -> tuple[dict[str, JsonValue], set[paths.Location]]:
    """``raw`` with ``${name}`` and ``${env:NAME}`` filled in (``config:``, then ``--var-file``, then
    ``--var``, later winning), and the places of the problems it added to ``problems``."""
    config = raw.get("config")
    issues: list[templates.Issue] = []
    values: dict[str, JsonValue] = {}
    if isinstance(config, dict):
        resolved, issues = templates.resolve_config(config, env=env)
        values.update(resolved)
    values.update(files.variables)
    values.update(overrides)
    document: dict[str, JsonValue] = {}
    for key, value in raw.items():
        if key == "config":
            document[key] = dict(values) if isinstance(config, dict) else value
            continue
        substituted, found = templates.substitute(value, values, env=env, at=(key,))
        document[key] = substituted
        issues.extend(found)
    problems.extend(locator.problem(issue.at, issue.message) for issue in issues)
    return document, {issue.at for issue in issues}


def check(document: dict[str, JsonValue], locator: parsing.Locator) -> list[errors.Problem]:
    """Step ids are unique; ``${steps.<id>...}`` names an earlier step; ``${secrets.x}`` a declared
    one; both only where they can be filled in (a step's ``with:``)."""
    where, found = _step_ids(document, locator)
    found += _step_refs(document, where, locator)
    secrets = document.get("secrets")
    declared = list(secrets) if isinstance(secrets, dict) else []
    for key, value in document.items():
        if key not in ("secrets", "config"):
            found.extend(_secret_refs(key, value, declared, locator))
            found.extend(_misplaced_runtime_refs(key, value, locator))
    return found


def _steps(
    document: Mapping[str, JsonValue], section: str
) -> list[tuple[paths.Location, dict[str, JsonValue]]]:
    items = document.get(section)
    if not isinstance(items, list):
        return []
    return [((section, i), step) for i, step in enumerate(items) if isinstance(step, dict)]


def _step_ids(
    document: Mapping[str, JsonValue], locator: parsing.Locator
) -> tuple[dict[str, paths.Location], list[errors.Problem]]:
    """Where each step id is first given, and a problem for each one given again."""
    found: list[errors.Problem] = []
    where: dict[str, paths.Location] = {}
    for section in models.STEP_SECTIONS:
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
    return where, found


def _step_refs(
    document: Mapping[str, JsonValue], where: Mapping[str, paths.Location], locator: parsing.Locator
) -> list[errors.Problem]:
    found: list[errors.Problem] = []
    seen: set[str] = set()
    before_method: set[str] = set()
    for section in models.STEP_SECTIONS:
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
    return found


def _secret_refs(
    key: str, value: JsonValue, declared: list[str], locator: parsing.Locator
) -> list[errors.Problem]:
    found: list[errors.Problem] = []
    for rel, secret_name in templates.secret_refs(value):
        at = (key, *rel)
        if not secret_name:
            found.append(locator.problem(at, "write a secret reference as ${secrets.<name>}"))
        elif secret_name not in declared:
            hint = suggestions.hint(secret_name, declared)
            found.append(
                locator.problem(at, f"unknown secret '{secret_name}'{hint}; declare it under secrets:")
            )
    return found


def _misplaced_runtime_refs(key: str, value: JsonValue, locator: parsing.Locator) -> list[errors.Problem]:
    """Step outputs and secrets are filled in only in a step's ``with:``, just before it runs."""
    found: list[errors.Problem] = []
    refs = [(rel, "steps") for rel, _ in templates.step_refs(value)]
    refs += [(rel, "secrets") for rel, _ in templates.secret_refs(value)]
    for rel, kind in refs:
        if key in models.STEP_SECTIONS and len(rel) >= 2 and rel[1] == "with":
            continue
        found.append(
            locator.problem(
                (key, *rel),
                f"${{{kind}...}} can only be used in a step's with: (it is filled in when the step runs)",
            )
        )
    return found


def _check_step_ref(
    at: paths.Location,
    *,
    ref: str,
    own_id: JsonValue,
    visible: set[str],
    where: Mapping[str, paths.Location],
    locator: parsing.Locator,
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
