"""Leases: what an applied fault holds on its target, so that a second fault of the same kind is
refused instead of silently stacked (the second would record the first one's state as the state to
restore, and whichever ended last would leave the target faulted).

One small JSON file per lease key under ``<state dir>/leases/``, read and changed under its
``flock``; every run (and ``recover``) on the machine that shares the state dir sees it. A file
holds the holders (run id, ledger entry) and the *original* revert data, written by the first
holder. With ``allow_overlap``, later holders join; for a fault that restores a captured state the
last one out restores the original, whatever order they end in.

A holder whose run is dead and whose ledger entry is reverted (or was never written: a crash
between lease and intent) is stale and dropped; a dead run's applied fault still holds its lease
until ``recover`` takes it back.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoskit import errors
from chaoskit.engine import ledgers


def directory(root: Path) -> Path:
    return root / "leases"


def _path(root: Path, key: str) -> Path:
    return directory(root) / (hashlib.sha256(key.encode("utf-8")).hexdigest()[:32] + ".json")


@contextlib.contextmanager
def _locked(root: Path, key: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The lease file for ``key``, locked, with what it says (empty when new)."""
    path = _path(root, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(50):  # bounded: only a racing unlink makes us go round
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                continue  # the last holder removed it while we waited: open the new one
            raw = os.pread(fd, 1 << 20, 0)
            try:
                data = json.loads(raw) if raw.strip() else {}
            except ValueError:
                data = {}  # a torn write: treat as free, the ledgers still know every fault
            try:
                yield fd, data if isinstance(data, dict) else {}
            finally:
                if os.fstat(fd).st_size == 0:
                    path.unlink(missing_ok=True)  # nobody holds it: leave no empty file behind
            return
        finally:
            os.close(fd)
    raise errors.LedgerError(f"can't lock the lease file {path}")


def _save(root: Path, key: str, fd: int, data: dict[str, Any]) -> None:
    if not data.get("holders"):
        _path(root, key).unlink(missing_ok=True)
        return
    body = json.dumps(data).encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, body, 0)
    os.fsync(fd)


@dataclass(frozen=True)
class Holder:
    run_id: str
    entry: str
    live: bool


def _alive(root: Path, holder: Mapping[str, Any]) -> Holder | None:
    """The holder as it stands now, or None when it is stale (its fault is gone)."""
    run_id, entry = str(holder.get("run_id")), str(holder.get("entry"))
    try:
        path = ledgers.path_of(root, run_id)
    except errors.UsageError:
        return None
    if not path.exists():
        return None
    live = ledgers.is_live(path)
    try:
        found = {e.id: e for e in ledgers.load(path).entries}
    except errors.LedgerError:
        return Holder(run_id, entry, live)  # can't tell: keep it, to be safe
    if entry in found:
        return None if found[entry].state == "reverted" else Holder(run_id, entry, live)
    return Holder(run_id, entry, live) if live else None


def acquire(
    root: Path,
    key: str,
    *,
    run_id: str,
    entry: str,
    revert: Mapping[str, Any],
    allow_overlap: bool,
    what: str,
) -> None:
    """Hold ``key`` for ``entry``; ``LeaseHeld`` when another fault holds it and overlap is not
    allowed. ``revert`` (as the ledger stores it) becomes the original when this is the first."""
    with _locked(root, key) as (fd, data):
        holders = [h for h in (_alive(root, raw) for raw in data.get("holders", [])) if h is not None]
        if holders and not allow_overlap:
            first = holders[0]
            if first.run_id == run_id:
                whom = f"an earlier step of this run (entry {first.entry})"
                hint = "remove one of the two steps, or say allow_overlap: true on the later one"
            elif first.live:
                whom = f"run {first.run_id}, which is running now"
                hint = "wait for it to end, or say allow_overlap: true on this step"
            else:
                whom = f"run {first.run_id}, which died without taking it back"
                hint = f"take it back first: chaoskit recover {first.run_id}"
            raise errors.LeaseHeld(f"{what}: already held by {whom}", hint=hint)
        if not holders:
            data.clear()
            data.update(key=key, original=dict(revert))
        data["holders"] = [
            *({"run_id": h.run_id, "entry": h.entry} for h in holders),
            {"run_id": run_id, "entry": entry, "at": datetime.now(UTC).isoformat()},
        ]
        _save(root, key, fd, data)


def peek(root: Path, key: str, *, run_id: str, entry: str) -> Release:
    """What ``release`` would say, without giving anything up (so that a revert that fails keeps
    its lease)."""
    with _locked(root, key) as (_, data):
        original = data.get("original")
        others = [
            h
            for h in (_alive(root, raw) for raw in data.get("holders", []))
            if h is not None and (h.run_id, h.entry) != (run_id, entry)
        ]
    return Release(remaining=len(others), original=original if isinstance(original, dict) else None)


@dataclass(frozen=True)
class Release:
    remaining: int
    """Other holders still applied: a fault that restores a captured state must not revert now."""
    original: dict[str, Any] | None
    """The first holder's revert data: what the last one out restores."""


def release(root: Path, key: str, *, run_id: str, entry: str) -> Release:
    """Give up ``entry``'s hold on ``key``."""
    with _locked(root, key) as (fd, data):
        original = data.get("original")
        others = [
            h
            for h in (_alive(root, raw) for raw in data.get("holders", []))
            if h is not None and (h.run_id, h.entry) != (run_id, entry)
        ]
        data["holders"] = [{"run_id": h.run_id, "entry": h.entry} for h in others]
        _save(root, key, fd, data)
    return Release(remaining=len(others), original=original if isinstance(original, dict) else None)
