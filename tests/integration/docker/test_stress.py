"""Resource faults and process faults inside containers on the real Docker engine, measured from
outside: the container's own cgroup counters (CPU time, memory charged), its filesystem as
``df`` sees it through the container's root, and its processes as the host sees them; and nothing
of the stressor left after the revert."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chaoskit.drivers import contract
from chaoskit.drivers.docker import dns, leftovers
from chaoskit.drivers.process import driver as process_driver
from chaoskit.errors import DriverError
from chaoskit.stressors import cgroups, loads, resolver, spawning
from tests.integration.docker import faulting
from tests.integration.docker.conftest import HTTP_IMAGE, TEST_LABEL, Web, wait_until

pytestmark = pytest.mark.docker

MiB = 1024 * 1024


def _pid(container: Any) -> int:
    container.reload()
    return int(container.attrs["State"]["Pid"])


def _cgroup_file(container: Any, v1: str, v2: str) -> Path:
    for procs in cgroups.procs_files(_pid(container)):
        folder = Path(procs).parent
        for name in (v1, v2):
            if (folder / name).exists():
                return folder / name
    raise AssertionError(f"no {v1} or {v2} for container {container.name}")


def cpu_seconds(container: Any) -> float:
    """CPU time charged to the container's cgroup so far (cgroup v1 cpuacct or v2 cpu.stat)."""
    path = _cgroup_file(container, "cpuacct.usage", "cpu.stat")
    text = path.read_text()
    if path.name == "cpu.stat":
        usec = next(line.split()[1] for line in text.splitlines() if line.startswith("usage_usec"))
        return int(usec) / 1e6
    return int(text) / 1e9


def memory_bytes(container: Any) -> int:
    """Memory charged to the container's cgroup now, page cache left out where the kernel says it."""
    path = _cgroup_file(container, "memory.stat", "memory.stat")
    stat = dict(line.split() for line in path.read_text().splitlines())
    # v1: rss (anonymous, resident); v2: anon.
    return int(stat.get("total_rss", stat.get("rss", stat.get("anon", "0"))))


def cpu_rate(container: Any, seconds: float = 2.0) -> float:
    """CPUs' worth of time the container used over ``seconds``."""
    before, start = cpu_seconds(container), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(container) - before) / (time.monotonic() - start)


def stressors(records: list[contract.Revert]) -> list[int]:
    """The live processes carrying the marks of ``records`` (a stressor and its workers, a responder)."""
    return [
        pid
        for record in records
        if isinstance(record, loads.StressRevert | dns.DnsRevert)
        for pid in spawning.carrying(record.mark)
    ]


