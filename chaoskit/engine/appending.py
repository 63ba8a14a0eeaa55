"""A file written only at its end, a whole line at a time, each on disk before the write returns:
what the fault ledger is made of (``ledgers``), kept apart from what the ledger's lines say.

* Whole or an error: a short write is continued; each write is fsync'd.
* A torn tail (a crash mid-write) is closed with a newline before the next line.
* A reserve of disk space (a ballast file beside it) is given back once when the disk fills, so
  that the lines written after that (those taking faults back) still fit.
* An exclusive ``flock`` tells the process that owns the file from everyone else.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable
from pathlib import Path

RESERVE_SUFFIX = ".reserve"


class AppendFile:
    """One append-only file, open. Methods raise ``OSError``; the caller says what it means."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd: int | None = fd
        self._torn = False

    @classmethod
    def create(cls, path: Path) -> AppendFile:
        """Open ``path`` for appending, creating it (and its folder) when missing."""
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        return cls(path, os.open(path, flags, 0o600))

    @classmethod
    def existing(cls, path: Path) -> AppendFile:
        """Open ``path``, which must exist; read-only when it can't be written (a read-only state
        dir: what it says can still be acted on, only not recorded)."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        return cls(path, fd)

    @property
    def ballast(self) -> Path:
        return self.path.with_suffix(RESERVE_SUFFIX)

    def lock(self, *, wait: bool = False) -> bool:
        """Take the exclusive lock; False when another process holds it (and ``wait`` is false)."""
        assert self.fd is not None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError:
            return False
        return True

    def repair_tail(self, on_full: Callable[[], None] = lambda: None) -> None:
        """A crash mid-write leaves a line without its newline: end it, so the next append starts a
        line of its own (the torn fragment is skipped when reading)."""
        assert self.fd is not None
        size = os.fstat(self.fd).st_size
        if size and os.pread(self.fd, 1, size - 1) != b"\n":
            self.write(b"\n", on_full)

    def reserve(self, size: int) -> None:
        """Set ``size`` bytes aside beside the file (nothing when ``size`` is not positive)."""
        if size <= 0:
            return
        try:
            fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.posix_fallocate(fd, 0, size)
            finally:
                os.close(fd)
        except OSError:
            self.ballast.unlink(missing_ok=True)
            raise

    def release_reserve(self) -> bool:
        """Give the reserved space back; False when there was none."""
        try:
            self.ballast.unlink()
        except OSError:
            return False
        return True

    def write(self, data: bytes, on_full: Callable[[], None] = lambda: None) -> None:
        """All of ``data``, then fsync. A full disk gets the reserved space back once (``on_full``
        is told), and the write goes on where it stopped; anything else raises ``OSError`` with
        the line torn."""
        assert self.fd is not None
        view = memoryview((b"\n" if self._torn else b"") + data)
        while view:
            try:
                written = os.write(self.fd, view)
            except OSError as e:
                if e.errno not in {errno.ENOSPC, errno.EDQUOT} or not self.release_reserve():
                    raise
                on_full()
                continue
            if written <= 0:
                raise OSError(errno.EIO, "the file system accepted no bytes")
            view = view[written:]
            self._torn = bool(view)  # if the rest fails, the next line must start on a new line
        os.fsync(self.fd)

    def close(self, *, release: bool = True) -> None:
        """Give back the lock (closing the descriptor releases the flock) and, when ``release``, the
        reserved space (not when the file is another process's, reserve and all)."""
        if release:
            self.release_reserve()
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def held(path: Path) -> bool:
    """True when a process holds ``path``'s lock (False when there is no such file)."""
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
