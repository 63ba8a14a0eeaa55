"""The ``process.start`` action: start a background process for the experiment, wait until it is
ready, and hand the engine what it needs to stop it again (the whole process group) - in this
process after teardown, or from ``chaoskit recover`` after a crash; and the process driver's
``recover --sweep``, which finds such processes by their mark.

The child carries a mark in its environment, ``CHAOSKIT_ENTRY=<run id>/<ledger entry>`` (its
children inherit it). ``prepare`` returns undo data with only that mark, which the engine ledgers
before the process is spawned: if the runner dies before ``run`` returns, ``undo`` finds the
processes by their mark. ``run``'s own undo data adds the pid, process group and start time.

``chaoskit`` as the program means the running chaoskit (its interpreter and package), as in the
quickstart: it works without an activated virtualenv and never runs another chaoskit on PATH.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from chaoskit.drivers import contract
from chaoskit.drivers.process import processes, sockets
from chaoskit.durations import Duration
from chaoskit.errors import DriverError

if TYPE_CHECKING:
    import httpx

STDERR_TAIL_LINES = 20
RUN_ID = "CHAOSKIT_RUN_ID"
"""The variable a started process carries with the id of the run that started it."""
ENTRY = "CHAOSKIT_ENTRY"
"""The variable a started process carries with its mark, ``<run id>/<ledger entry>``."""


def _text(value: Any) -> Any:
    # "${port}" keeps the variable's type (an int); an argument list needs text.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Arg = Annotated[str, BeforeValidator(_text)]


class WaitFor(contract.Args):
    """What "ready" means; give exactly one of url, port or file."""

    url: str | None = None
    """Ready when an HTTP GET of this URL gets an answer, whatever its status."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Ready when a TCP connection to ``host:port`` succeeds."""
    host: str = "127.0.0.1"
    """The host for ``port``."""
    file: str | None = None
    """Ready when this file exists."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value

    @model_validator(mode="after")
    def _one(self) -> Self:
        given = [k for k in ("url", "port", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("wait_for needs exactly one of url, port or file")
        return self

    def describe(self) -> str:
        if self.url is not None:
            return f"an answer from {self.url}"
        if self.port is not None:
            return f"a TCP connection to {self.host}:{self.port}"
        return f"the file {self.file}"


class StartArgs(contract.Args):
    argv: list[Arg] = Field(min_length=1)
    """The program and its arguments, e.g. ``[python3, -m, http.server, "8000"]``; no shell. The
    program ``chaoskit`` is the chaoskit that runs the experiment, whatever PATH holds."""
    cwd: str | None = None
    """The working directory; default: chaoskit's."""
    env: dict[str, Arg] = Field(default_factory=dict)
    """Variables added to (or replacing ones in) chaoskit's environment; never journaled."""
    stdout: str | None = None
    """A file to append standard output to (relative to chaoskit's working directory), or
    ``discard``; default: discarded."""
    stderr: str | None = None
    """A file to append standard error to, or ``discard``; default: kept in an anonymous temporary
    file so that a failed start can show its last lines."""
    wait_for: WaitFor | None = None
    """Wait until the process is ready before the next step; default: don't wait."""
    timeout: Duration = 30.0
    """How long ``wait_for`` may take."""
    pidfile: str | None = None
    """Write the process id to this file."""
    stop_timeout: Duration = 10.0
    """When stopping it: how long after SIGTERM to wait before SIGKILL."""


