"""``chaoskit drivers``: a summary, one driver in full, one activity, did-you-mean; quick; and an
install hint for a missing extra that is right for how chaoskit was installed."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from chaoskit.cli import drivers, main
from chaoskit.drivers import contract, registry

ROOT = Path(__file__).resolve().parents[3]


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main.cli, ["drivers", *args])
    return result.exit_code, result.output


def test_without_a_name_one_line_per_driver_with_its_activity_names() -> None:
    code, output = _invoke()
    assert code == 0
    lines = output.splitlines()
    [toxiproxy] = [line for line in lines if line.startswith("toxiproxy ")]
    assert "toxiproxy.latency" in toxiproxy and "toxiproxy.down" in toxiproxy
    assert all(line.split()[0] != "process" or "process.start" in line for line in lines)
    # No arguments in the summary: they are a NAME away.
    assert "(required)" not in output
    assert len(lines) <= len(registry.load().drivers) * 2 + 1


def test_a_driver_name_shows_that_driver_with_its_arguments() -> None:
    code, output = _invoke("toxiproxy")
    assert code == 0
    assert "toxiproxy.latency (reversible)" in output
    assert "latency: number (required)" in output
    assert "process." not in output and "docker." not in output
    assert "``" not in output


def test_an_activity_name_shows_that_activity_only() -> None:
    code, output = _invoke("toxiproxy.latency")
    assert code == 0
    assert "toxiproxy.latency" in output and "latency: number (required)" in output
    assert "toxiproxy.bandwidth" not in output and "toxiproxy.down" not in output
    # A driver of its own, and a probe and an action with one name.
    assert "tcp.connect" in _invoke("tcp.connect")[1]
    both = _invoke("process.command")[1]
    assert "probe  process.command" in both and "action process.command" in both


def test_source_names_each_activitys_module_and_class_one_hop_from_its_name() -> None:
    code, output = _invoke("--source")
    assert code == 0, output
    lines = [line.split() for line in output.splitlines()]
    found = {
        words[1]: words[2] for words in lines if len(words) == 3 and words[0] in {"fault", "probe", "action"}
    }
    assert found["process.kill"] == "chaoskit.drivers.process.signalling:Kill"
    assert found["tcp.connect"] == "chaoskit.drivers.tcp.ports:Connect"
    assert "entry point 'tcp' = chaoskit.drivers.tcp:driver of chaoskit" in output
    # Every line names code that is there: module:Class imports and is the registered class.
    loaded = registry.load()
    every = {**loaded.faults, **loaded.actions, **loaded.probes}
    assert set(found) == set(every)
    for where in found.values():
        module, _, attribute = where.partition(":")
        assert hasattr(importlib.import_module(module), attribute), where


def test_source_for_one_activity_and_in_json() -> None:
    code, output = _invoke("--source", "process.command")
    assert code == 0
    assert "probe  process.command  chaoskit.drivers.process." in output
    assert "action process.command  chaoskit.drivers.process." in output
    code, text = _invoke("--source", "tcp.connect", "--output", "json")
    [tcp] = json.loads(text)
    assert tcp["origin"].startswith("entry point 'tcp'")
    assert tcp["probes"][0]["source"] == "chaoskit.drivers.tcp.ports:Connect"
    # Without --source the JSON is as it was.
    [plain] = json.loads(_invoke("tcp.connect", "--output", "json")[1])
    assert "origin" not in plain and "source" not in plain["probes"][0]


def test_json_for_one_activity_has_its_arguments() -> None:
    code, output = _invoke("process.stop", "--output", "json")
    assert code == 0
    [process] = json.loads(output)
    assert [f["name"] for f in process["faults"]] == ["process.stop"]
    assert {"pid", "pidfile", "name"} <= {a["name"] for a in process["faults"][0]["args"]}


@pytest.mark.parametrize(("typo", "meant"), [("toxiproxy.latncy", "toxiproxy.latency"), ("dockr", "docker")])
def test_an_unknown_name_is_exit_2_with_the_closest_name(typo: str, meant: str) -> None:
    code, output = _invoke(typo)
    assert code == 2
    assert f"did you mean {meant!r}?" in output
    assert "Traceback" not in output


def test_the_summary_and_one_activity_do_only_the_work_they_show() -> None:
    # What made `chaoskit drivers` take 2.7 s: reading the source of every argument model, and
    # importing every driver for one name.
    code = textwrap.dedent(
        """
        import sys
        from chaoskit import describing
        from chaoskit.cli import main
        for args in (["drivers"], ["drivers", "toxiproxy.latency"]):
            try:
                main.cli(args)
            except SystemExit:
                pass
            print("described:", sorted(m.__name__ for m in describing._described))
            for name in list(sys.modules):
                if name.startswith("chaoskit.drivers."):
                    del sys.modules[name]
        """
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    summary, one = [line for line in ran.stdout.splitlines() if line.startswith("described:")]
    assert summary == "described: []"
    assert "LatencyArgs" in one and "BandwidthArgs" not in one, one

    code = textwrap.dedent(
        """
        import sys
        from chaoskit.cli import main
        try:
            main.cli(["drivers", "toxiproxy.latency"])
        except SystemExit:
            pass
        print(sorted({m.split(".")[2] for m in sys.modules if m.startswith("chaoskit.drivers.")}))
        """
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = set(eval(ran.stdout.splitlines()[-1]))
    assert "toxiproxy" in loaded
    assert not loaded & {"process", "http", "python", "docker", "kubernetes", "prometheus"}, loaded


def _dist_with(tmp_path: Path, direct_url: dict[str, object] | None) -> metadata.Distribution:
    info = tmp_path / "chaoskit-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: chaoskit\nVersion: 0.1.0\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return metadata.PathDistribution(info)


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        # pip install -e . in a checkout (scripts/test's venv)
        ({"url": "file://{root}", "dir_info": {"editable": True}}, "install -e '.[docker]'"),
        # the README's .venv/bin/pip install . in a fresh clone
        ({"url": "file://{root}", "dir_info": {}}, "install '.[docker]'"),
        # from an index
        (None, "install 'chaoskit[docker]'"),
        (
            {"url": "https://files.example/chaoskit-0.1.0.whl", "archive_info": {}},
            "install 'chaoskit[docker]'",
        ),
    ],
)
def test_the_install_hint_for_a_missing_extra_fits_the_installation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct_url: dict[str, object] | None, expected: str
) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    if direct_url is not None:
        direct_url = {**direct_url, "url": str(direct_url["url"]).format(root=checkout)}
    dist = _dist_with(tmp_path, direct_url)
    monkeypatch.setattr(metadata, "distribution", lambda name: dist)
    monkeypatch.chdir(checkout)
    docker = contract.Driver(
        name="docker",
        summary="",
        missing=lambda: "the docker SDK is not installed: pip install 'chaoskit[docker]'",
    )

    [data] = drivers.describe(registry.build([docker]), full=False)

    assert data["unavailable"].startswith("the docker SDK is not installed: ")
    assert data["unavailable"].endswith(expected), data["unavailable"]
    assert "pip" in data["unavailable"]
