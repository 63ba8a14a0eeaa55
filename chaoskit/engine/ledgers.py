"""The fault ledger: one JSON-lines file per run, written ahead of every change, so that a fault
injected by a process that then died (``kill -9``, a full disk, a closed laptop) can still be
found and taken back.

Lines, in order for one fault: ``intent`` (with the revert data from ``Fault.prepare``) before
``inject``; ``applied`` (the final revert data) after; ``reverted`` once it is taken back. An
action that leaves something behind writes ``undo`` (ahead of ``run`` when it can say in advance
what it will leave, as ``process.start`` does) and ``reverted`` once undone. ``run-start`` and
``run-end`` bracket the run; ``recover-start`` marks a ``recover`` at work.

How it stays trustworthy (docs/fault-lifecycle.md):

* A live run owns its ledger: an exclusive ``flock`` for its lifetime, so ``recover``/``status``
  tell a live run from a dead one by trying the lock (immune to pid reuse).
* Every write is whole or a clear ``LedgerError``, and a run reserves space before its first
  inject, given back when the disk fills (``appending``).
* Secrets never reach the file in clear, only references to them (``secretrefs``), with where each
  comes from in ``run-start``.
* Reading is forgiving per line and per file: a bad line is skipped and named; a file that can't
  be read at all is set aside (``quarantine/``) and every other run is still recovered.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets as secrets_module
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoskit import errors, wording
from chaoskit.drivers import contract
from chaoskit.engine import appending, secretrefs

ENV = "CHAOSKIT_STATE_DIR"
SUFFIX = ".jsonl"
RESERVE_BYTES = 1 << 20
"""Space a run sets aside before its first inject: thousands of ledger lines."""
QUARANTINE = "quarantine"
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def state_dir(explicit: Path | str | None = None) -> Path:
    """``--state-dir``, else ``$CHAOSKIT_STATE_DIR``, else ``$XDG_STATE_HOME/chaoskit``, else
    ``~/.local/state/chaoskit``."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    if os.environ.get("XDG_STATE_HOME"):
        return Path(os.environ["XDG_STATE_HOME"]).expanduser() / "chaoskit"
    return Path.home() / ".local" / "state" / "chaoskit"


