"""The settings of a Chaos Toolkit experiment, translated: its ``configuration`` and ``secrets``, its
``runtime`` strategies, and the chaoskit keys it may carry for chaoskit (``x-chaoskit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import JsonValue

from chaoskit.spec import paths

_CHAOSKIT_SETTINGS = ("recovery", "max_duration", "guards", "preflight")
ROLLBACK_STRATEGIES = {
    "default": "not-deviated",
    "always": "always",
    "never": "never",
    "deviated": "deviated",
}
"""Chaos Toolkit's rollback strategies → chaoskit's ``rollback_strategy`` (see ``models``)."""


class Output(Protocol):
    """Where the translated settings go."""

    @property
    def document(self) -> dict[str, JsonValue]:
        """The chaoskit document being written."""
        ...

    @property
    def origins(self) -> dict[paths.Location, paths.Location]:
        """chaoskit path → Chaos Toolkit path."""
        ...

    def issue(self, at: paths.Location, message: str) -> None: ...


def chaoskit_keys(doc: Mapping[str, Any], into: Output) -> None:
    """chaoskit settings a Chaos Toolkit file asks for, which Chaos Toolkit ignores: top-level
    ``x-chaoskit: {recovery: ..., max_duration: ...}``, or the same in an ``extensions`` entry
    named ``chaoskit``."""
    places: list[tuple[paths.Location, Any]] = [(("x-chaoskit",), doc.get("x-chaoskit"))]
    extensions = doc.get("extensions")
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
            into.issue(at, "expected a mapping of chaoskit keys, e.g. {recovery: {within: 30s}}")
            continue
        for key, value in settings.items():
            if key not in _CHAOSKIT_SETTINGS:
                into.issue(
                    (*at, key),
                    f"unknown chaoskit key {key!r} here; use {', '.join(_CHAOSKIT_SETTINGS)}",
                )
                continue
            if key in ("guards", "preflight") and isinstance(value, list):
                listed = into.document.setdefault(key, [])
                assert isinstance(listed, list)
                for i in range(len(value)):
                    into.origins[(key, len(listed) + i)] = (*at, key, i)
                listed.extend(value)
                continue
            into.document[key] = value
            into.origins[(key,)] = (*at, key)


def runtime(doc: Mapping[str, Any], into: Output) -> None:
    """The rollbacks strategy is followed; hypothesis strategies other than the default are not
    (chaoskit checks the hypothesis before and after the method, never during it)."""
    runtime = doc.get("runtime")
    if runtime is None:
        into.document["rollback_strategy"] = ROLLBACK_STRATEGIES["default"]
        return
    if not isinstance(runtime, Mapping):
        into.issue(
            ("runtime",), "expected runtime: {hypothesis: {strategy: ...}, rollbacks: {strategy: ...}}"
        )
        return
    rollbacks = runtime.get("rollbacks", {})
    strategy = rollbacks.get("strategy", "default") if isinstance(rollbacks, Mapping) else rollbacks
    if strategy in ROLLBACK_STRATEGIES:
        into.document["rollback_strategy"] = ROLLBACK_STRATEGIES[strategy]
        into.origins[("rollback_strategy",)] = ("runtime", "rollbacks", "strategy")
    else:
        into.issue(
            ("runtime", "rollbacks", "strategy"),
            f"unknown rollbacks strategy {strategy!r}; Chaos Toolkit's are {', '.join(ROLLBACK_STRATEGIES)}",
        )
    for part, value in runtime.items():
        if part == "rollbacks":
            continue
        strategy = value.get("strategy", "default") if isinstance(value, Mapping) else value
        if part == "hypothesis" and strategy == "default":
            continue
        into.issue(
            ("runtime", part),
            f"the runtime {part} strategy {strategy!r} is not supported by chaoskit, which checks the "
            "hypothesis before and after the method (use guards: for checks during it); remove it "
            "or run the experiment with Chaos Toolkit",
        )


# --- configuration and secrets


def configuration(doc: Mapping[str, Any], into: Output) -> None:
    """Configuration values become ``config:`` variables; ``{type: env, key: NAME}`` values read
    the environment (``${env:NAME}``)."""
    config = doc.get("configuration")
    if config is None:
        return
    if not isinstance(config, Mapping):
        into.issue(("configuration",), "expected a mapping of name: value")
        return
    converted: dict[str, JsonValue] = {}
    for key, value in config.items():
        at: paths.Location = ("configuration", key)
        into.origins[("config", key)] = at
        if isinstance(value, Mapping) and "type" in value:
            if value.get("type") != "env" or not isinstance(value.get("key"), str):
                into.issue(
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
    into.document["config"] = converted
    into.origins[("config",)] = ("configuration",)


def secrets(doc: Mapping[str, Any], into: Output) -> dict[tuple[str, str], str]:
    """Secrets by scope become chaoskit secrets, each named by its key (prefixed by its scope when
    two scopes have that key); the names, by (scope, key)."""
    names: dict[tuple[str, str], str] = {}
    secrets = doc.get("secrets")
    if secrets is None:
        return names
    if not isinstance(secrets, Mapping):
        into.issue(("secrets",), "expected secrets grouped by scope: {scope: {name: value}}")
        return names
    keys = [key for scope in secrets.values() if isinstance(scope, Mapping) for key in scope]
    converted: dict[str, JsonValue] = {}
    for scope, entries in secrets.items():
        if not isinstance(entries, Mapping):
            into.issue(("secrets", scope), "expected a mapping of name: value or {type: env, key: NAME}")
            continue
        for key, value in entries.items():
            at: paths.Location = ("secrets", scope, key)
            chaoskit_name = key if keys.count(key) == 1 else f"{scope}_{key}"
            names[(scope, key)] = chaoskit_name
            into.origins[("secrets", chaoskit_name)] = at
            if isinstance(value, Mapping):
                kind = value.get("type")
                if kind == "env" and isinstance(value.get("key"), str):
                    converted[chaoskit_name] = {"env": value["key"]}
                elif kind == "vault":
                    into.issue(
                        at,
                        "vault secrets are not supported by chaoskit; use {type: env, key: NAME} "
                        "or run it with Chaos Toolkit",
                    )
                else:
                    into.issue(
                        at,
                        f"secrets of type {kind!r} are not supported by chaoskit; "
                        "use an inline value or {type: env, key: NAME}",
                    )
            else:
                converted[chaoskit_name] = {"value": _as_text(value)}
    into.document["secrets"] = converted
    into.origins[("secrets",)] = ("secrets",)
    return names


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