def _ticks(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


BUSY = "import time\nend = time.monotonic() + 15\nwhile time.monotonic() < end:\n    pass\n"
"""A plain busy loop on the host, bounded in time: what a fully busy process gets here right now."""


def test_cpu_stress_is_counted_against_the_container_near_the_requested_load_and_stops_on_revert(
    web: Callable[..., Web], ctx: contract.RunContext
) -> None:
    site = web()
    records = faulting.apply("docker.container.stress_cpu", {"name": site.name}, ctx)
    reference = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(0.5)
        pids = stressors(records)
        container_before, stressor_before = cpu_seconds(site.container), _ticks(pids)
        reference_before = _ticks([reference.pid])
        time.sleep(3.0)
        charged = cpu_seconds(site.container) - container_before
        used = _ticks(pids) - stressor_before
        plain = _ticks([reference.pid]) - reference_before
        # One worker at 100% gets about what a plain busy loop beside it gets (the machine is shared:
        # that is less than a CPU when it is busy), and all of it is charged to the container.
        assert used >= 0.5 * plain, (used, plain)
        assert charged >= 0.9 * used, (charged, used)
        assert site.ok(), "the container stops answering under a busy worker"
    finally:
        reference.kill()
        reference.wait(timeout=10)
        assert faulting.revert("docker.container.stress_cpu", records, ctx) == ["reverted"]
    assert stressors(records) == []
    assert cpu_rate(site.container) < 0.1
    assert faulting.revert("docker.container.stress_cpu", records, ctx) == ["already-clean"]


def test_a_partial_cpu_load_stays_under_its_share(web: Callable[..., Web], ctx: contract.RunContext) -> None:
    site = web()
    records = faulting.apply("docker.container.stress_cpu", {"name": site.name, "load": 30}, ctx)
    try:
        time.sleep(0.5)
        rate = cpu_rate(site.container, 3.0)
        assert 0.02 < rate < 0.45, rate  # 30% of a CPU asked; a busy loop would take a whole one
    finally:
        faulting.revert("docker.container.stress_cpu", records, ctx)


def test_memory_stress_is_resident_in_the_container_and_freed_on_revert(
    web: Callable[..., Web], ctx: contract.RunContext
) -> None:
    site = web()
    before = memory_bytes(site.container)
    records = faulting.apply("docker.container.stress_memory", {"name": site.name, "size": "128MiB"}, ctx)
    try:
        held = memory_bytes(site.container) - before
        assert 128 * MiB <= held < 128 * MiB + 40 * MiB, held / MiB
    finally:
        faulting.revert("docker.container.stress_memory", records, ctx)
    assert wait_until(lambda: memory_bytes(site.container) - before < 16 * MiB, 10)
    assert stressors(records) == []


@pytest.fixture
def scratch(engine: Any) -> Iterator[Any]:
    """A container with a 64 MiB filesystem of its own at /scratch (a tmpfs): what it holds is not
    moved by other tests writing to the host's disk meanwhile."""
    import uuid

    container = engine.containers.run(
        HTTP_IMAGE,
        detach=True,
        name=f"ck-test-{uuid.uuid4().hex[:8]}",
        tmpfs={"/scratch": "size=64m"},
        labels={TEST_LABEL: "1"},
    )
    try:
        yield container
    finally:
        container.remove(force=True)


def used_percent(container: Any, path: str) -> float:
    stats = os.statvfs(f"/proc/{_pid(container)}/root{path}")
    return 100.0 * (stats.f_blocks - stats.f_bavail) / stats.f_blocks


def test_disk_fill_takes_the_space_and_gives_it_back(scratch: Any, ctx: contract.RunContext) -> None:
    assert used_percent(scratch, "/scratch") < 1
    records = faulting.apply(
        "docker.container.fill_disk", {"name": scratch.name, "path": "/scratch", "percent_full": 75}, ctx
    )
    try:
        assert 74 <= used_percent(scratch, "/scratch") <= 76
        assert ".chaoskit-" in bytes(scratch.exec_run(["ls", "-a", "/scratch"]).output).decode()
    finally:
        faulting.revert("docker.container.fill_disk", records, ctx)
    assert bytes(scratch.exec_run(["ls", "-a", "/scratch"]).output).decode().count(".chaoskit-") == 0
    assert used_percent(scratch, "/scratch") < 1


def test_disk_fill_by_size_in_the_containers_own_layer(
    web: Callable[..., Web], ctx: contract.RunContext
) -> None:
    site = web()
    records = faulting.apply(
        "docker.container.fill_disk", {"name": site.name, "path": "/tmp", "size": "16MiB"}, ctx
    )
    try:
        listing = bytes(site.container.exec_run(["ls", "-l", "-a", "/tmp"]).output).decode()
        assert str(16 * MiB) in listing and ".chaoskit-" in listing
    finally:
        faulting.revert("docker.container.fill_disk", records, ctx)
    assert ".chaoskit-" not in bytes(site.container.exec_run(["ls", "-a", "/tmp"]).output).decode()


def test_a_fill_file_left_by_a_sigkilled_stressor_is_removed_by_the_revert_even_when_stopped(
    web: Callable[..., Web], ctx: contract.RunContext
) -> None:
    site = web()
    records = faulting.apply(
        "docker.container.fill_disk", {"name": site.name, "path": "/tmp", "size": "8MiB"}, ctx
    )
    for pid in stressors(records):
        os.kill(pid, 9)  # its own cleanup never runs
    site.container.stop(timeout=1)
    assert faulting.revert("docker.container.fill_disk", records, ctx) == ["reverted"]
    site.container.start()
    assert wait_until(site.ok, 30)
    assert ".chaoskit-" not in site.container.exec_run(["ls", "-a", "/tmp"]).output.decode()


def test_io_stress_writes_inside_the_container_and_leaves_no_file(
    web: Callable[..., Web], ctx: contract.RunContext
) -> None:
    site = web()
    records = faulting.apply(
        "docker.container.stress_io", {"name": site.name, "path": "/tmp", "workers": 2, "size": "4MiB"}, ctx
    )
    try:
        assert wait_until(
            lambda: site.container.exec_run(["ls", "-a", "/tmp"]).output.count(b".chaoskit-") == 2, 10
        )
    finally:
        faulting.revert("docker.container.stress_io", records, ctx)
    assert b".chaoskit-" not in site.container.exec_run(["ls", "-a", "/tmp"]).output
    assert stressors(records) == []


def test_the_stressor_dies_with_its_container(web: Callable[..., Web], ctx: contract.RunContext) -> None:
    site = web()
    records = faulting.apply("docker.container.stress_cpu", {"name": site.name, "load": 10}, ctx)
    assert stressors(records)
    site.container.kill()
    assert wait_until(lambda: not stressors(records), 10)
    assert faulting.revert("docker.container.stress_cpu", records, ctx) == ["already-clean"]


def _states(site: Web, name: str) -> list[str]:
    pid = _pid(site.container)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(pid):
            try:
                if os.readlink(f"/proc/{entry.name}/ns/pid") != os.readlink(f"/proc/{pid}/ns/pid"):
                    continue
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if f"({name})" in stat:
                found.append(stat[stat.rindex(")") + 2])
    return found


def test_a_process_inside_a_container_is_stopped_then_continued(
    web: Callable[..., Web], ctx: contract.RunContext
) -> None:
    site = web()
    site.container.exec_run(["sh", "-c", "sleep 600 &"], detach=True)
    assert wait_until(lambda: _states(site, "sleep") == ["S"], 10)
    records = faulting.apply("docker.container.stop_process", {"name": site.name, "process": "sleep"}, ctx)
    assert wait_until(lambda: _states(site, "sleep") == ["T"], 5)
    assert site.ok(), "the main process was frozen too"
    assert faulting.revert("docker.container.stop_process", records, ctx) == ["reverted"]
    assert wait_until(lambda: _states(site, "sleep") == ["S"], 5)


def test_a_process_inside_a_container_is_killed_by_pattern_and_the_main_one_spared(
    web: Callable[..., Web], ctx: contract.RunContext
) -> None:
    site = web()
    site.container.exec_run(["sh", "-c", "sleep 601 & sleep 602 &"], detach=True)
    assert wait_until(lambda: len(_states(site, "sleep")) == 2, 10)
    faulting.apply("docker.container.kill_process", {"name": site.name, "pattern": "sleep 60[12]|httpd"}, ctx)
    assert wait_until(lambda: _states(site, "sleep") == [], 5)
    assert site.ok(), "the main process (httpd) was killed without main: true"


# --- DNS ----------------------------------------------------------------------------------------


@pytest.fixture
def resolving(engine: Any) -> Iterator[Any]:
    """A container whose resolver is 127.0.0.1, with a stand-in resolver there (in its own network
    namespace: no query leaves the machine) that answers 10.9.9.9 for every name."""
    import uuid

    container = engine.containers.run(
        HTTP_IMAGE,
        detach=True,
        name=f"ck-test-{uuid.uuid4().hex[:8]}",
        dns=["127.0.0.1"],
        labels={TEST_LABEL: "1"},
    )
    upstream = None
    try:
        pid = _pid(container)
        argv = ["nsenter", "-t", str(pid), "-n", *spawning.interpreter(resolver.__file__), "--port", "53"]
        argv += ["--name", "*", "--answer", "10.9.9.9", "--upstream", "127.0.0.1", "--seconds", "120"]
        upstream = subprocess.Popen(argv, stdout=subprocess.PIPE)
        assert upstream.stdout is not None and upstream.stdout.readline() == b"ready\n"
        yield container
    finally:
        if upstream is not None:
            upstream.kill()
            upstream.wait(timeout=10)
            if upstream.stdout is not None:
                upstream.stdout.close()
        container.remove(force=True)


def lookup(container: Any, name: str) -> str:
    """What busybox nslookup inside the container says about ``name``."""
    return bytes(container.exec_run(["busybox", "nslookup", "-type=A", name]).output).decode()


def nat_rules(container: Any) -> str:
    done = subprocess.run(
        ["nsenter", "-t", str(_pid(container)), "-n", "iptables", "-w", "-t", "nat", "-S", "OUTPUT"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_dns_names_fail_inside_the_container_and_resolve_again_after_revert(
    resolving: Any, ctx: contract.RunContext
) -> None:
    assert "10.9.9.9" in lookup(resolving, "api.example.test")
    records = faulting.apply(
        "docker.network.dns",
        {"name": resolving.name, "domains": ["*.example.test"], "answer": "nxdomain"},
        ctx,
    )
    try:
        assert "NXDOMAIN" in lookup(resolving, "api.example.test")
        assert "10.9.9.9" in lookup(resolving, "other.test"), "names not chosen must still resolve"
        assert "chaoskit:" in nat_rules(resolving)
    finally:
        assert faulting.revert("docker.network.dns", records, ctx) == ["reverted"]
    assert "10.9.9.9" in lookup(resolving, "api.example.test")
    assert "chaoskit:" not in nat_rules(resolving)
    assert stressors(records) == []
    assert faulting.revert("docker.network.dns", records, ctx) == ["already-clean"]


@pytest.mark.parametrize(("answer", "said"), [("servfail", "SERVFAIL"), ("10.1.2.3", "10.1.2.3")])
def test_dns_names_can_fail_with_servfail_or_resolve_to_a_chosen_address(
    resolving: Any, ctx: contract.RunContext, answer: str, said: str
) -> None:
    records = faulting.apply(
        "docker.network.dns", {"name": resolving.name, "domains": ["db.test"], "answer": answer}, ctx
    )
    try:
        assert said in lookup(resolving, "db.test")
    finally:
        faulting.revert("docker.network.dns", records, ctx)
    assert "10.9.9.9" in lookup(resolving, "db.test")


def test_without_the_ledger_the_sweeps_take_the_dns_redirect_and_its_responder_back(
    resolving: Any, ctx: contract.RunContext
) -> None:
    records = faulting.apply("docker.network.dns", {"name": resolving.name, "domains": ["db.test"]}, ctx)
    assert "NXDOMAIN" in lookup(resolving, "db.test")
    # The ledger is lost: only the marks are left (the rule's comment, the responder's environment).
    swept = [*leftovers.sweep(ctx.run_id, ctx), *process_driver().sweep(ctx.run_id, ctx)]  # type: ignore[misc]
    assert "chaoskit:" not in nat_rules(resolving), swept
    assert wait_until(lambda: stressors(records) == [], 10), swept
    assert "10.9.9.9" in lookup(resolving, "db.test")


def test_memory_beyond_the_containers_limit_is_an_error_that_says_so(
    engine: Any, ctx: contract.RunContext
) -> None:
    import uuid

    container = engine.containers.run(
        HTTP_IMAGE,
        detach=True,
        name=f"ck-test-{uuid.uuid4().hex[:8]}",
        mem_limit="48m",
        memswap_limit="48m",
        labels={TEST_LABEL: "1"},
    )
    try:
        with pytest.raises(DriverError, match="out of memory") as raised:
            faulting.apply("docker.container.stress_memory", {"name": container.name, "size": "96MiB"}, ctx)
        assert "a memory limit" in raised.value.message
        container.reload()
        assert container.status == "running", "the OOM killer took the container's own process"
    finally:
        container.remove(force=True)
