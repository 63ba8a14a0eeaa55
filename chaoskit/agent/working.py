"""The agent's work, without HTTP: apply a fault for a run (written ahead to its ledger), revert it,
renew a run's lease, and sweep: revert every fault of a run whose lease has run out."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from typing import Any

from chaoskit.agent import applying, locating, records
from chaoskit.drivers import contract
from chaoskit.errors import ChaoskitError, UsageError

DEFAULT_LEASE = 30.0
MAX_LEASE = 3600.0


class Agent:
    """Faults on this node for runs elsewhere, recorded in ``book``."""

    def __init__(
        self,
        book: records.Book,
        *,
        namespaces: Collection[str] = (),
        host_targets: bool = False,
        read_pod: locating.PodReader | None = None,
        clock: Callable[[], float] = time.time,
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.book = book
        self.namespaces = frozenset(namespaces)
        self.host_targets = host_targets
        self.read_pod = read_pod
        self.clock = clock
        self.log = log
        # One fault is applied or reverted at a time: a sweep never races an apply of the same run.
        self._lock = threading.Lock()

    def renew(self, run_id: str, seconds: float = DEFAULT_LEASE) -> float:
        if not 0 < seconds <= MAX_LEASE:
            raise UsageError(f"agent: a lease lasts more than 0 and at most {MAX_LEASE:g} seconds")
        try:
            return self.book.renew(run_id, seconds, now=self.clock())
        except ValueError as e:
            raise UsageError(str(e)) from e

    def create(
        self,
        run_id: str,
        kind: str,
        target: dict[str, Any],
        args: dict[str, Any],
        *,
        lease: float = DEFAULT_LEASE,
        record_id: str | None = None,
    ) -> tuple[records.Record, str]:
        """Apply ``kind`` to ``target`` for ``run_id`` and renew its lease; the record and what was done.

        ``record_id`` (16 hex digits) lets the caller write the id ahead in its own ledger, so that its
        revert after a crash can name the fault; a second request with that id is refused."""
        parsed = applying.parse(kind, args)
        if record_id is None:
            record_id = records.new_id()
        elif records.ID.fullmatch(record_id) is None:
            raise UsageError(f"agent: fault id {record_id!r} is not 16 hex digits")
        self.renew(run_id, lease)
        at = locating.locate(
            target, read_pod=self.read_pod, namespaces=self.namespaces, host_targets=self.host_targets
        )
        with self._lock:
            if self.book.get(record_id) is not None:
                raise UsageError(f"agent: fault {record_id} exists already")
            undo = applying.plan(kind, parsed, at, f"{run_id}/{record_id}")
            record = records.Record(
                id=record_id,
                run_id=run_id,
                kind=kind,
                target={**target, "host_pid": at.pid, "what": at.what},
                undo=undo,
                created=self.clock(),
            )
            self.book.write(record)
            try:
                said = applying.apply(kind, parsed, at, undo)
            except BaseException:
                self._revert(record)
                raise
            applied = record.model_copy(update={"state": "applied"})
            self.book.write(applied)
        self.log(f"{run_id}: {said} [{record_id}]")
        return applied, said

    def _revert(self, record: records.Record) -> contract.RevertOutcome:
        outcome = applying.revert(record.kind, record.undo)
        self.book.remove(record.id)
        return outcome

    def revert(self, record_id: str) -> contract.RevertOutcome:
        """Take fault ``record_id`` back; ``ALREADY_CLEAN`` when the agent holds no such fault."""
        try:
            with self._lock:
                record = self.book.get(record_id)
                if record is None:
                    return contract.RevertOutcome.ALREADY_CLEAN
                outcome = self._revert(record)
        except ValueError as e:
            raise UsageError(str(e)) from e
        self.log(f"{record.run_id}: reverted {record.kind} in {record.target.get('what')} [{record_id}]")
        return outcome

    def faults(self, run_id: str | None = None) -> list[records.Record]:
        return [r for r in self.book.records() if run_id is None or r.run_id == run_id]

    def sweep(self) -> list[str]:
        """Revert what runs whose lease expired left (newest first); the fault ids reverted.
        A fault that fails to revert stays on file and is tried again at the next sweep."""
        now = self.clock()
        expired = [r for r in self.book.records() if self.book.expired(r.run_id, now)]
        swept = []
        for record in reversed(expired):
            try:
                with self._lock:
                    if self.book.get(record.id) is None:
                        continue  # reverted meanwhile by its run
                    self._revert(record)
            except (ChaoskitError, OSError) as e:
                self.log(f"{record.run_id}: could not sweep {record.kind} [{record.id}]: {e}")
                continue
            swept.append(record.id)
            self.log(f"{record.run_id}: lease expired, reverted {record.kind} in {record.target.get('what')}")
        held = {r.run_id for r in self.book.records()}
        for lease in self.book.leases.glob("*.json"):
            if lease.stem not in held and self.book.expired(lease.stem, now):
                self.book.drop_lease(lease.stem)
        return swept
