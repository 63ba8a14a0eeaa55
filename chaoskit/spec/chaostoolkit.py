"""Chaos Toolkit experiments, translated into chaoskit documents so that they run unchanged.

Providers become chaoskit activities (``python.call``, ``process.command``, ``http.request``),
tolerances become ``expect`` checks with Chaos Toolkit's meaning, python controls run as they do
there, and features chaoskit can't honour (vault secrets, other providers, controls that can't be
imported) are reported as problems at their place in the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import JsonValue

from chaoskit.spec import ctk_controls, ctk_providers, ctk_settings, ctk_tolerances, models, paths

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

CTK_KEYS = ("steady-state-hypothesis", "configuration", "controls", "runtime", "extensions", "contributions")
"""Top-level keys only Chaos Toolkit has."""
_ACTIVITY_LISTS = ("method", "rollbacks")
"""Chaos Toolkit's lists of activities (besides the hypothesis's probes): chaoskit has them too."""
NATIVE_KEYS = (
    *(section for section in models.STEP_SECTIONS if section not in _ACTIVITY_LISTS),
    "recovery",
    "config",
    "max_duration",
)
"""Top-level keys only chaoskit has."""
_CTK_ENTRY_KEYS = ("type", "provider", "ref")


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
        for section in _ACTIVITY_LISTS
        if isinstance(doc.get(section), list)
        for entry in doc[section]
        if isinstance(entry, Mapping)
    ]
    if any(entry.get("type") in ("action", "probe") for entry in entries):
        return True
    if any(key in doc for key in NATIVE_KEYS) or any(
        key in entry for entry in entries for key in models.STEP_KINDS
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
    origins: dict[paths.Location, paths.Location] = field(default_factory=dict)
    """chaoskit path → Chaos Toolkit path, so that problems point into the original file."""
    issues: list[tuple[paths.Location, str]] = field(default_factory=list)
    """(Chaos Toolkit path, message)."""
    warnings: list[tuple[paths.Location, str]] = field(default_factory=list)
    """(Chaos Toolkit path, message): runs, as in Chaos Toolkit, but deserves a change."""
    secret_names: dict[tuple[str, str], str] = field(default_factory=dict)
    """(scope, key) → chaoskit secret name, for secret values given with ``--var-file``."""


class _PlainDumper(yaml.SafeDumper):
    """Writes a value met twice (a ``ref:`` copies its activity's tolerance) twice, not as a YAML
    anchor (``&id001``) and alias that the user never wrote."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


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
    body = yaml.dump(
        ordered,
        Dumper=_PlainDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return "".join(f"{note}\n" for note in notes) + body


@dataclass
class _Translator:
    """One translation under way; it is the ``Report`` of ``ctk_providers`` and the ``Translator``
    of ``ctk_controls``."""

    doc: Mapping[str, Any]
    providers: Mapping[str, ctk_providers.Provider]
    out: Conversion = field(default_factory=Conversion)
    secret_names: dict[tuple[str, str], str] = field(default_factory=dict)
    """(scope, key) → chaoskit secret name."""
    named: dict[str, tuple[paths.Location, Mapping[str, Any]]] = field(default_factory=dict)

    @property
    def document(self) -> dict[str, JsonValue]:
        return self.out.document

    @property
    def origins(self) -> dict[paths.Location, paths.Location]:
        return self.out.origins

    def issue(self, at: paths.Location, message: str) -> None:
        self.out.issues.append((at, message))

    def warn(self, at: paths.Location, message: str) -> None:
        self.out.warnings.append((at, message))

    def run(self) -> Conversion:
        doc, out = self.doc, self.out.document
        for key in ("title", "description", "tags"):
            if key in self.doc:
                out[key] = doc[key]
                self.out.origins[(key,)] = (key,)
        ctk_settings.runtime(doc, self)
        ctk_settings.configuration(doc, self)
        self.secret_names = ctk_settings.secrets(doc, self)
        self.index_names()
        if "controls" in doc:
            ctk_controls.controls(self, doc["controls"], ("controls",))
        hypothesis = doc.get("steady-state-hypothesis")
        if hypothesis is not None:
            self.hypothesis(hypothesis)
        for section in _ACTIVITY_LISTS:
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
        ctk_settings.chaoskit_keys(doc, self)
        self.out.secret_names = dict(self.secret_names)
        return self.out

    def index_names(self) -> None:
        """Activities by name, for ``ref:``."""
        places: list[tuple[paths.Location, Any]] = []
        hypothesis = self.doc.get("steady-state-hypothesis")
        if isinstance(hypothesis, Mapping) and isinstance(hypothesis.get("probes"), list):
            places += [
                (("steady-state-hypothesis", "probes", i), e) for i, e in enumerate(hypothesis["probes"])
            ]
        for section in _ACTIVITY_LISTS:
            if isinstance(self.doc.get(section), list):
                places += [((section, i), e) for i, e in enumerate(self.doc[section])]
        for at, entry in places:
            if isinstance(entry, Mapping) and "ref" not in entry and isinstance(entry.get("name"), str):
                self.named.setdefault(entry["name"], (at, entry))

    def hypothesis(self, hypothesis: Any) -> None:
        at: paths.Location = ("steady-state-hypothesis",)
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

    def activity(
        self, entry: Any, at: paths.Location, target: paths.Location, *, in_hypothesis: bool
    ) -> list[JsonValue]:
        """The chaoskit steps for one Chaos Toolkit activity (pauses become pause steps around it)."""
        if not isinstance(entry, Mapping):
            self.issue(at, "expected an activity: a mapping with type:, name: and provider:")
            return []
        if "ref" in entry:
            return self.referenced(entry, at, target, in_hypothesis=in_hypothesis)
        if "controls" in entry:
            name = entry.get("name")
            ctk_controls.controls(
                self, entry["controls"], (*at, "controls"), activity=name if isinstance(name, str) else ""
            )
        step = self.step(entry, at, in_hypothesis=in_hypothesis)
        if step is None:
            return []
        return self.placed(step, entry, at, target, in_hypothesis=in_hypothesis)

    def referenced(
        self, entry: Mapping[str, Any], at: paths.Location, target: paths.Location, *, in_hypothesis: bool
    ) -> list[JsonValue]:
        """A ``ref:`` to a named activity: that activity's steps, with this entry's keys on top."""
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

    def step(
        self, entry: Mapping[str, Any], at: paths.Location, *, in_hypothesis: bool
    ) -> dict[str, JsonValue] | None:
        """The chaoskit step for an activity, without its pauses."""
        kind = entry.get("type")
        if kind not in ("action", "probe"):
            self.issue((*at, "type"), f"expected type: action or type: probe, got {kind!r}")
            return None
        if in_hypothesis and kind != "probe":
            self.issue((*at, "type"), "the steady-state hypothesis can only hold probes")
            return None
        declared = entry.get("provider")
        if not isinstance(declared, Mapping):
            self.issue(at, "missing required key 'provider'")
            return None
        converted = self.provider(declared, (*at, "provider"))
        if converted is None:
            return None
        provider, arguments = converted
        extension = entry.get("x-chaoskit")
        if extension is not None:
            self.extension(extension, provider, kind, arguments, (*at, "x-chaoskit"))
        step: dict[str, JsonValue] = {}
        if isinstance(entry.get("name"), str):
            step["name"] = entry["name"]
        step[kind] = provider.activity
        step["with"] = arguments
        if "tolerance" in entry:
            if kind == "probe":
                expect = ctk_tolerances.expect(entry["tolerance"], provider, (*at, "tolerance"), self)
                if expect is not None:
                    step["expect"] = expect
        elif in_hypothesis:
            self.issue(at, "a steady-state probe needs a tolerance")
        if entry.get("background") is True and not in_hypothesis:
            step["background"] = True
        if isinstance(entry.get("timeout"), int | float) and not isinstance(entry.get("timeout"), bool):
            step["timeout"] = entry["timeout"]
        return step

    def extension(
        self,
        extension: Any,
        provider: ctk_providers.Provider,
        kind: str,
        arguments: dict[str, JsonValue],
        at: paths.Location,
    ) -> None:
        """An activity's ``"x-chaoskit": {"check": false}``: a failing action that is no failure."""
        if not isinstance(extension, Mapping) or set(extension) - {"check"}:
            self.issue(at, 'expected "x-chaoskit": {"check": false}')
        elif provider.check is not None and kind == "action":
            arguments[provider.check] = extension.get("check", True)
        else:
            checked = [p.type for p in self.providers.values() if p.check is not None]
            where = f"{ctk_providers.listed(checked)} actions only" if checked else "no action here"
            self.issue((*at, "check"), f"check: applies to {where}")

    def placed(
        self,
        step: dict[str, JsonValue],
        entry: Mapping[str, Any],
        at: paths.Location,
        target: paths.Location,
        *,
        in_hypothesis: bool,
    ) -> list[JsonValue]:
        """The step at ``target``, with a pause step before and after it for its ``pauses``, each
        traced back to its place in the Chaos Toolkit file."""
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
            self.origins[(section, index + len(steps))] = (*at, "pauses", "before")
            self.origins[(section, index + len(steps), "pause")] = (*at, "pauses", "before")
            steps.append({"pause": before})
        self.origins[(section, index + len(steps))] = at
        self.origins[(section, index + len(steps), "with")] = (*at, "provider")
        self.origins[(section, index + len(steps), entry["type"])] = (*at, "provider", "type")
        self.origins[(section, index + len(steps), "expect")] = (*at, "tolerance")
        steps.append(step)
        if after:
            self.origins[(section, index + len(steps))] = (*at, "pauses", "after")
            self.origins[(section, index + len(steps), "pause")] = (*at, "pauses", "after")
            steps.append({"pause": after})
        return steps

    def provider(
        self, provider: Mapping[str, Any], at: paths.Location
    ) -> tuple[ctk_providers.Provider, dict[str, JsonValue]] | None:
        """The table's entry for the provider's type, and the arguments its activity runs with."""
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
        body = ctk_providers.with_secrets(
            {k: v for k, v in provider.items() if k not in ("type", "secrets")}, secret_keys
        )
        known = self.providers.get(kind) if isinstance(kind, str) else None
        if known is None:
            self.issue(
                (*at, "type"),
                f"{kind!r} providers are not supported by chaoskit (it runs "
                f"{ctk_providers.listed(list(self.providers))} providers); "
                "run this experiment with Chaos Toolkit",
            )
            return None
        arguments = known.arguments(body, at, self)
        return None if arguments is None else (known, arguments)


class ToleranceNotMet(Exception):
    """What a Chaos Toolkit tolerance found, when it does not hold (shown in the check's message)."""


def whole_output_jsonpath(
    value: Any, path: str, provider: str, matches: list[Any] | None = None, count: int | None = None
) -> bool:
    """Chaos Toolkit's jsonpath tolerance without ``target``, on its provider's whole output (the
    activity's output in the shape that type of provider returns in Chaos Toolkit).

    Holds when the path matches; with ``count``, that many times; with ``expect``, when the
    matches are exactly ``[expect]`` (or ``expect`` itself, a list). Raises ``ToleranceNotMet``
    saying what matched otherwise."""
    known = ctk_providers.BUILT_IN.get(provider)
    shape = known.output if known is not None else None
    document = shape(value) if shape is not None and isinstance(value, Mapping) else value
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


def translate(
    doc: Mapping[str, Any], providers: Mapping[str, ctk_providers.Provider] = ctk_providers.BUILT_IN
) -> Conversion:
    """Translate a Chaos Toolkit experiment, collecting every problem rather than stopping at one.
    ``providers``: the types of provider it runs, by type (see ``ctk_providers``)."""
    return _Translator(doc, providers).run()
