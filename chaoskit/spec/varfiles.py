"""What ``--var-file`` files give: variables, environment (``.env`` files) and Chaos Toolkit's
secret values by scope.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import JsonValue

from chaoskit import errors
from chaoskit.spec import parsing, paths


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


def read_var_files(files: Sequence[Path], problems: list[errors.Problem]) -> VarFiles:
    """Every ``--var-file``, later files winning."""
    out = VarFiles()
    for path in files:
        _var_file(path, problems, out)
    return out


def _var_file(path: Path, problems: list[errors.Problem], out: VarFiles) -> None:
    name = str(path)
    try:
        text = parsing.read(path, name)
    except errors.SpecError as e:
        problems.extend(e.problems)
        return
    if path.name == ".env" or path.suffix == ".env":
        out.env.update(dotenv(text, name, problems))
        return
    parsed = parsing.parse(text, name)
    problems.extend(parsed.file_problems(name))
    if parsed.problems:
        return
    locator = parsing.Locator(name, parsed.positions)
    if parsed.data is None:
        return
    if not isinstance(parsed.data, dict):
        problems.append(locator.problem((), "a variables file must be a mapping of name: value"))
        return
    issues: list[tuple[paths.Location, str]] = []
    data = parsing.to_json(parsed.data, (), issues)
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


def secrets_from_files(
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
