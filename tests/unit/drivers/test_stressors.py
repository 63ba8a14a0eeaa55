"""The resource faults' arguments, the cgroup lookup, and the stressor itself on this host (real
processes, real files): the load is in place when inject returns, the revert stops every process
that carries the mark and removes the files, even after a SIGKILL, and the stressor ends by itself
at ``max_duration``."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from chaoskit.drivers import contract, registry
from chaoskit.drivers.docker import dns as docker_dns
from chaoskit.drivers.docker import processes as docker_processes
from chaoskit.drivers.docker import stressing as docker_stressing
from chaoskit.drivers.process import starting, stressing
from chaoskit.engine import ledgers, recovering
from chaoskit.errors import DriverError
from chaoskit.stressors import cgroups, inside, loads, resolver, spawning

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (4096, 4096),
        ("4096", 4096),
        ("256MiB", 256 * MiB),
        ("256Mi", 256 * MiB),
        ("1GB", 10**9),
        ("1.5k", 1500),
    ],
)
def test_sizes_are_read_with_their_units(text: Any, size: int) -> None:
    assert loads.parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "12 parsecs", "-5MiB", True, 1.5, ""])
def test_a_size_that_is_not_one_is_refused_with_an_example(text: Any) -> None:
    with pytest.raises(ValueError, match="256MiB"):
        loads.parse_size(text)


@pytest.mark.parametrize(
    ("fault", "args", "complaint"),
    [
        (stressing.StressCpu(), {"load": 0}, "greater than 0"),
        (stressing.StressCpu(), {"load": 150}, "less than or equal to 100"),
        (stressing.StressCpu(), {"workers": 0}, "greater than or equal to 1"),
        (stressing.StressCpu(), {"max_duration": "0s"}, "greater than 0"),
        (stressing.StressMemory(), {}, "size"),
        (stressing.StressMemory(), {"size": "lots"}, "256MiB"),
        (stressing.FillDisk(), {"path": "/tmp"}, "exactly one of size or percent_full"),
        (
            stressing.FillDisk(),
            {"path": "/tmp", "size": "1MiB", "percent_full": 5},
            "exactly one of size or percent_full",
        ),
        (stressing.FillDisk(), {"path": "/tmp", "percent_full": 101}, "less than or equal to 100"),
        (stressing.StressIo(), {"path": "/tmp", "mode": "append"}, "'read', 'write' or 'both'"),
        (stressing.StressIo(), {"path": "/tmp", "size": "4k"}, "greater than or equal to 1048576"),
        (stressing.StressCpu(), {"loud": 50}, "Extra inputs are not permitted"),
        (docker_stressing.StressCpu(), {"load": 50}, "say which containers"),
        (docker_processes.StopProcess(), {"name": "web"}, r"give process \(a name\) or pattern"),
        (docker_processes.KillProcess(), {"name": "web", "process": "x", "signal": "STOP"}, "stop_process"),
        (
            docker_processes.KillProcess(),
            {"name": "web", "process": "x", "signal": "SIGNOPE"},
            "unknown signal",
        ),
        (docker_processes.KillProcess(), {"name": "web", "pattern": "("}, "regular expression"),
    ],
)
def test_arguments_are_checked_before_anything_runs(
    fault: contract.Fault[Any, Any], args: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        fault.args.model_validate(args)


def test_a_signal_is_read_by_name_or_number() -> None:
    kill = docker_processes.KillProcess()
    assert kill.args.model_validate({"name": "w", "process": "x", "signal": "term"}).signal == signal.SIGTERM
    assert kill.args.model_validate({"name": "w", "process": "x", "signal": 9}).signal == signal.SIGKILL


MOUNTINFO_V1 = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def _make(root: Path, *folders: str) -> None:
    for folder in folders:
        (root / folder).mkdir(parents=True)
        (root / folder / "cgroup.procs").write_text("")


def test_the_cgroups_of_a_process_are_found_in_every_hierarchy(tmp_path: Path) -> None:
    mountinfo = MOUNTINFO_V1.replace("/sys/fs/cgroup", str(tmp_path))
    _make(tmp_path, "cpu,cpuacct/docker/abc", "memory/docker/abc", "systemd/docker/abc", "unified/docker/abc")
    cgroup = "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/docker/abc\n"
    found = cgroups.procs_files(1, mountinfo=mountinfo, cgroup=cgroup)
    assert found == [
        f"{tmp_path}/memory/docker/abc/cgroup.procs",
        f"{tmp_path}/cpu,cpuacct/docker/abc/cgroup.procs",
        f"{tmp_path}/systemd/docker/abc/cgroup.procs",
        f"{tmp_path}/unified/docker/abc/cgroup.procs",
    ]


def test_a_pure_cgroup_v2_host_and_a_namespaced_mount_root(tmp_path: Path) -> None:
    # Inside a cgroup namespace (or a nested container) the mount's root is a sub-path.
    mountinfo = f"30 23 0:26 /kubepods {tmp_path} rw - cgroup2 cgroup2 rw\n"
    _make(tmp_path, "pod1/ctr")
    found = cgroups.procs_files(1, mountinfo=mountinfo, cgroup="0::/kubepods/pod1/ctr\n")
    assert found == [f"{tmp_path}/pod1/ctr/cgroup.procs"]


# --- the stressor on this host ------------------------------------------------------------------


@pytest.fixture
def ctx() -> Iterator[contract.RunContext]:
    run = contract.RunContext(run_id=f"unit-{os.urandom(4).hex()}", entry="f7")
    yield run
    spawning.stop(spawning.mark(run), ())  # whatever a failed test left


def _apply(fault: contract.Fault[Any, Any], args: dict[str, Any], ctx: contract.RunContext) -> Any:
    parsed = fault.args.model_validate(args)
    [target] = fault.targets(parsed, ctx)
    record = fault.prepare(parsed, target, ctx)
    done = fault.inject(parsed, target, record, ctx)
    # What recover reads: the revert data through JSON.
    return contract.load_revert(fault, json.loads(json.dumps(contract.dump_revert(done))))


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def test_memory_is_resident_when_inject_returns_and_released_on_revert(ctx: contract.RunContext) -> None:
    fault = stressing.StressMemory()
    record = _apply(fault, {"size": "48MiB"}, ctx)
    [pid] = spawning.carrying(record.mark)
    assert _rss(pid) >= 48 * MiB
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert f"{starting.RUN_ID}={ctx.run_id}".encode() in environ  # the process driver's sweep finds it
    assert fault.revert(record, ctx) is contract.RevertOutcome.REVERTED
    assert spawning.carrying(record.mark) == []
    assert fault.revert(record, ctx) is contract.RevertOutcome.ALREADY_CLEAN


def test_a_fill_takes_the_space_and_a_sigkilled_stressors_file_is_removed_by_the_revert(
    tmp_path: Path, ctx: contract.RunContext
) -> None:
    fault = stressing.FillDisk()
    record = _apply(fault, {"path": str(tmp_path), "size": "8MiB"}, ctx)
    [path] = record.files
    assert Path(path).stat().st_size == 8 * MiB
    assert Path(path).name.startswith(".chaoskit-unit-")
    for pid in spawning.carrying(record.mark):
        os.kill(pid, signal.SIGKILL)  # its own cleanup never runs
    time.sleep(0.2)
    assert Path(path).exists()
    assert fault.revert(record, ctx) is contract.RevertOutcome.REVERTED
    assert not Path(path).exists()


def test_a_fill_by_percent_full_writes_what_is_missing_and_never_more_than_is_free(tmp_path: Path) -> None:
    stats = os.statvfs(tmp_path)
    total, free = stats.f_blocks * stats.f_frsize, stats.f_bavail * stats.f_frsize
    used = 100 * (total - free) / total
    assert spawning.fill_size(loads.FillLoad(path=str(tmp_path), percent_full=100), str(tmp_path)) == free
    assert (
        spawning.fill_size(loads.FillLoad(path=str(tmp_path), percent_full=max(used - 1, 0.1)), str(tmp_path))
        == 0
    )
    if used < 99:
        half_way = spawning.fill_size(
            loads.FillLoad(path=str(tmp_path), percent_full=used + 1), str(tmp_path)
        )
        assert abs(half_way - total / 100) < 4 * 1024 * 1024
    assert spawning.fill_size(loads.FillLoad(path=str(tmp_path), size=1024), str(tmp_path)) == 1024


def test_io_workers_write_their_files_and_the_revert_leaves_none(
    tmp_path: Path, ctx: contract.RunContext
) -> None:
    fault = stressing.StressIo()
    record = _apply(fault, {"path": str(tmp_path), "workers": 2, "size": "1MiB", "mode": "write"}, ctx)
    deadline = time.monotonic() + 10
    while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(f).name for f in record.files)
    assert len(spawning.carrying(record.mark)) == 3  # the stressor and its two workers
    assert fault.revert(record, ctx) is contract.RevertOutcome.REVERTED
    assert list(tmp_path.iterdir()) == []


def test_the_stressor_ends_by_itself_at_max_duration_and_removes_its_file(
    tmp_path: Path, ctx: contract.RunContext
) -> None:
    record = _apply(stressing.FillDisk(), {"path": str(tmp_path), "size": "1MiB", "max_duration": "1s"}, ctx)
    deadline = time.monotonic() + 15
    while spawning.carrying(record.mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert spawning.carrying(record.mark) == []
    assert list(tmp_path.iterdir()) == []


def test_cpu_workers_stop_when_their_stressor_is_killed(ctx: contract.RunContext) -> None:
    record = _apply(stressing.StressCpu(), {"workers": 2, "load": 10}, ctx)
    pids = spawning.carrying(record.mark)
    assert len(pids) == 3
    os.kill(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while spawning.carrying(record.mark) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spawning.carrying(record.mark) == []  # orphaned workers see it and end


def test_a_stressor_that_fails_says_why_and_leaves_nothing(tmp_path: Path, ctx: contract.RunContext) -> None:
    missing = tmp_path / "nowhere"
    fault = stressing.StressIo()
    with pytest.raises(DriverError, match=r"stressor exited with code 1 .*No such file"):
        _apply(fault, {"path": str(missing)}, ctx)
    assert spawning.carrying(spawning.mark(ctx)) == []


def test_the_revert_works_in_a_fresh_process_from_the_ledgered_data(ctx: contract.RunContext) -> None:
    fault = stressing.StressCpu()
    record = _apply(fault, {"load": 5}, ctx)
    stored = json.dumps(contract.dump_revert(record))
    script = (
        "import json, sys\n"
        "from chaoskit.drivers import contract\n"
        "from chaoskit.drivers.process import stressing\n"
        "f = stressing.StressCpu()\n"
        "r = contract.load_revert(f, json.loads(sys.argv[1]))\n"
        "print(f.revert(r, contract.RunContext(run_id='recover')).value)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, stored], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "reverted", done.stderr
    assert spawning.carrying(record.mark) == []


# --- the DNS responder ---------------------------------------------------------------------------


def _query(name: str, qtype: int = 1, ident: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", qtype, 1)


def _ask(port: int, name: str, qtype: int = 1) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        client.sendto(_query(name, qtype), ("127.0.0.1", port))
        return client.recvfrom(4096)[0]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def responders() -> Iterator[tuple[int, int]]:
    """Two real responders on loopback: an upstream that answers 10.9.9.9 for every name, and the
    fault's, which fails ``*.blocked.test`` and forwards everything else to the first."""
    upstream_port, port = _free_udp_port(), _free_udp_port()
    base = spawning.interpreter(resolver.__file__)
    upstream = [*base, "--port", str(upstream_port), "--name", "*", "--answer", "10.9.9.9"]
    upstream += ["--upstream", "127.0.0.1", "--seconds", "60"]
    fault = [*base, "--port", str(port), "--name", "*.blocked.test", "--answer", "nxdomain"]
    fault += ["--upstream", f"127.0.0.1:{upstream_port}", "--seconds", "60"]
    children = [subprocess.Popen(argv, stdout=subprocess.PIPE) for argv in (upstream, fault)]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        yield upstream_port, port
    finally:
        for child in children:
            child.kill()
            child.wait(timeout=10)
            if child.stdout is not None:
                child.stdout.close()


