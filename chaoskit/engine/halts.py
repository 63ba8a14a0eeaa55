"""The big red button: halt levers that every run polls (at least once a second, and before each
inject), so that one command stops every experiment that can see the lever and refuses new ones
until ``chaoskit resume``.

A lever is a place that says "halted" (with who, when and why):

* the state dir's ``halt.json`` — every run on the machine that shares the state dir;
* ``$CHAOSKIT_HALT`` — a file path (e.g. on a shared volume) with the same JSON, or a lever a
  driver offers by scheme: an ``http(s)://`` URL that answers ``{"halted": true, ...}`` (the http
  driver's), ``kubernetes://<namespace>/<configmap>``. The engine itself never opens a socket.

A lever that can't be read is not a halt (a network blip must not stop every experiment); it is
reported once per lever instead. Remote levers (URLs, a driver's) are read at most once a
second each, with a short timeout, so that polling stays cheap; the local lever is a file read.
"""

from __future__ import annotations

import getpass
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoskit import errors
from chaoskit.drivers import contract, registry
from chaoskit.engine import ledgers

ENV = "CHAOSKIT_HALT"
FILE = "halt.json"
EXIT_CODE = int(errors.ExitCode.HALTED)
"""The exit code of a run (or a GameDay) stopped or refused by a halt (verdict ``halted``)."""
REMOTE_INTERVAL = 1.0
"""A remote lever is read at most this often (seconds); in between, its last answer stands."""
REMOTE_TIMEOUT = 0.5
"""How long one read of a remote lever may take."""

LeverFactories = Mapping[str, contract.LeverFactory]


@dataclass(frozen=True)
class Halt:
    """A halt in force."""

    reason: str
    by: str
    """Who pulled the lever (``user@host``)."""
    at: str
    """When (ISO 8601, UTC)."""
    lever: str = ""
    """Where it was found."""

    def describe(self) -> str:
        return f"halted by {self.by} at {self.at}: {self.reason}" + (f" ({self.lever})" if self.lever else "")

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def new(reason: str) -> Halt:
    return Halt(reason=reason or "no reason given", by=_who(), at=_now())


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a uid without a passwd entry (containers)
        user = str(os.getuid())
    return f"{user}@{os.uname().nodename}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def local_path(state_dir: Path) -> Path:
    return state_dir / FILE


def fields_of(halt: Halt, *, halted: bool = True) -> dict[str, str]:
    """A lever's fields (all text, as a ConfigMap holds them) for ``halt``."""
    return {"halted": "true" if halted else "false", "reason": halt.reason, "by": halt.by, "at": halt.at}


def from_fields(data: Mapping[str, Any], where: str) -> Halt | None:
    """The halt a lever's fields say, or None when ``halted`` is false (or missing, for a text
    lever: a ConfigMap without it says nothing)."""
    flag = data.get("halted", True)
    if isinstance(flag, str):
        flag = flag.strip().lower() in {"true", "yes", "1", "on"}
    if flag is not True:
        return None
    return Halt(
        reason=str(data.get("reason") or "no reason given"),
        by=str(data.get("by") or "someone"),
        at=str(data.get("at") or ""),
        lever=where,
    )


def _parse(raw: bytes, where: str) -> Halt | None:
    try:
        data: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise errors.ChaoskitError(f"the halt lever {where} can't be read: {e}") from e
    if not isinstance(data, dict):
        raise errors.ChaoskitError(f"the halt lever {where} is not a JSON object")
    return from_fields(data, where)


