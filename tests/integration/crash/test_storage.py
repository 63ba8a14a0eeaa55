"""The storage matrix: the state directory on a tiny tmpfs that fills mid-run, that is full from
the start, that turns read-only mid-run; a torn last ledger line followed by new appends; garbage
in another run's ledger. Each time: nothing stays applied (read from /proc: the frozen processes
run again), the journal is written or rescued where the output says, the exit code is the
documented one, and ``status``/``recover`` still work for every other run. Needs root (mount).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.crash import killing


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder``, unmounted on the way out whatever happened."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write zeros under ``folder`` until the file system says it is full."""
    filler = folder / "filler"
    chunk = b"\0" * 4096
    with filler.open("wb", buffering=0) as out:
        for _ in range(1 << 20):  # bounded: 4 GiB, far beyond any tmpfs made here
            try:
                out.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
    return filler


class Watch:
    """Samples processes' states every 5 ms while a run goes on: was one ever frozen?"""

    def __init__(self, pids: list[int]) -> None:
        self.frozen: set[int] = set()
        self._pids = pids
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        for _ in range(60_000):  # bounded: 5 minutes
            if self._stop.wait(0.005):
                return
            self.frozen |= {p for p in self._pids if killing.process_state(p) == "T"}

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def two_faults(first: int, second: int) -> str:
    """Freeze ``first``, then, 1.5 s later, ``second``: the second intent is the next ledger write."""
    return (
        f"title: two freezes\n"
        f"method:\n"
        f"  - {{name: freeze first, fault: process.stop, with: {{pid: {first}}}, duration: 4s}}\n"
        f"  - pause: 1500ms\n"
        f"  - {{name: freeze second, fault: process.stop, with: {{pid: {second}}}, duration: 1s}}\n"
    )


def running_again(*pids: int) -> None:
    for pid in pids:
        assert killing.process_state(pid) not in {"T", "gone"}, f"process {pid}: {killing.process_state(pid)}"


def journals_named(output: str) -> list[Path]:
    """Journal files the output names that exist (where it says it wrote or saved one)."""
    found = [Path(p) for p in re.findall(r"(/[^\s'\"]+\.json)\b", output)]
    return [p for p in found if p.is_file()]


def test_a_disk_that_fills_mid_run_leaves_nothing_applied(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "fs") as fs, killing.sleepers(2) as (first, second):
        state = fs / "state"
        with killing.running(tmp_path / "run", two_faults(first, second), state=state) as run:
            assert run.until(lambda: run.lines("applied"), timeout=60), run.log()
            filler = fill(fs)
            code = run.finish(timeout=60)
        what = f"exit {code}:\n{run.log()[-3000:]}"
        # A ledger that reserved its space at the start keeps going (0); one that didn't stops (4).
        assert code in {0, 4}, what
        running_again(first, second)
        assert run.read_journal()["exit_code"] == code, what
        killing.outstanding(state)  # status works on a full disk
        filler.unlink()
        killing.recover_all(state)
        running_again(first, second)


def test_a_disk_full_from_the_start_injects_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "fs") as fs, killing.sleepers(2) as (first, second):
        state = fs / "state"
        fill(fs)
        with (
            Watch([first, second]) as watch,
            killing.running(tmp_path / "run", two_faults(first, second), state=state) as run,
        ):
            code = run.finish(timeout=60)
        what = f"exit {code}:\n{run.log()[-3000:]}"
        assert code == 4, what
        assert not watch.frozen, f"processes {watch.frozen} were frozen by a run that had no ledger: {what}"
        if run.journal.is_file():  # a journal is welcome, but must say nothing was injected
            assert run.read_journal()["faults"] == [], what
        assert killing.outstanding(state) == killing.CLEAN, what


