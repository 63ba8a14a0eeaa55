"""The fault ledger: one JSON-lines file per run, written ahead of every change, so that a fault
injected by a process that then died (``kill -9``, a full disk, a closed laptop) can still be
found and taken back.

Lines, in order for one fault: ``intent`` (with the revert data from ``Fault.prepare``) before
``inject``; ``applied`` (the final revert data) after; ``reverted`` once it is taken back. An
action that leaves something behind writes ``undo`` (ahead of ``run`` when it can say in advance
what it will leave, as ``process.start`` does) and ``reverted`` once undone. ``run-start`` and
``run-end`` bracket the run; ``recover-start`` marks a ``recover`` at work.

How it stays trustworthy (docs/fault-lifecycle.md):

* A live run owns its ledger: it holds an exclusive ``flock`` on the file for its lifetime, so
  ``recover``/``status`` tell a live run from a dead one by trying the lock (immune to pid reuse).
* Every write is whole or a clear ``LedgerError``: short writes are continued, a torn tail (a
  crash mid-write) is closed with a newline before the next append, each line is fsync'd.
* A run reserves space before its first inject (a ballast file beside the ledger). A full disk is
  found before anything is applied; mid-run, the ballast is given back so that the lines that take
  faults back can still be written.
* Secrets never reach the file in clear: they are stored as references (``${secrets.<name>}``),
  with where each comes from (env var or file) in ``run-start``, and resolved again by ``recover``.
* Reading is forgiving per line and per file: a bad line is skipped and named; a file that can't
  be read at all is set aside (``quarantine/``) and every other run is still recovered.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
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

ENV = "CHAOSKIT_STATE_DIR"
SUFFIX = ".jsonl"
RESERVE_SUFFIX = ".reserve"
RESERVE_BYTES = 1 << 20
"""Space a run sets aside before its first inject: thousands of ledger lines."""
QUARANTINE = "quarantine"
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SECRET_REF = re.compile(r"\$\{secrets\.([A-Za-z_][A-Za-z0-9_-]*)\}")


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


def to_refs(value: Any, secrets: Mapping[str, str]) -> Any:
    """``value`` with every secret's value replaced by a reference to it, ``${secrets.<name>}``
    (longer values first, so one that contains another goes whole)."""
    pairs = sorted(((v, n) for n, v in secrets.items() if v), key=lambda p: len(p[0]), reverse=True)
    if not pairs:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            for secret, name in pairs:
                item = item.replace(secret, "${secrets." + name + "}")
            return item
        if isinstance(item, Mapping):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    return walk(value)


def from_refs(value: Any, resolve: Mapping[str, str]) -> Any:
    """The inverse of ``to_refs``: references replaced by the values in ``resolve``. A reference to
    a secret that is not there raises ``LedgerError`` naming it."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in resolve:
            raise errors.LedgerError(f"secret {name!r} is not available")
        return resolve[name]

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return SECRET_REF.sub(one, item)
        if isinstance(item, Mapping):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(value)


def refs_in(value: Any) -> set[str]:
    """The names of the secrets ``value`` refers to."""
    return set(SECRET_REF.findall(json.dumps(value)))