def read_file(path: Path) -> Halt | None:
    """The halt ``path`` holds; None when there is no such file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise errors.ChaoskitError(f"the halt lever {path} can't be read: {e.strerror}") from e
    return _parse(raw, str(path))


def write_file(path: Path, halt: Halt) -> None:
    """Pull the lever at ``path`` (atomically: a reader sees no halt or the whole one)."""
    _write_json(path, {"halted": True, **{k: v for k, v in asdict(halt).items() if k != "lever"}})


def clear_file(path: Path, resume: Halt) -> None:
    """Release the lever at ``path``; the file keeps who resumed it and when."""
    _write_json(path, {"halted": False, "reason": resume.reason, "by": resume.by, "at": resume.at})


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as e:
        raise errors.ChaoskitError(
            f"can't write the halt lever {path}: {e.strerror or e}",
            hint="check the path and its permissions (--state-dir, --lever)",
        ) from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(data) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # every run on the machine must be able to read it
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise errors.ChaoskitError(f"can't write the halt lever {path}: {e.strerror or e}") from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---- levers by URI ----------------------------------------------------------------------


class FileLever(contract.Lever):
    """A JSON file (on a shared volume, say): the same format as the local ``halt.json``."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.path = Path(uri.removeprefix("file://")).expanduser()

    def read(self, timeout: float) -> Mapping[str, str] | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise errors.ChaoskitError(f"the halt lever {self.path} can't be read: {e.strerror}") from e
        halt = _parse(raw, self.uri)
        return {"halted": "false"} if halt is None else {**halt.to_json(), "halted": "true"}

    def write(self, fields: Mapping[str, str], timeout: float) -> None:
        data: dict[str, Any] = {**fields, "halted": fields.get("halted") == "true"}
        _write_json(self.path, data)


def factories(drivers: registry.Registry | LeverFactories | None = None) -> dict[str, contract.LeverFactory]:
    """Every lever scheme: ``file``, and those drivers offer (``http``, ``https``, ``kubernetes``).
    ``None`` loads the installed drivers."""
    found: dict[str, contract.LeverFactory] = {}
    if drivers is None:
        drivers = registry.load()
    if isinstance(drivers, registry.Registry):
        for driver in drivers.drivers.values():
            found.update(driver.levers)
    else:
        found.update(drivers)
    found["file"] = FileLever
    return found


def open_lever(uri: str, drivers: registry.Registry | LeverFactories | None = None) -> contract.Lever:
    """The lever ``uri`` names: a path (or ``file://``), an ``http(s)://`` URL, or a scheme a
    driver offers (``kubernetes://<namespace>/<configmap>``)."""
    uri = uri.strip()
    if not uri:
        raise errors.UsageError("an empty halt lever", hint="give a file path, a URL or kubernetes://ns/name")
    scheme, sep, _ = uri.partition("://")
    if not sep or "/" in scheme:
        return FileLever(uri)
    known = factories(drivers if scheme != "file" else {})
    factory = known.get(scheme.lower())
    if factory is None:
        raise errors.UsageError(
            f"halt lever {uri}: unknown scheme {scheme!r}",
            hint=f"use a file path or one of {', '.join(s + '://' for s in sorted(known))} "
            "(a driver that offers a scheme must be installed)",
        )
    return factory(uri)


def read_lever(lever: contract.Lever, timeout: float = REMOTE_TIMEOUT) -> Halt | None:
    """The halt ``lever`` says now (a ``ChaoskitError`` when it can't be read)."""
    fields = lever.read(timeout)
    return None if fields is None else from_fields(fields, lever.uri)


# ---- watching --------------------------------------------------------------------------


class _Remote:
    """One shared lever as a run watches it: read at most once per interval."""

    def __init__(self, uri: str, lever: contract.Lever | None, problem: str | None) -> None:
        self.uri = uri
        self.lever = lever
        self.problem = problem
        self.local = isinstance(lever, FileLever)
        self.last: Halt | None = None
        self.read_at: float | None = None


