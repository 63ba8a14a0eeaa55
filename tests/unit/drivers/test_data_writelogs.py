"""RPO and RTO arithmetic of the data driver's write log: acknowledged writes missing after
recovery are the RPO (a count, and the seconds of writes they span); the RTO runs from the fault
to the first write acknowledged after the last failure."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chaoskit.drivers.data import writelogs
from chaoskit.drivers.data.writelogs import Attempt


def _steady(n: int, *, every: float = 0.1, fail: range = range(0), latency: float = 0.01) -> list[Attempt]:
    """``n`` writes started every ``every`` seconds from t=100; those in ``fail`` unacknowledged."""
    return [
        Attempt(seq, 100 + seq * every, 100 + seq * every + latency, acknowledged=seq not in fail)
        for seq in range(1, n + 1)
    ]


def test_nothing_lost_and_no_outage_is_rpo_0_and_rto_0() -> None:
    attempts = _steady(20)
    result = writelogs.objectives(attempts, {a.seq for a in attempts}, fault_at=None)
    assert (result.rpo_writes, result.rpo_seconds, result.rto_seconds) == (0, 0.0, 0.0)
    assert result.acknowledged == result.writes == 20


def test_acknowledged_writes_missing_after_failover_are_the_rpo() -> None:
    # writes 1..30 every 100 ms; the fault at write 21's start; 21..25 fail; 26.. are accepted
    attempts = _steady(30, fail=range(21, 26))
    found = set(range(1, 16)) | set(range(26, 31))  # 16..20 were acknowledged, then lost
    result = writelogs.objectives(attempts, found, fault_at=100 + 2.1)
    assert result.lost == (16, 17, 18, 19, 20)
    assert result.rpo_writes == 5
    # from the acknowledgement of 15 (the last kept) to that of 20 (the last lost): 0.5 s of writes
    assert abs(result.rpo_seconds - 0.5) < 1e-9
    # writes are accepted again when 26 (started after 25, the last failure) is acknowledged
    assert result.rto_seconds is not None and abs(result.rto_seconds - (2.6 + 0.01 - 2.1)) < 1e-9


def test_unacknowledged_writes_are_never_counted_lost() -> None:
    attempts = _steady(10, fail=range(5, 8))
    result = writelogs.objectives(attempts, {1, 2, 3, 4, 8, 9, 10}, fault_at=100.45)
    assert result.rpo_writes == 0 and result.rpo_seconds == 0


def test_never_accepted_again_has_no_rto() -> None:
    attempts = _steady(10, fail=range(6, 11))
    result = writelogs.objectives(attempts, set(range(1, 6)), fault_at=100.55)
    assert result.rto_seconds is None


def test_without_a_fault_the_outage_starts_at_the_last_acknowledgement_before_a_failure() -> None:
    attempts = _steady(10, fail=range(4, 6))
    result = writelogs.objectives(attempts, set(range(1, 11)), fault_at=None)
    assert result.fault_at == attempts[2].ended  # write 3's acknowledgement: an RTO that errs long
    assert result.accepted_again_at == attempts[5].ended


def test_a_fault_no_write_noticed_is_rto_0() -> None:
    attempts = _steady(10)
    result = writelogs.objectives(attempts, set(range(1, 11)), fault_at=100.5)
    assert result.rto_seconds == 0.0


def test_an_outage_from_the_first_write_starts_with_it() -> None:
    attempts = _steady(4, fail=range(1, 3))
    assert writelogs.objectives(attempts, {3, 4}, fault_at=None).fault_at == attempts[0].started


def test_all_lost_counts_from_the_first_lost_write() -> None:
    attempts = _steady(3)
    result = writelogs.objectives(attempts, set(), fault_at=None)
    assert result.lost == (1, 2, 3)
    assert abs(result.rpo_seconds - (attempts[2].ended - attempts[0].started)) < 1e-9


runs = st.lists(st.booleans(), min_size=1, max_size=60).flatmap(
    lambda acks: st.tuples(st.just(acks), st.sets(st.integers(1, len(acks))))
)


@given(runs, st.one_of(st.none(), st.floats(99, 110)))
def test_objectives_hold_their_definitions(run: tuple[list[bool], set[int]], fault_at: float | None) -> None:
    acks, found = run
    attempts = [Attempt(i, 100 + i * 0.1, 100 + i * 0.1 + 0.05, ack) for i, ack in enumerate(acks, 1)]
    result = writelogs.objectives(attempts, found, fault_at)
    acked = {a.seq for a in attempts if a.acknowledged}
    assert set(result.lost) == acked - found  # lost: exactly the acknowledged writes not read back
    assert result.rpo_writes <= result.acknowledged <= result.writes
    assert result.rpo_seconds >= 0
    if result.rto_seconds is not None:
        assert result.rto_seconds >= 0
    if fault_at is not None and result.accepted_again_at not in (None, fault_at):
        # accepted again means: no write started after that acknowledged one has failed before it
        assert result.accepted_again_at is not None
        later_failures = [
            a
            for a in attempts
            if not a.acknowledged and a.ended >= fault_at and a.started > result.accepted_again_at
        ]
        assert later_failures == []


def test_the_log_hands_out_increasing_numbers_and_snapshots_only_answered_writes() -> None:
    log = writelogs.WriteLog()
    first, second = log.take(), log.take()
    log.record(Attempt(first, 1.0, 1.1, True))
    assert (first, second) == (1, 2)
    assert [a.seq for a in log.snapshot()] == [1]
