"""The probe catalog: ``use:`` steps expand into plain probe steps; bad parameters are refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoskit import errors
from chaoskit.spec import catalogs, models

SHIPPED = {
    "http-availability",
    "http-latency-p99",
    "k8s-deployment-available",
    "no-critical-alerts",
    "prometheus-burn-rate",
    "prometheus-error-ratio",
    "prometheus-threshold",
    "tcp-port-open",
}


def _step(**data: object) -> models.ProbeStep:
    return models.ProbeStep.model_validate(data)


def test_the_shipped_catalog_lists_every_entry_with_its_parameters() -> None:
    listed = {d.name: d for d in catalogs.list_catalog()}
    assert set(listed) >= SHIPPED
    url = listed["http-availability"].parameter("url")
    assert url is not None and url.required


def test_the_repo_root_probes_dir_is_the_shipped_catalog() -> None:
    root = Path(__file__).resolve().parents[2] / "probes"
    assert {p.stem for p in root.glob("*.yaml")} == {d.name for d in catalogs.list_catalog()}
    assert catalogs.builtin_dir().resolve() == root.resolve()


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_example_expands_to_a_valid_probe_step(name: str) -> None:
    definition = catalogs.find(name)
    step = catalogs.resolve(_step(use=name, **{"with": definition.example}))
    assert step.use is None
    assert step.probe == definition.probe.probe
    assert step.name == name
    assert "${" not in repr(step.with_), "every parameter placeholder is substituted"


def test_use_expands_parameters_keeping_types_and_filling_defaults() -> None:
    step = catalogs.resolve(
        _step(
            id="health",
            use="http-availability",
            **{"with": {"url": "http://127.0.0.1:1/h", "max_status": 399}},
        )
    )
    assert step.probe == "http.request"
    assert step.id == "health"
    assert step.with_ == {"url": "http://127.0.0.1:1/h", "timeout": 2.0}
    assert step.expects == [models.Expect(path="status", between=(200, 399))]


def test_a_steps_own_expect_replaces_the_definitions() -> None:
    step = catalogs.resolve(
        _step(
            use="http-availability",
            expect={"path": "status", "equals": 204},
            **{"with": {"url": "http://x/"}},
        )
    )
    assert step.expects == [models.Expect(path="status", equals=204)]


def test_unset_optional_parameters_are_left_out_so_the_probe_default_applies() -> None:
    step = catalogs.resolve(_step(use="no-critical-alerts"))
    assert "token" not in step.with_
    assert step.with_["labels"] == {"severity": "critical"}


def test_run_time_templates_pass_through_untouched() -> None:
    step = catalogs.resolve(
        _step(use="no-critical-alerts", **{"with": {"token": "${secrets.prom}", "severity": "page"}})
    )
    assert step.with_["token"] == "${secrets.prom}"
    assert step.with_["labels"] == {"severity": "page"}


def test_guards_stay_guards() -> None:
    guard = models.Guard.model_validate({"use": "no-critical-alerts", "interval": "2s", "failures": 2})
    resolved = catalogs.resolve(guard)
    assert isinstance(resolved, models.Guard)
    assert (resolved.interval, resolved.failures, resolved.probe) == (2.0, 2, "prometheus.alerts")


def test_an_unknown_parameter_is_refused_with_a_suggestion() -> None:
    with pytest.raises(catalogs.CatalogError) as caught:
        catalogs.resolve(_step(use="http-availability", **{"with": {"urll": "http://x/"}}))
    error = caught.value
    assert error.exit_code == errors.ExitCode.INVALID
    assert error.key == "with.urll"
    assert "no parameter 'urll' (did you mean 'url'?)" in error.message


def test_a_missing_required_parameter_is_named() -> None:
    with pytest.raises(catalogs.CatalogError, match=r"http-availability needs url \(required\)") as caught:
        catalogs.resolve(_step(use="http-availability"))
    assert caught.value.key == "with"


def test_a_mistyped_parameter_says_what_was_expected() -> None:
    with pytest.raises(
        catalogs.CatalogError, match=r"tcp-port-open: expected an integer, got 'eighty'"
    ) as caught:
        catalogs.resolve(_step(use="tcp-port-open", **{"with": {"port": "eighty"}}))
    assert caught.value.key == "with.port"
    with pytest.raises(catalogs.CatalogError, match=r"tcp-port-open: not a duration"):
        catalogs.resolve(_step(use="tcp-port-open", **{"with": {"port": 80, "timeout": "soon"}}))


def test_an_unknown_catalog_name_suggests_the_closest() -> None:
    with pytest.raises(
        catalogs.CatalogError,
        match=r"unknown catalog probe 'http-availabilty' \(did you mean 'http-availability'\?\)",
    ) as caught:
        catalogs.resolve(_step(use="http-availabilty"))
    assert caught.value.key == "use"


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


USER_DEFINITION = """\
name: {name}
description: {description}
parameters:
  - {{name: port, type: integer, required: true}}
  - {{name: retries, type: integer, default: 3}}
