"""The agent's own ledger and the leases of the runs it works for, as files under its state dir.

One file per fault (``faults/<id>.json``), written and fsync'd before the fault is applied
(``intent``), rewritten once it is (``applied``), removed once it is reverted: what is on disk is
exactly what may still be applied, after any crash of the agent. One file per run
(``leases/<run id>.json``) holds the moment its lease expires; the run renews it while it lives.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chaoskit.errors import LedgerError

State = Literal["intent", "applied"]
_SAFE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
ID = re.compile(r"[0-9a-f]{16}")


class Record(BaseModel):
    """One fault the agent applied (or is about to) for a run."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[0-9a-f]{16}$")
    run_id: str
    kind: str
    """The fault: ``stress_cpu``, ``kill_process``, ``partition``..."""
    target: dict[str, Any]
    """How it was asked for (a pod, a container id or a pid) and the host pid it resolved to."""
    undo: dict[str, Any] = Field(default_factory=dict)
    """What the revert needs (a stressor's mark and files, processes by pid and start time, rules)."""
    state: State = "intent"
    created: float = Field(default_factory=time.time)
    order: int = Field(default_factory=time.monotonic_ns)
    """Sorts faults made in the same instant: the last applied is the first reverted."""


def safe(name: str, what: str) -> str:
    """``name`` if it can be a file name; a run id comes from the network."""
    if _SAFE.fullmatch(name) is None:
        raise ValueError(f"{what} {name!r}: letters, digits, '_', '.', ':' and '-' only, at most 128")
    return name


def new_id() -> str:
    return secrets.token_hex(8)


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as e:
        raise LedgerError(
            f"agent: can't write {path}: {e.strerror or e}", hint="give the agent a writable --state-dir"
        ) from e


class Book:
    """The ledger and leases under ``root`` (the agent's state dir)."""

    def __init__(self, root: Path) -> None:
        self.faults = root / "faults"
        self.leases = root / "leases"
        self.faults.mkdir(parents=True, exist_ok=True)
        self.leases.mkdir(parents=True, exist_ok=True)

    def write(self, record: Record) -> None:
        _write(self.faults / f"{record.id}.json", record.model_dump(mode="json"))

    def remove(self, record_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.faults / f"{safe(record_id, 'fault id')}.json").unlink()

    def get(self, record_id: str) -> Record | None:
        path = self.faults / f"{safe(record_id, 'fault id')}.json"
        try:
            return Record.model_validate_json(path.read_text())
        except FileNotFoundError:
            return None

    def records(self) -> Iterator[Record]:
        """Every fault on file, oldest first; an unreadable file is set aside, never blocks the rest."""
        found = []
        for path in self.faults.glob("*.json"):
            try:
                found.append(Record.model_validate_json(path.read_text()))
            except (OSError, ValueError):
                with contextlib.suppress(OSError):
                    path.rename(path.with_suffix(".unreadable"))
        yield from sorted(found, key=lambda r: (r.created, r.order))

    def renew(self, run_id: str, seconds: float, now: float | None = None) -> float:
        """Extend ``run_id``'s lease to ``seconds`` from now; when it expires."""
        expires = (now if now is not None else time.time()) + seconds
        _write(self.leases / f"{safe(run_id, 'run id')}.json", {"run_id": run_id, "expires": expires})
        return expires

    def expires(self, run_id: str) -> float | None:
        try:
            data = json.loads((self.leases / f"{safe(run_id, 'run id')}.json").read_text())
            return float(data["expires"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def expired(self, run_id: str, now: float | None = None) -> bool:
        """True when the run's lease has run out (or it has none): its faults are the agent's to revert."""
        expires = self.expires(run_id)
        return expires is None or expires <= (now if now is not None else time.time())

    def drop_lease(self, run_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.leases / f"{safe(run_id, 'run id')}.json").unlink()
