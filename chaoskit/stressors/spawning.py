"""Starting a stressor, waiting until its load is in place, and stopping it again - by its mark, so
that ``chaoskit recover`` in another process finds it after a crash.

Every stressor carries ``CHAOSKIT_RUN_ID=<run id>`` and ``CHAOSKIT_ENTRY=<run id>/<ledger entry>`` in
its environment (its workers inherit them), the marks ``process.start`` gives the processes it
starts: the revert stops whatever carries the entry's mark, and the process driver's
``recover --sweep`` stops whatever carries the run id of a run that is not live. It also stops by
itself at its ``max_duration``.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from chaoskit.drivers import contract
from chaoskit.errors import DriverError
from chaoskit.stressors import loads, program

RUN_ID = "CHAOSKIT_RUN_ID"
ENTRY = "CHAOSKIT_ENTRY"
ROLE = "CHAOSKIT_STRESSOR"
"""Names the kind of load; only a stressor carries it."""
READY_TIMEOUT = 120.0
"""How long the load may take to be in place (memory touched, a file written)."""
STOP_GRACE = 5.0

PROC = Path("/proc")


def mark(ctx: contract.RunContext) -> str:
    """The mark of the stressor the current fault starts: its ledger entry, or unique anyway."""
    return f"{ctx.run_id}/{ctx.entry or os.urandom(6).hex()}"


def file_stem(mark: str) -> str:
    """A file name part made of the mark: a leftover file says which run wrote it."""
    return ".chaoskit-" + re.sub(r"[^A-Za-z0-9_.-]", "_", mark)


def fill_size(load: loads.FillLoad, directory: str) -> int:
    """The bytes a fill writes in ``directory``: its ``size``, or what brings the filesystem to
    ``percent_full``; at most what is free."""
    try:
        stats = os.statvfs(directory)
    except OSError as e:
        raise DriverError(f"can't fill {load.path}: {e.strerror}", hint="name an existing directory") from e
    free = stats.f_bavail * stats.f_frsize
    if load.size is not None:
        wanted = load.size
    else:
        assert load.percent_full is not None  # the model holds exactly one of them
        total = stats.f_blocks * stats.f_frsize
        # "Used" as df counts it for an unprivileged user: blocks reserved for root count as used.
        wanted = int(total * load.percent_full / 100) - (total - free)
    return max(0, min(wanted, free))


def command(
    kind: loads.Kind, load: loads.Load, *, cgroups: Sequence[str] = (), path: str = "", size: int = 0
) -> list[str]:
    """The stressor's command line for ``load`` (``path``: the file or directory it writes, as it sees
    it; ``size``: a fill's bytes; ``cgroups``: the ``cgroup.procs`` files it joins before loading
    anything)."""
    argv = [*interpreter(program.__file__), kind, "--seconds", f"{load.max_duration:g}"]
    for procs in cgroups:
        argv += ["--cgroup", procs]
    if isinstance(load, loads.CpuLoad):
        argv += ["--workers", str(load.workers), "--load", f"{load.load:g}"]
    elif isinstance(load, loads.MemoryLoad):
        argv += ["--bytes", str(load.size)]
    elif isinstance(load, loads.IoLoad):
        argv += ["--workers", str(load.workers), "--bytes", str(load.size), "--mode", load.mode]
    elif isinstance(load, loads.FillLoad):
        argv += ["--bytes", str(size)]
    if path:
        argv += ["--path", path]
    return argv


def interpreter(script: str) -> list[str]:
    """How to run one of the programs here: this interpreter, isolated from the environment's
    Python settings and from the script's folder (these programs import only the standard library)."""
    return [sys.executable, "-I", script]


def io_files(directory: str, stem: str, workers: int) -> tuple[str, ...]:
    """The files an IO stressor's workers write (``program.io`` names them ``<prefix>-<i>``)."""
    return tuple(str(Path(directory) / f"{stem}-{i}") for i in range(workers))


