"""The stressor: one small program that loads a CPU, holds memory resident, fills a filesystem or
keeps a path busy with reads and writes, until it is told to stop or its own deadline passes.

Standard library only, and it imports nothing of chaoskit: it is run as a file
(``python -I program.py ...``), on the host or entered into a container's namespaces, so it must
work wherever the interpreter does. It prints ``ready`` on stdout once the load is in place (the
memory touched, the file written) and nothing after that. SIGTERM, SIGINT, SIGHUP or the deadline
end it, removing every file it wrote; a SIGKILL leaves the files to the revert that knows their
names (they are named after the mark).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

PAGE = 4096
CHUNK = 1 << 20
PERIOD = 0.1
"""A CPU worker's duty cycle: busy for ``load`` percent of every such period, asleep for the rest."""


class Stop(Exception):
    """Raised by the signal handler so that ``finally`` blocks remove what was written."""


def _on_signal(signum: int, frame: object) -> NoReturn:
    raise Stop(signum)


def _join_cgroups(paths: list[str]) -> None:
    # Before any memory is touched or worker forked: what follows is charged to the target's cgroup.
    for path in paths:
        Path(path).write_text("0\n")  # 0: the writer, in whatever pid namespace it runs


def _sleep_until(deadline: float) -> None:
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 1.0))


def _ready() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    # Nothing is written after this: whoever started us may have closed the pipe.
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)


def _child(work: Callable[[], None]) -> NoReturn:
    """Run a forked worker; it never returns into its parent's code, whatever happens."""
    code = 0
    try:
        work()
    except Stop:
        pass
    except BaseException as e:
        code = 1
        with contextlib.suppress(BaseException):
            sys.stderr.write(f"worker {os.getpid()}: {type(e).__name__}: {e}\n")
    finally:
        os._exit(code)


def _cpu_worker(load: float, deadline: float, parent: int) -> None:
    busy = PERIOD * load / 100.0
    while time.monotonic() < deadline and os.getppid() == parent:
        start, used = time.monotonic(), time.process_time()
        # CPU time, not wall time: on a crowded host the worker keeps asking until it got its share.
        while time.process_time() - used < busy and time.monotonic() - start < PERIOD:
            pass
        rest = PERIOD - (time.monotonic() - start)
        if rest > 0:
            time.sleep(rest)


def _run_workers(works: Sequence[Callable[[], None]], deadline: float) -> None:
    """Fork one child per work, say "ready", hold until ``deadline``; then end and reap every
    child, whatever ended the wait (the deadline, SIGTERM from a revert)."""
    children: list[int] = []
    try:
        for work in works:
            child = os.fork()
            if child == 0:
                _child(work)
            children.append(child)
        _ready()
        _sleep_until(deadline)
    finally:
        for child in children:
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGTERM)
        for child in children:
            with contextlib.suppress(OSError):
                os.waitpid(child, 0)


def cpu(workers: int, load: float, deadline: float) -> None:
    parent = os.getpid()
    _run_workers([functools.partial(_cpu_worker, load, deadline, parent)] * workers, deadline)


def memory(size: int, deadline: float) -> None:
    held = bytearray(size)
    # Pages are mapped on first write; one write per page makes the whole size resident.
    for offset in range(0, size, PAGE):
        held[offset] = 1
    _ready()
    _sleep_until(deadline)
    del held


def _write(path: Path, size: int, deadline: float) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as e:
            if e.errno not in {95, 22}:  # EOPNOTSUPP, EINVAL: the filesystem can't, so write
                raise
            block = b"\xa5" * CHUNK
            written = 0
            while written < size and time.monotonic() < deadline:
                written += os.write(fd, block[: min(CHUNK, size - written)])
        os.fsync(fd)
    finally:
        os.close(fd)


def fill(path: Path, size: int, deadline: float) -> None:
    try:
        _write(path, size, deadline)
        _ready()
        _sleep_until(deadline)
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _io_round(path: Path, size: int, mode: str) -> None:
    block = os.urandom(CHUNK)
    if mode in {"write", "both"} or path.stat().st_size < size:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for _ in range(max(1, size // CHUNK)):
                os.write(fd, block)
            os.fsync(fd)
        finally:
            os.close(fd)
    if mode in {"read", "both"}:
        fd = os.open(path, os.O_RDONLY)
        try:
            # Dropped from the page cache first, so that the reads reach the device.
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            while os.read(fd, CHUNK):
                pass
        finally:
            os.close(fd)


def _io_loop(path: Path, size: int, mode: str, deadline: float, parent: int) -> None:
    while time.monotonic() < deadline and os.getppid() == parent:
        _io_round(path, size, mode)


def io(directory: Path, prefix: str, workers: int, *, size: int, mode: str, deadline: float) -> None:
    parent = os.getpid()
    files = [directory / f"{prefix}-{i}" for i in range(workers)]
    try:
        for path in files:
            # Made here, so that a path it can't write in fails before "ready", with the reason.
            path.touch(mode=0o600)
        works = [functools.partial(_io_loop, path, size, mode, deadline, parent) for path in files]
        _run_workers(works, deadline)
    finally:
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stressor", description=__doc__)
    parser.add_argument("kind", choices=["cpu", "memory", "fill", "io"])
    parser.add_argument("--seconds", type=float, required=True, help="stop by itself after this")
    parser.add_argument("--cgroup", action="append", default=[], help="a cgroup.procs file to join")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--load", type=float, default=100.0)
    parser.add_argument("--bytes", type=int, default=0)
    parser.add_argument("--path", default="")
    parser.add_argument("--prefix", default="chaoskit-io")
    parser.add_argument("--mode", choices=["read", "write", "both"], default="both")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    deadline = time.monotonic() + args.seconds
    try:
        _join_cgroups(args.cgroup)
        if args.kind == "cpu":
            cpu(args.workers, args.load, deadline)
        elif args.kind == "memory":
            memory(args.bytes, deadline)
        elif args.kind == "fill":
            fill(Path(args.path), args.bytes, deadline)
        else:
            io(Path(args.path), args.prefix, args.workers, size=args.bytes, mode=args.mode, deadline=deadline)
    except Stop:
        return 0
    except (OSError, MemoryError) as e:
        sys.stderr.write(f"{type(e).__name__}: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