class Undo(BaseModel):
    """``process.start``'s undo data, as ledgered: from ``prepare`` (the mark only) or from ``run``
    (the mark and the process it started). Read through this model, never by hand."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    program: str
    """The program started (``argv[0]``), for the messages."""
    argv: list[str] = Field(default_factory=list)
    """The whole command, for the messages."""
    mark: str | None = None
    """The value of ``CHAOSKIT_ENTRY`` in the process's environment: finds it (and what it started)
    when no pid was recorded, and tells it from a process that reused the pid. None in data that
    chaoskit wrote before marks existed."""
    stop_timeout: float = Field(default=10.0, ge=0)
    """When stopping it: seconds after SIGTERM before SIGKILL."""
    pid: int | None = Field(default=None, gt=0)
    """The process started; None while it is (or was, at a crash) being started."""
    pgid: int | None = Field(default=None, gt=0)
    """Its process group (its own: it is started as a session leader)."""
    starttime: int | None = Field(default=None, ge=0)
    """Its start time in clock ticks after boot; with ``pid`` it names the process for good."""

    @model_validator(mode="after")
    def _findable(self) -> Self:
        if self.mark is None and (self.pid is None or self.pgid is None):
            raise ValueError("process.start undo data needs a mark, or a pid and a pgid")
        return self

    def dump(self) -> contract.RevertData:
        data: contract.RevertData = self.model_dump(mode="json", exclude_none=True)
        return data


SELF = "chaoskit"
"""The program name that means this chaoskit."""


def command(argv: list[str]) -> list[str]:
    """What to execute for ``argv``: ``chaoskit ...`` runs this chaoskit's interpreter and package,
    whatever PATH holds (a venv's ``bin`` is often not on it); anything else as given."""
    if argv[0] == SELF:
        return [sys.executable, "-m", "chaoskit", *argv[1:]]
    return argv


def mark(ctx: contract.RunContext) -> str | None:
    """The mark for the process the current activity starts; None when the engine gave no entry."""
    return f"{ctx.run_id}/{ctx.entry}" if ctx.entry else None


def _open(path: str | None, *, fallback: str) -> IO[bytes] | int:
    if path == "discard" or (path is None and fallback == "discard"):
        return subprocess.DEVNULL
    if path is None:
        return tempfile.TemporaryFile()
    try:
        return open(path, "ab")  # handed to the child, closed right after
    except OSError as e:
        raise DriverError(f"process.start: can't open {path} for output: {e.strerror}") from e


def _tail(stream: IO[bytes] | int) -> str:
    if isinstance(stream, int):
        return ""
    with contextlib.suppress(OSError, ValueError):
        stream.seek(0)
        lines = stream.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-STDERR_TAIL_LINES:])
    return ""


class _Readiness:
    """Asks, again and again, whether ``wait_for`` holds; one HTTP client for all the asking."""

    def __init__(self, wait_for: WaitFor) -> None:
        self.wait_for = wait_for
        self._client: httpx.Client | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()

    def ready(self) -> bool:
        wait_for = self.wait_for
        if wait_for.file is not None:
            return Path(wait_for.file).exists()
        if wait_for.port is not None:
            try:
                with socket.create_connection((wait_for.host, wait_for.port), timeout=1.0):
                    return True
            except OSError:
                return False
        import httpx

        assert wait_for.url is not None
        if self._client is None:
            # Any answer means it is up, so the certificate does not matter here.
            self._client = httpx.Client(verify=False, timeout=1.0)
        try:
            self._client.get(wait_for.url)
        except httpx.HTTPError:
            return False
        return True