def directory(root: Path) -> Path:
    return root / "ledgers"


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is safe as a file name, a label value and a toxic name; else a UsageError."""
    if not RUN_ID.fullmatch(run_id):
        raise errors.UsageError(
            f"run id {run_id!r} is not allowed: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            hint="it becomes a file name, a Kubernetes label and a toxic name, e.g. --run-id nightly-42",
        )
    return run_id


def path_of(root: Path, run_id: str) -> Path:
    return directory(root) / f"{check_run_id(run_id)}{SUFFIX}"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Ledger:
    """One run's ledger, open for appending. Every line is on disk (fsync'd) before a call
    returns, or the call raises ``LedgerError`` and the ledger is ``broken``."""

    def __init__(
        self, file: appending.AppendFile, run_id: str, secrets: Mapping[str, str] | None = None
    ) -> None:
        self.path = file.path
        self.run_id = run_id
        self._file = file
        self._secrets = dict(secrets or {})
        self._lock = threading.Lock()
        self._token = secrets_module.token_hex(3)
        self._count = 0
        self.broken: errors.LedgerError | None = None
        """The first write that failed; once set, the run must stop injecting."""

    # ---- opening ----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        root: Path,
        run_id: str,
        secrets: Mapping[str, str] | None = None,
        *,
        reserve: int = RESERVE_BYTES,
    ) -> Ledger:
        """Open the ledger of a new run and own it (an exclusive lock held until ``close``).

        Refuses a run id that is live, or whose ledger still has outstanding entries (a crashed run
        with that id must be recovered first), and reserves space for the run's lines."""
        path = path_of(root, run_id)
        try:
            file = appending.AppendFile.create(path)
        except OSError as e:
            raise errors.LedgerError(
                f"can't open the fault ledger {path}: {e.strerror}",
                hint="pass a writable --state-dir or set CHAOSKIT_STATE_DIR",
            ) from e
        if not file.lock():
            file.close(release=False)  # the reserve beside it is the live run's
            raise errors.UsageError(
                f"run {run_id!r} is running now (its runner holds {path})",
                hint="give this run another --run-id (or none, for a new one)",
            )
        ledger = cls(file, run_id, secrets)
        try:
            left = [e for e in load(path).entries if e.state != "reverted"]
            if left:
                raise errors.UsageError(
                    f"run {run_id!r} crashed with {wording.counted(len(left), 'fault')} still outstanding "
                    f"in {path}",
                    hint=f"take them back first: chaoskit recover {run_id} --state-dir {root}",
                )
            file.repair_tail(ledger._full)
            ledger._reserve(reserve)
        except BaseException:
            ledger.close()
            raise
        return ledger

    @classmethod
    def attach(cls, path: Path, *, wait: bool = False, force: bool = False) -> Ledger | None:
        """Open a dead run's ledger to record what ``recover`` did, taking its lock. None when a
        live process holds it, unless ``force`` (then lines are appended beside the owner's: one
        ``write`` of an ``O_APPEND`` file each, so they never interleave)."""
        try:
            file = appending.AppendFile.existing(path)
        except OSError as e:
            raise errors.LedgerError(f"can't open the fault ledger {path}: {e.strerror}") from e
        if not file.lock(wait=wait) and not force:
            file.close(release=False)
            return None
        ledger = cls(file, path.name.removesuffix(SUFFIX))
        # A read-only ledger can't be repaired: it can still be acted on, only not recorded.
        with contextlib.suppress(OSError):
            file.repair_tail(ledger._full)
        return ledger

    def _reserve(self, size: int) -> None:
        try:
            self._file.reserve(size)
        except OSError as e:
            raise errors.LedgerError(
                f"can't reserve {size // 1024} KiB for the fault ledger in {self.path.parent}: "
                f"{e.strerror}; nothing was injected",
                hint="free disk space there, or pass another --state-dir",
            ) from e

    def close(self) -> None:
        """Give back the reserved space and the lock."""
        with self._lock:
            self._file.close()

    # ---- writing ----------------------------------------------------------------------------

    def new_entry(self, kind: str) -> str:
        """An entry id unique across processes, even for a reused run id: kind, counter, token."""
        with self._lock:
            self._count += 1
            return f"{kind}{self._count}-{self._token}"

    def _full(self) -> None:
        # The run must stop injecting, but this line (and the lines that take the faults back) can
        # still be written in the space the run set aside.
        full = errors.LedgerError(f"the disk holding the fault ledger {self.path} is full")
        self.broken = self.broken or full

    def _append(self, record: dict[str, Any]) -> None:
        record = {"type": record.pop("type"), "run_id": self.run_id, "at": _now(), **record}
        line = json.dumps(secretrefs.to_refs(record, self._secrets), allow_nan=False) + "\n"
        with self._lock:
            if self._file.fd is None:
                error = errors.LedgerError(f"the fault ledger {self.path} is closed")
                self.broken = self.broken or error
                raise error
            try:
                self._file.write(line.encode("utf-8"), self._full)
            except OSError as e:
                error = errors.LedgerError(
                    f"can't write the fault ledger {self.path}: {e.strerror or e}",
                    hint="free disk space or pass a writable --state-dir",
                )
                self.broken = self.broken or error
                raise error from e

    def start(self, title: str, file: str | None, secret_sources: Mapping[str, Any] | None = None) -> None:
        record: dict[str, Any] = {"type": "run-start", "title": title, "file": file, "pid": os.getpid()}
        self._append({**record, "secrets": dict(secret_sources or {})})

    def intent(
        self,
        entry: str,
        activity: str,
        step: str,
        target: contract.Target,
        revert: Mapping[str, Any],
        *,
        lease: str | None = None,
    ) -> None:
        record: dict[str, Any] = {"type": "intent", "id": entry, "activity": activity, "step": step}
        self._append({**record, "target": target.to_json(), "revert": dict(revert), "lease": lease})

    def applied(self, entry: str, revert: Mapping[str, Any]) -> None:
        self._append({"type": "applied", "id": entry, "revert": dict(revert)})

    def undo(
        self, entry: str, activity: str, step: str, data: Mapping[str, Any], *, ahead: bool = False
    ) -> None:
        """An action's leftover; ``ahead``: written before the action ran (state ``intent``)."""
        record: dict[str, Any] = {"type": "undo", "id": entry, "activity": activity, "step": step}
        record.update({"revert": dict(data), "ahead": ahead})
        self._append(record)

    def reverted(self, entry: str, outcome: str, by: str = "run", *, serves: list[str] | None = None) -> None:
        record: dict[str, Any] = {"type": "reverted", "id": entry, "outcome": outcome, "by": by}
        if serves:
            record["serves"] = serves
        self._append(record)

    def recover_start(self) -> None:
        self._append({"type": "recover-start", "pid": os.getpid()})

    def end(self, verdict: str) -> None:
        self._append({"type": "run-end", "verdict": verdict})


