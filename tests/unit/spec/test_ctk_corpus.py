"""Chaos Toolkit experiments written for chaoskit, run through it with real processes, Python
functions and a local HTTP server: each must end as it ends in Chaos Toolkit (with chaoskit's
stricter exit codes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chaoskit import testing
from chaoskit.cli import main
from chaoskit.drivers import registry
from tests import servers


@pytest.fixture(scope="module")
def drivers() -> list[Any]:
    loaded = registry.load()
    return [loaded.drivers[name] for name in ("process", "python", "http")]


def run(doc: dict[str, Any], drivers: list[Any]) -> tuple[str, int, Any]:
    journal = testing.run_experiment(json.dumps(doc), drivers=drivers)
    return str(journal.verdict), int(journal.exit_code), journal


def probe(name: str, provider: dict[str, Any], tolerance: Any) -> dict[str, Any]:
    return {"type": "probe", "name": name, "provider": provider, "tolerance": tolerance}


def test_an_after_hypothesis_that_recovers_a_moment_later_still_deviated(
    drivers: list[Any], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.write_text("up")
    doc = {
        "title": "recovers 1 s later",
        "steady-state-hypothesis": {
            "title": "up",
            "probes": [
                probe(
                    "up",
                    {
                        "type": "python",
                        "module": "tests.unit.spec.ctk_corpus",
                        "func": "up_unless_just_broken",
                        "arguments": {"path": str(state)},
                    },
                    True,
                )
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "break",
                "provider": {"type": "process", "path": "sh", "arguments": f"-c 'printf down > {state}'"},
            }
        ],
    }
    verdict, code, journal = run(doc, drivers)
    assert (verdict, code) == ("deviated", 1)
    assert journal.recovery is not None and journal.recovery.polls == 1


def test_jsonpath_without_target_reads_the_whole_process_output(drivers: list[Any]) -> None:
    echo = {"type": "process", "path": "echo", "arguments": ["ok"]}
    status = {"type": "jsonpath", "path": "$.status", "expect": 0}
    stdout = {"type": "jsonpath", "path": "$.stdout", "expect": "ok\n"}
    doc = {
        "title": "jsonpath",
        "steady-state-hypothesis": {
            "title": "t",
            "probes": [probe("s", echo, status), probe("o", echo, stdout)],
        },
        "method": [],
    }
    assert run(doc, drivers)[:2] == ("completed", 0)
    doc["steady-state-hypothesis"]["probes"][0]["tolerance"]["expect"] = 1
    assert run(doc, drivers)[:2] == ("not_steady", 3)


def test_text_arguments_run_through_a_shell_and_nulls_are_dropped(drivers: list[Any]) -> None:
    shell = {"type": "process", "path": "echo", "arguments": "hi | tr h H"}
    nulls = {"type": "process", "path": "echo", "arguments": ["a", None, "", "b", True]}
    doc = {
        "title": "arguments",
        "steady-state-hypothesis": {
            "title": "t",
            "probes": [
                probe("shell", shell, {"type": "regex", "pattern": "^Hi$", "target": "stdout"}),
                probe("nulls", nulls, {"type": "regex", "pattern": "^a b True$", "target": "stdout"}),
            ],
        },
        "method": [],
    }
    assert run(doc, drivers)[:2] == ("completed", 0)


def test_mapping_arguments_run_as_pairs_with_a_warning(drivers: list[Any], tmp_path: Path) -> None:
    doc = {
        "title": "pairs",
        "steady-state-hypothesis": {
            "title": "t",
            "probes": [
                probe(
                    "pairs",
                    {"type": "process", "path": "echo", "arguments": {"-n": "x"}},
                    {"type": "regex", "pattern": "^x$", "target": "stdout"},
                )
            ],
        },
        "method": [],
    }
    assert run(doc, drivers)[:2] == ("completed", 0)
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(doc))
    result = CliRunner().invoke(main.cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "deprecated in Chaos Toolkit" in result.output


def test_a_secret_is_substituted_without_a_provider_scope(drivers: list[Any]) -> None:
    doc = {
        "title": "secret",
        "secrets": {"api": {"token": "abc"}},
        "steady-state-hypothesis": {
            "title": "t",
            "probes": [
                probe("echo", {"type": "process", "path": "echo", "arguments": ["${token}"]}, "abc\n")
            ],
        },
        "method": [],
    }
    assert run(doc, drivers)[:2] == ("completed", 0)


class _Echo(servers.Quiet):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.dumps(
            {"content_type": self.headers.get("Content-Type"), "body": self.rfile.read(length).decode()}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def echo_url() -> Iterator[str]:
    with servers.serving(_Echo) as url:
        yield url


def test_post_arguments_are_a_form_unless_the_request_says_json(drivers: list[Any], echo_url: str) -> None:
    form = {"type": "http", "url": echo_url, "method": "POST", "arguments": {"a": "1 2", "b": [1, 2]}}
    as_json = {**form, "headers": {"Content-Type": "application/json"}}
    doc = {
        "title": "forms",
        "steady-state-hypothesis": {
            "title": "t",
            "probes": [
                probe("form", form, {"type": "jsonpath", "path": "$.body.body", "expect": "a=1+2&b=1&b=2"}),
                probe(
                    "form type",
                    form,
                    {
                        "type": "jsonpath",
                        "path": "$.body.content_type",
                        "expect": "application/x-www-form-urlencoded",
                    },
                ),
                probe(
                    "json",
                    as_json,
                    {"type": "jsonpath", "path": "$.body.content_type", "expect": "application/json"},
                ),
            ],
        },
        "method": [],
    }
    assert run(doc, drivers)[:2] == ("completed", 0)


def test_a_process_probe_that_times_out_says_so(drivers: list[Any]) -> None:
    doc = {
        "title": "timeout",
        "steady-state-hypothesis": {
            "title": "t",
            "probes": [
                probe("slow", {"type": "process", "path": "sleep", "arguments": ["5"], "timeout": 0.2}, 0)
            ],
        },
        "method": [],
    }
    verdict, code, journal = run(doc, drivers)
    assert (verdict, code) == ("not_steady", 3)
    assert "did not finish within the provider's timeout of 0.2s" in json.dumps(
        journal.model_dump(mode="json")
    )


def test_a_failed_process_action_hints_in_chaos_toolkit_terms(drivers: list[Any]) -> None:
    action = {"type": "action", "name": "fails", "provider": {"type": "process", "path": "false"}}
    doc = {"title": "fails", "method": [action]}
    verdict, code, journal = run(doc, drivers)
    assert (verdict, code) == ("error", 4)
    dumped = json.dumps(journal.model_dump(mode="json"))
    assert '\\"x-chaoskit\\": {\\"check\\": false}' in dumped and "check: false to carry on" not in dumped
    action["x-chaoskit"] = {"check": False}
    assert run(doc, drivers)[:2] == ("completed", 0)


def test_safeguards_become_preflight_checks_and_guards(drivers: list[Any]) -> None:
    never = probe("never", {"type": "process", "path": "false"}, 0)
    doc = {
        "title": "safeguarded",
        "controls": [
            {
                "name": "safeguard",
                "provider": {
                    "type": "python",
                    "module": "chaosaddons.controls.safeguards",
                    "arguments": {"probes": [never]},
                },
            }
        ],
        "method": [
            {
                "type": "action",
                "name": "a",
                "provider": {"type": "process", "path": "true"},
                "pauses": {"after": 2},
            }
        ],
    }
    assert run(doc, drivers)[:2] == ("vetoed", 6)
    never["frequency"] = 0.1
    assert run(doc, drivers)[:2] == ("deviated", 1)


def cli(*args: str) -> Any:
    return CliRunner().invoke(main.cli, list(args))


def test_a_file_without_hypothesis_gets_chaos_toolkit_messages(tmp_path: Path) -> None:
    path = tmp_path / "vault.json"
    path.write_text(
        json.dumps({"title": "t", "secrets": {"db": {"pw": {"type": "vault", "path": "x"}}}, "method": []})
    )
    result = cli("validate", str(path))
    assert result.exit_code == 2
    assert "vault secrets are not supported by chaoskit" in result.output


def test_validate_checks_python_functions_and_their_arguments(tmp_path: Path) -> None:
    def doc(func: str, arguments: dict[str, Any]) -> str:
        provider = {
            "type": "python",
            "module": "tests.unit.spec.ctk_corpus",
            "func": func,
            "arguments": arguments,
        }
        return json.dumps({"title": "t", "method": [{"type": "action", "name": "a", "provider": provider}]})

    path = tmp_path / "py.json"
    path.write_text(doc("takes", {"url": "x"}))
    assert cli("validate", str(path)).exit_code == 0
    path.write_text(doc("nope", {}))
    result = cli("validate", str(path))
    assert result.exit_code == 2 and "has no attribute 'nope'" in result.output
    path.write_text(doc("takes", {"url": "x", "retry": 2}))
    result = cli("validate", str(path))
    assert result.exit_code == 2 and "unexpected keyword argument 'retry'" in result.output


def test_validate_names_a_missing_env_secret_at_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHAOSKIT_TEST_NO_SUCH_TOKEN", raising=False)
    path = tmp_path / "secret.json"
    secret = {"type": "env", "key": "CHAOSKIT_TEST_NO_SUCH_TOKEN"}
    path.write_text(
        json.dumps(
            {
                "title": "t",
                "secrets": {"api": {"token": secret}},
                "method": [{"type": "action", "name": "a", "provider": {"type": "process", "path": "true"}}],
            },
            indent=2,
        )
    )
    result = cli("validate", str(path))
    assert result.exit_code == 2
    assert (
        f"{path}:5:7: secrets.api.token" in result.output
        and "CHAOSKIT_TEST_NO_SUCH_TOKEN is not set" in result.output
    )
    env = tmp_path / "ci.env"
    env.write_text("# CI\nexport CHAOSKIT_TEST_NO_SUCH_TOKEN='t0k'\n")
    assert cli("validate", str(path), "--var-file", str(env)).exit_code == 0


def test_typed_vars_and_chaos_toolkit_var_files_are_used(tmp_path: Path) -> None:
    path = tmp_path / "vars.json"
    path.write_text(
        json.dumps(
            {
                "title": "t",
                "configuration": {"n": 1},
                "secrets": {"api": {"token": "inline"}},
                "steady-state-hypothesis": {
                    "title": "t",
                    "probes": [
                        probe(
                            "n",
                            {
                                "type": "python",
                                "module": "tests.unit.spec.ctk_corpus",
                                "func": "equals",
                                "arguments": {"a": "${n}", "b": 5},
                            },
                            True,
                        ),
                        probe(
                            "s", {"type": "process", "path": "echo", "arguments": ["${token}"]}, "from-file\n"
                        ),
                    ],
                },
                "method": [],
            }
        )
    )
    journal = tmp_path / "journal.json"
    var_file = tmp_path / "ctk-vars.json"
    var_file.write_text(json.dumps({"configuration": {"n": 5}, "secrets": {"api": {"token": "from-file"}}}))
    base = ["run", str(path), "--journal", str(journal), "--state-dir", str(tmp_path / "state")]
    assert cli(*base, "--var-file", str(var_file)).exit_code == 0
    var_file.write_text(json.dumps({"secrets": {"api": {"token": "from-file"}}}))
    assert cli(*base, "--var-file", str(var_file)).exit_code == 3
    assert cli(*base, "--var-file", str(var_file), "--var", "n:int=5").exit_code == 0
    assert cli(*base, "--var-file", str(var_file), "--var", "n:str=5").exit_code == 3


def test_rollback_strategies_reach_the_experiment(tmp_path: Path) -> None:
    path = tmp_path / "rb.json"
    doc = {"title": "t", "runtime": {"rollbacks": {"strategy": "always"}}, "method": [], "rollbacks": []}
    path.write_text(json.dumps(doc))
    result = cli("run", str(path), "--dry-run", "--rollback-strategy", "never")
    assert result.exit_code == 0, result.output