class Start(contract.Action[StartArgs], args=StartArgs):
    name = "process.start"
    summary = (
        "Start a background process (its own process group), wait until it is ready; stopped after teardown."
    )

    def prepare(self, args: StartArgs, ctx: contract.RunContext) -> contract.RevertData | None:
        entry_mark = mark(ctx)
        if entry_mark is None:
            # Without a ledger entry there is no mark unique to this start to find it by later.
            return None
        return Undo(
            program=args.argv[0], argv=args.argv, mark=entry_mark, stop_timeout=args.stop_timeout
        ).dump()

    def run(self, args: StartArgs, ctx: contract.RunContext) -> contract.ActionResult:
        program = args.argv[0]
        # Outside an engine run (no entry) the mark is still unique, so undo can trust it.
        entry_mark = mark(ctx) or f"{ctx.run_id}/{os.urandom(6).hex()}"
        stdout = _open(args.stdout, fallback="discard")
        stderr = _open(args.stderr, fallback="temporary")
        try:
            try:
                child = subprocess.Popen(
                    command(args.argv),
                    cwd=args.cwd,
                    env={**os.environ, **args.env, RUN_ID: ctx.run_id, ENTRY: entry_mark},
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    # Its own session and process group, so that stopping it reaches its children too.
                    start_new_session=True,
                )
            except OSError as e:
                raise DriverError(f"process.start: can't run {program!r}: {e.strerror or e}") from e
            # Reap it the moment it exits, so it never lingers as a zombie that looks alive.
            threading.Thread(target=child.wait, name=f"reap-{child.pid}", daemon=True).start()
            info = processes.read(child.pid)
            undo = Undo(
                program=program,
                argv=args.argv,
                mark=entry_mark,
                stop_timeout=args.stop_timeout,
                pid=child.pid,
                pgid=child.pid,
                starttime=info.starttime if info is not None else None,
            )
            if args.wait_for is not None:
                self._wait(child, args, undo, stderr, ctx)
            if args.pidfile is not None:
                try:
                    Path(args.pidfile).write_text(f"{child.pid}\n")
                except OSError as e:
                    _stop(undo)
                    raise DriverError(
                        f"process.start: can't write pidfile {args.pidfile}: {e.strerror}"
                    ) from e
        finally:
            for stream in (stdout, stderr):
                if not isinstance(stream, int):
                    stream.close()
        ctx.log(f"started {program} as pid {child.pid}")
        return contract.ActionResult(output={"pid": child.pid}, undo=undo.dump())

    def _wait(
        self,
        child: subprocess.Popen[bytes],
        args: StartArgs,
        undo: Undo,
        stderr: IO[bytes] | int,
        ctx: contract.RunContext,
    ) -> None:
        assert args.wait_for is not None
        deadline = time.monotonic() + args.timeout
        with _Readiness(args.wait_for) as readiness:
            while not readiness.ready():
                self._check(child, args, undo, stderr, ctx, deadline=deadline)
                ctx.sleep(0.1)

    def _check(
        self,
        child: subprocess.Popen[bytes],
        args: StartArgs,
        undo: Undo,
        stderr: IO[bytes] | int,
        ctx: contract.RunContext,
        *,
        deadline: float,
    ) -> None:
        """Raise when waiting is pointless: it exited, took too long, or the run is stopping."""
        assert args.wait_for is not None
        program = args.argv[0]
        code = child.poll()
        if code is not None:
            _stop(undo)  # what it may have left behind in its group
            tail = _tail(stderr)
            quiet = "discarded" if isinstance(stderr, int) else "empty"
            how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
            raise DriverError(
                f"process.start: {program} {how} before it was ready"
                + (f"; last lines of its stderr:\n{tail}" if tail else f" (its stderr was {quiet})")
            )
        if ctx.cancel.is_set() or time.monotonic() >= deadline:
            _stop(undo)
            tail = _tail(stderr)
            why = "the run was cancelled" if ctx.cancel.is_set() else f"within {args.timeout:g}s"
            raise DriverError(
                f"process.start: {program} (pid {child.pid}) was not ready {why}: "
                f"no sign of {args.wait_for.describe()}; stopped it"
                + (f"; last lines of its stderr:\n{tail}" if tail else ""),
                hint="check the command and the wait_for target, or raise timeout",
            )

    def undo(self, data: contract.RevertData, ctx: contract.RunContext) -> contract.RevertOutcome:
        return _stop(_read(data))

    def describe(self, data: contract.RevertData) -> str | None:
        undo = _read(data)
        program = Path(undo.program).name
        return f"{program} pid {undo.pid}" if undo.pid is not None else program

    def serves(self, data: contract.RevertData, ctx: contract.RunContext) -> list[str]:
        return sockets.endpoints(p.pid for p in _members(_read(data)))


def _read(data: contract.RevertData) -> Undo:
    try:
        return Undo.model_validate(data)
    except ValueError as e:
        raise DriverError(f"process.start undo data is damaged: {e}") from e


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _ours(info: processes.Info, undo: Undo) -> bool:
    """Whether ``info`` carries ``undo``'s mark, or can't be asked (not ours to read, or no mark)."""
    if undo.mark is None:
        return True
    variables = processes.environ(info.pid)
    return variables is None or variables.get(ENTRY) == undo.mark


