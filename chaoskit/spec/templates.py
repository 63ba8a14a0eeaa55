"""Templates in experiment files: ``${name}`` and ``${env:NAME}`` at load time, step outputs and
secrets (``${steps.<id>.output.<path>}``, ``${secrets.<name>}``) just before a step runs.

A string that is exactly one template keeps the referenced value's type; inside longer text the
value is formatted as text. ``$${`` is a literal ``${``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import JsonValue

from chaoskit import errors, jsonvalues
from chaoskit.spec import models, paths, suggestions

_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)\}|\$\{")
_WHOLE = re.compile(r"\$\{([^{}]*)\}")
_ENV = re.compile(r"env:([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_NAME = re.compile(r"[A-Za-z_][\w-]*")
_HEAD = re.compile(r"([A-Za-z_][\w-]*)((?:[.\[].*)?)", re.DOTALL)
_STEP = re.compile(r"steps\.([A-Za-z_][\w-]*)(\.output(?:[.\[].*)?)?")
_SECRET = re.compile(r"secrets\.([A-Za-z_][\w-]*)")
_RUNTIME_PREFIXES = ("steps.", "secrets.")
FORMS = "${name}, ${env:NAME}, ${env:NAME:-default}, ${steps.<id>.output.<path>} or ${secrets.<name>}"


class TemplateError(errors.ChaoskitError):
    """A run-time template could not be filled: a step's output has no such path, or no such step ran."""

    exit_code = errors.ExitCode.ERROR


@dataclass(frozen=True)
class Issue:
    """A load-time template problem, at a location in the document."""

    at: paths.Location
    message: str


def _as_text(value: JsonValue) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _strings(value: JsonValue, at: paths.Location = ()) -> Iterator[tuple[paths.Location, str]]:
    if isinstance(value, str):
        yield at, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*at, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*at, key))


def _expressions(text: str) -> Iterator[str]:
    for match in _TOKEN.finditer(text):
        if match.group(1) is not None:
            yield match.group(1).strip()


# --- load time ------------------------------------------------------------------------------


@dataclass
class _Substituter:
    variables: Mapping[str, JsonValue]
    env: Mapping[str, str]
    allow_variables: bool = True
    issues: list[Issue] = field(default_factory=list)

    def value(self, value: JsonValue, at: paths.Location) -> JsonValue:
        if isinstance(value, str):
            return self.text(value, at)
        if isinstance(value, list):
            return [self.value(item, (*at, i)) for i, item in enumerate(value)]
        if isinstance(value, dict):
            return {key: self.value(item, (*at, key)) for key, item in value.items()}
        return value

    def text(self, text: str, at: paths.Location) -> JsonValue:
        whole = _WHOLE.fullmatch(text)
        if whole and not whole.group(1).strip().startswith(_RUNTIME_PREFIXES):
            return self.expression(whole.group(1).strip(), at)

        def replace(match: re.Match[str]) -> str:
            token = match.group(0)
            if token == "$${":
                # Run-time templates stay escaped until the engine renders them at run time.
                return token if text.startswith(_RUNTIME_PREFIXES, match.end()) else "${"
            if match.group(1) is None:
                self.issues.append(
                    Issue(at, "unterminated '${': close it with '}', or write '$${' for a literal '${'")
                )
                return token
            expression = match.group(1).strip()
            if expression.startswith(_RUNTIME_PREFIXES):
                return token
            return _as_text(self.expression(expression, at))

        return _TOKEN.sub(replace, text)

    def expression(self, expression: str, at: paths.Location) -> JsonValue:
        env = _ENV.fullmatch(expression)
        if env:
            name, default = env.groups()
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            self.issues.append(
                Issue(
                    at,
                    f"environment variable {name} is not set; set it, or give a default: "
                    f"${{env:{name}:-value}}",
                )
            )
            return f"${{{expression}}}"
        split = _HEAD.fullmatch(expression)
        head, rest = (split.group(1), split.group(2).removeprefix(".")) if split else ("", "")
        if not split or (rest and not _valid_path(rest)):
            self.issues.append(Issue(at, f"not a valid template '${{{expression}}}'; write {FORMS}"))
            return f"${{{expression}}}"
        if not self.allow_variables:
            self.issues.append(
                Issue(
                    at, f"config values can use ${{env:NAME}} but not other variables ('${{{expression}}}')"
                )
            )
            return f"${{{expression}}}"
        if head not in self.variables:
            known = sorted(self.variables)
            hint = suggestions.hint(head, known)
            listing = f"; known: {', '.join(known)}" if known and not hint else ""
            self.issues.append(
                Issue(
                    at,
                    f"unknown variable '{head}'{hint}{listing}; define it under config: "
                    f"or pass --var {head}=VALUE",
                )
            )
            return f"${{{expression}}}"
        value = self.variables[head]
        if rest:
            try:
                return paths.lookup(value, paths.parse(rest), root=head)
            except paths.PathError as e:
                self.issues.append(Issue(at, f"'${{{expression}}}': {e}"))
                return f"${{{expression}}}"
        return value


