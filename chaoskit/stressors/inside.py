"""What the faults acting inside a target share, whoever applies them (the process and docker
drivers from this host, the node agent in a pod): which processes, which signal, which DNS
answers. One definition each, so a process pattern or a DNS name means the same everywhere.
"""

from __future__ import annotations

import ipaddress
import re
import signal
import zlib
from pathlib import Path
from typing import Any, Self

from pydantic import Field, model_validator

from chaoskit.drivers import contract
from chaoskit.durations import Duration
from chaoskit.errors import DriverError
from chaoskit.patterns import Regex
from chaoskit.stressors import resolver, spawning

FREEZING = frozenset({signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
"""Signals that stop a process instead of ending it: a kill with one would never be reverted."""


def parse_signal(value: Any) -> int:
    """A signal number from ``SIGKILL``, ``KILL``, ``kill``, ``9`` or ``"9"``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a signal name or number, got {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        number = int(value)
        try:
            return int(signal.Signals(number))
        except ValueError:
            raise ValueError(f"no signal has number {number}") from None
    if isinstance(value, str):
        text = value.strip().upper()
        text = text if text.startswith("SIG") else "SIG" + text
        try:
            return int(signal.Signals[text])
        except KeyError:
            raise ValueError(
                f"unknown signal {value!r}; write a name like SIGTERM or KILL, or a number"
            ) from None
    raise ValueError(f"expected a signal name or number, got {type(value).__name__}")


def kill_signal(value: Any, instead: str) -> int:
    """``parse_signal`` for a kill: a freezing signal is refused, naming the fault (``instead``)
    that freezes and is reverted."""
    number = parse_signal(value)
    if number in FREEZING:
        raise ValueError(
            f"{signal.Signals(number).name} freezes the process and a kill is never reverted; use {instead}"
        )
    return number


class ProcessMatch(contract.Args):
    """Which processes inside the target: by name or command-line pattern."""

    process: str | None = None
    """The process's name (as ``ps`` shows it, at most 15 characters), exactly."""
    pattern: Regex | None = None
    """A regular expression searched in the process's whole command line."""
    main: bool = False
    """Also the target's main process (pid 1 inside it); to end the container or pod itself,
    ``docker.container.kill`` or ``kubernetes.pods.delete`` is what you want."""

    @model_validator(mode="after")
    def _which(self) -> Self:
        if self.process is None and self.pattern is None:
            raise ValueError("say which processes: give process (a name) or pattern (a regex)")
        return self

    def picks(self, name: str, cmdline: str, *, is_main: bool) -> bool:
        """Whether a process with this name and command line is one of those chosen."""
        if is_main and not self.main:
            return False
        if self.process is not None and name != self.process:
            return False
        return self.pattern is None or re.search(self.pattern, cmdline) is not None


_DNS_NAME = re.compile(r"[A-Za-z0-9*_.-]+")


class DnsAnswer(contract.Args):
    """What a DNS fault answers, and for which names (the node agent's ``dns`` takes exactly these)."""

    domains: list[str] = Field(min_length=1)
    """The names whose resolution fails or is pinned; ``*`` matches any part (``*.example.com``)."""
    answer: str = "nxdomain"
    """``nxdomain`` (the name does not exist), ``servfail`` (the resolver fails) or an IPv4 address."""
    max_duration: Duration = Field(default=600.0, gt=0)
    """The responder stops by itself this long after it started, even if chaoskit is gone."""

    @model_validator(mode="after")
    def _valid(self) -> Self:
        bad = [n for n in self.domains if not _DNS_NAME.fullmatch(n)]
        if bad:
            raise ValueError(f"not a DNS name or pattern: {', '.join(map(repr, bad))}")
        if self.answer not in {"nxdomain", "servfail"}:
            try:
                ipaddress.IPv4Address(self.answer)
            except ValueError:
                raise ValueError(
                    f"answer must be nxdomain, servfail or an IPv4 address, got {self.answer!r}"
                ) from None
        return self


FORWARD_MARK = "0x104b"
"""The firewall mark of the responder's forwarded queries, which the redirect leaves alone. Clear of
the bits others match with masks: kube-proxy's 0x4000 (masquerade) and 0x8000 (drop), Cilium's
0x0f00, Calico's 0xffff0000, Weave's 0x20000/0x40000 (with 0x4c4b, kube-proxy masqueraded the
forwarded queries on a node and their answers never came back)."""


def responder_port(mark: str) -> int:
    """A DNS fault's responder's UDP port, fixed by its mark so that the intent ledgered before
    anything is done names the redirect rule exactly."""
    return 20000 + zlib.crc32(mark.encode()) % 40000


def resolv_upstream(root: str, whose: str) -> str:
    """The first IPv4 nameserver of ``/etc/resolv.conf`` under ``root`` (a target's root, e.g.
    ``/proc/PID/root``): where a DNS fault forwards the names it leaves alone. ``whose`` starts
    the error message (``the container``)."""
    try:
        text = Path(root, "etc/resolv.conf").read_text()
    except OSError as e:
        raise DriverError(f"can't read {whose}'s /etc/resolv.conf: {e.strerror}") from e
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                return str(ipaddress.IPv4Address(words[1]))
            except ValueError:
                continue
    raise DriverError(f"{whose}'s /etc/resolv.conf names no IPv4 nameserver to forward other names to")


def responder_command(pid: int, mark: str, args: DnsAnswer, whose: str) -> list[str]:
    """The command that runs a DNS fault's responder in the network namespace of process ``pid``:
    on its mark's port, answering ``args`` for its names and forwarding the rest (with the
    forward mark) to the target's own nameserver. ``whose`` names the target in errors."""
    argv = ["nsenter", "--target", str(pid), "--net", "--pid", "--", *spawning.interpreter(resolver.__file__)]
    argv += ["--port", str(responder_port(mark)), "--answer", args.answer]
    argv += ["--seconds", f"{args.max_duration:g}"]
    argv += ["--upstream", resolv_upstream(f"/proc/{pid}/root", whose), "--mark", FORWARD_MARK]
    for name in args.domains:
        argv += ["--name", name]
    return argv