def test_a_ledger_that_cannot_be_written_at_all_mid_run_leaves_nothing_applied_and_rescues_the_journal(
    tmp_path: Path,
) -> None:
    """The disk under the state dir and the journal fills, and its reserve is gone too (another
    program took the space): no ledger line can be written any more. (A read-only remount would
    say the same, but Linux refuses one while the live ledger is open for writing.)"""
    with tmpfs(tmp_path / "fs") as fs, killing.sleepers(2) as (first, second):
        state, journal = fs / "state", fs / "journal.json"
        with killing.running(
            tmp_path / "run", two_faults(first, second), state=state, journal=journal
        ) as run:
            assert run.until(lambda: run.lines("applied"), timeout=60), run.log()
            for reserve in (state / "ledgers").glob("*.reserve"):
                reserve.unlink()
            fill(fs)
            for ledger in (state / "ledgers").glob("*.jsonl"):
                with ledger.open("a") as out:  # blank lines (skipped by readers) to a block's end
                    out.write("\n" * (-ledger.stat().st_size % 4096))
            code = run.finish(timeout=60)
        output = run.log()
        what = f"exit {code}:\n{output[-3000:]}"
        assert code == 4, what
        assert "the fault ledger could not be written" in output, what
        running_again(first, second)
        rescued = journals_named(output)
        assert rescued, f"no journal where the output says: {what}"
        verdicts = [json.loads(p.read_text()).get("verdict") for p in rescued]
        assert "error" in verdicts, f"{rescued}: {verdicts}"
        (fs / "filler").unlink()
        killing.recover_all(state)
        running_again(first, second)


def test_a_torn_last_line_followed_by_new_appends_stays_readable(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with killing.sleepers(1) as (pid,):
        run = killing.crashed(tmp_path / "run", pid, state)
        ledger = state / "ledgers" / f"{run.run_id}.jsonl"
        with ledger.open("a") as out:
            out.write(
                '{"type": "reverted", "run_id": "' + run.run_id + '", "id": "f'
            )  # the crash came mid-line
        killing.recover_all(state)
        running_again(pid)
        again = killing.chaoskit("recover", "--state-dir", str(state))
        assert again.returncode == 0 and "Nothing to recover." in again.stdout, again.stdout + again.stderr


def test_garbage_in_another_runs_ledger_is_set_aside_and_every_other_run_recovered(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with killing.sleepers(2) as (one, two):
        killing.crashed(tmp_path / "one", one, state)
        garbage = state / "ledgers" / "garbage.jsonl"
        garbage.write_bytes(b'\x00\xffnot json\n{"type": \nmore garbage\n' * 3)
        killing.crashed(tmp_path / "two", two, state)
        shown = killing.chaoskit("status", "--state-dir", str(state))
        assert shown.returncode == 0, shown.stdout + shown.stderr
        done = killing.chaoskit("recover", "--state-dir", str(state))
        output = done.stdout + done.stderr
        running_again(one, two)
        assert "garbage" in output, f"the unreadable ledger is not named:\n{output}"
        assert killing.outstanding(state) == killing.CLEAN, output


@pytest.mark.parametrize("run_id", ["../x", "a/b", ".hidden", "-dash", "a" * 65, "sp ace"])
def test_a_bad_run_id_is_refused_before_anything_runs_and_nothing_is_created(
    run_id: str, tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    with killing.running(folder, "title: nothing\nmethod:\n  - pause: 10ms\n", run_id=run_id) as run:
        code = run.finish(timeout=60)
    assert code == 2, f"exit {code}:\n{run.log()}"
    made = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")} - {Path("run"), Path("run/experiment.yaml")}
    made -= {run.log_path.relative_to(tmp_path)}
    made -= {Path("run/state"), Path("run/state/ledgers")}  # empty folders, at most
    assert not made, f"created for a refused run id: {sorted(map(str, made))}"


def test_a_run_id_with_outstanding_faults_is_refused_naming_recover(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with killing.sleepers(1) as (pid,):
        crashed_run = killing.crashed(tmp_path / "one", pid, state)
        experiment = "title: again\nmethod:\n  - pause: 10ms\n"
        with killing.running(tmp_path / "two", experiment, run_id=crashed_run.run_id, state=state) as run:
            code = run.finish(timeout=60)
        assert code == 2, f"exit {code}:\n{run.log()}"
        assert "chaoskit recover" in run.log(), run.log()
        assert killing.process_state(pid) == "T", "the refused run touched the crashed run's fault"
        killing.recover_all(state)
        running_again(pid)