def _groups(undo: Undo) -> set[int]:
    """The process groups that hold what ``undo`` started: its own, if it still lives, and that of
    every process carrying its mark (one that left the group, or all of them when no pid was
    recorded because the runner died while starting it)."""
    groups: set[int] = set()
    protected = processes.protected()
    if undo.pid is not None and undo.pgid is not None:
        leader = processes.read(undo.pid)
        # A newer process with our pid means our group is gone entirely: the kernel does not give
        # out a pid still used as a group id.
        reused = leader is not None and (
            (undo.starttime is not None and leader.starttime != undo.starttime) or not _ours(leader, undo)
        )
        members = [] if reused else processes.group_members(undo.pgid)
        if any(_ours(m, undo) for m in members):
            groups.add(undo.pgid)
    if undo.mark is not None:
        groups.update(p.pgid for p in processes.carrying(ENTRY, undo.mark) if p.pid not in protected)
    # Never chaoskit's own group (a chaoskit run that a process.start started carries the mark).
    own = {info.pgid for info in map(processes.read, protected) if info is not None}
    return groups - own


def _members(undo: Undo) -> list[processes.Info]:
    groups = _groups(undo)
    return [p for p in processes.all_live() if p.pgid in groups]


def _alive(groups: set[int]) -> set[int]:
    return {p.pgid for p in processes.all_live() if p.pgid in groups}


def _signal(groups: set[int], signum: int, undo: Undo) -> None:
    for pgid in groups:
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            continue
        except PermissionError as e:
            raise DriverError(
                f"not permitted to stop process group {pgid} ({undo.program}): {e.strerror}",
                hint="run chaoskit recover as the process's user, or as root",
            ) from e


def _stop(undo: Undo) -> contract.RevertOutcome:
    """SIGTERM the process groups, then SIGKILL what is left after ``stop_timeout``."""
    groups = _groups(undo)
    if not groups:
        return contract.RevertOutcome.ALREADY_CLEAN
    _signal(groups, signal.SIGTERM, undo)
    # A stopped process can't act on SIGTERM until it is continued.
    _signal(groups, signal.SIGCONT, undo)
    deadline = time.monotonic() + undo.stop_timeout
    while (left := _alive(groups)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if left:
        _signal(left, signal.SIGKILL, undo)
        deadline = time.monotonic() + 5.0
        while _alive(left) and time.monotonic() < deadline:
            time.sleep(0.05)
    return contract.RevertOutcome.REVERTED


def sweep(run_id: str | None, ctx: contract.RunContext) -> list[str]:
    """``recover --sweep`` for processes: stop what ``process.start`` left running without a
    ledger, found by the run id every started process carries in its environment (``RUN_ID``).

    Scoped to runs that are not live: a live run's processes are its own to stop. Without a run
    id, only runs whose ledger is here and dead are swept; a process of a run with no ledger here
    is named with the command that sweeps it by name."""
    protected = processes.protected()
    found: dict[str, list[processes.Info]] = {}
    for info in processes.all_live():
        if info.pid in protected:
            continue
        variables = processes.environ(info.pid)
        owner = variables.get(RUN_ID) if variables else None
        if owner is not None and (run_id is None or owner == run_id):
            found.setdefault(owner, []).append(info)
    done: list[str] = []
    for owner, members in sorted(found.items()):
        state = ctx.run_state(owner)
        if state == "live":
            done.append(f"skipped {len(members)} process(es) of run {owner}: it is live")
            continue
        if state == "unknown" and run_id is None:
            done.append(
                f"skipped {len(members)} process(es) of run {owner}: no ledger for it here; "
                f"sweep it by name: chaoskit recover {owner} --sweep"
            )
            continue
        groups = sorted({m.pgid for m in members})
        for pgid in groups:
            undo = Undo(program="(swept)", argv=["(swept)"], pid=pgid, pgid=pgid, mark=None)
            # The same stop as the undo's (TERM, CONT, then KILL after the grace period).
            if _stop(undo) is contract.RevertOutcome.REVERTED:
                names = ", ".join(f"{m.pid}" for m in members if m.pgid == pgid)
                done.append(f"stopped process group {pgid} of run {owner} (pids {names})")
    return done