def _valid_path(text: str) -> bool:
    try:
        paths.parse(text)
    except ValueError:
        return False
    return True


def resolve_config(
    config: Mapping[str, JsonValue], *, env: Mapping[str, str], at: paths.Location = ("config",)
) -> tuple[dict[str, JsonValue], list[Issue]]:
    """``config`` with its ``${env:...}`` filled in; config values can't use other variables."""
    sub = _Substituter(variables={}, env=env, allow_variables=False)
    resolved = {key: sub.value(value, (*at, key)) for key, value in config.items()}
    return resolved, sub.issues


def substitute(
    value: JsonValue, variables: Mapping[str, JsonValue], *, env: Mapping[str, str], at: paths.Location = ()
) -> tuple[JsonValue, list[Issue]]:
    """``value`` with every load-time template filled in, and the problems found (never raises)."""
    sub = _Substituter(variables=variables, env=env)
    result = sub.value(value, at)
    return result, sub.issues


def parse_var(text: str) -> tuple[str, JsonValue]:
    """``--var name=value``: the value is read as YAML (``3`` is a number, ``[a, b]`` a list)."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep:
        raise errors.UsageError(f"--var {text!r}: expected name=value, e.g. --var url=http://127.0.0.1:8080")
    name, colon, kind = name.partition(":")
    if colon:
        return name, _typed_var(text, name, kind.strip(), raw)
    if not _NAME.fullmatch(name):
        raise errors.UsageError(
            f"--var {text!r}: {name!r} is not a variable name; use letters, digits, '_' and '-'"
        )
    if not raw.strip():
        return name, ""
    try:
        value = yaml.load(raw, Loader=TextDatesLoader)
    except yaml.YAMLError:
        return name, raw
    if isinstance(value, dict | list) and not raw.strip().startswith(("{", "[")):
        # "a: b" or "- x" read as YAML block structure is surprising on a command line: keep the text.
        return name, raw
    try:
        return name, jsonvalues.strict(value, text_keys=True, nonfinite=True)
    except ValueError:
        return name, raw


_VAR_TYPES = ("str", "int", "float", "bool")


def _typed_var(text: str, name: str, kind: str, raw: str) -> JsonValue:
    """``--var name:type=value`` (Chaos Toolkit's typed form): the value converted to ``type``."""
    if not _NAME.fullmatch(name):
        raise errors.UsageError(
            f"--var {text!r}: {name!r} is not a variable name; use letters, digits, '_' and '-'"
        )
    try:
        if kind == "str":
            return raw
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool" and raw.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            return raw.strip().lower() in ("true", "1", "yes")
    except ValueError:
        pass
    if kind not in _VAR_TYPES:
        raise errors.UsageError(f"--var {text!r}: unknown type {kind!r}; use one of {', '.join(_VAR_TYPES)}")
    article = "an" if kind == "int" else "a"
    raise errors.UsageError(f"--var {text!r}: {raw!r} is not {article} {kind}")


MAX_DEPTH = 100
"""How deeply lists and mappings may nest in a file. Real experiments use about ten levels; a file
nested hundreds deep is a mistake or an attack, and would exhaust Python's stack while being read."""


class TextDatesLoader(yaml.SafeLoader):
    """Safe YAML where dates stay text (JSON, and so the experiment model, has no date type), and
    nesting deeper than ``MAX_DEPTH`` is a located YAML error rather than a ``RecursionError``."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self._depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_DEPTH} levels deep; flatten the document", mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _timestamp_as_text(loader: TextDatesLoader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return str(loader.construct_scalar(node))


def _int_or_infinite(loader: TextDatesLoader, node: yaml.Node) -> int | float:
    assert isinstance(node, yaml.ScalarNode)
    try:
        return loader.construct_yaml_int(node)
    except ValueError:
        # More digits than int() converts (4300): no field takes such a number; as an infinity it
        # is refused by the field with its path (a duration "at most 30d"), never a traceback.
        return -math.inf if str(node.value).startswith("-") else math.inf


TextDatesLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)
TextDatesLoader.add_constructor("tag:yaml.org,2002:int", _int_or_infinite)


# --- references -----------------------------------------------------------------------------


def step_refs(value: JsonValue) -> list[tuple[paths.Location, str]]:
    """Every ``${steps.<id>...}`` in ``value``: (where, id); malformed ones have id ``""``."""
    found: list[tuple[paths.Location, str]] = []
    for at, text in _strings(value):
        for expression in _expressions(text):
            if expression.startswith("steps."):
                match = _STEP.fullmatch(expression)
                found.append((at, match.group(1) if match and match.group(2) else ""))
    return found


def secret_names(value: JsonValue) -> set[str]:
    """The secrets ``value`` uses through ``${secrets.<name>}``."""
    names: set[str] = set()
    for _, text in _strings(value):
        for expression in _expressions(text):
            match = _SECRET.fullmatch(expression)
            if match:
                names.add(match.group(1))
    return names


def secret_refs(value: JsonValue) -> list[tuple[paths.Location, str]]:
    """Every ``${secrets...}`` in ``value``: (where, name); malformed ones have name ``""``."""
    found: list[tuple[paths.Location, str]] = []
    for at, text in _strings(value):
        for expression in _expressions(text):
            if expression.startswith("secrets."):
                match = _SECRET.fullmatch(expression)
                found.append((at, match.group(1) if match else ""))
    return found


def has_runtime_refs(value: JsonValue) -> bool:
    """Whether ``value`` still holds step-output or secret templates (so it can't be checked yet)."""
    return any(
        expression.startswith(_RUNTIME_PREFIXES)
        for _, text in _strings(value)
        for expression in _expressions(text)
    )


# --- run time -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunScope:
    """What run-time templates can see: outputs of the steps that ran, and resolved secrets."""

    outputs: Mapping[str, JsonValue] = field(default_factory=dict)
    """Step id → that step's latest output."""
    secrets: Mapping[str, str] = field(default_factory=dict)
    """Secret name → value (never logged)."""


def render(value: JsonValue, scope: RunScope) -> JsonValue:
    """``value`` with ``${steps...}`` and ``${secrets...}`` filled in; raises ``TemplateError``."""
    if isinstance(value, str):
        return _render_text(value, scope)
    if isinstance(value, list):
        return [render(item, scope) for item in value]
    if isinstance(value, dict):
        return {key: render(item, scope) for key, item in value.items()}
    return value


def _render_text(text: str, scope: RunScope) -> JsonValue:
    whole = _WHOLE.fullmatch(text)
    if whole and whole.group(1).strip().startswith(_RUNTIME_PREFIXES):
        return _runtime_value(whole.group(1).strip(), scope)

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        expression = (match.group(1) or "").strip()
        if expression.startswith(_RUNTIME_PREFIXES):
            return _as_text(_runtime_value(expression, scope))
        return match.group(0)

    return _TOKEN.sub(replace, text)


def _runtime_value(expression: str, scope: RunScope) -> JsonValue:
    secret = _SECRET.fullmatch(expression)
    if secret:
        name = secret.group(1)
        if name not in scope.secrets:
            raise TemplateError(f"'${{{expression}}}': secret {name!r} was not resolved for this run")
        return scope.secrets[name]
    step = _STEP.fullmatch(expression)
    if not step or not step.group(2):
        raise TemplateError(f"'${{{expression}}}' is not a valid template; write {FORMS}")
    step_id, rest = step.group(1), step.group(2)[len(".output") :]
    if step_id not in scope.outputs:
        ran = ", ".join(sorted(scope.outputs)) or "none"
        raise TemplateError(
            f"'${{{expression}}}': step {step_id!r} has no output yet (steps with output so far: {ran})",
            hint="a step can only use the output of a step that ran before it",
        )
    output = scope.outputs[step_id]
    if not rest:
        return output
    try:
        return paths.lookup(output, paths.parse(rest.lstrip(".")), root=f"the output of step {step_id!r}")
    except paths.PathError as e:
        raise TemplateError(f"'${{{expression}}}': {e}") from None
    except ValueError as e:
        raise TemplateError(f"'${{{expression}}}': {e}") from None


# --- secrets --------------------------------------------------------------------------------


def resolve_secrets(
    experiment: models.Experiment,
    env: Mapping[str, str] | None = None,
    *,
    names: Sequence[str] | None = None,
) -> dict[str, str]:
    """Every declared secret's value (or just ``names``), read from the environment or a file."""
    environ = os.environ if env is None else env
    values: dict[str, str] = {}
    for name, ref in experiment.secrets.items():
        if names is not None and name not in names:
            continue
        if ref.value is not None:
            values[name] = ref.value
        elif ref.env is not None:
            if ref.env not in environ:
                raise errors.ChaoskitError(
                    f"secret {name!r}: environment variable {ref.env} is not set",
                    hint=f"export {ref.env}=... before running, or point secrets.{name} at a file:",
                )
            values[name] = environ[ref.env]
        elif ref.file is not None:
            try:
                content = Path(ref.file).expanduser().read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                raise errors.ChaoskitError(
                    f"secret {name!r}: can't read file {ref.file}: {reason}",
                    hint=f"create the file, or point secrets.{name} at another file: or env:",
                ) from e
            values[name] = content.removesuffix("\n")
    return values
