"""Variables at load time (typed; config, files, --var, env), step outputs and secrets at run time."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaoskit import errors
from chaoskit.spec import models, reading, templates

BASE = """\
title: t
config:
  port: 8080
  hosts: [a, b]
  db: {host: db.local, port: 5432}
  url: "http://127.0.0.1:${env:APP_PORT:-9000}/health"
method:
  - action: process.command
    with:
      port: "${port}"
      hosts: "${hosts}"
      first: "${hosts[0]}"
      text: "port=${port} hosts=${hosts}"
      nested: {host: "${db.host}", whole: "${db}"}
      url: "${url}"
      literal: "$${port} and $${steps.x.output}"
      home: "${env:HOME_DIR}"
"""


def with_args(loaded: reading.Loaded) -> dict[str, Any]:
    step = loaded.experiment.method[0]
    assert isinstance(step, models.ActionStep)
    return step.with_


def test_a_whole_template_keeps_its_type_and_inside_text_it_is_formatted() -> None:
    args = with_args(reading.load_text(BASE, name="t.yaml", env={"HOME_DIR": "/home/sre"}))
    assert args["port"] == 8080
    assert args["hosts"] == ["a", "b"]
    assert args["first"] == "a"
    assert args["text"] == 'port=8080 hosts=["a","b"]'
    assert args["nested"] == {"host": "db.local", "whole": {"host": "db.local", "port": 5432}}
    assert args["url"] == "http://127.0.0.1:9000/health"
    # $${ is a literal ${; a run-time one stays escaped until the engine renders it.
    assert args["literal"] == "${port} and $${steps.x.output}"
    assert templates.render(args["literal"], templates.RunScope()) == "${port} and ${steps.x.output}"
    assert args["home"] == "/home/sre"


def test_config_env_values_come_from_the_environment() -> None:
    loaded = reading.load_text(BASE, name="t.yaml", env={"APP_PORT": "7000", "HOME_DIR": "/h"})
    assert with_args(loaded)["url"] == "http://127.0.0.1:7000/health"


def test_var_files_then_vars_override_config(tmp_path: Path) -> None:
    first = tmp_path / "first.yaml"
    first.write_text("port: 1111\nhosts: [c]\n")
    second = tmp_path / "second.json"
    second.write_text('{"port": 2222}')
    loaded = reading.load_text(
        BASE,
        name="t.yaml",
        env={"HOME_DIR": "/h"},
        var_files=[first, second],
        variables=dict([templates.parse_var("hosts=[x, y]")]),
    )
    args = with_args(loaded)
    assert args["port"] == 2222
    assert args["hosts"] == ["x", "y"]
    assert loaded.experiment.config["port"] == 2222


def test_a_bad_var_file_is_a_problem_with_its_own_location(tmp_path: Path) -> None:
    bad = tmp_path / "vars.yaml"
    bad.write_text("- not\n- a mapping\n")
    with pytest.raises(errors.SpecError) as caught:
        reading.load_text(
            BASE, name="t.yaml", env={"HOME_DIR": "/h"}, var_files=[bad, tmp_path / "gone.yaml"]
        )
    assert [p.render() for p in caught.value.problems] == [
        f"{bad}:1:1: a variables file must be a mapping of name: value",
        f"{tmp_path / 'gone.yaml'}: can't read the file: No such file or directory (check the path)",
    ]


def test_missing_env_unknown_variable_and_bad_templates_are_problems() -> None:
    text = textwrap.dedent(
        """\
        title: t
        config: {port: 1, self: "${port}"}
        method:
          - action: a
            with: {a: "${env:NOPE}", b: "${prot}", c: "${port", d: "${a b}", e: "${port.x}"}
        """
    )
    with pytest.raises(errors.SpecError) as caught:
        reading.load_text(text, name="t.yaml", env={})
    assert [p.render() for p in caught.value.problems] == [
        "t.yaml:2:19: config.self: config values can use ${env:NAME} but not other variables ('${port}')",
        "t.yaml:5:12: method[0].with.a: environment variable NOPE is not set; set it, or give a default: "
        "${env:NOPE:-value}",
        "t.yaml:5:30: method[0].with.b: unknown variable 'prot' (did you mean 'port'?); define it under "
        "config: or pass --var prot=VALUE",
        "t.yaml:5:44: method[0].with.c: unterminated '${': close it with '}', "
        "or write '$${' for a literal '${'",
        "t.yaml:5:57: method[0].with.d: not a valid template '${a b}'; write ${name}, ${env:NAME}, "
        "${env:NAME:-default}, ${steps.<id>.output.<path>} or ${secrets.<name>}",
        "t.yaml:5:70: method[0].with.e: '${port.x}': no 'x' in port: "
        "the value there is int, not a mapping or list",
    ]


def test_a_template_problem_is_not_reported_twice_as_a_type_error() -> None:
    with pytest.raises(errors.SpecError) as caught:
        reading.load_text("title: t\nmethod:\n  - pause: ${wait}\n", name="t.yaml", env={})
    assert [p.message for p in caught.value.problems] == [
        "unknown variable 'wait'; define it under config: or pass --var wait=VALUE"
    ]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("n=3", ("n", 3)),
        ("ratio=0.5", ("ratio", 0.5)),
        ("on=true", ("on", True)),
        ("url=http://x:1/a?b=c", ("url", "http://x:1/a?b=c")),
        ("hosts=[a, b]", ("hosts", ["a", "b"])),
        ("day=2024-01-02", ("day", "2024-01-02")),
        ("empty=", ("empty", "")),
        ("odd=[unclosed", ("odd", "[unclosed")),
        ("msg=hello: world", ("msg", "hello: world")),
        ("map={a: 1}", ("map", {"a": 1})),
        ("x=a=b", ("x", "a=b")),
    ],
)
def test_parse_var_reads_the_value_as_yaml(text: str, parsed: tuple[str, Any]) -> None:
    assert templates.parse_var(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [("novalue", r"expected name=value"), ("bad name=1", r"'bad name' is not a variable name")],
)
def test_parse_var_errors_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(errors.UsageError, match=message) as caught:
        templates.parse_var(text)
    assert caught.value.exit_code == errors.ExitCode.INVALID


def test_render_fills_step_outputs_and_secrets_with_types() -> None:
    scope = templates.RunScope(
        outputs={"login": {"json": {"token": "abc", "ids": [4, 5, 6]}, "status": 200}},
        secrets={"api": "s3cr3t"},
    )
    value = {
        "ids": "${steps.login.output.json.ids}",
        "last": "${steps.login.output.json.ids[-1]}",
        "header": "Bearer ${secrets.api}",
        "line": "status ${steps.login.output.status}",
        "all": "${steps.login.output}",
    }
    assert templates.render(value, scope) == {
        "ids": [4, 5, 6],
        "last": 6,
        "header": "Bearer s3cr3t",
        "line": "status 200",
        "all": scope.outputs["login"],
    }


def test_render_says_which_part_of_a_step_output_is_missing() -> None:
    scope = templates.RunScope(outputs={"login": {"status": 200, "json": None}})
    with pytest.raises(templates.TemplateError) as caught:
        templates.render("${steps.login.output.json.token}", scope)
    assert caught.value.message == (
        "'${steps.login.output.json.token}': no 'token' in json: "
        "the value there is null, not a mapping or list"
    )
    assert caught.value.exit_code == errors.ExitCode.ERROR
    with pytest.raises(
        templates.TemplateError, match=r"no 'stats' in the output of step 'login' \(has: status, json\)"
    ):
        templates.render("${steps.login.output.stats}", scope)
    with pytest.raises(templates.TemplateError, match=r"step 'boot' has no output yet"):
        templates.render("${steps.boot.output}", scope)


def test_runtime_reference_helpers() -> None:
    value = {"a": ["${secrets.one}", "x ${secrets.two} ${steps.s.output.y}"], "b": 3}
    assert templates.secret_names(value) == {"one", "two"}
    assert templates.has_runtime_refs(value)
    assert not templates.has_runtime_refs({"a": "plain ${not_runtime} $${steps.x}", "b": [1]})


def test_resolve_secrets_from_env_and_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    experiment = models.Experiment(
        title="t",
        secrets={
            "a": models.SecretRef(env="A_TOKEN"),
            "b": models.SecretRef(file=str(token_file)),
        },
    )
    assert templates.resolve_secrets(experiment, {"A_TOKEN": "from-env"}) == {
        "a": "from-env",
        "b": "from-file",
    }
    with pytest.raises(errors.ChaoskitError, match=r"secret 'a': environment variable A_TOKEN is not set"):
        templates.resolve_secrets(experiment, {})
    token_file.unlink()
    with pytest.raises(
        errors.ChaoskitError, match=rf"secret 'b': can't read file {token_file}: No such file"
    ):
        templates.resolve_secrets(experiment, {"A_TOKEN": "x"})


scalars = st.one_of(
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(blacklist_characters="$\x00", blacklist_categories=("Cs",))),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


# Loaded CI machines: no per-example deadline, no slow-generation health check.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_a_whole_variable_template_keeps_any_value_exactly(value: Any) -> None:
    result, issues = templates.substitute({"x": "${v}"}, {"v": value}, env={})
    assert issues == []
    assert result == {"x": value}


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_a_whole_step_output_template_keeps_any_value_exactly(value: Any) -> None:
    assert templates.render("${steps.s.output}", templates.RunScope(outputs={"s": value})) == value


def test_a_template_problem_does_not_hide_other_problems_of_its_step() -> None:
    with pytest.raises(errors.SpecError) as caught:
        reading.load_text('title: t\nmethod:\n  - prob: p\n    with: {a: "${nope}"}\n', name="t.yaml", env={})
    assert [p.path for p in caught.value.problems] == ["method[0]", "method[0].with.a"]


def test_relative_secret_files_are_read_beside_the_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token.txt").write_text("beside\n")
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("title: t\nsecrets: {token: {file: token.txt}, abs: {file: /etc/hostname}}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = reading.load(experiment, env={})
    assert loaded.experiment.secrets["abs"].file == "/etc/hostname"
    assert templates.resolve_secrets(loaded.experiment, {}, names=["token"]) == {"token": "beside"}