# ---- reading ------------------------------------------------------------------------------


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
    revert: dict[str, Any]
    target: dict[str, Any] = field(default_factory=dict)
    ledger: Path | None = None
    order: int = 0
    """Position of its first line: reverting goes from the highest down (last applied first)."""
    lease: str | None = None
    outcome: str | None = None
    """How it was reverted (``reverted``, ``already-clean``, ``gone-with-host``, ...)."""
    serves: list[str] = field(default_factory=list)
    """For a stopped process: the endpoints it listened on just before it was stopped."""

    def target_text(self) -> str:
        try:
            return str(contract.Target.from_json(self.target)) if self.target else ""
        except (KeyError, TypeError, ValueError, AttributeError):
            return "an unreadable target"

    def describe(self) -> str:
        where = self.target_text()
        return f"{self.activity}{' on ' + where if where else ''} (step {self.step!r}, {self.state})"


@dataclass
class RunLedger:
    """Everything one ledger file says."""

    path: Path
    run_id: str
    entries: list[Entry]
    problems: list[str] = field(default_factory=list)
    """``FILE:LINE: what is wrong`` for every line that was skipped."""
    pid: int | None = None
    secrets: dict[str, Any] = field(default_factory=dict)
    """Where each secret its lines refer to comes from: ``{"env": NAME}`` or ``{"file": PATH}``."""
    ended: str | None = None
    """The verdict of ``run-end``, when the run got that far."""
    valid: int = 0
    """How many lines were understood."""

    @property
    def outstanding(self) -> list[Entry]:
        return [e for e in self.entries if e.state != "reverted"]


def _str(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key!r} is not text")
    return value


def _dict(record: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} is not an object")
    return value


