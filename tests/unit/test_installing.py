"""The command to add an extra fits how this chaoskit was installed, wherever a message names one."""

from __future__ import annotations

import json
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from chaoskit import errors, installing, metrics
from chaoskit.cli import main
from chaoskit.gameday import schedules


def _dist_with(tmp_path: Path, direct_url: dict[str, object] | None) -> metadata.Distribution:
    info = tmp_path / "chaoskit-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: chaoskit\nVersion: 0.1.0\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return metadata.PathDistribution(info)


@pytest.fixture
def from_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = _dist_with(tmp_path, None)
    monkeypatch.setattr(metadata, "distribution", lambda name: dist)


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        ({"url": "file://{root}", "dir_info": {"editable": True}}, "install -e '.[docker]'"),
        ({"url": "file://{root}", "dir_info": {}}, "install '.[docker]'"),
        (None, "install 'chaoskit[docker]'"),
        (
            {"url": "https://files.example/chaoskit-0.1.0.whl", "archive_info": {}},
            "install 'chaoskit[docker]'",
        ),
    ],
)
def test_the_package_is_the_checkout_it_came_from_or_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct_url: dict[str, object] | None, expected: str
) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    if direct_url is not None:
        direct_url = {**direct_url, "url": str(direct_url["url"]).format(root=checkout)}
    dist = _dist_with(tmp_path, direct_url)
    monkeypatch.setattr(metadata, "distribution", lambda name: dist)
    monkeypatch.chdir(checkout)
    assert installing.install_command("docker").endswith(expected)


@pytest.mark.usefixtures("from_index")
@pytest.mark.parametrize("home", [".local/share/pipx", ".local/pipx", "custom"])
def test_under_pipx_the_extra_goes_into_chaoskits_own_venv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: str
) -> None:
    monkeypatch.setenv("PIPX_HOME", str(tmp_path / "custom"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / home / "venvs" / "chaoskit"))
    assert installing.install_command("docker") == "pipx runpip chaoskit install 'chaoskit[docker]'"


@pytest.mark.usefixtures("from_index")
def test_a_distributions_python_that_refuses_pip_gets_pipx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stdlib = tmp_path / "lib" / "python3"
    stdlib.mkdir(parents=True)
    (stdlib / "EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setattr(sys, "base_prefix", str(tmp_path))
    monkeypatch.setattr(sysconfig, "get_path", lambda name: str(stdlib))
    assert installing.install_command("docker") == "pipx install 'chaoskit[docker]'"
    (stdlib / "EXTERNALLY-MANAGED").unlink()  # a system Python that lets pip in keeps pip
    assert "pipx" not in installing.install_command("docker")


@pytest.mark.usefixtures("from_index")
def test_a_venv_used_without_activating_it_names_its_own_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no pip on PATH, or another one
    python = Path(sys.executable)
    assert (
        installing.install_command("docker")
        == f"{python.parent}/{python.name} -m pip install 'chaoskit[docker]'"
    )


@pytest.mark.usefixtures("from_index")
def test_an_error_the_cli_prints_names_the_command_for_this_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "pipx" / "venvs" / "chaoskit"))
    group = main.LazyGroup(name="t")

    @group.command()
    def needs() -> None:
        raise errors.ComponentMissing(
            "the docker SDK is not installed", hint="pip install 'chaoskit[docker]'"
        )

    shown = CliRunner().invoke(group, ["needs"])
    assert shown.output == (
        "error: the docker SDK is not installed\n  hint: pipx runpip chaoskit install 'chaoskit[docker]'\n"
    )


@pytest.mark.usefixtures("from_index")
def test_metrics_without_prometheus_client_name_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "pipx" / "venvs" / "chaoskit"))
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # an import of it fails
    with pytest.raises(errors.ComponentMissing) as caught:
        metrics.Metrics()
    assert caught.value.hint == "pipx runpip chaoskit install 'chaoskit[prometheus]'"


@pytest.mark.usefixtures("from_index")
def test_cron_schedules_without_croniter_name_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "pipx" / "venvs" / "chaoskit"))
    monkeypatch.setitem(sys.modules, "croniter", None)
    with pytest.raises(errors.ComponentMissing) as caught:
        schedules.croniter()
    assert caught.value.hint == "pipx runpip chaoskit install 'chaoskit[schedule]'"
