"""The process driver against real processes: targeting, stop/continue seen in /proc, pid-reuse
protection, reverts from a fresh process, background starts and commands."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

from chaoskit import errors
from chaoskit.drivers import contract
from chaoskit.drivers.process import commanding, processes, signalling, starting
from chaoskit.drivers.process import driver as process_driver

DRIVER = process_driver()
KILL = next(f for f in DRIVER.faults if f.name == "process.kill")
STOP = next(f for f in DRIVER.faults if f.name == "process.stop")
RUNNING = next(p for p in DRIVER.probes if p.name == "process.running")
COMMAND = next(p for p in DRIVER.probes if p.name == "process.command")
COMMAND_ACTION = next(a for a in DRIVER.actions if a.name == "process.command")
START = next(a for a in DRIVER.actions if a.name == "process.start")


def wait_until(condition: Callable[[], bool], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def state(pid: int) -> str | None:
    info = processes.read(pid)
    return info.state if info else None


def ctx(seed: int = 0) -> contract.RunContext:
    return contract.RunContext(run_id="test", rng=random.Random(seed))


@pytest.fixture
def sleepers() -> Iterator[Callable[[int], tuple[str, list[subprocess.Popen[bytes]]]]]:
    """Start n sleeping processes carrying one unique marker in their command line."""
    started: list[subprocess.Popen[bytes]] = []

    def start(n: int) -> tuple[str, list[subprocess.Popen[bytes]]]:
        marker = f"ck-sleeper-{uuid.uuid4().hex[:12]}"
        batch = [
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker]) for _ in range(n)
        ]
        started.extend(batch)
        assert wait_until(lambda: all(processes.read(p.pid) is not None for p in batch))
        return marker, batch

    yield start
    for p in started:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            p.kill()
        p.wait(timeout=30)


def revert_in_fresh_process(fault: str, data: contract.RevertData | contract.Revert) -> str:
    """Revert as `chaoskit recover` would: in another process, from the ledgered JSON alone."""
    if isinstance(data, contract.Revert):
        data = contract.dump_revert(data)
    code = (
        "import json, sys\n"
        "from chaoskit.drivers import contract, process\n"
        "d = process.driver()\n"
        f"kind = {fault!r}\n"
        "data = json.loads(sys.argv[1])\n"
        "ctx = contract.RunContext(run_id='recover')\n"
        "if kind == 'process.start':\n"
        "    a = next(a for a in d.actions if a.name == kind)\n"
        "    print(a.undo(data, ctx).value)\n"
        "else:\n"
        "    f = next(f for f in d.faults if f.name == kind)\n"
        "    print(f.revert(contract.load_revert(f, data), ctx).value)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(data)], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


# -- targeting ---------------------------------------------------------------------------------------


def test_targets_by_pid_pidfile_name_and_cmdline(sleepers, tmp_path: Path) -> None:
    marker, procs = sleepers(3)
    pids = sorted(str(p.pid) for p in procs)

    by_pid = STOP.targets(STOP.args(pid=procs[0].pid), ctx())
    assert [t.id for t in by_pid] == [str(procs[0].pid)]

    pidfile = tmp_path / "w.pid"
    pidfile.write_text(f"{procs[1].pid}\n")
    assert [t.id for t in STOP.targets(STOP.args(pidfile=str(pidfile)), ctx())] == [str(procs[1].pid)]

    assert sorted(t.id for t in STOP.targets(STOP.args(cmdline=marker), ctx())) == pids
    # The process name is python's; name and cmdline combine.
    named = STOP.targets(STOP.args(name="^python", cmdline=marker), ctx())
    assert sorted(t.id for t in named) == pids
    assert all(t.kind == "process" and marker in t.detail["cmdline"] for t in named)


def test_count_and_percent_pick_at_random_and_the_seed_repeats_the_pick(sleepers) -> None:
    marker, _procs = sleepers(4)
    picks = {
        tuple(t.id for t in STOP.targets(STOP.args(cmdline=marker, count=2), ctx(seed))) for seed in range(12)
    }
    assert all(len(p) == 2 for p in picks)
    assert len(picks) > 1, "different seeds should pick different processes"
    again = [t.id for t in STOP.targets(STOP.args(cmdline=marker, count=2), ctx(7))]
    assert again == [t.id for t in STOP.targets(STOP.args(cmdline=marker, count=2), ctx(7))]
    assert len(STOP.targets(STOP.args(cmdline=marker, percent=50), ctx())) == 2
    with pytest.raises(errors.TargetError, match="max_targets"):
        STOP.targets(STOP.args(cmdline=marker, all=True, max_targets=3), ctx())


def test_chaoskit_and_its_parents_are_never_targets() -> None:
    with pytest.raises(errors.TargetError, match="chaoskit itself"):
        STOP.targets(STOP.args(pid=os.getpid()), ctx())
    with pytest.raises(errors.TargetError, match="chaoskit itself"):
        KILL.targets(KILL.args(pid=os.getppid()), ctx())
    # This test process's own command line matches; it must still not be picked (other pytest
    # runs on the machine may match too, and may be picked).
    me = processes.read(os.getpid())
    assert me is not None
    try:
        picked = {t.id for t in STOP.targets(STOP.args(cmdline="^" + re.escape(me.cmdline)), ctx())}
    except errors.TargetError as e:
        assert "no processes matched" in e.message
        picked = set()
    assert not picked & {str(p) for p in processes.protected()}


def test_a_process_name_with_spaces_and_parentheses_is_read_right(tmp_path: Path) -> None:
    program = tmp_path / "a b) (c"
    shutil.copy("/bin/sleep", program)
    with subprocess.Popen([str(program), "60"]) as proc:
        try:
            assert wait_until(
                lambda: (info := processes.read(proc.pid)) is not None and info.name == "a b) (c"
            )
            info = processes.read(proc.pid)
            assert info is not None and info.ppid == os.getpid() and info.starttime > 0
            (target,) = STOP.targets(STOP.args(name=r"^a b\) \(c$"), ctx())
            assert target.id == str(proc.pid)
        finally:
            proc.kill()


def test_missing_targets_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(errors.TargetError, match=r"pidfile .*missing"):
        STOP.targets(STOP.args(pidfile=str(tmp_path / "nope.pid")), ctx())
    with pytest.raises(errors.TargetError, match="no processes matched"):
        STOP.targets(STOP.args(cmdline=f"no-such-{uuid.uuid4().hex}"), ctx())


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"pid": 1, "name": "x"},
        {"name": "("},
        {"cmdline": "x", "count": 1, "all": True},
        {"name": "x", "bogus": 1},
    ],
)
def test_bad_selectors_are_refused_at_validation(bad: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        STOP.args(**bad)


@pytest.mark.parametrize(
    ("given", "number"), [("SIGKILL", 9), ("KILL", 9), ("kill", 9), (9, 9), ("9", 9), ("HUP", 1)]
)
def test_signals_by_name_or_number(given: object, number: int) -> None:
    assert KILL.args(pid=1, signal=given).signal == number


def test_unknown_and_freezing_signals_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="unknown signal"):
        KILL.args(pid=1, signal="SIGNOPE")
    with pytest.raises(pydantic.ValidationError, match=r"use process\.stop"):
        KILL.args(pid=1, signal="STOP")


# -- stop / continue ---------------------------------------------------------------------------------


def test_stop_freezes_and_revert_continues_and_a_fresh_process_can_revert_twice(sleepers) -> None:
    marker, (proc,) = sleepers(1)
    c = ctx()
    args = STOP.args(cmdline=marker)
    (target,) = STOP.targets(args, c)
    data = STOP.prepare(args, target, c)
    assert data.pid == proc.pid and data.starttime > 0 and data.was_stopped is False
    data = STOP.inject(args, target, data, c)
    assert wait_until(lambda: state(proc.pid) == "T")

    assert revert_in_fresh_process("process.stop", data) == "reverted"
    assert wait_until(lambda: state(proc.pid) != "T")
    assert revert_in_fresh_process("process.stop", data) == "already-clean"
    assert proc.poll() is None, "continuing must not kill it"


def test_revert_never_signals_a_process_that_reused_the_pid(sleepers) -> None:
    _, (proc,) = sleepers(1)
    c = ctx()
    args = STOP.args(pid=proc.pid)
    (target,) = STOP.targets(args, c)
    data = STOP.inject(args, target, STOP.prepare(args, target, c), c)
    assert wait_until(lambda: state(proc.pid) == "T")
    # The ledger says another process (same pid, other start time) was stopped: as after a reboot
    # or pid wrap-around. That is not this one, so it must stay as it is.
    stale = data.model_copy(update={"starttime": data.starttime - 1})
    assert STOP.revert(stale, c) is contract.RevertOutcome.ALREADY_CLEAN
    time.sleep(0.2)
    assert wait_until(lambda: state(proc.pid) == "T")
    assert STOP.revert(data, c) is contract.RevertOutcome.REVERTED
    assert wait_until(lambda: state(proc.pid) != "T")


def test_a_process_stopped_before_the_fault_stays_stopped_after_the_revert(sleepers) -> None:
    _, (proc,) = sleepers(1)
    os.kill(proc.pid, signal.SIGSTOP)  # someone else's freeze
    assert wait_until(lambda: state(proc.pid) == "T")
    c = ctx()
    args = STOP.args(pid=proc.pid)
    (target,) = STOP.targets(args, c)
    data = STOP.inject(args, target, STOP.prepare(args, target, c), c)
    assert data.was_stopped is True
    assert STOP.revert(data, c) is contract.RevertOutcome.ALREADY_CLEAN
    time.sleep(0.2)
    assert state(proc.pid) == "T"


def test_revert_after_the_process_exited_is_already_clean(sleepers) -> None:
    _, (proc,) = sleepers(1)
    c = ctx()
    args = STOP.args(pid=proc.pid)
    (target,) = STOP.targets(args, c)
    data = STOP.inject(args, target, STOP.prepare(args, target, c), c)
    proc.kill()
    proc.wait(timeout=30)
    assert STOP.revert(data, c) is contract.RevertOutcome.ALREADY_CLEAN


# -- kill --------------------------------------------------------------------------------------------


def test_kill_sends_the_signal_and_is_self_healing(sleepers) -> None:
    marker, procs = sleepers(2)
    c = ctx(3)
    args = KILL.args(cmdline=marker, count=1, signal="SIGKILL")
    (target,) = KILL.targets(args, c)
    data = KILL.prepare(args, target, c)
    assert data.signal == "SIGKILL"
    KILL.inject(args, target, data, c)
    victim = next(p for p in procs if str(p.pid) == target.id)
    survivor = next(p for p in procs if p is not victim)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    assert survivor.poll() is None
    assert KILL.reversibility is contract.Reversibility.SELF_HEALING
    assert KILL.revert(data, c) is contract.RevertOutcome.ALREADY_CLEAN
    # A kill holds nothing, so a second one on the same process is no overlap; a freeze is held.
    assert KILL.lease(args, target) is None
    assert STOP.lease(STOP.args(pid=int(target.id)), target) == f"process.stop@process:{target.id}"


def test_kill_refuses_when_the_target_exited_between_prepare_and_inject(sleepers) -> None:
    _, (proc,) = sleepers(1)
    c = ctx()
    args = KILL.args(pid=proc.pid)
    (target,) = KILL.targets(args, c)
    data = KILL.prepare(args, target, c)
    proc.kill()
    proc.wait(timeout=30)
    with pytest.raises(errors.DriverError, match="exited before"):
        KILL.inject(args, target, data, c)


# -- process.running ---------------------------------------------------------------------------------


def test_running_reports_matches(sleepers, tmp_path: Path) -> None:
    marker, procs = sleepers(2)
    out = RUNNING.run(RUNNING.args(cmdline=marker), ctx())
    assert out == {"running": True, "count": 2, "pids": sorted(p.pid for p in procs)}
    assert RUNNING.run(RUNNING.args(pidfile=str(tmp_path / "none.pid")), ctx()) == {
        "running": False,
        "count": 0,
        "pids": [],
    }
    procs[0].kill()
    procs[0].wait(timeout=30)
    assert RUNNING.run(RUNNING.args(pid=procs[0].pid), ctx())["running"] is False  # type: ignore[index]


# -- process.start -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_start_waits_for_readiness_and_undo_stops_the_whole_group(tmp_path: Path) -> None:
    port = free_port()
    pidfile = tmp_path / "server.pid"
    # A shell that leaves a child behind, then becomes the server: two processes in one group.
    script = f"sleep 300 & exec {sys.executable} -m http.server {port} --bind 127.0.0.1"
    c = ctx()
    args = START.args(
        argv=["/bin/sh", "-c", script],
        wait_for={"url": f"http://127.0.0.1:{port}/"},
        pidfile=str(pidfile),
        cwd=str(tmp_path),
        stop_timeout="5s",
    )
    result = START.run(args, c)
    try:
        assert isinstance(result.output, dict)
        pid = result.output["pid"]
        assert isinstance(pid, int)
        assert pidfile.read_text().strip() == str(pid)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # ready means ready
        assert wait_until(lambda: len(processes.group_members(pid)) == 2)
        assert result.undo is not None
        json.dumps(result.undo)

        assert revert_in_fresh_process("process.start", result.undo) == "reverted"
        assert processes.group_members(pid) == []
        assert START.undo(result.undo, c) is contract.RevertOutcome.ALREADY_CLEAN
    finally:
        if result.undo:
            START.undo(result.undo, c)


def test_start_passes_env_and_port_readiness(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "out.txt"
    c = ctx()
    args = START.args(
        argv=[
            sys.executable,
            "-c",
            "import os, socket, time\n"
            "print(os.environ['CK_GREETING'], flush=True)\n"
            "s = socket.socket(); s.bind(('127.0.0.1', int(os.environ['CK_PORT']))); s.listen()\n"
            "time.sleep(120)\n",
        ],
        env={"CK_GREETING": "hello", "CK_PORT": port},
        stdout=str(out),
        wait_for={"port": port},
    )
    result = START.run(args, c)
    assert result.undo is not None
    try:
        assert wait_until(lambda: out.read_text().strip() == "hello")
    finally:
        assert START.undo(result.undo, c) is contract.RevertOutcome.REVERTED


def test_start_that_exits_early_shows_exit_code_and_stderr(tmp_path: Path) -> None:
    args = START.args(
        argv=[sys.executable, "-c", "import sys; sys.stderr.write('boom: port in use\\n'); sys.exit(3)"],
        wait_for={"file": str(tmp_path / "never")},
    )
    with pytest.raises(
        errors.DriverError, match=r"(?s)exited with code 3 before it was ready.*boom: port in use"
    ):
        START.run(args, ctx())


def test_start_that_exits_early_leaves_nothing_of_its_group_behind(tmp_path: Path) -> None:
    marker = f"ck-left-behind-{uuid.uuid4().hex[:8]}"
    script = f"{sys.executable} -c 'import time; time.sleep(120)' {marker} & exit 7"
    args = START.args(argv=["/bin/sh", "-c", script], wait_for={"file": str(tmp_path / "never")})
    with pytest.raises(errors.DriverError, match=r"exited with code 7"):
        START.run(args, ctx())
    assert wait_until(lambda: RUNNING.run(RUNNING.args(cmdline=marker), ctx())["count"] == 0)  # type: ignore[index]


def test_wait_for_needs_exactly_one_http_url_port_or_file() -> None:
    with pytest.raises(pydantic.ValidationError, match="http:// or https://"):
        START.args(argv=["x"], wait_for={"url": "localhost:8080"})
    with pytest.raises(pydantic.ValidationError, match="exactly one"):
        START.args(argv=["x"], wait_for={"port": 80, "file": "/tmp/x"})


def test_start_that_never_gets_ready_is_stopped(tmp_path: Path) -> None:
    marker = f"ck-never-ready-{uuid.uuid4().hex[:8]}"
    args = START.args(
        argv=[sys.executable, "-c", "import time; time.sleep(120)", marker],
        wait_for={"file": str(tmp_path / "never")},
        timeout="1s",
    )
    with pytest.raises(errors.DriverError, match=r"not ready within 1s"):
        START.run(args, ctx())
    assert wait_until(lambda: RUNNING.run(RUNNING.args(cmdline=marker), ctx())["count"] == 0)  # type: ignore[index]


def test_start_can_discard_stderr(tmp_path: Path) -> None:
    args = START.args(
        argv=[sys.executable, "-c", "import sys; sys.stderr.write('noise\\n'); sys.exit(5)"],
        stderr="discard",
        cwd=str(tmp_path),
        wait_for={"file": str(tmp_path / "never")},
    )
    with pytest.raises(
        errors.DriverError, match=r"exited with code 5 before it was ready \(its stderr was discarded\)"
    ):
        START.run(args, ctx())
    assert list(tmp_path.iterdir()) == []


def test_start_of_a_missing_program_is_a_clear_error() -> None:
    with pytest.raises(errors.DriverError, match="can't run 'no-such-program-ck'"):
        START.run(START.args(argv=["no-such-program-ck"]), ctx())


# -- process.command ---------------------------------------------------------------------------------


def test_command_reports_exit_code_and_output() -> None:
    out = COMMAND.run(
        COMMAND.args(
            argv=[
                sys.executable,
                "-c",
                "import sys; print('out'); print('err', file=sys.stderr); sys.exit(4)",
            ]
        ),
        ctx(),
    )
    assert isinstance(out, dict)
    assert out["exit_code"] == 4 and out["stdout"] == "out\n" and out["stderr"] == "err\n"
    assert out["timed_out"] is False and isinstance(out["elapsed_ms"], float)


def test_command_timeout_kills_the_group_and_reports_null_exit_code() -> None:
    marker = f"ck-cmd-timeout-{uuid.uuid4().hex[:8]}"
    args = COMMAND.args(
        command=f"{sys.executable} -c 'import time; time.sleep(120)' {marker} & echo started; wait",
        shell=True,
        timeout="1s",
    )
    out = COMMAND.run(args, ctx())
    assert isinstance(out, dict)
    assert out["exit_code"] is None and out["timed_out"] is True
    assert out["stdout"] == "started\n"
    assert wait_until(lambda: RUNNING.run(RUNNING.args(cmdline=marker), ctx())["count"] == 0)  # type: ignore[index]


def test_command_shell_only_when_asked() -> None:
    with pytest.raises(pydantic.ValidationError, match="shell: true"):
        COMMAND.args(command="echo hi")
    with pytest.raises(pydantic.ValidationError):
        COMMAND.args(argv=["echo"], shell=True)
    # Without a shell, shell syntax is just an argument.
    out = COMMAND.run(COMMAND.args(argv=["echo", "$HOME;", "ls"]), ctx())
    assert out["stdout"] == "$HOME; ls\n"  # type: ignore[index]


def test_command_output_is_truncated_with_a_marker() -> None:
    n = commanding.OUTPUT_LIMIT + 5000
    out = COMMAND.run(COMMAND.args(argv=[sys.executable, "-c", f"print('x' * {n}, end='')"]), ctx())
    stdout = out["stdout"]  # type: ignore[index]
    assert isinstance(stdout, str)
    assert stdout.startswith("x" * 1000) and stdout.endswith("[... truncated 5000 more characters]")


def test_command_action_fails_on_non_zero_exit_unless_told_not_to() -> None:
    argv = [sys.executable, "-c", "import sys; sys.stderr.write('bad thing\\n'); sys.exit(2)"]
    with pytest.raises(errors.DriverError, match=r"(?s)exited with code 2.*bad thing"):
        COMMAND_ACTION.run(COMMAND_ACTION.args(argv=argv), ctx())
    result = COMMAND_ACTION.run(COMMAND_ACTION.args(argv=argv, check=False), ctx())
    assert result.output["exit_code"] == 2  # type: ignore[index, call-overload]
    assert result.undo is None


def test_argv_numbers_become_text() -> None:
    assert starting.StartArgs(argv=["sleep", 5]).argv == ["sleep", "5"]
    assert signalling.KillArgs(pid=1).signal == signal.SIGTERM


# -- revert data through the ledger ------------------------------------------------------------------

REVERTS: list[tuple[contract.Fault[Any, Any], dict[str, object]]] = [
    (KILL, {"pid": 4242, "starttime": 123456, "name": "web", "signal": "SIGTERM"}),
    (STOP, {"pid": 4242, "starttime": 123456, "name": "web", "was_stopped": False}),
]


@pytest.mark.parametrize(("fault", "fields"), REVERTS, ids=[f.name for f, _ in REVERTS])
def test_revert_models_round_trip_and_damaged_records_are_refused_naming_the_field(
    fault: contract.Fault[Any, Any], fields: dict[str, object]
) -> None:
    revert = fault.revert_type(**fields)
    record = json.loads(json.dumps(contract.dump_revert(revert)))
    assert record == {"v": 1, **fields}
    assert contract.load_revert(fault, record) == revert
    damaged = [
        ({**record, "pid": "4242"}, "pid"),  # text where a number belongs: not coerced
        ({**record, "starttime": 1.5}, "starttime"),
        ({**record, "pid": 0}, "pid"),
        ({**record, "extra": 1}, "extra"),
        ({k: v for k, v in record.items() if k != "starttime"}, "starttime"),
        ({**record, "v": 0}, "version"),
    ]
    for data, named in damaged:
        with pytest.raises(ValueError, match=named):
            contract.load_revert(fault, data)


# -- process.start: marks, write-ahead undo, endpoints ----------------------------------------------


def entry_ctx(entry: str | None = None) -> contract.RunContext:
    return contract.RunContext(run_id="test", entry=entry or f"e-{uuid.uuid4().hex[:8]}")


def marked(mark: str) -> list[processes.Info]:
    return processes.carrying(starting.ENTRY, mark)


def test_start_writes_ahead_the_mark_its_child_carries() -> None:
    c = entry_ctx("0007")
    args = START.args(argv=[sys.executable, "-c", "import time; time.sleep(120)"], stop_timeout="3s")
    prepared = START.prepare(args, c)
    assert prepared == {
        "program": sys.executable,
        "argv": [sys.executable, "-c", "import time; time.sleep(120)"],
        "mark": "test/0007",
        "stop_timeout": 3.0,
    }
    assert START.prepare(args, contract.RunContext(run_id="test")) is None  # no entry, no mark
    result = START.run(args, c)
    assert result.undo is not None
    try:
        pid = result.undo["pid"]
        env = processes.environ(pid)  # type: ignore[arg-type]
        assert env is not None
        assert env["CHAOSKIT_RUN_ID"] == "test" and env["CHAOSKIT_ENTRY"] == "test/0007"
        assert {k: result.undo[k] for k in ("mark", "program", "pgid")} == {
            "mark": "test/0007",
            "program": sys.executable,
            "pgid": pid,
        }
    finally:
        assert START.undo(result.undo, c) is contract.RevertOutcome.REVERTED


def test_undo_from_the_prepared_data_finds_the_child_by_its_mark_while_run_still_waits(
    tmp_path: Path,
) -> None:
    # As after a crash inside run(): only prepare's data is in the ledger, no pid.
    c = entry_ctx()
    # A shell with a child of its own, so that undo must reach the whole group.
    args = START.args(
        argv=["/bin/sh", "-c", f"sleep 300 & exec {sys.executable} -c 'import time; time.sleep(300)'"],
        wait_for={"port": free_port()},  # never opens
        timeout="100s",
        stop_timeout="5s",
    )
    prepared = START.prepare(args, c)
    assert prepared is not None and "pid" not in prepared
    failure: list[BaseException] = []

    def run() -> None:
        try:
            START.run(args, c)
        except BaseException as e:
            failure.append(e)

    runner = threading.Thread(target=run)
    runner.start()
    try:
        assert wait_until(lambda: len(marked(str(prepared["mark"]))) == 2), "the child never started"
        (pgid,) = {p.pgid for p in marked(str(prepared["mark"]))}
        assert revert_in_fresh_process("process.start", prepared) == "reverted"
        assert processes.group_members(pgid) == []
        runner.join(timeout=30)
        assert not runner.is_alive(), "run kept waiting for a process that is gone"
        (error,) = failure
        assert isinstance(error, errors.DriverError)
        # SIGTERM, or SIGKILL when a loaded machine let the grace period run out: stopped either way.
        assert re.search(r"killed by SIG(TERM|KILL) before it was ready", error.message), error.message
        assert START.undo(prepared, c) is contract.RevertOutcome.ALREADY_CLEAN
    finally:
        c.cancel.set()
        runner.join(timeout=30)


def test_undo_after_the_process_exited_is_already_clean() -> None:
    c = entry_ctx()
    args = START.args(argv=[sys.executable, "-c", "import time; time.sleep(120)"])
    prepared = START.prepare(args, c)
    assert prepared is not None
    result = START.run(args, c)
    assert result.undo is not None
    os.kill(int(result.undo["pid"]), signal.SIGKILL)  # type: ignore[arg-type]
    assert wait_until(lambda: not marked(str(prepared["mark"])))
    assert START.undo(result.undo, c) is contract.RevertOutcome.ALREADY_CLEAN
    assert START.undo(prepared, c) is contract.RevertOutcome.ALREADY_CLEAN


def test_undo_never_touches_a_process_with_another_mark_or_one_that_reused_the_pid() -> None:
    c = entry_ctx()
    args = START.args(argv=[sys.executable, "-c", "import time; time.sleep(120)"], stop_timeout="3s")
    prepared = START.prepare(args, c)
    assert prepared is not None
    # Another run's process, started by the test: same run id, another entry.
    stranger = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"],
        env={**os.environ, "CHAOSKIT_RUN_ID": "test", "CHAOSKIT_ENTRY": f"{prepared['mark']}0"},
        start_new_session=True,
    )
    try:
        result = START.run(args, c)
        assert result.undo is not None
        # A record whose process is gone and whose pid now belongs to another process with another
        # mark (its start time unknown, as when /proc could not be read at start).
        impostor = {
            **result.undo,
            "mark": "test/long-gone",
            "pid": stranger.pid,
            "pgid": stranger.pid,
            "starttime": None,
        }
        assert START.undo(impostor, c) is contract.RevertOutcome.ALREADY_CLEAN
        assert START.undo(result.undo, c) is contract.RevertOutcome.REVERTED
        assert START.undo(prepared, c) is contract.RevertOutcome.ALREADY_CLEAN
        time.sleep(0.2)
        assert stranger.poll() is None, "a process with another mark was stopped"
    finally:
        stranger.kill()
        stranger.wait(timeout=30)


def test_damaged_start_undo_data_is_a_clear_error() -> None:
    with pytest.raises(errors.DriverError, match="needs a mark, or a pid and a pgid"):
        START.undo({"program": "x"}, ctx())
    with pytest.raises(errors.DriverError, match="pid"):
        START.undo({"program": "x", "mark": "r/e", "pid": "12"}, ctx())


def test_serves_names_the_ports_the_process_group_listens_on() -> None:
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 sockets on this machine")
    port, other = free_port(), free_port()
    c = entry_ctx()
    # The group's leader listens on 127.0.0.1, its child on every IPv6 (and IPv4) address.
    script = (
        f"{sys.executable} -c 'import socket, time; s = socket.socket(socket.AF_INET6); "
        f's.bind(("::", {other})); s.listen(); time.sleep(120)\' & '
        f"exec {sys.executable} -m http.server {port} --bind 127.0.0.1"
    )
    args = START.args(argv=["/bin/sh", "-c", script], wait_for={"url": f"http://127.0.0.1:{port}/"})
    prepared = START.prepare(args, c)
    assert prepared is not None
    result = START.run(args, c)
    assert result.undo is not None
    try:
        expected = [f"127.0.0.1:{port}", f"127.0.0.1:{other}", f"[::1]:{other}", f"[::]:{other}"]
        assert wait_until(lambda: sorted(START.serves(result.undo, c)) == sorted(expected))  # type: ignore[arg-type]
        assert sorted(START.serves(prepared, c)) == sorted(expected)  # found by the mark alone
    finally:
        START.undo(result.undo, c)
    assert START.serves(result.undo, c) == []
