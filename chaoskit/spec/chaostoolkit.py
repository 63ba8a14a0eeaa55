"""Chaos Toolkit experiments, translated into chaoskit documents so that they run unchanged.

Providers become chaoskit activities (``python.call``, ``process.command``, ``http.request``),
tolerances become ``expect`` checks with Chaos Toolkit's meaning, and features chaoskit can't honour
(controls, vault secrets, other providers) are reported as problems at their place in the file.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import JsonValue

from chaoskit import errors
from chaoskit.spec import paths

Location = tuple[paths.Segment, ...]
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][\w-]*)\}")
_ORDER = (
    "title",
    "description",
    "tags",
    "config",
    "secrets",
    "setup",
    "steady_state",
    "method",
    "guards",
    "recovery",
    "rollbacks",
    "teardown",
)

PROCESS_TARGETS = {"status": "exit_code", "stdout": "stdout", "stderr": "stderr"}
HTTP_TARGETS = {"status": "status", "headers": "headers", "body": "body"}


def is_chaostoolkit(doc: object) -> bool:
    """A Chaos Toolkit experiment: has ``steady-state-hypothesis``, or ``type: action|probe`` steps."""
    if not isinstance(doc, Mapping):
        return False
    if "steady-state-hypothesis" in doc:
        return True
    method = doc.get("method")
    return isinstance(method, list) and any(
        isinstance(entry, Mapping) and entry.get("type") in ("action", "probe") for entry in method
    )


@dataclass
class Conversion:
    """A translated document, where its parts came from, and what could not be translated."""

    document: dict[str, JsonValue] = field(default_factory=dict)
    origins: dict[Location, Location] = field(default_factory=dict)
    """chaoskit path → Chaos Toolkit path, so that problems point into the original file."""
    issues: list[tuple[Location, str]] = field(default_factory=list)
    """(Chaos Toolkit path, message)."""


def convert(doc: Mapping[str, Any], *, name: str) -> dict[str, JsonValue]:
    """A chaoskit document for the Chaos Toolkit experiment ``doc``; ``name`` is used in errors.

    Raises ``errors.SpecError`` (without line numbers; ``loading.read_chaostoolkit`` has them).
    """
    conversion = translate(doc)
    if conversion.issues:
        raise errors.SpecError(
            errors.Problem(name, 0, 0, paths.render(at), message) for at, message in conversion.issues
        )
    return conversion.document


def to_yaml(doc: Mapping[str, Any]) -> str:
    """A chaoskit document as YAML, keys in the order the format documents them.

    Inline secret values (allowed only while running a Chaos Toolkit file) are not printed: each
    becomes an ``env:`` source, and a comment at the top says what to export.
    """
    ordered = {key: doc[key] for key in _ORDER if key in doc}
    ordered.update((key, value) for key, value in doc.items() if key not in ordered)
    notes: list[str] = []
    secrets = ordered.get("secrets")
    if isinstance(secrets, Mapping):
        moved: dict[str, Any] = {}
        for name, ref in secrets.items():
            if isinstance(ref, Mapping) and "value" in ref:
                variable = re.sub(r"\W", "_", str(name)).upper()
                moved[name] = {"env": variable}
                notes.append(
                    f"# secret '{name}' had an inline value in the Chaos Toolkit file; chaoskit reads "
                    f"secrets from env: or file:, so export {variable}=... before running"
                )
            else:
                moved[name] = ref
        ordered["secrets"] = moved
    body = yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return "".join(f"{note}\n" for note in notes) + body


@dataclass
class _Translator:
    doc: Mapping[str, Any]
    out: Conversion = field(default_factory=Conversion)
    secret_names: dict[tuple[str, str], str] = field(default_factory=dict)
    """(scope, key) → chaoskit secret name."""
    named: dict[str, tuple[Location, Mapping[str, Any]]] = field(default_factory=dict)

    def issue(self, at: Location, message: str) -> None:
        self.out.issues.append((at, message))

    def run(self) -> Conversion:
        doc, out = self.doc, self.out.document
        for key in ("title", "description", "tags"):
            if key in self.doc:
                out[key] = doc[key]
                self.out.origins[(key,)] = (key,)
        if "controls" in doc:
            self.issue(
                ("controls",),
                "controls are not supported by chaoskit; remove the 'controls' block "
                "or run it with Chaos Toolkit",
            )
        self.runtime()
        self.configuration()
        self.secrets()
        self.index_names()
        hypothesis = doc.get("steady-state-hypothesis")
        if hypothesis is not None:
            self.hypothesis(hypothesis)
        for section in ("method", "rollbacks"):
            entries = doc.get(section)
            if entries is None:
                continue
            if not isinstance(entries, list):
                self.issue((section,), f"expected a list of activities, got {type(entries).__name__}")
                continue
            steps: list[JsonValue] = []
            for i, entry in enumerate(entries):
                steps.extend(self.activity(entry, (section, i), (section, len(steps)), in_hypothesis=False))
            out[section] = steps
        return self.out

    def runtime(self) -> None:
        """Only the strategies chaoskit follows anyway are accepted: anything else changes the run."""
        runtime = self.doc.get("runtime")
        if runtime is None:
            return
        if not isinstance(runtime, Mapping):
            self.issue(
                ("runtime",), "expected runtime: {hypothesis: {strategy: ...}, rollbacks: {strategy: ...}}"
            )
            return
        same = {"hypothesis": ("default",), "rollbacks": ("default",)}
        for part, value in runtime.items():
            strategy = value.get("strategy", "default") if isinstance(value, Mapping) else value
            if part in same and strategy in same[part]:
                continue
            self.issue(
                ("runtime", part),
                f"the runtime {part} strategy {strategy!r} is not supported by chaoskit, which checks the "
                "hypothesis before and after the method and runs rollbacks once the method started; "
                "remove it or run the experiment with Chaos Toolkit",
            )

    # --- configuration and secrets

    def configuration(self) -> None:
        config = self.doc.get("configuration")
        if config is None:
            return
        if not isinstance(config, Mapping):
            self.issue(("configuration",), "expected a mapping of name: value")
            return
        converted: dict[str, JsonValue] = {}
        for key, value in config.items():
            at: Location = ("configuration", key)
            self.out.origins[("config", key)] = at
            if isinstance(value, Mapping) and "type" in value:
                if value.get("type") != "env" or not isinstance(value.get("key"), str):
                    self.issue(
                        at,
                        f"configuration of type {value.get('type')!r} is not supported by chaoskit; "
                        "use a plain value or {type: env, key: NAME}",
                    )
                    continue
                default = value.get("default")
                converted[key] = (
                    f"${{env:{value['key']}}}"
                    if default is None
                    else f"${{env:{value['key']}:-{_as_text(default)}}}"
                )
            else:
                converted[key] = value
        self.out.document["config"] = converted
        self.out.origins[("config",)] = ("configuration",)

    def secrets(self) -> None:
        secrets = self.doc.get("secrets")
        if secrets is None:
            return
        if not isinstance(secrets, Mapping):
            self.issue(("secrets",), "expected secrets grouped by scope: {scope: {name: value}}")
            return
        keys = [key for scope in secrets.values() if isinstance(scope, Mapping) for key in scope]
        converted: dict[str, JsonValue] = {}
        for scope, entries in secrets.items():
            if not isinstance(entries, Mapping):
                self.issue(("secrets", scope), "expected a mapping of name: value or {type: env, key: NAME}")
                continue
            for key, value in entries.items():
                at: Location = ("secrets", scope, key)
                chaoskit_name = key if keys.count(key) == 1 else f"{scope}_{key}"
                self.secret_names[(scope, key)] = chaoskit_name
                self.out.origins[("secrets", chaoskit_name)] = at
                if isinstance(value, Mapping):
                    kind = value.get("type")
                    if kind == "env" and isinstance(value.get("key"), str):
                        converted[chaoskit_name] = {"env": value["key"]}
                    elif kind == "vault":
                        self.issue(
                            at,
                            "vault secrets are not supported by chaoskit; use {type: env, key: NAME} "
                            "or run it with Chaos Toolkit",
                        )
                    else:
                        self.issue(
                            at,
                            f"secrets of type {kind!r} are not supported by chaoskit; "
                            "use an inline value or {type: env, key: NAME}",
                        )
                else:
                    converted[chaoskit_name] = {"value": _as_text(value)}
        self.out.document["secrets"] = converted
        self.out.origins[("secrets",)] = ("secrets",)

    # --- activities

    def index_names(self) -> None:
        """Activities by name, for ``ref:``."""
        places: list[tuple[Location, Any]] = []
        hypothesis = self.doc.get("steady-state-hypothesis")
        if isinstance(hypothesis, Mapping) and isinstance(hypothesis.get("probes"), list):
            places += [
                (("steady-state-hypothesis", "probes", i), e) for i, e in enumerate(hypothesis["probes"])
            ]
        for section in ("method", "rollbacks"):
            if isinstance(self.doc.get(section), list):
                places += [((section, i), e) for i, e in enumerate(self.doc[section])]
        for at, entry in places:
            if isinstance(entry, Mapping) and "ref" not in entry and isinstance(entry.get("name"), str):
                self.named.setdefault(entry["name"], (at, entry))

    def hypothesis(self, hypothesis: Any) -> None:
        at: Location = ("steady-state-hypothesis",)
        if not isinstance(hypothesis, Mapping):
            self.issue(at, "expected a mapping with title: and probes:")
            return
        probes = hypothesis.get("probes", [])
        if not isinstance(probes, list):
            self.issue((*at, "probes"), "expected a list of probes")
            return
        steps: list[JsonValue] = []
        for i, entry in enumerate(probes):
            steps.extend(
                self.activity(entry, (*at, "probes", i), ("steady_state", len(steps)), in_hypothesis=True)
            )
        self.out.document["steady_state"] = steps
        self.out.origins[("steady_state",)] = (*at, "probes")

    def activity(self, entry: Any, at: Location, target: Location, *, in_hypothesis: bool) -> list[JsonValue]:
        """The chaoskit steps for one Chaos Toolkit activity (pauses become pause steps around it)."""
        if not isinstance(entry, Mapping):
            self.issue(at, "expected an activity: a mapping with type:, name: and provider:")
            return []
        if "ref" in entry:
            ref = entry["ref"]
            if not isinstance(ref, str) or ref not in self.named:
                names = ", ".join(sorted(self.named)) or "none"
                self.issue((*at, "ref"), f"no activity is named {ref!r} (named activities: {names})")
                return []
            entry = {**self.named[ref][1], **{k: v for k, v in entry.items() if k != "ref"}}
            # The named activity's own problems are reported where it is written, not again here.
            reported = len(self.out.issues)
            copied = self.activity(entry, at, target, in_hypothesis=in_hypothesis)
            del self.out.issues[reported:]
            return copied
        if "controls" in entry:
            self.issue(
                (*at, "controls"),
                "controls are not supported by chaoskit; remove the 'controls' block "
                "or run it with Chaos Toolkit",
            )
        kind = entry.get("type")
        if kind not in ("action", "probe"):
            self.issue((*at, "type"), f"expected type: action or type: probe, got {kind!r}")
            return []
        if in_hypothesis and kind != "probe":
            self.issue((*at, "type"), "the steady-state hypothesis can only hold probes")
            return []
        provider = entry.get("provider")
        if not isinstance(provider, Mapping):
            self.issue(at, "missing required key 'provider'")
            return []
        converted = self.provider(provider, (*at, "provider"))
        if converted is None:
            return []
        activity, arguments, provider_kind = converted
        step: dict[str, JsonValue] = {}
        if isinstance(entry.get("name"), str):
            step["name"] = entry["name"]
        step[kind] = activity
        step["with"] = arguments
        if "tolerance" in entry:
            if kind == "probe":
                expect = self.tolerance(entry["tolerance"], provider_kind, (*at, "tolerance"))
                if expect is not None:
                    step["expect"] = expect
        elif in_hypothesis:
            self.issue(at, "a steady-state probe needs a tolerance")
        if entry.get("background") is True and not in_hypothesis:
            step["background"] = True
        if isinstance(entry.get("timeout"), int | float) and not isinstance(entry.get("timeout"), bool):
            step["timeout"] = entry["timeout"]
        section, index = target[0], target[1]
        assert isinstance(index, int)
        steps: list[JsonValue] = []
        pauses = entry.get("pauses")
        before = after = None
        if pauses is not None and not isinstance(pauses, Mapping):
            self.issue((*at, "pauses"), "expected pauses: {before: SECONDS, after: SECONDS}")
        elif isinstance(pauses, Mapping) and not in_hypothesis:
            before, after = pauses.get("before"), pauses.get("after")
        if before:
            self.out.origins[(section, index + len(steps))] = (*at, "pauses", "before")
            self.out.origins[(section, index + len(steps), "pause")] = (*at, "pauses", "before")
            steps.append({"pause": before})
        self.out.origins[(section, index + len(steps))] = at
        self.out.origins[(section, index + len(steps), "with")] = (*at, "provider")
        self.out.origins[(section, index + len(steps), kind)] = (*at, "provider", "type")
        self.out.origins[(section, index + len(steps), "expect")] = (*at, "tolerance")
        steps.append(step)
        if after:
            self.out.origins[(section, index + len(steps))] = (*at, "pauses", "after")
            self.out.origins[(section, index + len(steps), "pause")] = (*at, "pauses", "after")
            steps.append({"pause": after})
        return steps

    def provider(
        self, provider: Mapping[str, Any], at: Location
    ) -> tuple[str, dict[str, JsonValue], str] | None:
        kind = provider.get("type")
        scopes = provider.get("secrets") or []
        if isinstance(scopes, str):
            scopes = [scopes]
        scope_keys = {
            key: name
            for (scope, key), name in self.secret_names.items()
            if isinstance(scopes, list) and scope in scopes
        }
        body = _with_secrets({k: v for k, v in provider.items() if k not in ("type", "secrets")}, scope_keys)
        if kind == "python":
            module, func = body.get("module"), body.get("func")
            if not isinstance(module, str) or not isinstance(func, str):
                self.issue(at, "a python provider needs module: and func:")
                return None
            arguments = body.get("arguments") or {}
            return "python.call", {"function": f"{module}:{func}", "arguments": arguments}, "python"
        if kind == "process":
            path = body.get("path")
            if not isinstance(path, str):
                self.issue(at, "a process provider needs path:")
                return None
            raw = body.get("arguments")
            if raw is None:
                argv_tail: list[JsonValue] = []
            elif isinstance(raw, str):
                argv_tail = list(shlex.split(raw))
            elif isinstance(raw, list):
                argv_tail = [_as_text(a) for a in raw]
            else:
                self.issue((*at, "arguments"), "give process arguments as a string or a list")
                return None
            args: dict[str, JsonValue] = {"argv": [path, *argv_tail]}
            if "timeout" in body:
                args["timeout"] = body["timeout"]
            return "process.command", args, "process"
        if kind == "http":
            url = body.get("url")
            if not isinstance(url, str):
                self.issue(at, "an http provider needs url:")
                return None
            method = str(body.get("method", "GET")).upper()
            args = {"url": url, "method": method}
            if body.get("headers"):
                args["headers"] = body["headers"]
            if body.get("arguments") is not None:
                args["params" if method == "GET" else "json"] = body["arguments"]
            timeout = body.get("timeout")
            numbers = [t for t in timeout if isinstance(t, int | float)] if isinstance(timeout, list) else []
            if numbers:
                # (connect, read): chaoskit has one timeout; the longer one keeps CTK's patience.
                timeout = max(numbers)
            if timeout is not None:
                args["timeout"] = timeout
            if "verify_tls" in body:
                args["verify"] = body["verify_tls"]
            return "http.request", args, "http"
        self.issue(
            (*at, "type"),
            f"{kind!r} providers are not supported by chaoskit (it runs python, process and http "
            "providers); run this experiment with Chaos Toolkit",
        )
        return None

    # --- tolerances

    def tolerance(self, tolerance: Any, provider_kind: str, at: Location) -> JsonValue:
        default = {"process": "exit_code", "http": "status"}.get(provider_kind)
        text_default = {"process": "stdout", "http": "body"}.get(provider_kind)

        def with_path(path: str | None, check: dict[str, JsonValue]) -> dict[str, JsonValue]:
            return {"path": path, **check} if path else check

        if isinstance(tolerance, bool):
            return {"equals": tolerance}
        if isinstance(tolerance, int | float):
            return with_path(default, {"equals": tolerance})
        if isinstance(tolerance, str):
            return with_path(text_default, {"equals": tolerance})
        if isinstance(tolerance, list):
            if (
                provider_kind == "python"
                and len(tolerance) == 2
                and all(isinstance(x, int | float) and not isinstance(x, bool) for x in tolerance)
            ):
                # Chaos Toolkit reads a two-item list as an inclusive range for plain values.
                return {"between": tolerance}
            return with_path(default, {"in": tolerance})
        if not isinstance(tolerance, Mapping):
            self.issue(at, f"unsupported tolerance {tolerance!r}")
            return None
        kind = tolerance.get("type")
        target = tolerance.get("target")
        path = self.target(target, provider_kind, (*at, "target"))
        if kind == "range":
            bounds = tolerance.get("range")
            if not isinstance(bounds, list) or len(bounds) != 2:
                self.issue((*at, "range"), "a range tolerance needs range: [low, high]")
                return None
            return with_path(path or default, {"between": bounds})
        if kind == "regex":
            pattern = tolerance.get("pattern")
            if not isinstance(pattern, str):
                self.issue(at, "a regex tolerance needs pattern:")
                return None
            return with_path(path or text_default, {"matches": pattern})
        if kind == "jsonpath":
            expression = tolerance.get("path")
            if not isinstance(expression, str):
                self.issue(at, "a jsonpath tolerance needs path:")
                return None
            if provider_kind == "http" and path in (None, "body"):
                path = "json"
            elif path is None:
                path = text_default
            check: dict[str, JsonValue] = {"jsonpath": expression}
            if "expect" in tolerance:
                expected = tolerance["expect"]
                # Chaos Toolkit compares the list of matches with [expect] (or with expect, a list).
                if isinstance(expected, list):
                    check.update({"count": len(expected), "in": expected})
                else:
                    check.update({"count": 1, "equals": expected})
            elif isinstance(tolerance.get("count"), int):
                check["count"] = tolerance["count"]
            return with_path(path, check)
        if kind == "probe":
            provider = tolerance.get("provider")
            if not isinstance(provider, Mapping) or provider.get("type") != "python":
                self.issue(
                    (*at, "provider"),
                    "chaoskit runs probe tolerances with a python provider only; "
                    "use {type: python, module: ..., func: ...}",
                )
                return None
            module, func = provider.get("module"), provider.get("func")
            if not isinstance(module, str) or not isinstance(func, str):
                self.issue((*at, "provider"), "a python provider needs module: and func:")
                return None
            arguments = dict(provider.get("arguments") or {})
            arguments.pop("value", None)
            check = {"call": f"{module}:{func}"}
            if arguments:
                check["arguments"] = arguments
            return check
        self.issue(
            (*at, "type"),
            f"unknown tolerance type {kind!r}; Chaos Toolkit tolerances are range, regex, jsonpath and probe",
        )
        return None

    def target(self, target: Any, provider_kind: str, at: Location) -> str | None:
        if target is None:
            return None
        if not isinstance(target, str):
            self.issue(at, "expected text")
            return None
        table = {"process": PROCESS_TARGETS, "http": HTTP_TARGETS}.get(provider_kind)
        if table is None:
            return target
        if target not in table:
            self.issue(
                at, f"unknown target {target!r} for a {provider_kind} probe; use one of {', '.join(table)}"
            )
            return None
        return table[target]


def translate(doc: Mapping[str, Any]) -> Conversion:
    """Translate a Chaos Toolkit experiment, collecting every problem rather than stopping at one."""
    return _Translator(doc).run()


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _with_secrets(value: Any, names: Mapping[str, str]) -> Any:
    """Chaos Toolkit's ``${key}`` for a secret in the provider's scopes → ``${secrets.<name>}``."""
    if isinstance(value, str):
        return _PLACEHOLDER.sub(
            lambda m: f"${{secrets.{names[m.group(1)]}}}" if m.group(1) in names else m.group(0), value
        )
    if isinstance(value, list):
        return [_with_secrets(item, names) for item in value]
    if isinstance(value, Mapping):
        return {key: _with_secrets(item, names) for key, item in value.items()}
    return value
