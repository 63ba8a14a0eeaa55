"""The ``process.start`` action: start a background process for the experiment, wait until it is
ready, and hand the engine what it needs to stop it again (the whole process group) - in this
process after teardown, or from ``chaoskit recover`` after a crash."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Self

from pydantic import BeforeValidator, Field, field_validator, model_validator

from chaoskit.drivers import contract
from chaoskit.drivers.process import processes
from chaoskit.durations import Duration
from chaoskit.errors import DriverError

if TYPE_CHECKING:
    import httpx

STDERR_TAIL_LINES = 20


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
    """The program and its arguments, e.g. ``[python3, -m, http.server, "8000"]``; no shell."""
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


class Start(contract.Action[StartArgs]):
    name = "process.start"
    summary = (
        "Start a background process (its own process group), wait until it is ready; stopped after teardown."
    )
    args = StartArgs

    def run(self, args: StartArgs, ctx: contract.RunContext) -> contract.ActionResult:
        program = args.argv[0]
        stdout = _open(args.stdout, fallback="discard")
        stderr = _open(args.stderr, fallback="temporary")
        try:
            try:
                child = subprocess.Popen(
                    args.argv,
                    cwd=args.cwd,
                    env={**os.environ, **args.env},
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
            undo: contract.RevertData = {
                "pid": child.pid,
                "pgid": child.pid,
                "starttime": info.starttime if info is not None else None,
                "program": program,
                "stop_timeout": args.stop_timeout,
            }
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
        return contract.ActionResult(output={"pid": child.pid}, undo=undo)

    def _wait(
        self,
        child: subprocess.Popen[bytes],
        args: StartArgs,
        undo: contract.RevertData,
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
        undo: contract.RevertData,
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
            raise DriverError(
                f"process.start: {program} exited with code {code} before it was ready"
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
        return _stop(data)


def _group_alive(pgid: int) -> bool:
    return bool(processes.group_members(pgid))


def _stop(data: contract.RevertData) -> contract.RevertOutcome:
    """SIGTERM the process group, then SIGKILL what is left after ``stop_timeout``."""
    pid, pgid, starttime = data.get("pid"), data.get("pgid"), data.get("starttime")
    if not isinstance(pid, int) or not isinstance(pgid, int):
        raise DriverError(f"process.start undo data lacks pid/pgid: {data!r}")
    stop_timeout = data.get("stop_timeout", 10.0)
    assert isinstance(stop_timeout, int | float)
    leader = processes.read(pid)
    if leader is not None and isinstance(starttime, int) and leader.starttime != starttime:
        # The pid belongs to a newer process, so our group (whose id the kernel keeps from reuse
        # while any member lives) is gone entirely.
        return contract.RevertOutcome.ALREADY_CLEAN
    if not _group_alive(pgid):
        return contract.RevertOutcome.ALREADY_CLEAN
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return contract.RevertOutcome.ALREADY_CLEAN
    except PermissionError as e:
        raise DriverError(
            f"not permitted to stop process group {pgid} ({data.get('program')}): {e.strerror}"
        ) from e
    # A stopped process can't act on SIGTERM until it is continued; it may also be gone already.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGCONT)
    deadline = time.monotonic() + float(stop_timeout)
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
    return contract.RevertOutcome.REVERTED
