"""Chaos Toolkit experiments, translated into chaoskit documents so that they run unchanged.

Providers become chaoskit activities (``python.call``, ``process.command``, ``http.request``),
tolerances become ``expect`` checks with Chaos Toolkit's meaning, python controls run as they do
there, and features chaoskit can't honour (vault secrets, other providers, controls that can't be
imported) are reported as problems at their place in the file.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import JsonValue

from chaoskit.spec import paths

Location = tuple[paths.Segment, ...]
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][\w-]*)\}")
_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
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

SAFEGUARDS = "chaosaddons.controls.safeguards"
_CHAOSKIT_SETTINGS = ("recovery", "max_duration", "guards", "preflight")
ROLLBACK_STRATEGIES = {
    "default": "not-deviated",
    "always": "always",
    "never": "never",
    "deviated": "deviated",
}
"""Chaos Toolkit's rollback strategies → chaoskit's ``rollback_strategy`` (see ``models``)."""

PROCESS_TARGETS = {"status": "exit_code", "stdout": "stdout", "stderr": "stderr"}
HTTP_TARGETS = {"status": "status", "headers": "headers", "body": "body"}


CTK_KEYS = ("steady-state-hypothesis", "configuration", "controls", "runtime", "extensions", "contributions")
"""Top-level keys only Chaos Toolkit has."""
NATIVE_KEYS = (
    "steady_state",
    "setup",
    "teardown",
    "guards",
    "recovery",
    "preflight",
    "config",
    "max_duration",
)
"""Top-level keys only chaoskit has."""
_CTK_ENTRY_KEYS = ("type", "provider", "ref")
_NATIVE_STEP_KEYS = ("probe", "use", "fault", "action", "pause")


def is_chaostoolkit(doc: object) -> bool:
    """A Chaos Toolkit experiment: has ``steady-state-hypothesis``, ``type: action|probe`` steps, or
    (without any key only chaoskit has) a key only Chaos Toolkit has, a ``ref:`` or ``provider:``
    step, or secrets grouped by scope. The wider net keeps a Chaos Toolkit file's own messages
    (vault secrets, controls) for files without a hypothesis, rather than "unknown key"."""
    if not isinstance(doc, Mapping):
        return False
    if "steady-state-hypothesis" in doc:
        return True
    entries = [
        entry
        for section in ("method", "rollbacks")
        if isinstance(doc.get(section), list)
        for entry in doc[section]
        if isinstance(entry, Mapping)
    ]
    if any(entry.get("type") in ("action", "probe") for entry in entries):
        return True
    if any(key in doc for key in NATIVE_KEYS) or any(
        key in entry for entry in entries for key in _NATIVE_STEP_KEYS
    ):
        return False
    if any(key in doc for key in CTK_KEYS if key != "controls"):
        return True
    controls = doc.get("controls")
    # chaoskit's own controls name their module directly; Chaos Toolkit's have a provider.
    native = isinstance(controls, list) and all(
        isinstance(c, Mapping) and "module" in c and "provider" not in c for c in controls
    )
    if controls is not None and not (native and controls):
        return True
    if any(key in entry for entry in entries for key in _CTK_ENTRY_KEYS):
        return True
    secrets = doc.get("secrets")
    return isinstance(secrets, Mapping) and any(
        isinstance(scope, Mapping)
        and scope
        and not ({"env", "file", "value"} & set(scope))
        and all(isinstance(v, str) or (isinstance(v, Mapping) and "type" in v) for v in scope.values())
        for scope in secrets.values()
    )


@dataclass
class Conversion:
    """A translated document, where its parts came from, and what could not be translated."""

    document: dict[str, JsonValue] = field(default_factory=dict)
    origins: dict[Location, Location] = field(default_factory=dict)
    """chaoskit path → Chaos Toolkit path, so that problems point into the original file."""
    issues: list[tuple[Location, str]] = field(default_factory=list)
    """(Chaos Toolkit path, message)."""
    warnings: list[tuple[Location, str]] = field(default_factory=list)
    """(Chaos Toolkit path, message): runs, as in Chaos Toolkit, but deserves a change."""
    secret_names: dict[tuple[str, str], str] = field(default_factory=dict)
    """(scope, key) → chaoskit secret name, for secret values given with ``--var-file``."""


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

    def warn(self, at: Location, message: str) -> None:
        self.out.warnings.append((at, message))

    def run(self) -> Conversion:
        doc, out = self.doc, self.out.document
        for key in ("title", "description", "tags"):
            if key in self.doc:
                out[key] = doc[key]
                self.out.origins[(key,)] = (key,)
        self.runtime()
        self.configuration()
        self.secrets()
        self.index_names()
        if "controls" in doc:
            self.controls(doc["controls"], ("controls",))
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
        # Chaos Toolkit checks the after-hypothesis once: an interval longer than `within` makes
        # the engine poll a single time (`within: 0s` would, on a real clock, judge even a first
        # poll that holds as "recovered too late").
        out["recovery"] = {"within": 1, "interval": 3600}
        self.out.origins[("recovery",)] = ("steady-state-hypothesis",)
        self.chaoskit_keys()
        self.out.secret_names = dict(self.secret_names)
        return self.out

    def chaoskit_keys(self) -> None:
        """chaoskit settings a Chaos Toolkit file asks for, which Chaos Toolkit ignores: top-level
        ``x-chaoskit: {recovery: ..., max_duration: ...}``, or the same in an ``extensions`` entry
        named ``chaoskit``."""
        places: list[tuple[Location, Any]] = [(("x-chaoskit",), self.doc.get("x-chaoskit"))]
        extensions = self.doc.get("extensions")
        if isinstance(extensions, list):
            places += [
                (("extensions", i), {k: v for k, v in entry.items() if k != "name"})
                for i, entry in enumerate(extensions)
                if isinstance(entry, Mapping) and entry.get("name") == "chaoskit"
            ]
        for at, settings in places:
            if settings is None:
                continue
            if not isinstance(settings, Mapping):
                self.issue(at, "expected a mapping of chaoskit keys, e.g. {recovery: {within: 30s}}")
                continue
            for key, value in settings.items():
                if key not in _CHAOSKIT_SETTINGS:
                    self.issue(
                        (*at, key),
                        f"unknown chaoskit key {key!r} here; use {', '.join(_CHAOSKIT_SETTINGS)}",
                    )
                    continue
                if key in ("guards", "preflight") and isinstance(value, list):
                    listed = self.out.document.setdefault(key, [])
                    assert isinstance(listed, list)
                    for i in range(len(value)):
                        self.out.origins[(key, len(listed) + i)] = (*at, key, i)
                    listed.extend(value)
                    continue
                self.out.document[key] = value
                self.out.origins[(key,)] = (*at, key)

    def runtime(self) -> None:
        """The rollbacks strategy is followed; hypothesis strategies other than the default are not
        (chaoskit checks the hypothesis before and after the method, never during it)."""
        runtime = self.doc.get("runtime")
        if runtime is None:
            self.out.document["rollback_strategy"] = ROLLBACK_STRATEGIES["default"]
            return
        if not isinstance(runtime, Mapping):
            self.issue(
                ("runtime",), "expected runtime: {hypothesis: {strategy: ...}, rollbacks: {strategy: ...}}"
            )
            return
        rollbacks = runtime.get("rollbacks", {})
        strategy = rollbacks.get("strategy", "default") if isinstance(rollbacks, Mapping) else rollbacks
        if strategy in ROLLBACK_STRATEGIES:
            self.out.document["rollback_strategy"] = ROLLBACK_STRATEGIES[strategy]
            self.out.origins[("rollback_strategy",)] = ("runtime", "rollbacks", "strategy")
        else:
            self.issue(
                ("runtime", "rollbacks", "strategy"),
                f"unknown rollbacks strategy {strategy!r}; Chaos Toolkit's are "
                f"{', '.join(ROLLBACK_STRATEGIES)}",
            )
        for part, value in runtime.items():
            if part == "rollbacks":
                continue
            strategy = value.get("strategy", "default") if isinstance(value, Mapping) else value
            if part == "hypothesis" and strategy == "default":
                continue
            self.issue(
                ("runtime", part),
                f"the runtime {part} strategy {strategy!r} is not supported by chaoskit, which checks the "
                "hypothesis before and after the method (use guards: for checks during it); remove it "
                "or run the experiment with Chaos Toolkit",
            )

    def controls(self, controls: Any, at: Location, *, activity: str | None = None) -> None:
        """``chaosaddons.controls.safeguards`` become guards (probes with a ``frequency``) and
        preflight checks (the others, asked once before anything runs); other python controls run
        as Chaos Toolkit runs them (``controls:``, see ``chaoskit.engine.controlling``). Refused,
        by name: a control whose module can't be imported, one of another provider type, and
        safeguards on an activity. ``activity``: the name of the activity they are declared on."""
        if not isinstance(controls, list):
            self.issue(at, "expected a list of controls")
            return
        for i, control in enumerate(controls):
            if not isinstance(control, Mapping):
                self.issue((*at, i), "expected a control: {name: ..., provider: {type: python, module: ...}}")
                continue
            provider = control.get("provider")
            module = provider.get("module") if isinstance(provider, Mapping) else None
            name = control.get("name")
            what = f"control {name!r}" + (f" ({module})" if isinstance(module, str) else "")
            if module == SAFEGUARDS and activity is None:
                assert isinstance(provider, Mapping)
                arguments = provider.get("arguments")
                probes = arguments.get("probes") if isinstance(arguments, Mapping) else None
                if not isinstance(probes, list):
                    self.issue((*at, i, "provider"), "safeguards need arguments: {probes: [...]}")
                    continue
                for j, probe in enumerate(probes):
                    self.safeguard(probe, (*at, i, "provider", "arguments", "probes", j))
                continue
            if module == SAFEGUARDS:
                self.issue(
                    (*at, i),
                    f"{what} on an activity can't run in chaoskit: declare the safeguards at the top "
                    "level of the experiment (they become guards and preflight checks)",
                )
                continue
            converted = self.control(control, what, (*at, i), activity)
            if converted is None:
                continue
            listed = self.out.document.setdefault("controls", [])
            assert isinstance(listed, list)
            if converted in listed:
                continue  # the same activity's controls, met again through a ref:
            self.out.origins[("controls", len(listed))] = (*at, i)
            listed.append(converted)

    def control(
        self, control: Mapping[str, Any], what: str, at: Location, activity: str | None
    ) -> dict[str, JsonValue] | None:
        provider = control.get("provider")
        if not isinstance(provider, Mapping):
            self.issue(at, f"{what} needs provider: {{type: python, module: ...}}")
            return None
        kind = provider.get("type", "python")
        if kind != "python":
            self.issue(
                (*at, "provider", "type"),
                f"{what}: {kind!r} controls can't run in chaoskit (it runs python controls); remove "
                "it or run the experiment with Chaos Toolkit",
            )
            return None
        module = provider.get("module")
        if not isinstance(module, str) or not _MODULE.fullmatch(module):
            self.issue((*at, "provider", "module"), f"{what} needs module: a Python module path")
            return None
        if not _importable(module):
            self.issue(
                (*at, "provider", "module"),
                f"{what}: module {module!r} can't be imported; install the package that provides it "
                "in the environment chaoskit runs in, or remove the control",
            )
            return None
        converted: dict[str, JsonValue] = {
            "name": control["name"] if isinstance(control.get("name"), str) else module,
            "module": module,
        }
        arguments = provider.get("arguments")
        if arguments is not None and not isinstance(arguments, Mapping):
            self.issue((*at, "provider", "arguments"), "expected arguments as a mapping of name: value")
            return None
        if arguments:
            converted["arguments"] = dict(arguments)
        scope = control.get("scope")
        if scope is not None:
            if scope not in ("before", "after"):
                self.issue((*at, "scope"), f"unknown control scope {scope!r}; use before or after")
                return None
            converted["scope"] = scope
        scopes = provider.get("secrets")
        if scopes is not None:
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                self.issue((*at, "provider", "secrets"), "expected a list of secret scopes")
                return None
            converted["secrets"] = [
                name for (scope_name, _), name in self.secret_names.items() if scope_name in scopes
            ]
        if activity is not None:
            converted["activity"] = activity
        return converted

    def safeguard(self, probe: Any, at: Location) -> None:
        frequency = probe.get("frequency") if isinstance(probe, Mapping) else None
        section = "guards" if frequency is not None else "preflight"
        listed = self.out.document.setdefault(section, [])
        assert isinstance(listed, list)
        entry = {k: v for k, v in probe.items() if k not in ("frequency", "background")}
        steps = self.activity(entry, at, (section, len(listed)), in_hypothesis=True)
        for step in steps:
            if isinstance(step, dict) and frequency is not None:
                step["interval"] = frequency
        listed.extend(steps)

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
            name = entry.get("name")
            self.controls(
                entry["controls"], (*at, "controls"), activity=name if isinstance(name, str) else ""
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
        extension = entry.get("x-chaoskit")
        if extension is not None:
            if not isinstance(extension, Mapping) or set(extension) - {"check"}:
                self.issue((*at, "x-chaoskit"), 'expected "x-chaoskit": {"check": false}')
            elif activity == "process.command" and kind == "action":
                arguments["check"] = extension.get("check", True)
            else:
                self.issue((*at, "x-chaoskit", "check"), "check: applies to process actions only")
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
        # Chaos Toolkit fills ${name} from the configuration first, then from every secret scope
        # in order, whatever scopes the provider names (those only pick what a python function's
        # `secrets` parameter receives).
        config = self.doc.get("configuration")
        configured = set(config) if isinstance(config, Mapping) else set()
        secret_keys: dict[str, str] = {}
        for (_, key), name in self.secret_names.items():
            if key not in configured:
                secret_keys.setdefault(key, name)
        body = _with_secrets({k: v for k, v in provider.items() if k not in ("type", "secrets")}, secret_keys)
        if kind == "python":
            module, func = body.get("module"), body.get("func")
            if not isinstance(module, str) or not isinstance(func, str):
                self.issue(at, "a python provider needs module: and func:")
                return None
            arguments = body.get("arguments") or {}
            call = {"function": f"{module}:{func}", "arguments": arguments, "dialect": "chaostoolkit"}
            return "python.call", call, "python"
        if kind == "process":
            return self.process(body, at)
        if kind == "http":
            return self.http(body, at)
        self.issue(
            (*at, "type"),
            f"{kind!r} providers are not supported by chaoskit (it runs python, process and http "
            "providers); run this experiment with Chaos Toolkit",
        )
        return None

    def process(self, body: Mapping[str, Any], at: Location) -> tuple[str, dict[str, JsonValue], str] | None:
        path = body.get("path")
        if not isinstance(path, str):
            self.issue(at, "a process provider needs path:")
            return None
        raw = body.get("arguments")
        # Failures are worded for a Chaos Toolkit file, and a timeout fails the step as it does there.
        args: dict[str, JsonValue] = {"dialect": "chaostoolkit"}
        if isinstance(raw, str):
            # Chaos Toolkit runs "<path> <arguments>" through a shell when arguments is text.
            args.update(shell=True, command=f"{_shell_word(path)} {raw}".rstrip())
        else:
            if isinstance(raw, Mapping):
                self.warn(
                    (*at, "arguments"),
                    "process arguments as a mapping are deprecated in Chaos Toolkit (they run as "
                    "name value pairs); give them as a list",
                )
                raw = [part for pair in raw.items() for part in pair]
            if raw is None:
                raw = []
            if not isinstance(raw, list):
                self.issue((*at, "arguments"), "give process arguments as a string or a list")
                return None
            # As Chaos Toolkit does: null and empty items are left out, the rest become text.
            args["argv"] = [path, *(_ctk_text(a) for a in raw if a is not None and a != "")]
        if "timeout" in body:
            args["timeout"] = body["timeout"]
        return "process.command", args, "process"

    def http(self, body: Mapping[str, Any], at: Location) -> tuple[str, dict[str, JsonValue], str] | None:
        url = body.get("url")
        if not isinstance(url, str):
            self.issue(at, "an http provider needs url:")
            return None
        method = str(body.get("method", "GET")).upper()
        args: dict[str, JsonValue] = {"url": url, "method": method}
        headers = body.get("headers") or {}
        if not isinstance(headers, Mapping):
            self.issue((*at, "headers"), "expected headers as a mapping of name: value")
            return None
        arguments = body.get("arguments")
        if arguments is not None and arguments != {}:
            if method == "GET":
                if not isinstance(arguments, Mapping):
                    self.issue((*at, "arguments"), "GET arguments are query parameters: give a mapping")
                    return None
                args["params"] = {str(k): v for k, v in arguments.items() if v is not None}
            elif headers.get("Content-Type") == "application/json":
                # Chaos Toolkit sends JSON only when the request says so, with exactly this header.
                args["json"] = arguments
            elif isinstance(arguments, str):
                args["body"] = arguments
            elif isinstance(arguments, Mapping):
                args["body"] = _form(arguments)
                if not any(str(name).lower() == "content-type" for name in headers):
                    headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
            else:
                self.issue(
                    (*at, "arguments"),
                    "arguments of a non-GET request are a form (a mapping), text, or JSON with "
                    "headers: {Content-Type: application/json}",
                )
                return None
        if headers:
            args["headers"] = dict(headers)
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
            if path is None and provider_kind in ("http", "process"):
                # Chaos Toolkit matches the path against its whole provider output, whose shape
                # differs from chaoskit's: a function rebuilds that shape at check time.
                arguments: dict[str, JsonValue] = {"path": expression, "provider": provider_kind}
                if "expect" in tolerance:
                    expected = tolerance["expect"]
                    arguments["matches"] = expected if isinstance(expected, list) else [expected]
                elif "count" in tolerance:
                    arguments["count"] = tolerance["count"]
                return {"call": f"{__name__}:whole_output_jsonpath", "arguments": arguments}
            if provider_kind == "http" and path == "body":
                path = "json"
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


class ToleranceNotMet(Exception):
    """What a Chaos Toolkit tolerance found, when it does not hold (shown in the check's message)."""


def ctk_output(value: Any, provider: str) -> Any:
    """A chaoskit probe output in the shape Chaos Toolkit's provider returns: ``{status, stdout,
    stderr}`` for a process, ``{status, headers, body}`` for http (the body parsed when the answer
    is ``application/json``, as Chaos Toolkit does)."""
    if not isinstance(value, Mapping):
        return value
    if provider == "process":
        return {"status": value.get("exit_code"), **{k: value.get(k) for k in ("stdout", "stderr")}}
    headers = value.get("headers")
    content_type = headers.get("content-type") if isinstance(headers, Mapping) else None
    body = value.get("json") if content_type == "application/json" else value.get("body")
    return {"status": value.get("status"), "headers": headers, "body": body}


def whole_output_jsonpath(
    value: Any, path: str, provider: str, matches: list[Any] | None = None, count: int | None = None
) -> bool:
    """Chaos Toolkit's jsonpath tolerance without ``target``, on its provider's whole output.

    Holds when the path matches; with ``count``, that many times; with ``expect``, when the
    matches are exactly ``[expect]`` (or ``expect`` itself, a list). Raises ``ToleranceNotMet``
    saying what matched otherwise."""
    document = ctk_output(value, provider)
    found = list(paths.jsonpath_find(document, path))
    if matches is not None:
        held, needed = found == matches, json.dumps(matches)
    elif count is not None:
        held, needed = len(found) == count, f"{count} match{'es' if count != 1 else ''}"
    else:
        held, needed = bool(found), "a match"
    if not held:
        shown = json.dumps(document, default=str)
        shown = shown if len(shown) <= 300 else shown[:297] + "..."
        raise ToleranceNotMet(f"{path} found {json.dumps(found)} in {shown}, expected {needed}")
    return True


def translate(doc: Mapping[str, Any]) -> Conversion:
    """Translate a Chaos Toolkit experiment, collecting every problem rather than stopping at one."""
    return _Translator(doc).run()


def _importable(module: str) -> bool:
    """Whether ``module`` can be found. Only its parent packages are imported: the module itself is
    the user's code, which the run imports once, when it starts."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False  # a parent package that is missing, or one that fails to import


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _ctk_text(value: Any) -> str:
    """An argument as Chaos Toolkit passes it: Python's ``str`` (``True``, not ``true``)."""
    return str(value)


def _shell_word(text: str) -> str:
    # Templates stay unquoted so that they are still filled in; anything else odd is quoted.
    return text if _PLACEHOLDER.search(text) or "$" in text else shlex.quote(text)


_TEMPLATE = re.compile(r"(\$\{[^{}]*\})")


def _form_part(text: str) -> str:
    """URL-encoded, except templates, which are filled in later (their values as they are)."""
    return "".join(
        part if _TEMPLATE.fullmatch(part) else urllib.parse.quote_plus(part) for part in _TEMPLATE.split(text)
    )


def _form(arguments: Mapping[str, Any]) -> str:
    """A form body as ``requests`` encodes ``data=``: lists repeat the name, nulls are left out."""
    pairs: list[str] = []
    for name, value in arguments.items():
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                pairs.append(f"{_form_part(str(name))}={_form_part(_ctk_text(item))}")
    return "&".join(pairs)


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
