"""A Chaos Toolkit experiment runs unchanged through the engine, with the real process, python and
http drivers against real processes and a real local server; its exit code follows chaoskit's
stricter table."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from chaoskit import errors, testing
from chaoskit.drivers import registry
from tests import servers

EXPERIMENT: dict[str, Any] = {
    "version": "1.0.0",
    "title": "Listing a directory keeps working while a process runs",
    "configuration": {"dir": "/"},
    "steady-state-hypothesis": {
        "title": "the directory is there and can be listed",
        "probes": [
            {
                "type": "probe",
                "name": "dir-exists",
                "tolerance": True,
                "provider": {
                    "type": "python",
                    "module": "os.path",
                    "func": "isdir",
                    "arguments": {"s": "${dir}"},
                },
            },
            {
                "type": "probe",
                "name": "ls-works",
                "tolerance": 0,
                "provider": {"type": "process", "path": "ls", "arguments": "${dir}"},
            },
            {
                "type": "probe",
                "name": "echo-says-hi",
                "tolerance": {"type": "regex", "pattern": "^hi", "target": "stdout"},
                "provider": {"type": "process", "path": "echo", "arguments": ["hi", "there"]},
            },
        ],
    },
    "method": [
        {
            "type": "action",
            "name": "busy-process",
            "provider": {"type": "process", "path": "sleep", "arguments": "0.1"},
            "pauses": {"after": 1},
        },
        {"ref": "ls-works"},
    ],
    "rollbacks": [
        {"type": "action", "name": "nothing-to-undo", "provider": {"type": "process", "path": "true"}}
    ],
}


@pytest.fixture(scope="module")
def drivers() -> list[Any]:
    for tool in ("ls", "echo", "sleep", "true"):
        assert shutil.which(tool), f"{tool} is part of coreutils and needed here"
    loaded = registry.load()
    assert "process.command" in loaded.actions and "python.call" in loaded.probes
    return [loaded.drivers["process"], loaded.drivers["python"]]


def run(doc: dict[str, Any], drivers: list[Any]) -> tuple[str, int]:
    journal = testing.run_experiment(json.dumps(doc, indent=2), drivers=drivers)
    return str(journal.verdict), int(journal.exit_code)


def test_a_steady_experiment_completes(drivers: list[Any]) -> None:
    assert run(EXPERIMENT, drivers) == ("completed", errors.ExitCode.COMPLETED)


def test_not_steady_before_exits_3_where_chaos_toolkit_exits_0(drivers: list[Any]) -> None:
    doc = copy.deepcopy(EXPERIMENT)
    doc["steady-state-hypothesis"]["probes"][1]["tolerance"] = 3
    assert run(doc, drivers) == ("not_steady", errors.ExitCode.NOT_STEADY)


def test_a_failed_action_exits_4_where_chaos_toolkit_exits_0(drivers: list[Any]) -> None:
    doc = copy.deepcopy(EXPERIMENT)
    doc["method"][0]["provider"]["path"] = "/nonexistent/chaoskit-test-command"
    assert run(doc, drivers) == ("error", errors.ExitCode.ERROR)


def test_a_failed_check_during_the_method_exits_1_where_chaos_toolkit_exits_0(drivers: list[Any]) -> None:
    doc = copy.deepcopy(EXPERIMENT)
    doc["method"].append(
        {"type": "probe", "name": "during", "tolerance": 1, "provider": {"type": "process", "path": "true"}}
    )
    assert run(doc, drivers) == ("deviated", errors.ExitCode.DEVIATED)


class _Health(servers.Quiet):
    def do_GET(self) -> None:
        body = json.dumps({"status": "ok", "items": [{"name": "a"}, {"name": "b"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def health_url() -> Iterator[str]:
    with servers.serving(_Health) as url:
        yield f"{url}/health"


def test_http_probes_and_their_tolerances_run_against_a_real_server(health_url: str) -> None:
    loaded = registry.load()
    doc = {
        "title": "the service answers",
        "configuration": {"url": health_url},
        "steady-state-hypothesis": {
            "title": "healthy",
            "probes": [
                {
                    "type": "probe",
                    "name": "status",
                    "tolerance": 200,
                    "provider": {"type": "http", "url": "${url}"},
                },
                {
                    "type": "probe",
                    "name": "body says ok",
                    # Without a target, the path reads Chaos Toolkit's whole output {status, headers, body}.
                    "tolerance": {"type": "jsonpath", "path": "$.body.status", "expect": "ok"},
                    "provider": {"type": "http", "url": "${url}", "timeout": 10},
                },
                {
                    "type": "probe",
                    "name": "two items",
                    "tolerance": {
                        "type": "jsonpath",
                        "path": "$.items[*].name",
                        "count": 2,
                        "target": "body",
                    },
                    "provider": {"type": "http", "url": "${url}"},
                },
            ],
        },
        "method": [],
    }
    drivers = [loaded.drivers["http"]]
    assert run(doc, drivers) == ("completed", errors.ExitCode.COMPLETED)
    doc["steady-state-hypothesis"]["probes"][0]["tolerance"] = [500, 503]
    assert run(doc, drivers) == ("not_steady", errors.ExitCode.NOT_STEADY)


def test_an_http_action_runs_and_a_failing_one_is_an_error(health_url: str) -> None:
    loaded = registry.load()
    doc = {
        "title": "poke the admin endpoint",
        "configuration": {"url": health_url},
        "steady-state-hypothesis": {
            "title": "healthy",
            "probes": [
                {
                    "type": "probe",
                    "name": "up",
                    "tolerance": 200,
                    "provider": {"type": "http", "url": "${url}"},
                }
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "poke",
                "provider": {"type": "http", "url": "${url}", "method": "GET", "timeout": 5},
            }
        ],
    }
    drivers = [loaded.drivers["http"]]
    assert run(doc, drivers) == ("completed", errors.ExitCode.COMPLETED)
    doc["method"][0]["provider"]["url"] = "http://127.0.0.1:9/refused"
    assert run(doc, drivers) == ("error", errors.ExitCode.ERROR)
