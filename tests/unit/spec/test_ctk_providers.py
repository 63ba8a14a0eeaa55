"""The translator runs the Chaos Toolkit providers its table names: a new type is one more entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import JsonValue

from chaoskit.spec import chaostoolkit, ctk_providers, paths


def _redis(
    body: Mapping[str, Any], at: paths.Location, report: ctk_providers.Report
) -> dict[str, JsonValue] | None:
    command = body.get("command")
    if not isinstance(command, str):
        report.issue(at, "a redis provider needs command:")
        return None
    return {"url": body.get("url", "redis://127.0.0.1:6379"), "command": command}


REDIS = ctk_providers.Provider(type="redis", activity="redis.command", arguments=_redis, check="strict")
"""An activity whose output is the reply itself (no number_at): tolerances look at the reply."""

DOC: dict[str, Any] = {
    "title": "cache",
    "steady-state-hypothesis": {
        "title": "the cache answers",
        "probes": [
            {
                "type": "probe",
                "name": "keys",
                "tolerance": [1, 10],
                "provider": {"type": "redis", "command": "DBSIZE"},
            },
            {
                "type": "probe",
                "name": "mode",
                "tolerance": {"type": "jsonpath", "path": "$.role", "expect": "master", "target": "info"},
                "provider": {"type": "redis", "command": "ROLE"},
            },
        ],
    },
    "method": [
        {
            "type": "action",
            "name": "flush",
            "provider": {"type": "redis", "command": "FLUSHALL"},
            "x-chaoskit": {"check": False},
        },
        {"type": "action", "name": "broken", "provider": {"type": "redis"}},
        {"type": "action", "name": "pods", "provider": {"type": "k8s"}},
    ],
}


def test_a_provider_type_given_in_a_table_runs_with_its_arguments_and_tolerances() -> None:
    conversion = chaostoolkit.translate(DOC, {**ctk_providers.BUILT_IN, "redis": REDIS})
    steady = conversion.document["steady_state"]
    assert steady == [
        {
            "name": "keys",
            "probe": "redis.command",
            "with": {"url": "redis://127.0.0.1:6379", "command": "DBSIZE"},
            # A plain output: Chaos Toolkit reads two numbers as an inclusive range.
            "expect": {"between": [1, 10]},
        },
        {
            "name": "mode",
            "probe": "redis.command",
            "with": {"url": "redis://127.0.0.1:6379", "command": "ROLE"},
            # No targets table: the target is a path into the reply, as written.
            "expect": {"path": "info", "jsonpath": "$.role", "count": 1, "equals": "master"},
        },
    ]
    method = conversion.document["method"]
    assert isinstance(method, list)
    assert method[0] == {
        "name": "flush",
        "action": "redis.command",
        "with": {"url": "redis://127.0.0.1:6379", "command": "FLUSHALL", "strict": False},
    }
    assert conversion.issues == [
        (("method", 1, "provider"), "a redis provider needs command:"),
        (
            ("method", 2, "provider", "type"),
            "'k8s' providers are not supported by chaoskit (it runs python, process, http and redis "
            "providers); run this experiment with Chaos Toolkit",
        ),
    ]


def test_without_the_entry_the_type_is_refused_by_name() -> None:
    issues = chaostoolkit.translate(DOC).issues
    assert issues[0] == (
        ("steady-state-hypothesis", "probes", 0, "provider", "type"),
        "'redis' providers are not supported by chaoskit (it runs python, process and http providers); "
        "run this experiment with Chaos Toolkit",
    )


def test_the_check_extension_is_refused_where_no_provider_takes_it() -> None:
    doc = {
        "title": "t",
        "method": [
            {
                "type": "action",
                "name": "a",
                "provider": {"type": "python", "module": "os", "func": "getcwd"},
                "x-chaoskit": {"check": False},
            }
        ],
    }
    assert chaostoolkit.translate(doc).issues == [
        (("method", 0, "x-chaoskit", "check"), "check: applies to process actions only")
    ]
    with_redis = chaostoolkit.translate(doc, {**ctk_providers.BUILT_IN, "redis": REDIS})
    assert with_redis.issues == [
        (("method", 0, "x-chaoskit", "check"), "check: applies to process and redis actions only")
    ]


def test_controls_see_a_translated_step_as_the_provider_it_was_written_as() -> None:
    written = [
        {"type": "python", "module": "os.path", "func": "exists", "arguments": {"path": "/"}},
        {"type": "process", "path": "true", "arguments": ["-x"], "timeout": 3},
        {"type": "http", "url": "http://127.0.0.1:9/", "method": "GET", "timeout": 3},
    ]
    doc = {
        "title": "t",
        "method": [{"type": "action", "name": str(i), "provider": p} for i, p in enumerate(written)],
    }
    method = chaostoolkit.translate(doc).document["method"]
    assert isinstance(method, list)
    seen = []
    for step in method:
        assert isinstance(step, dict) and isinstance(step["action"], str) and isinstance(step["with"], dict)
        arguments = {k: v for k, v in step["with"].items() if k != "dialect"}
        seen.append(ctk_providers.provider_of(step["action"], arguments))
    assert seen == written
    # Text arguments ran through a shell: the provider is the whole command.
    assert ctk_providers.provider_of("process.command", {"command": "true --flag", "shell": True}) == {
        "type": "process",
        "path": "true --flag",
        "arguments": "",
    }
    assert ctk_providers.provider_of("docker.container.kill", {"name": "web"}) is None
    assert ctk_providers.provider_of("redis.command", {"command": "PING"}, {"redis": REDIS}) is None


def test_a_table_without_a_type_or_a_check_still_says_what_it_runs() -> None:
    doc = {
        "title": "t",
        "method": [
            {
                "type": "action",
                "name": "a",
                "provider": {"type": "redis", "command": "PING"},
                "x-chaoskit": {"check": False},
            },
            {"type": "action", "name": "b", "provider": {"type": "process", "path": "true"}},
        ],
    }
    redis_only = {"redis": ctk_providers.Provider(type="redis", activity="redis.command", arguments=_redis)}
    assert chaostoolkit.translate(doc, redis_only).issues == [
        (("method", 0, "x-chaoskit", "check"), "check: applies to no action here"),
        (
            ("method", 1, "provider", "type"),
            "'process' providers are not supported by chaoskit (it runs redis providers); "
            "run this experiment with Chaos Toolkit",
        ),
    ]
    assert (
        chaostoolkit.translate(doc, {})
        .issues[1][1]
        .startswith("'process' providers are not supported by chaoskit (it runs no providers)")
    )