def load(path: Path) -> RunLedger:
    """Read one ledger. Lines that can't be understood are skipped and listed in ``problems``;
    a file that can't be read at all raises ``LedgerError``."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise errors.LedgerError(f"can't read the fault ledger {path}: {e.strerror}") from e
    run_id = path.name.removesuffix(SUFFIX)
    found: dict[str, Entry] = {}
    ledger = RunLedger(path=path, run_id=run_id, entries=[])
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            _apply(record, found, ledger, number)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
            if number == len(lines):
                continue  # the torn last line of a crash mid-write (or of a line being written now)
            ledger.problems.append(f"{path}:{number}: not a ledger line ({e}); skipped")
        else:
            ledger.valid += 1
    ledger.entries = list(found.values())
    return ledger


def _apply(record: dict[str, Any], found: dict[str, Entry], ledger: RunLedger, number: int) -> None:
    kind = record.get("type")
    if kind == "run-start":
        pid = record.get("pid")
        ledger.pid = pid if isinstance(pid, int) else None
        ledger.secrets = _dict(record, "secrets")
        return
    if kind == "run-end":
        ledger.ended = str(record.get("verdict"))
        return
    if kind not in {"intent", "undo", "applied", "reverted"}:
        return  # recover-start, and lines of a newer chaoskit that this one does not need
    key = _str(record, "id")
    if kind in {"intent", "undo"}:
        target = _dict(record, "target")
        if target:
            contract.Target.from_json(target)  # an unreadable target is a bad line, said as such
        lease = record.get("lease")
        found[key] = Entry(
            run_id=ledger.run_id,
            id=key,
            kind="fault" if kind == "intent" else "undo",
            activity=_str(record, "activity"),
            step=str(record.get("step", "")),
            state="intent" if kind == "intent" or record.get("ahead") else "applied",
            revert=_dict(record, "revert"),
            target=target,
            ledger=ledger.path,
            # An action's undo written ahead and then again after it ran keeps its first place.
            order=found[key].order if key in found else number,
            lease=lease if isinstance(lease, str) else None,
        )
    elif key in found and kind == "applied":
        found[key].state = "applied"
        found[key].revert = _dict(record, "revert")
    elif key in found and kind == "reverted":
        found[key].state = "reverted"
        found[key].outcome = str(record.get("outcome"))
        serves = record.get("serves")
        if isinstance(serves, list):
            found[key].serves = [str(s) for s in serves]


def is_live(path: Path) -> bool:
    """True when a process holds the ledger's lock: its run (or a ``recover``) is at work."""
    return appending.held(path)


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

    def age(p: Path) -> tuple[float, str]:
        try:
            return (p.stat().st_mtime, p.name)
        except OSError:
            return (0.0, p.name)

    return sorted(folder.glob(f"*{SUFFIX}"), key=age)


@dataclass
class Survey:
    """What every ledger under a state dir says, and what could not be read."""

    runs: list[RunLedger]
    unreadable: list[str] = field(default_factory=list)
    """One message per file that was set aside (or could not even be set aside)."""

    @property
    def problems(self) -> list[str]:
        return [*self.unreadable, *(p for run in self.runs for p in run.problems)]

    def outstanding(self) -> Iterator[tuple[RunLedger, Entry]]:
        for run in self.runs:
            for entry in run.outstanding:
                yield run, entry


def survey(root: Path, run_id: str | None = None, *, set_aside: bool = True) -> Survey:
    """Read every ledger (or one run's). A file that can't be read is moved to ``quarantine/``
    (when ``set_aside``) and named; it never keeps the others from being read."""
    result = Survey(runs=[])
    for path in ledgers(root, run_id):
        try:
            run = load(path)
        except errors.LedgerError as e:
            moved = quarantine(path) if set_aside else None
            result.unreadable.append(e.message + (f"; set aside as {moved}" if moved else ""))
            continue
        if run.problems and not run.valid:
            # Not one line of it is a ledger line: nothing in it can be acted on.
            moved = quarantine(path) if set_aside else None
            result.unreadable.append(
                f"{path} is not a fault ledger ({run.problems[0].removeprefix(str(path) + ':')})"
                + (f"; set aside as {moved}" if moved else "")
            )
            continue
        result.runs.append(run)
    return result


def quarantine(path: Path) -> Path | None:
    """Move an unreadable ledger out of the way (it is kept, for a person to look at)."""
    target = path.parent / QUARANTINE / path.name
    try:
        target.parent.mkdir(exist_ok=True)
        os.replace(path, target)
    except OSError:
        return None
    return target


def outstanding(root: Path, run_id: str | None = None) -> list[Entry]:
    """Faults injected (or maybe injected) and leftovers not yet taken back, of every readable run."""
    return [entry for _, entry in survey(root, run_id, set_aside=False).outstanding()]


def revert_model(fault: contract.Fault[Any, Any], data: Mapping[str, Any]) -> contract.Revert:
    """Revert data read back from a ledger, as the fault's typed model; ``LedgerError`` saying what
    is wrong when it does not fit (another chaoskit version wrote it, or the file was edited)."""
    try:
        return contract.load_revert(fault, data)
    except ValueError as e:
        raise errors.LedgerError(
            f"the recorded revert data of {fault.name} can't be used: {e}",
            hint="another chaoskit version wrote it, or the ledger was edited; check the target by hand",
        ) from e