probe:
  probe: tcp.connect
  with: {{host: "svc-${{port}}.local", port: "${{port}}", retries: "${{retries}}"}}
"""


def test_user_directories_come_first_and_add_entries(tmp_path: Path) -> None:
    _write(tmp_path, "tcp-port-open", USER_DEFINITION.format(name="tcp-port-open", description="mine"))
    _write(tmp_path, "my-port", USER_DEFINITION.format(name="my-port", description="also mine"))
    listed = {d.name: d for d in catalogs.list_catalog([tmp_path])}
    assert listed["tcp-port-open"].description == "mine"
    assert "my-port" in listed and "http-availability" in listed
    step = catalogs.resolve(_step(use="my-port", **{"with": {"port": 8080}}), [tmp_path])
    # A placeholder inside text becomes text; a whole placeholder keeps the parameter's type.
    assert step.with_ == {"host": "svc-8080.local", "port": 8080, "retries": 3}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: broken\ndescription: x\nprobe: {probe: a.b, with: {x: '${nope}'}}\n",
            r"\$\{nope\} is used but not",
        ),
        ("name: broken\ndescription: x\nprobe: {probe: a.b}\nparameters: [{name: a, bogus: 1}]\n", r"bogus"),
        ("name: broken\ndescription: x\n  probe: [\n", r"not valid YAML"),
        (
            "name: broken\ndescription: x\nprobe: {probe: a.b}\n"
            "parameters: [{name: a, required: true, default: 1}]\n",
            r"required, so it can't have a default",
        ),
    ],
)
def test_a_broken_definition_file_is_a_spec_error_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _write(tmp_path, "broken", text)
    with pytest.raises(errors.SpecError, match=message) as caught:
        catalogs.find("broken", [tmp_path])
    assert str(path) in caught.value.message
    assert caught.value.exit_code == errors.ExitCode.INVALID


def test_a_file_whose_name_differs_from_its_definition_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "alpha", USER_DEFINITION.format(name="beta", description="x"))
    with pytest.raises(errors.SpecError, match=r"is 'beta', the file name says 'alpha'"):
        catalogs.find("alpha", [tmp_path])


def test_plain_probe_steps_are_returned_unchanged() -> None:
    step = _step(probe="http.request", **{"with": {"url": "http://x/"}})
    assert catalogs.resolve(step) is step


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_entry_names_a_registered_probe_and_its_arguments_fit(name: str) -> None:
    from chaoskit.drivers import registry

    drivers = registry.load()
    definition = catalogs.find(name)
    step = catalogs.resolve(_step(use=name, **{"with": definition.example}))
    assert step.probe in drivers.probes, f"{name} expands to {step.probe}, which no driver registers"
    drivers.probes[step.probe].args.model_validate(step.with_)


def test_chaoskit_probes_lists_the_catalog_with_parameters(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from chaoskit.cli import probes as probes_command

    _write(tmp_path, "my-port", USER_DEFINITION.format(name="my-port", description="A port of mine."))
    runner = CliRunner()
    listed = runner.invoke(probes_command.command, ["--probes-path", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert "my-port  A port of mine. (tcp.connect)" in listed.output
    assert "port: integer (required)" in listed.output
    assert "http-availability" in listed.output
    one = runner.invoke(probes_command.command, ["http-availability", "--output", "json"])
    assert one.exit_code == 0, one.output
    [entry] = json.loads(one.output)
    assert entry["probe"] == "http.request"
    assert [p["name"] for p in entry["parameters"]] == ["url", "timeout", "min_status", "max_status"]
    shown = runner.invoke(probes_command.command, ["tcp-port-open"])
    assert "use: tcp-port-open" in shown.output and "port: 5432" in shown.output


def test_validate_locates_catalog_problems_in_the_experiment_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from chaoskit.cli import main

    experiment = tmp_path / "e.yaml"
    experiment.write_text(
        "title: t\n"
        "steady_state:\n"
        "  - use: http-availability\n"
        '    with: {urll: "http://127.0.0.1:1/"}\n'
        "  - use: http-availabilty\n"
        "  - use: my-port\n"
        "    with: {port: 80}\n",
        encoding="utf-8",
    )
    _write(tmp_path, "my-port", USER_DEFINITION.format(name="my-port", description="x"))
    result = CliRunner().invoke(main.cli, ["validate", str(experiment)])
    assert result.exit_code == 2
    assert (
        f"{experiment}:4:12: steady_state[0].with.urll: http-availability has no parameter 'urll'"
        in result.output
    )
    assert "steady_state[1].use: unknown catalog probe 'http-availabilty'" in result.output
    assert "unknown catalog probe 'my-port'" in result.output, "user dirs only with --probes-path"
    ok = CliRunner().invoke(
        main.cli, ["validate", str(experiment), "--probes-path", str(tmp_path)], catch_exceptions=False
    )
    assert "my-port" not in ok.output
