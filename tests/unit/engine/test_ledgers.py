"""The fault lifecycle's ledger, leases and recover, each against a defect that was reproduced:
reverse order and gone-with-host (#1), a full or read-only disk (#2, #11), stacked faults (#3),
unsafe run ids (#4), secrets in revert data (#5), reused run ids (#7), recover beside a live run
(#8), and bad ledger lines or files (#9). Real files, a real tmpfs where a disk must fill."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from chaoskit import errors, testing
from chaoskit.drivers import contract
from chaoskit.engine import appending, leases, ledgers, recovering


def _marker(ledger: ledgers.Ledger, path: Path, *, step: str = "mark", lease: str | None = None) -> str:
    """A ``fake.marker`` fault, applied for real and ledgered the way the engine does it."""
    entry = ledger.new_entry("f")
    target = contract.Target(kind="file", id=str(path), name=str(path))
    data = {"v": 1, "path": str(path)}
    ledger.intent(entry, "fake.marker", step, target, data, lease=lease)
    path.write_text("on")
    ledger.applied(entry, data)
    return entry


def _registry(*extra: contract.Driver) -> Any:
    return testing.FakeDriver().registry(*extra)


# ---- #4: run ids ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["../escape", "a/b", "..", ".hidden", "-flag", "x\n", "", "é", "a" * 65])
def test_unsafe_run_ids_are_refused_before_anything_is_created(tmp_path: Path, bad: str) -> None:
    with pytest.raises(errors.UsageError, match="is not allowed"):
        ledgers.Ledger.create(tmp_path / "state", bad)
    assert not (tmp_path / "state").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_cli_refuses_an_unsafe_run_id_with_exit_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from chaoskit.cli import main

    experiment = tmp_path / "e.yaml"
    experiment.write_text("title: t\nmethod:\n  - pause: 0s\n")
    result = CliRunner().invoke(
        main.cli,
        ["run", str(experiment), "--run-id", "../../x", "--state-dir", str(tmp_path / "s")],
    )
    assert result.exit_code == 2, result.output
    assert "run id '../../x' is not allowed" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "s").exists()


# ---- ownership: #7 and #8 --------------------------------------------------------------------


def test_a_live_run_owns_its_ledger_until_it_closes(tmp_path: Path) -> None:
    ledger = ledgers.Ledger.create(tmp_path, "r1")
    assert ledgers.is_live(ledger.path)
    with pytest.raises(errors.UsageError, match="is running now"):
        ledgers.Ledger.create(tmp_path, "r1")
    ledger.close()
    assert not ledgers.is_live(ledger.path)


def test_a_reused_run_id_is_refused_while_its_ledger_has_outstanding_faults(tmp_path: Path) -> None:
    crashed = ledgers.Ledger.create(tmp_path, "nightly")
    first = _marker(crashed, tmp_path / "m1")
    crashed.close()  # it died without taking the fault back
    with pytest.raises(errors.UsageError, match=r"1 fault still outstanding") as refused:
        ledgers.Ledger.create(tmp_path, "nightly")
    assert "chaoskit recover nightly" in (refused.value.hint or "")
    recovering.recover(tmp_path, _registry(), "nightly")
    # Once recovered, the id may be used again, and the new entries never collide with the old.
    again = ledgers.Ledger.create(tmp_path, "nightly")
    second = _marker(again, tmp_path / "m2")
    again.close()
    assert first != second
    [left] = ledgers.outstanding(tmp_path)
    assert left.id == second and left.revert["path"] == str(tmp_path / "m2")


def test_recover_leaves_a_live_run_alone_unless_forced(tmp_path: Path) -> None:
    live = ledgers.Ledger.create(tmp_path, "live-run")
    _marker(live, tmp_path / "live-fault")
    report = recovering.recover(tmp_path, _registry())
    assert report.outcomes == [] and report.ok
    [skipped] = report.skipped
    assert "live-run is live" in skipped and "--force" in skipped
    assert (tmp_path / "live-fault").exists(), "recover took back a live run's fault"

    forced = recovering.recover(tmp_path, _registry(), "live-run", force=True)
    assert [o.status for o in forced.outcomes] == ["reverted"]
    assert not (tmp_path / "live-fault").exists()
    live.close()


def test_two_recovers_at_once_take_each_fault_back_once(tmp_path: Path) -> None:
    dead = ledgers.Ledger.create(tmp_path, "dead")
    _marker(dead, tmp_path / "m")
    dead.close()
    holder = ledgers.Ledger.attach(dead.path)  # a first recover at work holds the lock
    assert holder is not None
    second = recovering.recover(tmp_path, _registry())
    assert second.outcomes == [] and second.skipped, "the second recover must not touch it"
    holder.close()
    first = recovering.recover(tmp_path, _registry())
    assert [o.status for o in first.outcomes] == ["reverted"]


# ---- #1: reverse order and gone-with-host -----------------------------------------------------


class _HostArgs(contract.Args):
    endpoint: str = "127.0.0.1:9"


class _HostRevert(contract.Revert):
    endpoint: str
    """Where the server that holds the fault listens."""


class _Unreachable(contract.Fault[_HostArgs, _HostRevert]):
    """A fault whose server is gone: every revert fails to connect."""

    name = "host.fault"
    summary = "held by a server that is gone"
    args = _HostArgs
    revert_type = _HostRevert

    def targets(self, args: _HostArgs, ctx: contract.RunContext) -> list[contract.Target]:
        return [contract.Target(kind="server", id=args.endpoint, name=args.endpoint)]

    def prepare(self, args: _HostArgs, target: contract.Target, ctx: contract.RunContext) -> _HostRevert:
        return _HostRevert(endpoint=args.endpoint)

    def inject(
        self, args: _HostArgs, target: contract.Target, revert: _HostRevert, ctx: contract.RunContext
    ) -> _HostRevert:
        return revert

    def revert(self, revert: _HostRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        raise errors.Unreachable(f"can't connect to {revert.endpoint}")

    def endpoint(self, revert: _HostRevert) -> str | None:
        return revert.endpoint


class _Server(contract.Action[_HostArgs]):
    name = "host.start"
    summary = "a server this run started"
    args = _HostArgs
    undone: list[str] = []

    def run(self, args: _HostArgs, ctx: contract.RunContext) -> contract.ActionResult:
        return contract.ActionResult(undo={"endpoint": args.endpoint})

    def undo(self, data: contract.RevertData, ctx: contract.RunContext) -> contract.RevertOutcome:
        self.undone.append(str(data["endpoint"]))
        return contract.RevertOutcome.REVERTED

    def serves(self, data: contract.RevertData, ctx: contract.RunContext) -> Sequence[str]:
        return [str(data["endpoint"])]


HOSTS = contract.Driver(name="host", summary="test", faults=[_Unreachable()], actions=[_Server()])


def test_recover_takes_back_the_last_applied_first(tmp_path: Path) -> None:
    """The quickstart's shape: a process hosting the proxy is started first, the toxic added on it
    later. Oldest-first stopped the host, then failed forever to reach it for the toxic."""
    fake = testing.FakeDriver()
    ledger = ledgers.Ledger.create(tmp_path, "qs")
    ledger.undo(ledger.new_entry("u"), "fake.do", "start the demo", {"left": "demo"})
    _marker(ledger, tmp_path / "toxic")
    ledger.close()
    report = recovering.recover(tmp_path, fake.registry())
    assert [o.entry.activity for o in report.outcomes] == ["fake.marker", "fake.do"]
    assert fake.calls == [("revert", str(tmp_path / "toxic")), ("undo", "demo")]
    assert report.ok


def test_a_fault_whose_host_this_run_stopped_went_with_it(tmp_path: Path) -> None:
    ledger = ledgers.Ledger.create(tmp_path, "gone")
    server = ledger.new_entry("u")
    ledger.undo(server, "host.start", "start", {"endpoint": "127.0.0.1:9"})
    fault = ledger.new_entry("f")
    target = contract.Target(kind="server", id="127.0.0.1:9", name="s")
    ledger.intent(fault, "host.fault", "f", target, {"v": 1, "endpoint": "127.0.0.1:9"})
    ledger.applied(fault, {"v": 1, "endpoint": "127.0.0.1:9"})
    ledger.close()
    report = recovering.recover(tmp_path, _registry(HOSTS))
    assert [(o.entry.activity, o.status) for o in report.outcomes] == [
        ("host.fault", "failed"),
        ("host.start", "reverted"),
    ]
    # The server is now stopped and its endpoint recorded: the fault went with it, for good.
    again = recovering.recover(tmp_path, _registry(HOSTS))
    assert [(o.entry.activity, o.status) for o in again.outcomes] == [("host.fault", "gone-with-host")]
    assert again.ok and ledgers.outstanding(tmp_path) == []


def test_an_unreachable_server_this_run_did_not_start_is_still_a_failure(tmp_path: Path) -> None:
    ledger = ledgers.Ledger.create(tmp_path, "other")
    fault = ledger.new_entry("f")
    target = contract.Target(kind="server", id="127.0.0.1:9", name="s")
    ledger.intent(fault, "host.fault", "f", target, {"v": 1, "endpoint": "127.0.0.1:9"})
    ledger.close()
    report = recovering.recover(tmp_path, _registry(HOSTS))
    assert [o.status for o in report.outcomes] == ["failed"] and not report.ok
    assert "can't connect" in report.outcomes[0].message


# ---- #5: secrets --------------------------------------------------------------------------------


def test_a_secret_in_revert_data_is_a_reference_resolved_again_by_recover(tmp_path: Path) -> None:
    secret = "hunter2-s3cr3t"
    fault_file = tmp_path / f"fault-{secret}"
    ledger = ledgers.Ledger.create(tmp_path, "sec", {"token": secret})
    ledger.start("t", None, {"token": {"env": "CK_TEST_TOKEN"}})
    _marker(ledger, fault_file)
    ledger.close()
    text = ledger.path.read_text()
    assert secret not in text
    assert "${secrets.token}" in text and '"env": "CK_TEST_TOKEN"' in text

    missing = recovering.recover(tmp_path, _registry(), environ={})
    [outcome] = missing.outcomes
    assert outcome.status == "failed" and "CK_TEST_TOKEN" in outcome.message and "export" in outcome.message
    assert fault_file.exists()

    report = recovering.recover(tmp_path, _registry(), environ={"CK_TEST_TOKEN": secret})
    assert [o.status for o in report.outcomes] == ["reverted"]
    assert not fault_file.exists()


def test_a_secret_from_a_file_is_read_again_from_the_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("filesecret\n")
    fault_file = tmp_path / "fault-filesecret"
    ledger = ledgers.Ledger.create(tmp_path, "sec2", {"token": "filesecret"})
    ledger.start("t", None, {"token": {"file": str(secret_file)}})
    _marker(ledger, fault_file)
    ledger.close()
    assert "filesecret" not in ledger.path.read_text()
    report = recovering.recover(tmp_path, _registry(), environ={})
    assert [o.status for o in report.outcomes] == ["reverted"] and not fault_file.exists()


# ---- #9: bad lines and bad files ----------------------------------------------------------------


def test_a_torn_tail_is_closed_before_new_appends(tmp_path: Path) -> None:
    crashed = ledgers.Ledger.create(tmp_path, "torn")
    _marker(crashed, tmp_path / "a")
    crashed.close()
    with crashed.path.open("a") as f:
        f.write('{"type": "reverted", "id": "f1-')  # the crash came mid-write
    # A recover appends after it: its lines must not be glued to the fragment.
    report = recovering.recover(tmp_path, _registry())
    assert [o.status for o in report.outcomes] == ["reverted"]
    assert ledgers.outstanding(tmp_path) == []
    assert not (tmp_path / "a").exists()


def test_garbage_in_one_ledger_never_blocks_the_others(tmp_path: Path) -> None:
    good = ledgers.Ledger.create(tmp_path, "good")
    _marker(good, tmp_path / "good-fault")
    good.close()
    garbage = ledgers.directory(tmp_path) / "garbage.jsonl"
    garbage.write_bytes(b"\x00\xffnot a ledger\n{{{\n")
    mixed = ledgers.Ledger.create(tmp_path, "mixed")
    _marker(mixed, tmp_path / "mixed-fault")
    mixed.close()
    with mixed.path.open("a") as f:
        f.write("garbage in the middle\n")
    with mixed.path.open("a") as f:
        f.write(json.dumps({"type": "run-end", "verdict": "error"}) + "\n")

    from click.testing import CliRunner

    from chaoskit.cli import main

    status = CliRunner().invoke(main.cli, ["status", "--state-dir", str(tmp_path)])
    assert status.exit_code == 0, status.output
    assert "good: fake.marker" in status.output and "mixed: fake.marker" in status.output
    assert "garbage.jsonl" in status.output and "mixed.jsonl:" in status.output

    report = recovering.recover(tmp_path, _registry())
    assert sorted(o.entry.run_id for o in report.outcomes if o.status == "reverted") == ["good", "mixed"]
    assert not (tmp_path / "good-fault").exists() and not (tmp_path / "mixed-fault").exists()
    notes = "\n".join(report.notes)
    assert "garbage.jsonl is not a fault ledger" in notes and "quarantine" in notes
    assert "mixed.jsonl:3: not a ledger line" in notes
    # Both bad files are set aside now (kept for a person to look at); nothing is reported again.
    assert sorted(p.name for p in (ledgers.directory(tmp_path) / "quarantine").iterdir()) == [
        "garbage.jsonl",
        "mixed.jsonl",
    ]
    assert recovering.recover(tmp_path, _registry()).lines() == []


def test_an_unreadable_target_is_a_bad_line_not_a_crash(tmp_path: Path) -> None:
    ledger = ledgers.Ledger.create(tmp_path, "t")
    _marker(ledger, tmp_path / "ok")
    ledger.close()
    with ledger.path.open("a") as f:
        f.write(json.dumps({"type": "intent", "id": "x", "activity": "fake.marker", "target": {"kind": 1}}))
        f.write("\n")
    found = ledgers.survey(tmp_path, set_aside=False)
    assert [e.id for _, e in found.outstanding()] != [] and any(
        ":3: not a ledger line" in p for p in found.problems
    )


# ---- #3: leases ------------------------------------------------------------------------------


def test_a_second_fault_on_a_held_lease_is_refused_naming_the_holder(tmp_path: Path) -> None:
    first = ledgers.Ledger.create(tmp_path, "first")
    entry = _marker(first, tmp_path / "m", lease="fake.marker@file:m")
    original = {"v": 1, "path": str(tmp_path / "m")}
    leases.acquire(
        tmp_path,
        "fake.marker@file:m",
        run_id="first",
        entry=entry,
        revert=original,
        allow_overlap=False,
        what="x",
    )
    with pytest.raises(errors.LeaseHeld, match="run first, which is running now"):
        leases.acquire(
            tmp_path,
            "fake.marker@file:m",
            run_id="second",
            entry="f1-x",
            revert={},
            allow_overlap=False,
            what="x",
        )
    first.close()  # it died with the fault applied: the lease stays until recover
    with pytest.raises(errors.LeaseHeld, match="run first, which died") as held:
        leases.acquire(
            tmp_path,
            "fake.marker@file:m",
            run_id="second",
            entry="f1-x",
            revert={},
            allow_overlap=False,
            what="x",
        )
    assert held.value.hint == "take it back first: chaoskit recover first"
    recovering.recover(tmp_path, _registry())
    leases.acquire(
        tmp_path,
        "fake.marker@file:m",
        run_id="second",
        entry="f1-x",
        revert={},
        allow_overlap=False,
        what="x",
    )


def _run(doc: dict[str, Any], fake: testing.FakeDriver, state: Path, run_id: str) -> Any:
    return testing.run_experiment(doc, [fake.driver()], state_dir=state, run_id=run_id)


def test_the_same_fault_twice_in_one_file_is_refused_at_validation(tmp_path: Path) -> None:
    doc: dict[str, Any] = {
        "title": "twice",
        "method": [
            {"name": "a", "fault": "fake.break", "with": {"targets": ["t1"]}, "duration": "5s"},
            {"name": "b", "fault": "fake.break", "with": {"targets": ["t1"]}, "duration": "10s"},
        ],
    }
    with pytest.raises(
        errors.SpecError, match=r"method\[1\]: fake.break with the same arguments as method\[0\]"
    ):
        _run(doc, testing.FakeDriver(), tmp_path, "twice")
    doc["method"][1]["allow_overlap"] = True
    assert _run(doc, testing.FakeDriver(), tmp_path, "twice").verdict.value == "completed"


def test_the_same_target_faulted_twice_in_one_run_is_refused_when_injected(tmp_path: Path) -> None:
    fake = testing.FakeDriver()
    doc = {
        "title": "twice",
        "method": [
            {"name": "a", "fault": "fake.break", "with": {"targets": ["t1"]}, "duration": "5s"},
            # Other arguments, the same target: only the lease can see it.
            {"name": "b", "fault": "fake.break", "with": {"targets": ["t1"], "count": 1}, "duration": "10s"},
        ],
    }
    journal = _run(doc, fake, tmp_path, "twice")
    assert journal.verdict.value == "error"
    assert "already held by an earlier step of this run" in journal.reason
    assert fake.applied == set(), "the first fault was not taken back"
    assert ledgers.outstanding(tmp_path) == []
    assert not leases.directory(tmp_path).exists() or list(leases.directory(tmp_path).iterdir()) == []


@pytest.mark.parametrize(("first", "second"), [("5s", "10s"), ("10s", "5s")])
def test_overlap_restores_the_original_whatever_order_the_faults_end(
    tmp_path: Path, first: str, second: str
) -> None:
    fake = testing.FakeDriver()
    doc = {
        "title": "nested",
        "method": [
            {"name": "a", "fault": "fake.break", "with": {"targets": ["t1"]}, "duration": first},
            {
                "name": "b",
                "fault": "fake.break",
                "with": {"targets": ["t1"]},
                "duration": second,
                "allow_overlap": True,
            },
        ],
    }
    journal = _run(doc, fake, tmp_path, "nested")
    assert journal.verdict.value == "completed", journal.reason
    statuses = sorted(f.revert.value for f in journal.faults if f.revert is not None)
    assert statuses == ["handed-over", "reverted"]
    assert fake.applied == set()
    # Only the last one out really reverted, once.
    assert [c for c in fake.calls if c[0] == "revert"] == [("revert", "t1")]


# ---- #2 and #11: a full or read-only disk (a real tmpfs) ----------------------------------------


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(folder: Path) -> None:
    with contextlib.suppress(OSError), (folder / "filler").open("wb") as f:
        for _ in range(4096):
            f.write(b"\0" * 65536)
            f.flush()


def test_a_full_disk_at_the_start_injects_nothing(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "disk", "2m") as disk:
        _fill(disk)
        with pytest.raises(errors.LedgerError, match=r"can.t reserve .* nothing was injected"):
            ledgers.Ledger.create(disk, "full")


def test_a_disk_that_fills_mid_run_still_records_the_reverts(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "disk", "4m") as disk:
        ledger = ledgers.Ledger.create(disk, "filling")
        entry = _marker(ledger, tmp_path / "fault")
        _fill(disk)
        with pytest.raises(OSError):  # nothing can be written without the reserve...
            (disk / "more").write_bytes(b"x" * 65536)
        # ...but the ledger gives its reserve back and goes on: every line that takes a fault back
        # is still written, and the run knows it must stop injecting.
        written = 0
        while ledger.broken is None and written < 1000:
            ledger.reverted(entry, "reverted")
            written += 1
        assert ledger.broken is not None and "full" in ledger.broken.message
        ledger.close()
        assert ledgers.outstanding(disk) == []
        assert ledger.path.read_text().count('"type": "reverted"') == written


def test_recover_on_a_read_only_state_dir_tries_every_entry(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "disk", "4m") as disk:
        dead = ledgers.Ledger.create(disk, "dead")
        _marker(dead, tmp_path / "one")
        _marker(dead, tmp_path / "two")
        dead.close()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        report = recovering.recover(disk, _registry())
        assert sorted(o.status for o in report.outcomes) == ["reverted", "reverted"]
        assert not (tmp_path / "one").exists() and not (tmp_path / "two").exists()
        assert not report.ok and all("not recorded" in o.message for o in report.outcomes)


def test_recover_on_a_read_only_state_dir_tries_every_entry_of_a_ledger_torn_by_a_crash(
    tmp_path: Path,
) -> None:
    with _tmpfs(tmp_path / "disk", "4m") as disk:
        dead = ledgers.Ledger.create(disk, "torn")
        _marker(dead, tmp_path / "one")
        dead.close()
        with dead.path.open("a") as f:
            f.write('{"type": "intent", "id": "half-writ')  # the crash came mid-line
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        report = recovering.recover(disk, _registry())
        assert [o.status for o in report.outcomes] == ["reverted"]
        assert not (tmp_path / "one").exists()
        assert not report.ok and "not recorded" in report.outcomes[0].message


class _FillArgs(contract.Args):
    folder: str
    """The state dir's file system, filled to the last byte by inject."""


