"""Crash safety of the resource faults: ``chaoskit run`` is SIGKILLed while a stressor runs (on this
host, or inside a container on the real Docker engine); after ``chaoskit recover`` no stressor is
left and the file a fill wrote is gone, observed from outside."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.crash import killing
from tests.integration.docker.conftest import Web


def _stressors() -> dict[int, str]:
    """Every process carrying a stressor's mark, and the mark."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(v.startswith(b"CHAOSKIT_STRESSOR=") for v in environ):  # stressors and responders
                marks = [v for v in environ if v.startswith(b"CHAOSKIT_ENTRY=")]
                found[int(entry.name)] = marks[0].decode() if marks else ""
    return found


def _ours(folder: Path) -> list[int]:
    """The stressors of the runs whose state is under ``folder`` (other tests run beside this one)."""
    runs = {p.stem for p in folder.glob("m*/state/ledgers/*.jsonl")}
    return [
        pid
        for pid, mark in _stressors().items()
        if mark.removeprefix("CHAOSKIT_ENTRY=").split("/")[0] in runs
    ]


def test_a_local_fill_and_its_stressor_are_gone_after_a_sigkill_and_recover(tmp_path: Path) -> None:
    target = tmp_path / "fill"
    target.mkdir()
    delays = killing.moments("process.fill_disk", count=2)

    def moment(index: int, delay: float) -> None:
        folder = tmp_path / f"m{index}"
        place = target / str(index)
        place.mkdir()
        killing.crash_and_recover(
            folder,
            "title: fill then crash\nmethod:\n  - fault: process.fill_disk\n"
            f"    with: {{path: '{place}', size: 4MiB}}\n    duration: 1h\n",
            delay,
            left_behind=lambda: len(list(place.iterdir())) == 1 and bool(_ours(tmp_path)),
        )
        assert list(place.iterdir()) == [], "the fill's file outlived recover"

    killing.each_moment(delays, moment)
    assert _ours(tmp_path) == [], "a stressor outlived recover"


@pytest.mark.docker
def test_a_container_stressor_and_its_file_are_gone_after_a_sigkill_and_recover(
    web: Callable[..., Web], tmp_path: Path
) -> None:
    delays = killing.moments("docker.container.fill_disk", count=2)
    sites = [web() for _ in delays]

    def files(site: Web) -> str:
        return bytes(site.container.exec_run(["ls", "-a", "/tmp"]).output).decode()

    def moment(index: int, delay: float) -> None:
        site = sites[index]
        killing.crash_and_recover(
            tmp_path / f"m{index}",
            "title: stress then crash\nmethod:\n"
            "  - fault: docker.container.fill_disk\n"
            f"    with: {{name: {site.name}, path: /tmp, size: 4MiB}}\n"
            "    duration: 1h\n    background: true\n"
            f"  - fault: docker.container.stress_memory\n    with: {{name: {site.name}, size: 16MiB}}\n"
            "    duration: 1h\n",
            delay,
            applied=2,
            left_behind=lambda: ".chaoskit-" in files(site) and len(_ours(tmp_path)) >= 2,
        )
        assert ".chaoskit-" not in files(site), "the fill's file outlived recover"
        assert site.ok()

    killing.each_moment(delays, moment)
    assert _ours(tmp_path) == [], "a stressor outlived recover"


@pytest.mark.docker
def test_a_dns_redirect_and_its_responder_are_gone_after_a_sigkill_and_recover(
    web: Callable[..., Web], tmp_path: Path
) -> None:
    delays = killing.moments("docker.network.dns", count=2)
    sites = [web() for _ in delays]

    def redirected(site: Web) -> bool:
        pid = str(site.reload().attrs["State"]["Pid"])
        rules = subprocess.run(
            ["nsenter", "-t", pid, "-n", "iptables", "-w", "-t", "nat", "-S", "OUTPUT"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return "chaoskit:" in rules

    def moment(index: int, delay: float) -> None:
        site = sites[index]
        killing.crash_and_recover(
            tmp_path / f"m{index}",
            "title: dns then crash\nmethod:\n  - fault: docker.network.dns\n"
            f"    with: {{name: {site.name}, domains: [db.test]}}\n    duration: 1h\n",
            delay,
            left_behind=lambda: redirected(site) and bool(_ours(tmp_path)),
        )
        assert not redirected(site), "the DNS redirect outlived recover"

    killing.each_moment(delays, moment)
    assert _ours(tmp_path) == [], "a responder outlived recover"


@pytest.mark.docker
def test_a_process_frozen_inside_a_container_runs_again_after_a_sigkill_and_recover(
    web: Callable[..., Web], tmp_path: Path
) -> None:
    delays = killing.moments("docker.container.stop_process", count=2)
    sites = [web() for _ in delays]

    def state(site: Web) -> str:
        """The state letter of the container's ``sleep 700`` (as ps shows it inside)."""
        shown = bytes(site.container.exec_run(["ps", "-o", "stat,args"]).output).decode()
        return next((line.split()[0] for line in shown.splitlines() if "sleep 700" in line), "")

    def moment(index: int, delay: float) -> None:
        site = sites[index]
        site.container.exec_run(["sh", "-c", "sleep 700 &"], detach=True)
        killing.wait_for("sleep inside the container", lambda: state(site).startswith("S"), timeout=10)
        killing.crash_and_recover(
            tmp_path / f"m{index}",
            "title: freeze then crash\nmethod:\n  - fault: docker.container.stop_process\n"
            f"    with: {{name: {site.name}, pattern: 'sleep 700'}}\n    duration: 1h\n",
            delay,
            left_behind=lambda: state(site).startswith("T"),
        )
        killing.wait_for("the process running again", lambda: state(site).startswith("S"), timeout=10)

    killing.each_moment(delays, moment)
