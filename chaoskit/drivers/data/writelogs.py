"""The writer's log of sequenced writes and the recovery objectives read from it: RPO (acknowledged
writes lost, as a count and as seconds of writes) and RTO (from the fault until writes are accepted
again). Pure: no store, no clock; the probes feed it epochs and the sequence numbers read back."""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attempt:
    """One write the writer tried: record ``seq``, sent at ``started`` and answered at ``ended``
    (wall-clock epochs); ``acknowledged`` when the store said it was written."""

    seq: int
    started: float
    ended: float
    acknowledged: bool


@dataclass(frozen=True)
class Objectives:
    """What a run's writes show once the store is read back after recovery."""

    writes: int
    """Writes attempted (answered either way) before the read-back."""
    acknowledged: int
    """Of those, how many the store acknowledged."""
    lost: tuple[int, ...]
    """Sequence numbers of acknowledged writes missing from the read-back, in order."""
    lost_since: float | None
    """The acknowledgement of the last write kept before the first lost one (the first lost
    write's start, when none was kept); None when nothing acknowledged was lost."""
    lost_until: float | None
    """The acknowledgement of the last lost write; None when nothing acknowledged was lost."""
    fault_at: float | None
    """When the outage began: the fault's time when given; else the acknowledgement of the last
    write acknowledged before the first failed one (the start of that failed write when none
    was), so that the RTO errs long by at most one writer interval; None when no write failed."""
    accepted_again_at: float | None
    """When writes were accepted again: the acknowledgement of the first write started after the
    last failed write that followed ``fault_at``; ``fault_at`` itself when no write failed since."""

    @property
    def rpo_writes(self) -> int:
        return len(self.lost)

    @property
    def rpo_seconds(self) -> float:
        """How far back the store's data went: ``lost_since`` to ``lost_until``; 0 when nothing
        acknowledged was lost."""
        if self.lost_since is None or self.lost_until is None:
            return 0.0
        return max(0.0, self.lost_until - self.lost_since)

    @property
    def rto_seconds(self) -> float | None:
        """Seconds from ``fault_at`` to ``accepted_again_at``; None while writes are not accepted
        again (never recovered), 0 when there was no outage at all."""
        if self.fault_at is None:
            return 0.0
        if self.accepted_again_at is None:
            return None
        return max(0.0, self.accepted_again_at - self.fault_at)


def objectives(attempts: Sequence[Attempt], found: Collection[int], fault_at: float | None) -> Objectives:
    """RPO and RTO of ``attempts`` given the sequence numbers ``found`` in the store after recovery
    and the time of the fault (None: the outage starts where the writes show it did)."""
    ordered = sorted(attempts, key=lambda a: a.seq)
    acked = [a for a in ordered if a.acknowledged]
    lost = [a for a in acked if a.seq not in found]
    since, until = _lost_window(acked, lost)
    return Objectives(
        writes=len(ordered),
        acknowledged=len(acked),
        lost=tuple(a.seq for a in lost),
        lost_since=since,
        lost_until=until,
        fault_at=(fault := _fault_at(ordered, fault_at)),
        accepted_again_at=_accepted_again(ordered, fault),
    )


def _lost_window(acked: Sequence[Attempt], lost: Sequence[Attempt]) -> tuple[float | None, float | None]:
    if not lost:
        return None, None
    first = lost[0]
    kept_before = [a for a in acked if a.seq < first.seq]  # all kept: ``first`` is the first lost
    since = kept_before[-1].ended if kept_before else first.started
    return since, max(a.ended for a in lost)


def _fault_at(ordered: Sequence[Attempt], fault_at: float | None) -> float | None:
    if fault_at is not None:
        return fault_at
    failed = [a for a in ordered if not a.acknowledged]
    if not failed:
        return None
    first = min(failed, key=lambda a: a.started)
    before = [a.ended for a in ordered if a.acknowledged and a.ended <= first.started]
    return max(before) if before else first.started


def _accepted_again(ordered: Sequence[Attempt], fault_at: float | None) -> float | None:
    if fault_at is None:
        return None
    failures = [a.started for a in ordered if not a.acknowledged and a.ended >= fault_at]
    if not failures:
        return fault_at
    last_failure = max(failures)
    after = [a.ended for a in ordered if a.acknowledged and a.started > last_failure]
    return min(after) if after else None


@dataclass
class WriteLog:
    """The writes of one writer (one store and key), shared between the writer's samples and the
    verifier in a run: each sample takes the next sequence number and records its answer."""

    _next: int = 0
    _attempts: list[Attempt] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> int:
        with self._lock:
            self._next += 1
            return self._next

    def record(self, attempt: Attempt) -> None:
        with self._lock:
            self._attempts.append(attempt)

    def snapshot(self) -> tuple[Attempt, ...]:
        """The answered writes so far; writes still in flight are not in it."""
        with self._lock:
            return tuple(self._attempts)
