"""``chaoskit init``: each kind of target gives a scaffold that ``chaoskit validate`` accepts (the
same command a user runs next); bad or missing targets are usage errors; nothing invalid is written.

Validating needs no live system (no proxy, Docker engine or cluster). Running a scaffold does: the
``slow`` tests run the HTTP and process scaffolds for real against local things they start; the
Docker and Kubernetes ones are validated only (they need a dockerd or a cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from chaoskit.cli import init, main


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHAOSKIT_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def chaoskit(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main.cli, list(args), input=stdin)


def generated(*args: str, output: str = "experiment.yaml") -> dict[str, Any]:
    result = chaoskit("init", *args, "-o", output)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {output} ")
    validated = chaoskit("validate", output)
    assert validated.exit_code == 0, validated.output
    assert validated.stdout.startswith(f"{output}: valid")
    document = yaml.safe_load(Path(output).read_text())
    assert isinstance(document, dict)
    return document


def activities(steps: list[dict[str, Any]]) -> list[str]:
    return [step.get("probe") or step.get("fault") or step["action"] for step in steps]


def test_url_gives_http_probes_and_a_latency_fault_through_a_proxy_its_setup_creates() -> None:
    document = generated("--url", "http://127.0.0.1:8080/health")
    assert activities(document["setup"]) == ["process.start", "toxiproxy.proxy"]
    assert document["setup"][0]["with"]["argv"][:3] == ["chaoskit", "proxy", "serve"]
    assert document["config"]["upstream"] == "127.0.0.1:8080"
    assert activities(document["steady_state"]) == ["http.request", "http.load"]
    assert document["steady_state"][0]["expect"] == {"path": "status", "equals": 200}
    assert {"path": "latency_ms.p99", "below": 500} in document["steady_state"][1]["expect"]
    assert document["steady_state"][0]["with"]["url"] == "http://127.0.0.1:${proxy_port}/health"
    assert activities(document["method"])[0] == "toxiproxy.latency"
    assert document["method"][0]["with"]["proxy"] == document["setup"][1]["with"]["name"]


@pytest.mark.parametrize(
    ("url", "upstream", "through"),
    [
        ("https://example.com", "example.com:443", "https://127.0.0.1:${proxy_port}/"),
        ("http://[::1]:8081/a?b=c", "[::1]:8081", "http://127.0.0.1:${proxy_port}/a?b=c"),
        ("http://shop.internal", "shop.internal:80", "http://127.0.0.1:${proxy_port}/"),
        ("http://h:1/${x}", "h:1", "http://127.0.0.1:${proxy_port}/$${x}"),
    ],
)
def test_url_forms(url: str, upstream: str, through: str) -> None:
    document = generated("--url", url)
    assert document["config"]["upstream"] == upstream
    probe = document["steady_state"][0]["with"]
    assert probe["url"] == through
    assert probe.get("verify", True) is (not url.startswith("https"))


def test_container_gives_running_probe_and_pause_fault() -> None:
    document = generated("--container", "web-1")
    assert document["config"] == {"container": "web-1"}
    assert activities(document["steady_state"]) == ["docker.container.running"]
    assert activities(document["method"]) == ["docker.container.pause"]
    text = Path("experiment.yaml").read_text()
    assert "docker.container.healthy" in text and "docker.container.stop" in text  # the alternatives


def test_deployment_gives_available_probe_and_pod_delete_fault() -> None:
    document = generated("--deployment", "shop/web")
    assert document["config"] == {"namespace": "shop", "deployment": "web", "selector": "app=web"}
    assert activities(document["steady_state"]) == ["kubernetes.deployment.available"]
    assert activities(document["method"]) == ["kubernetes.pods.delete"]
    assert document["method"][0]["with"]["max_targets"] == 1


def test_deployment_without_namespace_means_default() -> None:
    assert generated("--deployment", "web")["config"]["namespace"] == "default"


def test_process_gives_running_probe_and_stop_fault_matching_the_exact_name() -> None:
    document = generated("--process", "my.server")
    assert document["config"] == {"process": r"^my\.server$"}
    assert activities(document["steady_state"]) == ["process.running"]
    assert activities(document["method"]) == ["process.stop"]


def test_comments_name_the_file_and_say_what_to_change() -> None:
    generated("--deployment", "shop/web", output="pods.yaml")
    text = Path("pods.yaml").read_text()
    assert "chaoskit validate pods.yaml" in text and "chaoskit run pods.yaml" in text
    assert "CHANGE `selector`" in text
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) > 15


def test_refuses_to_overwrite_without_force() -> None:
    Path("experiment.yaml").write_text("mine\n")
    result = chaoskit("init", "--process", "nginx")
    assert result.exit_code == 2
    assert "experiment.yaml already exists" in result.stderr and "--force" in result.stderr
    assert Path("experiment.yaml").read_text() == "mine\n"
    assert chaoskit("init", "--process", "nginx", "--force").exit_code == 0
    assert "process.stop" in Path("experiment.yaml").read_text()


def test_missing_folders_are_made_and_a_symlink_is_refused(in_tmp: Path) -> None:
    generated("--process", "nginx", output="chaos/nginx.yaml")
    (in_tmp / "link.yaml").symlink_to(in_tmp / "chaos" / "nginx.yaml")
    result = chaoskit("init", "--process", "nginx", "-o", "link.yaml", "--force")
    assert result.exit_code == 2
    assert "symlink" in result.stderr


def test_without_a_target_and_without_a_terminal_it_lists_the_flags() -> None:
    result = chaoskit("init")
    assert result.exit_code == 2
    for flag in ("--url", "--container", "--deployment", "--process"):
        assert flag in result.stderr
    assert not Path("experiment.yaml").exists()


def test_in_a_terminal_it_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(init, "_interactive", lambda: True)
    result = chaoskit("init", stdin="3\nshop/web\n")
    assert result.exit_code == 0, result.output
    assert "kubernetes.pods.delete" in Path("experiment.yaml").read_text()


def test_two_targets_are_refused() -> None:
    result = chaoskit("init", "--process", "a", "--container", "b")
    assert result.exit_code == 2
    assert "give one target" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--url", "ftp://host/x"), "is not an http:// or https:// URL"),
        (("--url", "127.0.0.1:8080"), "is not an http:// or https:// URL"),
        (("--url", "http://127.0.0.1:99999/"), "a port is a number"),
        (("--container", "../web"), "is not a container name"),
        (("--deployment", "Shop/Web"), "is not NAMESPACE/NAME"),
        (("--deployment", "shop/"), "is not NAMESPACE/NAME"),
    ],
)
def test_malformed_targets_are_usage_errors(args: tuple[str, ...], message: str) -> None:
    result = chaoskit("init", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.output
    assert not Path("experiment.yaml").exists()


def test_an_invalid_scaffold_is_never_written(monkeypatch: pytest.MonkeyPatch, in_tmp: Path) -> None:
    real = init.scaffold

    def broken(kind: str, target: str) -> init.Scaffold:
        good = real(kind, target)
        return init.Scaffold(kind, target, good.text.replace("process.stop", "process.stopp"))

    monkeypatch.setattr(init, "scaffold", broken)
    result = chaoskit("init", "--process", "nginx")
    assert result.exit_code == 2
    assert "process.stopp" in result.stderr
    assert "experiment.yaml:" in result.stderr  # the file asked for, not the temporary one
    assert sorted(p.name for p in in_tmp.iterdir() if p.name != "state") == []