class Ledger:
    """One run's ledger, open for appending. Every line is on disk (fsync'd) before a call
    returns, or the call raises ``LedgerError`` and the ledger is ``broken``."""

    def __init__(self, path: Path, run_id: str, fd: int, secrets: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.run_id = run_id
        self._fd: int | None = fd
        self._secrets = dict(secrets or {})
        self._lock = threading.Lock()
        self._token = secrets_module.token_hex(3)
        self._count = 0
        self._torn = False
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
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise errors.LedgerError(
                f"can't open the fault ledger {path}: {e.strerror}",
                hint="pass a writable --state-dir or set CHAOSKIT_STATE_DIR",
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            raise errors.UsageError(
                f"run {run_id!r} is running now (its runner holds {path})",
                hint="give this run another --run-id (or none, for a new one)",
            ) from e
        ledger = cls(path, run_id, fd, secrets)
        try:
            left = [e for e in load(path).entries if e.state != "reverted"]
            if left:
                raise errors.UsageError(
                    f"run {run_id!r} crashed with {wording.counted(len(left), 'fault')} still outstanding "
                    f"in {path}",
                    hint=f"take them back first: chaoskit recover {run_id} --state-dir {root}",
                )
            ledger._repair_tail()
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
        run_id = path.name.removesuffix(SUFFIX)
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            # A read-only state dir: the faults can still be taken back, only not recorded.
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError as e:
                raise errors.LedgerError(f"can't open the fault ledger {path}: {e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError:
            if not force:
                os.close(fd)
                return None
        ledger = cls(path, run_id, fd)
        with contextlib.suppress(errors.LedgerError):
            ledger._repair_tail()
        return ledger

    def _repair_tail(self) -> None:
        """A crash mid-write leaves a line without its newline: end it, so the next append starts a
        line of its own (the torn fragment is skipped when reading)."""
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            self._write(b"\n")

    def _reserve(self, size: int) -> None:
        if size <= 0:
            return
        ballast = self.path.with_suffix(RESERVE_SUFFIX)
        try:
            fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.posix_fallocate(fd, 0, size)
            finally:
                os.close(fd)
        except OSError as e:
            ballast.unlink(missing_ok=True)
            raise errors.LedgerError(
                f"can't reserve {size // 1024} KiB for the fault ledger in {self.path.parent}: "
                f"{e.strerror}; nothing was injected",
                hint="free disk space there, or pass another --state-dir",
            ) from e

    def _release_reserve(self) -> bool:
        ballast = self.path.with_suffix(RESERVE_SUFFIX)
        try:
            ballast.unlink()
        except OSError:
            return False
        return True

    def close(self) -> None:
        """Give back the reserved space and the lock."""
        with self._lock:
            self._release_reserve()
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)  # closing the descriptor releases the flock
                self._fd = None

    # ---- writing ----------------------------------------------------------------------------

    def new_entry(self, kind: str) -> str:
        """An entry id unique across processes, even for a reused run id: kind, counter, token."""
        with self._lock:
            self._count += 1
            return f"{kind}{self._count}-{self._token}"

    def _write(self, data: bytes) -> None:
        """All of ``data``, then fsync. A full disk gets the reserved space back once, and the
        write goes on where it stopped; anything else raises ``OSError`` with the line torn."""
        assert self._fd is not None
        view = memoryview((b"\n" if self._torn else b"") + data)
        while view:
            try:
                written = os.write(self._fd, view)
            except OSError as e:
                if e.errno not in {errno.ENOSPC, errno.EDQUOT} or not self._release_reserve():
                    raise
                # The run must stop injecting, but this line (and the lines that take the faults
                # back) can still be written in the space the run set aside.
                self.broken = self.broken or errors.LedgerError(
                    f"the disk holding the fault ledger {self.path} is full"
                )
                continue
            if written <= 0:
                raise OSError(errno.EIO, "the file system accepted no bytes")
            view = view[written:]
            self._torn = bool(view)  # if the rest fails, the next line must start on a new line
        os.fsync(self._fd)

    def _append(self, record: dict[str, Any]) -> None:
        record = {"type": record.pop("type"), "run_id": self.run_id, "at": _now(), **record}
        line = json.dumps(to_refs(record, self._secrets), allow_nan=False) + "\n"
        with self._lock:
            if self._fd is None:
                error = errors.LedgerError(f"the fault ledger {self.path} is closed")
                self.broken = self.broken or error
                raise error
            try:
                self._write(line.encode("utf-8"))
            except OSError as e:
                error = errors.LedgerError(
                    f"can't write the fault ledger {self.path}: {e.strerror or e}",
                    hint="free disk space or pass a writable --state-dir",
                )
                self.broken = self.broken or error
                raise error from e

    def start(self, title: str, file: str | None, secret_sources: Mapping[str, Any] | None = None) -> None:
        self._append(
            {
                "type": "run-start",
                "title": title,
                "file": file,
                "pid": os.getpid(),
                "secrets": dict(secret_sources or {}),
            }
        )

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
        self._append(
            {
                "type": "intent",
                "id": entry,
                "activity": activity,
                "step": step,
                "target": target.to_json(),
                "revert": dict(revert),
                "lease": lease,
            }
        )

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
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also drops the lock if we got it
    return False


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