def test_the_responder_fails_chosen_names_and_pins_addresses(responders: tuple[int, int]) -> None:
    upstream_port, port = responders
    nx = _ask(port, "api.BLOCKED.test")
    assert nx[:2] == b"\x12\x34" and nx[3] & 0x0F == 3  # same id, NXDOMAIN
    pinned = _ask(upstream_port, "anything.test")
    assert pinned[3] & 0x0F == 0 and pinned.endswith(bytes([10, 9, 9, 9]))
    nodata = _ask(upstream_port, "anything.test", qtype=28)  # AAAA of a pinned name: no records
    assert struct.unpack("!H", nodata[6:8])[0] == 0


def test_the_responder_answers_SERVFAIL_when_asked(responders: tuple[int, int]) -> None:
    query = _query("x.test")
    asked = resolver.question(query)
    assert asked is not None and asked[:2] == ("x.test", 1)
    assert resolver.answer(query, asked[2], asked[1], "servfail")[3] & 0x0F == 2


def test_names_not_chosen_are_forwarded_with_the_mark_the_redirect_lets_through(
    responders: tuple[int, int],
) -> None:
    # Forwarding sets SO_MARK, which needs CAP_NET_ADMIN: the fault runs as root on the Docker host.
    # On a host where kube-proxy runs, a mark with its 0x4000 bit got these queries masqueraded.
    if os.geteuid() != 0:
        pytest.skip("SO_MARK needs root")
    _, port = responders
    assert _ask(port, "kept.test").endswith(bytes([10, 9, 9, 9]))


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ({"name": "web", "domains": []}, "at least 1 item"),
        ({"name": "web", "domains": ["bad name"]}, "not a DNS name"),
        ({"name": "web", "domains": ["db"], "answer": "refused"}, "nxdomain, servfail or an IPv4 address"),
        ({"name": "web", "domains": ["db"], "answer": "::1"}, "nxdomain, servfail or an IPv4 address"),
        ({"domains": ["db"]}, "say which containers"),
    ],
)
def test_dns_arguments_are_checked(args: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        docker_dns.Dns().args.model_validate(args)


def test_the_dns_rule_is_known_before_inject_so_recover_deletes_exactly_it() -> None:
    ctx = contract.RunContext(run_id="r1", entry="f3")
    fault = docker_dns.Dns()
    args = fault.args.model_validate({"name": "web", "domains": ["db"]})
    record = fault.prepare(args, contract.Target(kind="container", id="c" * 64, name="web"), ctx)
    assert record.rule[-1] == str(inside.responder_port("r1/f3"))
    assert "chaoskit:r1" in record.rule
    assert 20000 <= inside.responder_port("r1/f3") < 60000


def test_the_sweep_stops_a_dead_runs_stressor_which_removes_its_file(tmp_path: Path) -> None:
    """Without the ledger entry: the process driver's sweep finds the stressor by CHAOSKIT_RUN_ID."""
    run_id = f"dead-stress-{os.urandom(3).hex()}"
    ctx = contract.RunContext(run_id=run_id, entry="f1")
    place = tmp_path / "fill"
    place.mkdir()
    record = _apply(stressing.FillDisk(), {"path": str(place), "size": "1MiB"}, ctx)
    state = tmp_path / "state"
    ledgers.Ledger.create(state, run_id).close()  # a dead run: its ledger is all that is left
    try:
        drivers = registry.build([*registry.load(only=["process"]).drivers.values()])
        report = recovering.recover(state, drivers, sweep=True)
        assert any(f"of run {run_id}" in line for line in report.swept), report.swept
        deadline = time.monotonic() + 15
        while spawning.carrying(record.mark) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert spawning.carrying(record.mark) == []
        assert list(place.iterdir()) == []
    finally:
        spawning.stop(record.mark, record.files)


@pytest.mark.parametrize(
    ("size", "said"), [(32 * MiB, "32MiB"), (1536 * MiB, "1.5GiB"), (4096, "4KiB"), (10, "10 bytes")]
)
def test_sizes_are_said_the_way_they_are_written(size: int, said: str) -> None:
    assert loads.human(size) == said
    assert loads.parse_size(said.replace(" bytes", "")) == size


def test_a_dns_fault_forwards_to_the_targets_first_ipv4_nameserver_or_says_why_not(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    with pytest.raises(DriverError, match=r"can't read the container's /etc/resolv\.conf"):
        inside.resolv_upstream(str(tmp_path), "the container")
    conf = tmp_path / "etc" / "resolv.conf"
    conf.write_text("search cluster.local\nnameserver fd00::10\n")
    with pytest.raises(DriverError, match=r"the target's /etc/resolv\.conf names no IPv4 nameserver"):
        inside.resolv_upstream(str(tmp_path), "the target")
    conf.write_text("nameserver fd00::10\nnameserver 10.96.0.10\nnameserver 10.0.0.2\n")
    assert inside.resolv_upstream(str(tmp_path), "the target") == "10.96.0.10"
