"""Facts about local processes read from /proc: name, command line, state, parent and start time.

The start time (field 22 of ``/proc/PID/stat``, in clock ticks since boot) together with the pid
names one process for good: a pid can be reused, a (pid, start time) pair can't.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Info:
    """One process as /proc shows it at one moment."""

    pid: int
    name: str
    """The kernel's name for it (``comm``, at most 15 characters)."""
    cmdline: str
    """The full command line, arguments joined by spaces; empty for kernel threads."""
    state: str
    """One letter: R running, S sleeping, T stopped, Z zombie, ..."""
    ppid: int
    pgid: int
    sid: int
    starttime: int
    """Clock ticks after boot when it started; with ``pid`` it identifies the process for good."""

    @property
    def argv0(self) -> str:
        return os.path.basename(self.cmdline.split(" ", 1)[0]) if self.cmdline else ""


def read(pid: int) -> Info | None:
    """The process ``pid``, or None when there is none (or it vanished while being read)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        raw_cmdline = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:  # gone (ENOENT, ESRCH) or not ours to read
        return None
    try:
        # comm may itself contain spaces and parentheses, so split at the last ')'.
        open_paren, close_paren = stat.index("("), stat.rindex(")")
        name = stat[open_paren + 1 : close_paren]
        fields = stat[close_paren + 2 :].split()
        # fields[0] is field 3 of proc(5) (state); field N is fields[N - 3].
        starttime = int(fields[19])
    except (ValueError, IndexError):  # read while the process was being torn down
        return None
    return Info(
        pid=pid,
        name=name,
        cmdline=raw_cmdline.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace"),
        state=fields[0],
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        sid=int(fields[3]),
        starttime=starttime,
    )


def all_live() -> Iterator[Info]:
    """Every process that is alive now (zombies, which can't act any more, are left out)."""
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            info = read(int(entry.name))
            if info is not None and info.state != "Z":
                yield info


def same(pid: int, starttime: int) -> Info | None:
    """The process ``pid`` if it is still the one that started at ``starttime`` (and is alive)."""
    info = read(pid)
    if info is None or info.starttime != starttime or info.state in {"Z", "X"}:
        return None
    return info


def protected() -> frozenset[int]:
    """chaoskit's own process and every parent up to init: never a target."""
    pids = {os.getpid()}
    pid = os.getppid()
    while pid > 0 and pid not in pids:
        pids.add(pid)
        info = read(pid)
        if info is None:
            break
        pid = info.ppid
    return frozenset(pids)


def group_members(pgid: int) -> list[Info]:
    """The live processes of process group ``pgid``."""
    return [p for p in all_live() if p.pgid == pgid]


def environ(pid: int) -> dict[str, str] | None:
    """The environment ``pid`` was started with (``/proc/PID/environ``: what it had at exec, which
    its children inherit), or None when it is gone or not ours to read."""
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    variables: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            variables[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return variables


def carrying(key: str, value: str) -> list[Info]:
    """The live processes whose environment has ``key=value`` exactly (those we may read)."""
    found = []
    for info in all_live():
        variables = environ(info.pid)
        if variables is not None and variables.get(key) == value:
            found.append(info)
    return found


def read_pidfile(path: str) -> int | None:
    """The pid written in ``path``, or None when the file is missing, unreadable or not a pid."""
    with contextlib.suppress(OSError, ValueError):
        text = Path(path).read_text().strip()
        pid = int(text.split()[0]) if text else 0
        return pid if pid > 0 else None
    return None
