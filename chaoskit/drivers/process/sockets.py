"""The TCP ports local processes listen on, read from /proc: the socket inodes among a process's
open files, matched against the LISTEN rows of ``/proc/PID/net/tcp`` and ``tcp6`` (the tables of
that process's own network namespace)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import sys
from collections.abc import Iterable

from chaoskit.drivers.process import processes

LISTEN = "0A"
"""The kernel's code for a listening TCP socket in the ``st`` column."""


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets ``pid`` holds open (empty when it is gone or not ours to read)."""
    inodes: set[int] = set()
    fd_dir = processes.PROC / str(pid) / "fd"
    with contextlib.suppress(OSError):
        for fd in os.listdir(fd_dir):
            with contextlib.suppress(OSError):
                link = os.readlink(fd_dir / fd)
                if link.startswith("socket:[") and link.endswith("]"):
                    inodes.add(int(link[len("socket:[") : -1]))
    return inodes


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # The kernel prints each 32-bit word of the address as a native-endian number.
    words = [int(hex_address[i : i + 8], 16) for i in range(0, len(hex_address), 8)]
    raw = b"".join(word.to_bytes(4, sys.byteorder) for word in words)
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw)
    address = ipaddress.IPv6Address(raw)
    return address.ipv4_mapped or address


def listening(pid: int, inodes: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every socket among ``inodes`` that listens, per ``pid``'s namespace."""
    found: set[tuple[str, int]] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (processes.PROC / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != LISTEN:
                continue
            with contextlib.suppress(ValueError):
                if int(fields[9]) in inodes:
                    address, port = fields[1].split(":")
                    found.add((str(_address(address)), int(port, 16)))
    return found


def endpoint(host: str, port: int) -> str:
    """``host:port`` as faults give their ``endpoint``: IPv6 in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def endpoints(pids: Iterable[int]) -> list[str]:
    """The ``host:port`` endpoints the processes ``pids`` listen on, sorted. A listener on every
    address (0.0.0.0, ::) is also given as loopback (127.0.0.1, and ::1 for ::), which is how a
    fault names a server on this machine."""
    found: set[str] = set()
    for pid in pids:
        inodes = socket_inodes(pid)
        if not inodes:
            continue
        for host, port in listening(pid, inodes):
            found.add(endpoint(host, port))
            if host in {"0.0.0.0", "::"}:
                found.add(endpoint("127.0.0.1", port))
            if host == "::":
                found.add(endpoint("::1", port))
    return sorted(found)