def start(
    argv: Sequence[str],
    *,
    kind: str,
    mark: str,
    ctx: contract.RunContext,
    what: str,
) -> int:
    """Start the stressor and return its pid once its load is in place; on failure nothing is left."""
    env = {**os.environ, RUN_ID: ctx.run_id, ENTRY: mark, ROLE: kind}
    with tempfile.TemporaryFile() as stderr:
        try:
            child = subprocess.Popen(
                list(argv),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,  # away from chaoskit's terminal and its Ctrl-C
            )
        except OSError as e:
            raise DriverError(f"{what}: can't start the stressor ({argv[0]}): {e.strerror or e}") from e
        # Reaped the moment it exits, so it never lingers as a zombie that looks alive.
        threading.Thread(target=child.wait, name=f"reap-{child.pid}", daemon=True).start()
        assert child.stdout is not None
        with child.stdout:
            failure = _await_ready(child, child.stdout.fileno(), ctx)
        if failure is not None:
            stop(mark, ())
            stderr.seek(0)
            said = stderr.read().decode("utf-8", "replace").strip()
            raise DriverError(f"{what}: the stressor {failure}" + (f": {said}" if said else ""))
    return child.pid


def _await_ready(child: subprocess.Popen[bytes], fd: int, ctx: contract.RunContext) -> str | None:
    """None once the stressor said ``ready``; else why it never will."""
    deadline = time.monotonic() + READY_TIMEOUT
    seen = b""
    while time.monotonic() < deadline and not ctx.cancel.is_set():
        readable, _, _ = select.select([fd], [], [], 0.2)
        if not readable:
            continue
        chunk = os.read(fd, 64)
        if not chunk:
            child.wait(timeout=5.0)
            if child.returncode == -signal.SIGKILL or child.returncode == 128 + signal.SIGKILL:
                # nsenter reports its child's death by signal as 128 + the signal.
                return (
                    "was killed (SIGKILL) before its load was in place: out of memory? a memory limit "
                    "(a container's included) counts the stressor too"
                )
            return f"exited with code {child.returncode} before its load was in place"
        seen += chunk
        if b"ready\n" in seen:
            return None
    return "was stopped: the run is stopping" if ctx.cancel.is_set() else "was not ready in time"


def carrying(mark: str) -> list[int]:
    """The live processes whose environment has ``CHAOSKIT_ENTRY=<mark>`` (those we may read)."""
    wanted = f"{ENTRY}={mark}".encode()
    own = os.getpid()
    found: list[int] = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if wanted in environ.split(b"\0") and stat[stat.rindex(")") + 2 :][:1] not in {"Z", "X"}:
            found.append(int(entry.name))
    return found


def _signal(pids: Sequence[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            continue
        except PermissionError as e:
            raise DriverError(
                f"not permitted to stop stressor process {pid}: {e.strerror}",
                hint="run chaoskit recover as the user that ran the experiment, or as root",
            ) from e


def stop(mark: str, files: Sequence[str]) -> contract.RevertOutcome:
    """Stop every process carrying ``mark`` (SIGTERM, then SIGKILL after a grace period) and remove
    ``files``; ``REVERTED`` if there was anything to stop or remove."""
    pids = carrying(mark)
    if pids:
        _signal(pids, signal.SIGTERM)
        _signal(pids, signal.SIGCONT)  # a stopped stressor can't act on SIGTERM
        deadline = time.monotonic() + STOP_GRACE
        while (left := carrying(mark)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if left:
            _signal(left, signal.SIGKILL)
            deadline = time.monotonic() + STOP_GRACE
            while carrying(mark) and time.monotonic() < deadline:
                time.sleep(0.05)
    removed = False
    for path in files:
        # The stressor removes its files when it ends; these are what a SIGKILL left.
        with contextlib.suppress(FileNotFoundError):
            Path(path).unlink()
            removed = True
    return contract.RevertOutcome.REVERTED if pids or removed else contract.RevertOutcome.ALREADY_CLEAN
