"""Chaos Toolkit experiments load unchanged: providers, tolerances, secrets, refs, pauses, problems."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoskit import errors
from chaoskit.spec import chaostoolkit, expectations, models, reading, templates

# Modelled on the Chaos Toolkit tutorial experiments: an HTTP service, a process, a python probe.
SERVICE = {
    "version": "1.0.0",
    "title": "What is the impact of an expired certificate on our application chain?",
    "description": "If a certificate expires, we should gracefully deal with the issue.",
    "tags": ["tls"],
    "configuration": {
        "base_url": "http://127.0.0.1:8443",
        "api_port": {"type": "env", "key": "API_PORT", "default": 8080},
    },
    "secrets": {"auth": {"token": {"type": "env", "key": "API_TOKEN"}, "user": "sre"}},
    "steady-state-hypothesis": {
        "title": "Application responds",
        "probes": [
            {
                "type": "probe",
                "name": "the-astre-service-must-be-running",
                "tolerance": True,
                "provider": {
                    "type": "python",
                    "module": "os.path",
                    "func": "exists",
                    "arguments": {"path": "/"},
                },
            },
            {
                "type": "probe",
                "name": "the-sunset-service-must-be-running",
                "tolerance": [200, 204],
                "provider": {
                    "type": "http",
                    "url": "${base_url}/health",
                    "headers": {"Authorization": "Bearer ${token}"},
                    "secrets": ["auth"],
                    "timeout": [3, 10],
                },
            },
            {
                "type": "probe",
                "name": "we-can-request-sunset",
                "tolerance": {"type": "jsonpath", "path": "$.status", "expect": "ok", "target": "body"},
                "provider": {"type": "http", "url": "${base_url}/city/Paris", "timeout": 3},
            },
        ],
    },
    "method": [
        {
            "type": "action",
            "name": "swap-to-expired-cert",
            "provider": {"type": "process", "path": "cp", "arguments": "expired-cert.pem cert.pem"},
            "pauses": {"before": 1, "after": 2},
        },
        {
            "type": "probe",
            "name": "read-tls-cert-expiry-date",
            "background": True,
            "provider": {"type": "process", "path": "openssl", "arguments": ["x509", "-enddate", "-noout"]},
        },
        {
            "type": "action",
            "name": "restart-astre-service",
            "provider": {
                "type": "http",
                "url": "${base_url}/restart",
                "method": "POST",
                "arguments": {"force": True, "port": "${api_port}"},
                "verify_tls": False,
            },
        },
        {"ref": "the-sunset-service-must-be-running"},
    ],
    "rollbacks": [
        {
            "type": "action",
            "name": "swap-to-valid-cert",
            "provider": {"type": "process", "path": "cp", "arguments": ["valid-cert.pem", "cert.pem"]},
        }
    ],
}


def load(doc: dict[str, Any], env: dict[str, str] | None = None, name: str = "ctk.json") -> reading.Loaded:
    return reading.load_text(json.dumps(doc, indent=2), name=name, env=env or {})


def test_detection() -> None:
    assert chaostoolkit.is_chaostoolkit(SERVICE)
    assert chaostoolkit.is_chaostoolkit({"title": "t", "method": [{"type": "action", "name": "a"}]})
    assert not chaostoolkit.is_chaostoolkit({"title": "t", "method": [{"action": "process.command"}]})
    assert not chaostoolkit.is_chaostoolkit(["steady-state-hypothesis"])


def test_a_service_experiment_runs_as_chaoskit_steps() -> None:
    loaded = load(SERVICE, env={"API_PORT": "9090"})
    exp = loaded.experiment
    assert loaded.kind == "chaostoolkit"
    assert exp.title.startswith("What is the impact")
    assert exp.tags == ["tls"]
    assert exp.config == {"base_url": "http://127.0.0.1:8443", "api_port": "9090"}
    assert exp.secrets == {"token": models.SecretRef(env="API_TOKEN"), "user": models.SecretRef(value="sre")}

    python_probe, http_probe, jsonpath_probe = exp.steady_state
    assert python_probe.probe == "python.call"
    assert python_probe.with_ == {
        "function": "os.path:exists",
        "arguments": {"path": "/"},
        "dialect": "chaostoolkit",
    }
    assert python_probe.expects == [models.Expect(equals=True)]
    assert http_probe.probe == "http.request"
    assert http_probe.with_ == {
        "url": "http://127.0.0.1:8443/health",
        "method": "GET",
        "headers": {"Authorization": "Bearer ${secrets.token}"},
        "timeout": 10,
    }
    assert http_probe.expects == [models.Expect(path="status", in_=[200, 204])]
    assert jsonpath_probe.expects == [models.Expect(path="json", jsonpath="$.status", count=1, equals="ok")]

    kinds = [type(step).__name__ for step in exp.method]
    assert kinds == ["PauseStep", "ActionStep", "PauseStep", "ProbeStep", "ActionStep", "ProbeStep"]
    before, swap, after, expiry, restart, again = exp.method
    assert isinstance(before, models.PauseStep) and before.pause == 1
    assert isinstance(after, models.PauseStep) and after.pause == 2
    assert isinstance(swap, models.ActionStep)
    assert swap.action == "process.command"
    assert swap.with_ == {"shell": True, "command": "cp expired-cert.pem cert.pem", "dialect": "chaostoolkit"}
    assert isinstance(expiry, models.ProbeStep) and expiry.background
    assert expiry.with_ == {"argv": ["openssl", "x509", "-enddate", "-noout"], "dialect": "chaostoolkit"}
    assert isinstance(restart, models.ActionStep)
    assert restart.with_ == {
        "url": "http://127.0.0.1:8443/restart",
        "method": "POST",
        # A form, as Chaos Toolkit (requests) sends a mapping without a JSON Content-Type.
        "body": "force=True&port=9090",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "verify": False,
    }
    # ref: is a copy of the named activity.
    assert isinstance(again, models.ProbeStep) and again.with_ == http_probe.with_
    assert again.name == "the-sunset-service-must-be-running"
    rollback = exp.rollbacks[0]
    assert isinstance(rollback, models.ActionStep)
    assert rollback.with_ == {"argv": ["cp", "valid-cert.pem", "cert.pem"], "dialect": "chaostoolkit"}


def test_env_configuration_falls_back_to_its_default() -> None:
    assert load(SERVICE).experiment.config["api_port"] == "8080"


@pytest.mark.parametrize(
    ("provider", "tolerance", "expect", "output", "holds"),
    [
        ("process", 0, {"path": "exit_code", "equals": 0}, {"exit_code": 0, "stdout": ""}, True),
        ("process", 0, {"path": "exit_code", "equals": 0}, {"exit_code": 2, "stdout": ""}, False),
        (
            "process",
            "ready\n",
            {"path": "stdout", "equals": "ready\n"},
            {"exit_code": 0, "stdout": "ready\n"},
            True,
        ),
        ("http", 200, {"path": "status", "equals": 200}, {"status": 503}, False),
        ("http", [200, 201], {"path": "status", "in": [200, 201]}, {"status": 201}, True),
        ("python", [1, 5], {"between": [1, 5]}, 5, True),
        ("python", ["a", "b", "c"], {"in": ["a", "b", "c"]}, "d", False),
        ("python", False, {"equals": False}, False, True),
        (
            "http",
            {"type": "range", "range": [200, 299], "target": "status"},
            {"path": "status", "between": [200, 299]},
            {"status": 204},
            True,
        ),
        (
            "process",
            {"type": "range", "range": [0, 1]},
            {"path": "exit_code", "between": [0, 1]},
            {"exit_code": 3},
            False,
        ),
        (
            "process",
            {"type": "regex", "pattern": "^Active: active", "target": "stdout"},
            {"path": "stdout", "matches": "^Active: active"},
            {"stdout": "Active: active (running)"},
            True,
        ),
        (
            "http",
            {"type": "regex", "pattern": "sunset"},
            {"path": "body", "matches": "sunset"},
            {"body": "the sunset is at 18:00"},
            True,
        ),
        (
            "process",
            {"type": "jsonpath", "path": "$.items[*].status.phase", "count": 2, "target": "stdout"},
            {"path": "stdout", "jsonpath": "$.items[*].status.phase", "count": 2},
            {"stdout": '{"items": [{"status": {"phase": "Running"}}, {"status": {"phase": "Pending"}}]}'},
            True,
        ),
        (
            "http",
            {"type": "jsonpath", "path": "$..name", "expect": ["a", "b"], "target": "body"},
            {"path": "json", "jsonpath": "$..name", "count": 2, "in": ["a", "b"]},
            {"json": {"items": [{"name": "a"}, {"name": "c"}]}},
            False,
        ),
        (
            "python",
            {
                "type": "probe",
                "name": "must-mention",
                "provider": {
                    "type": "python",
                    "module": "tests.unit.spec.checkers",
                    "func": "contains",
                    "arguments": {"needle": "ok"},
                },
            },
            {"call": "tests.unit.spec.checkers:contains", "arguments": {"needle": "ok"}},
            "all ok",
            True,
        ),
    ],
)
def test_tolerances_become_expects_with_chaos_toolkit_meaning(
    provider: str, tolerance: Any, expect: dict[str, Any], output: Any, holds: bool
) -> None:
    providers = {
        "process": {"type": "process", "path": "true"},
        "http": {"type": "http", "url": "http://127.0.0.1:1/"},
        "python": {"type": "python", "module": "os", "func": "getcwd"},
    }
    doc = {
        "title": "t",
        "steady-state-hypothesis": {
            "title": "h",
            "probes": [
                {"type": "probe", "name": "p", "tolerance": tolerance, "provider": providers[provider]}
            ],
        },
        "method": [],
    }
    probe = load(doc).experiment.steady_state[0]
    assert probe.expects == [models.Expect.model_validate(expect)]
    assert [c.ok for c in expectations.check_all(probe.expects, output)] == [holds]


def test_unsupported_features_are_problems_at_their_place() -> None:
    doc = {
        "title": "t",
        "controls": [{"name": "tracing", "provider": {"type": "python", "module": "chaostracing.control"}}],
        "secrets": {"vault": {"db": {"type": "vault", "path": "secret/db"}}},
        "steady-state-hypothesis": {
            "title": "h",
            "probes": [
                {"type": "probe", "name": "p", "provider": {"type": "python", "module": "m", "func": "f"}},
                {"type": "probe", "name": "q", "tolerance": {"type": "weird"}, "provider": {"type": "go"}},
            ],
        },
        "method": [
            {"type": "action", "name": "a", "provider": {"type": "process", "path": "x"}, "controls": []},
            {"ref": "nope"},
        ],
    }
    with pytest.raises(errors.SpecError) as caught:
        load(doc)
    assert [p.render() for p in caught.value.problems] == [
        "ctk.json:8:9: controls[0].provider.module: control 'tracing' (chaostracing.control): module "
        "'chaostracing.control' can't be imported; install the package that provides it in the "
        "environment chaoskit runs in, or remove the control",
        "ctk.json:14:7: secrets.vault.db: vault secrets are not supported by chaoskit; "
        "use {type: env, key: NAME} or run it with Chaos Toolkit",
        "ctk.json:23:7: steady-state-hypothesis.probes[0]: a steady-state probe needs a tolerance",
        "ctk.json:39:11: steady-state-hypothesis.probes[1].provider.type: 'go' providers are not "
        "supported by chaoskit (it runs python, process and http providers); "
        "run this experiment with Chaos Toolkit",
        "ctk.json:55:7: method[1].ref: no activity is named 'nope' (named activities: a, p, q)",
    ]


def test_problems_after_conversion_point_into_the_original_file() -> None:
    doc = {
        "title": "t",
        "configuration": {"url": "http://x"},
        "method": [
            {"type": "action", "name": "a", "provider": {"type": "http", "url": "${ur}"}},
            {
                "type": "action",
                "name": "b",
                "provider": {"type": "process", "path": "x"},
                "pauses": {"after": "-1"},
            },
        ],
    }
    text = yaml.safe_dump(doc, sort_keys=False)
    with pytest.raises(errors.SpecError) as caught:
        reading.load_text(text, name="ctk.yaml", env={})
    assert [p.render() for p in caught.value.problems] == [
        "ctk.yaml:9:5: method[0].provider.url: unknown variable 'ur' (did you mean 'url'?); define it under "
        "config: or pass --var ur=VALUE",
        "ctk.yaml:16:5: method[1].pauses.after: a duration can't be negative, got '-1'",
    ]


def test_convert_gives_yaml_that_loads_as_a_native_experiment(tmp_path: Path) -> None:
    path = tmp_path / "ctk.json"
    path.write_text(json.dumps(SERVICE))
    converted = reading.read_chaostoolkit(path)
    text = chaostoolkit.to_yaml(converted)
    assert text.splitlines()[1].startswith("title: What is the impact")
    assert list(yaml.safe_load(text))[:5] == ["title", "description", "tags", "config", "secrets"]
    # An inline secret is never printed: it becomes an env: source, with a note on what to export.
    assert "sre" not in text
    assert text.splitlines()[0] == (
        "# secret 'user' had an inline value in the Chaos Toolkit file; chaoskit reads secrets from env: "
        "or file:, so export USER=... before running"
    )
    loaded = reading.load_text(text, name="converted.yaml", env={})
    assert loaded.kind == "chaoskit"
    assert loaded.experiment.secrets["user"] == models.SecretRef(env="USER")
    assert loaded.experiment.method == load(SERVICE).experiment.method
    # Inline values are for running Chaos Toolkit files only; a native file refuses them.
    with pytest.raises(errors.SpecError, match=r"inline secret values are not allowed"):
        reading.load_text(json.dumps(converted), name="converted.json", env={})


def test_converted_yaml_spells_a_value_met_twice_twice() -> None:
    # A ref: copies its activity, tolerance and all: the YAML was '*id001', an alias nobody wrote.
    path = FIXTURES / "exchange-file.json"
    text = chaostoolkit.to_yaml(reading.read_chaostoolkit(path))
    assert "&id" not in text and "*id" not in text
    assert text.count("- 503") == 2
    native = reading.load_text(text, name="converted.yaml", env={})
    assert native.experiment.method == reading.load(path, env={}).experiment.method


def test_read_chaostoolkit_reports_with_positions(tmp_path: Path) -> None:
    path = tmp_path / "ctk.json"
    path.write_text(
        json.dumps({"title": "t", "method": [{"type": "action", "provider": {"type": "k8s"}}]}, indent=1)
    )
    with pytest.raises(errors.SpecError) as caught:
        reading.read_chaostoolkit(path)
    assert [p.render() for p in caught.value.problems] == [
        f"{path}:7:5: method[0].provider.type: 'k8s' providers are not supported by chaoskit "
        "(it runs python, process and http providers); run this experiment with Chaos Toolkit"
    ]
    native = tmp_path / "native.yaml"
    native.write_text("title: t\nmethod: []\n")
    with pytest.raises(errors.SpecError, match=r"not a Chaos Toolkit experiment"):
        reading.read_chaostoolkit(native)
    path.write_text(json.dumps(SERVICE))
    assert reading.read_chaostoolkit(path) == chaostoolkit.translate(SERVICE).document


def test_the_planner_can_place_problems_in_the_original_file() -> None:
    loaded = load(SERVICE)
    # method[4] is the restart action (two pause steps were added before it).
    problem = loaded.problem(["method", 4, "action"], "http.request is not an action")
    assert problem.path == "method[2].provider.type"
    text = json.dumps(SERVICE, indent=2).splitlines()
    assert text[problem.line - 1].strip() == '"type": "http",'
    assert loaded.problem(["method", 4, "with", "url"], "bad").path == "method[2].provider.url"


def test_inline_secret_values_stay_out_of_dumps_and_reprs() -> None:
    loaded = load(SERVICE)
    assert templates.resolve_secrets(loaded.experiment, {"API_TOKEN": "t0k"}) == {
        "token": "t0k",
        "user": "sre",
    }
    dumped = loaded.experiment.model_dump_json()
    assert "sre" not in dumped
    assert "sre" not in repr(loaded.experiment)
    assert loaded.document["secrets"]["user"] == {"value": "***"}


FIXTURES = Path(__file__).parent / "ctk"


@pytest.mark.parametrize("name", ["exchange-file.json", "api-latency.yaml"])
def test_hand_written_chaos_toolkit_files_load_and_convert(name: str) -> None:
    path = FIXTURES / name
    loaded = reading.load(path, env={})
    assert loaded.kind == "chaostoolkit"
    assert loaded.experiment.steady_state and loaded.experiment.method
    converted = reading.read_chaostoolkit(path)
    native = reading.load_text(chaostoolkit.to_yaml(converted), name="converted.yaml", env={})
    assert native.kind == "chaoskit"
    assert native.experiment.method == loaded.experiment.method
    assert native.experiment.steady_state == loaded.experiment.steady_state


def test_the_exchange_file_tutorial_keeps_its_shape() -> None:
    exp = reading.load(FIXTURES / "exchange-file.json", env={"SERVICE_URL": "http://127.0.0.1:9"}).experiment
    assert exp.config["service_url"] == "http://127.0.0.1:9"
    move, pause, again = exp.method
    assert isinstance(move, models.ActionStep) and move.action == "python.call"
    assert move.with_ == {
        "function": "os:rename",
        "arguments": {"src": "./exchange.dat", "dst": "./exchange.dat.old"},
        "dialect": "chaostoolkit",
    }
    assert isinstance(pause, models.PauseStep) and pause.pause == 5
    assert isinstance(again, models.ProbeStep) and again.expects == [
        models.Expect(path="status", in_=[200, 503])
    ]
    assert [type(s).__name__ for s in exp.rollbacks] == ["ActionStep"]


def test_the_api_file_scopes_secrets_and_maps_every_tolerance() -> None:
    exp = reading.load(FIXTURES / "api-latency.yaml", env={}).experiment
    assert exp.secrets == {
        "api_token": models.SecretRef(env="ORDERS_API_TOKEN"),
        "admin_password": models.SecretRef(value="s3cr3t"),
    }
    answers, listed, healthy, cache = exp.steady_state
    assert answers.with_["headers"] == {"Authorization": "Bearer ${secrets.api_token}"}
    assert listed.with_["params"] == {"limit": 3}
    assert listed.expects == [models.Expect(path="json", jsonpath="$.orders[*].id", count=3)]
    assert healthy.expects == [models.Expect(path="body", matches='"healthy":\\s*true')]
    assert cache.expects == [models.Expect(between=(0, 10000))]
    before, flush, after, latency, again = exp.method
    assert isinstance(before, models.PauseStep) and isinstance(after, models.PauseStep)
    assert (before.pause, after.pause) == (1, 3)
    assert isinstance(flush, models.ActionStep)
    # Text arguments run through a shell, as in Chaos Toolkit.
    assert flush.with_ == {
        "shell": True,
        "command": "/usr/local/bin/cache-admin --password ${secrets.admin_password} flush --all",
        "dialect": "chaostoolkit",
        "timeout": 30,
    }
    assert isinstance(latency, models.ProbeStep) and latency.background
    assert latency.with_["argv"][-2:] == ["%{time_total}", "http://127.0.0.1:8081/orders"]
    assert latency.expects == [
        models.Expect(call="tests.unit.spec.checkers:at_least", arguments={"minimum": 0})
    ]
    assert isinstance(again, models.ProbeStep) and again.name == "orders-endpoint-answers"


def test_rollback_strategies_are_followed_and_hypothesis_strategies_refused() -> None:
    same = {
        **SERVICE,
        "runtime": {"hypothesis": {"strategy": "default"}, "rollbacks": {"strategy": "never"}},
    }
    loaded = load(same)
    assert loaded.kind == "chaostoolkit"
    assert loaded.experiment.rollback_strategy == "never"
    assert load(SERVICE).experiment.rollback_strategy == "not-deviated"
    other = {
        **SERVICE,
        "runtime": {"hypothesis": {"strategy": "continuously"}, "rollbacks": {"strategy": "sometimes"}},
    }
    with pytest.raises(errors.SpecError) as caught:
        load(other)
    assert [(p.path, p.message.split(";")[0]) for p in caught.value.problems] == [
        (
            "runtime.hypothesis",
            "the runtime hypothesis strategy 'continuously' is not supported by chaoskit, which checks the "
            "hypothesis before and after the method (use guards: for checks during it)",
        ),
        ("runtime.rollbacks.strategy", "unknown rollbacks strategy 'sometimes'"),
    ]