class _FillRevert(contract.Revert):
    folder: str
    """Where the filler is."""


class _Filler(contract.Fault[_FillArgs, _FillRevert]):
    """Fills the disk under the ledger, reserve included (as another program might), and records
    its revert in memory only: a revert from memory is all that is left once the ledger is dead."""

    name = "disk.fill"
    summary = "fill the state dir's disk"
    args = _FillArgs
    revert_type = _FillRevert
    reverted: list[str] = []

    def targets(self, args: _FillArgs, ctx: contract.RunContext) -> list[contract.Target]:
        return [contract.Target(kind="disk", id=args.folder, name=args.folder)]

    def prepare(self, args: _FillArgs, target: contract.Target, ctx: contract.RunContext) -> _FillRevert:
        return _FillRevert(folder=args.folder)

    def inject(
        self, args: _FillArgs, target: contract.Target, revert: _FillRevert, ctx: contract.RunContext
    ) -> _FillRevert:
        for reserve in Path(args.folder).rglob(f"*{appending.RESERVE_SUFFIX}"):
            reserve.unlink()
        _fill(Path(args.folder))
        for ledger in Path(args.folder).rglob(f"*{ledgers.SUFFIX}"):
            # Blank lines up to the page boundary (readers skip them): the next line needs a block.
            with contextlib.suppress(OSError), ledger.open("a") as f:
                f.write("\n" * (-ledger.stat().st_size % 4096))
        return revert

    def revert(self, revert: _FillRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        self.reverted.append(revert.folder)
        return contract.RevertOutcome.REVERTED


def test_a_ledger_that_cannot_be_written_stops_injecting_and_reverts_from_memory(tmp_path: Path) -> None:
    filler = _Filler()
    disk_driver = contract.Driver(name="disk", summary="test", faults=[filler])
    fake = testing.FakeDriver()
    with _tmpfs(tmp_path / "disk", "4m") as disk:
        doc = {
            "title": "the disk fills",
            "method": [
                {"name": "break t1", "fault": "fake.break", "with": {"targets": ["t1"]}},
                {"name": "fill", "fault": "disk.fill", "with": {"folder": str(disk)}},
                {"name": "break t2", "fault": "fake.break", "with": {"targets": ["t2"]}},
            ],
        }
        journal = testing.run_experiment(doc, [fake.driver(), disk_driver], state_dir=disk, run_id="full")
        assert journal.verdict.value == "error" and journal.exit_code == 4
        assert "the fault ledger could not be written" in journal.reason
        assert "reverted from memory" in journal.reason
        assert ("inject", "t2") not in fake.calls, "a fault was injected after the ledger failed"
        assert fake.applied == set() and ("revert", "t1") in fake.calls
        assert filler.reverted == [str(disk)]