class Watch:
    """The levers one run watches. ``check`` is cheap (a file read for the local lever; a remote
    lever is read at most once a second, within ``timeout``) and safe to call from any thread.

    ``drivers`` resolves levers a driver offers (``kubernetes://``); None loads the installed
    drivers, only when such a lever is named. ``levers`` adds levers to watch besides
    ``$CHAOSKIT_HALT``."""

    def __init__(
        self,
        state_dir: Path,
        environ: Mapping[str, str] | None = None,
        *,
        drivers: registry.Registry | LeverFactories | None = None,
        levers: Sequence[str] = (),
        interval: float = REMOTE_INTERVAL,
        timeout: float = REMOTE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        report: Callable[[str], None] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.local = local_path(state_dir)
        self.shared = env.get(ENV, "").strip() or None
        self.problems: list[str] = []
        """Levers that could not be read, each said once (not a halt)."""
        self.interval = interval
        self.timeout = timeout
        self._clock = clock
        self._report = report
        self._said: set[str] = set()
        uris = [*([self.shared] if self.shared else []), *levers]
        self._remotes: list[_Remote] = []
        for uri in dict.fromkeys(uris):
            try:
                self._remotes.append(_Remote(uri, open_lever(uri, drivers), None))
            except errors.ChaoskitError as e:
                self._remotes.append(_Remote(uri, None, e.message))

    @property
    def levers(self) -> list[str]:
        """Every lever watched, the local one first."""
        return [str(self.local), *(r.uri for r in self._remotes)]

    def check(self) -> Halt | None:
        """The first lever that says halted, or None."""
        found = self._read(str(self.local), lambda: read_file(self.local))
        if found is not None:
            return found
        for remote in self._remotes:
            found = self._remote(remote)
            if found is not None:
                return found
        return None

    def close(self) -> None:
        for remote in self._remotes:
            if remote.lever is not None:
                remote.lever.close()

    def _remote(self, remote: _Remote) -> Halt | None:
        if remote.lever is None:
            self._problem(remote.uri, remote.problem or f"the halt lever {remote.uri} can't be used")
            return None
        now = self._clock()
        if not remote.local and remote.read_at is not None and now - remote.read_at < self.interval:
            return remote.last
        remote.read_at = now
        lever = remote.lever
        remote.last = self._read(remote.uri, lambda: read_lever(lever, self.timeout))
        return remote.last

    def _read(self, key: str, read: Callable[[], Halt | None]) -> Halt | None:
        try:
            return read()
        except errors.ChaoskitError as e:
            self._problem(key, e.message)
            return None
        except Exception as e:  # a driver's lever must not break the run that polls it
            self._problem(key, f"the halt lever {key} can't be read: {type(e).__name__}: {e}")
            return None

    def _problem(self, key: str, message: str) -> None:
        if key in self._said:
            return
        self._said.add(key)
        self.problems.append(message)
        if self._report is not None:
            self._report(message)


# ---- the runs a halt stops ---------------------------------------------------------------


def live_ledgers(state_dir: Path) -> list[Path]:
    """The ledgers of runs at work on ``state_dir`` now (their runner holds the lock)."""
    return [path for path in ledgers.ledgers(state_dir) if ledgers.is_live(path)]


def holders(path: Path, proc: Path = Path("/proc")) -> list[int]:
    """The pids that hold the ``flock`` on ``path`` now, from ``/proc/locks`` (which names the
    holder and the file's device and inode): found by the lock itself, so a pid reused since the
    run started is never taken for the run. Each is checked again against its open files when
    they can be read. Empty when nobody holds it, or ``/proc`` can't tell (not Linux)."""
    try:
        st = path.stat()
        table = (proc / "locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return []
    found: list[int] = []
    for line in table.splitlines():
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF"; "1: -> FLOCK ..." is a waiter.
        if len(parts) < 6 or parts[1] != "FLOCK":
            continue
        try:
            pid = int(parts[4])
            major, minor, inode = parts[5].split(":")
            same_device = os.makedev(int(major, 16), int(minor, 16)) == st.st_dev
        except ValueError:
            continue
        if inode != str(st.st_ino) or pid == os.getpid() or pid in found:
            continue
        opened = _has_open(proc / str(pid), st)
        # An overlay file system shows the lower device in /proc/locks: then the open files decide.
        if opened or (same_device and opened is None):
            found.append(pid)
    return found


def _has_open(process: Path, st: os.stat_result) -> bool | None:
    """Whether ``process`` has the file ``st`` open; None when its descriptors can't be read."""
    try:
        descriptors = list((process / "fd").iterdir())
    except OSError:
        return None
    for fd in descriptors:
        try:
            other = fd.stat()
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
            return True
    return False
