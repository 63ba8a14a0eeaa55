"""The fault ledger: one JSON-lines file per run, each line fsync'd, so that a fault injected by a
process that then died (``kill -9``, a closed laptop) can still be found and taken back.

Lines, in order for one fault: ``intent`` (with the revert data from ``Fault.prepare``) before
``inject``; ``applied`` (the final revert data) after; ``reverted`` once it is taken back. An
action that leaves something behind writes ``undo``, and ``reverted`` once undone. ``run-start``
and ``run-end`` bracket the run. Reading tolerates a torn last line (the crash came mid-write).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoskit import errors
from chaoskit.drivers import contract
from chaoskit.engine import journals

ENV = "CHAOSKIT_STATE_DIR"
SUFFIX = ".jsonl"


def state_dir(explicit: Path | str | None = None) -> Path:
    """``--state-dir``, else ``$CHAOSKIT_STATE_DIR``, else ``~/.local/state/chaoskit``."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    return Path.home() / ".local" / "state" / "chaoskit"


def directory(root: Path) -> Path:
    return root / "ledgers"


def path_of(root: Path, run_id: str) -> Path:
    return directory(root) / f"{run_id}{SUFFIX}"


class Ledger:
    """Appends to one run's ledger. Every line is on disk (fsync'd) before the call returns."""

    def __init__(self, path: Path, run_id: str, secrets: Iterable[str] = ()) -> None:
        self.path = path
        self.run_id = run_id
        self._secrets = tuple(secrets)
        self._lock = threading.Lock()

    @classmethod
    def create(cls, root: Path, run_id: str, secrets: Iterable[str] = ()) -> Ledger:
        path = path_of(root, run_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise errors.LedgerError(
                f"can't create the ledger directory {path.parent}: {e.strerror}",
                hint="pass a writable --state-dir or set CHAOSKIT_STATE_DIR",
            ) from e
        return cls(path, run_id, secrets)

    def _append(self, record: dict[str, Any]) -> None:
        record = {"type": record.pop("type"), "run_id": self.run_id, "at": _now(), **record}
        line = json.dumps(journals.redact(record, self._secrets), sort_keys=False) + "\n"
        with self._lock:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                try:
                    os.write(fd, line.encode("utf-8"))
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as e:
                raise errors.LedgerError(
                    f"can't write the fault ledger {self.path}: {e.strerror}",
                    hint="free disk space or pass a writable --state-dir",
                ) from e

    def start(self, title: str, file: str | None) -> None:
        self._append({"type": "run-start", "title": title, "file": file, "pid": os.getpid()})

    def intent(
        self, entry: str, activity: str, step: str, target: contract.Target, revert: contract.RevertData
    ) -> None:
        self._append(
            {
                "type": "intent",
                "id": entry,
                "activity": activity,
                "step": step,
                "target": target.to_json(),
                "revert": revert,
            }
        )

    def applied(self, entry: str, revert: contract.RevertData) -> None:
        self._append({"type": "applied", "id": entry, "revert": revert})

    def undo(self, entry: str, activity: str, step: str, data: contract.RevertData) -> None:
        self._append({"type": "undo", "id": entry, "activity": activity, "step": step, "revert": data})

    def reverted(self, entry: str, outcome: str, by: str = "run") -> None:
        self._append({"type": "reverted", "id": entry, "outcome": outcome, "by": by})

    def end(self, verdict: str) -> None:
        self._append({"type": "run-end", "verdict": verdict})


def _now() -> str:
    return datetime.now(UTC).isoformat()


def read(path: Path) -> list[dict[str, Any]]:
    """Every complete line; a torn or garbled last line (a crash mid-write) is skipped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise errors.LedgerError(f"can't read the fault ledger {path}: {e.strerror}") from e
    records: list[dict[str, Any]] = []
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number >= len(lines) - 1:
                continue  # the torn last line
            raise errors.LedgerError(
                f"{path}:{number}: not a ledger line", hint="the file was edited by hand; repair or move it"
            ) from None
        if isinstance(record, dict):
            records.append(record)
    return records


@dataclass
class Entry:
    """One fault on one target, or one action's leftover, as the ledger knows it."""

    run_id: str
    id: str
    kind: str
    """``fault`` or ``undo``."""
    activity: str
    step: str
    state: str
    """``intent`` (injection may or may not have happened), ``applied``, ``reverted``."""
    revert: contract.RevertData
    target: dict[str, Any] = field(default_factory=dict)
    ledger: Path | None = None

    def describe(self) -> str:
        where = f" on {contract.Target.from_json(self.target)}" if self.target else ""
        return f"{self.activity}{where} (step {self.step!r}, {self.state})"


def entries(path: Path) -> list[Entry]:
    """The state of every fault and leftover in one ledger, in the order they were first written."""
    found: dict[str, Entry] = {}
    run_id = path.name.removesuffix(SUFFIX)
    for record in read(path):
        kind, key = record.get("type"), record.get("id")
        if not isinstance(key, str):
            continue
        if kind in {"intent", "undo"}:
            found[key] = Entry(
                run_id=str(record.get("run_id", run_id)),
                id=key,
                kind="fault" if kind == "intent" else "undo",
                activity=str(record.get("activity", "")),
                step=str(record.get("step", "")),
                state="intent" if kind == "intent" else "applied",
                revert=_revert_data(record.get("revert")),
                target=dict(record.get("target") or {}),
                ledger=path,
            )
        elif key in found and kind == "applied":
            found[key].state = "applied"
            found[key].revert = _revert_data(record.get("revert"))
        elif key in found and kind == "reverted":
            found[key].state = "reverted"
    return list(found.values())


def _revert_data(value: object) -> contract.RevertData:
    return dict(value) if isinstance(value, Mapping) else {}


def ledgers(root: Path, run_id: str | None = None) -> list[Path]:
    """The ledger files under ``root``: one run's, or all, oldest first."""
    if run_id is not None:
        path = path_of(root, run_id)
        if not path.exists():
            raise errors.LedgerError(
                f"no ledger for run {run_id!r} in {directory(root)}",
                hint="`chaoskit status` lists runs with outstanding faults; check --state-dir",
            )
        return [path]
    folder = directory(root)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"*{SUFFIX}"), key=lambda p: (p.stat().st_mtime, p.name))


def outstanding(root: Path, run_id: str | None = None) -> list[Entry]:
    """Faults injected (or maybe injected) and leftovers not yet taken back."""
    return [e for path in ledgers(root, run_id) for e in entries(path) if e.state != "reverted"]
