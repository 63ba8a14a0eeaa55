"""The agent's ``dns`` fault: inside the target's network namespace, resolving the chosen names fails
(NXDOMAIN, SERVFAIL) or returns a chosen address, other names resolve as before.

chaoskit's DNS responder (``chaoskit/stressors/resolver.py``) runs in the target's network and pid
namespaces and an iptables ``nat`` rule there redirects its DNS queries (UDP 53) to it; it forwards
the rest to the target's own resolver (its ``/etc/resolv.conf``) with a firewall mark the rule lets
through. The revert deletes the rule and stops the responder, found by the mark in its environment.
"""

from __future__ import annotations

import ipaddress
import subprocess
import zlib
from pathlib import Path
from typing import Any

from chaoskit.agent import locating
from chaoskit.drivers import contract
from chaoskit.errors import DriverError
from chaoskit.stressors import inside, resolver, spawning

FORWARD_MARK = "0x104b"
"""The responder's forwarded queries carry it and the redirect leaves them alone (docker.network.dns
uses the same value, clear of the bits kube-proxy, Cilium, Calico and Weave match)."""
DnsArgs = inside.DnsAnswer
"""What the agent's ``dns`` takes (the same as ``docker.network.dns`` and ``kubernetes.pods.dns``)."""


def port_for(mark: str) -> int:
    """The responder's UDP port, fixed by the mark so the rule is known before anything is done."""
    return 20000 + zlib.crc32(mark.encode()) % 40000


def plan(at: locating.Located, mark: str) -> dict[str, Any]:
    rule = ["OUTPUT", "-p", "udp", "--dport", "53", "-m", "mark", "!", "--mark", FORWARD_MARK]
    rule += [
        "-m",
        "comment",
        "--comment",
        f"chaoskit:{mark}",
        "-j",
        "REDIRECT",
        "--to-ports",
        str(port_for(mark)),
    ]
    return {"pid": at.pid, "starttime": at.starttime, "mark": mark, "rule": rule}


def _upstream(pid: int) -> str:
    try:
        text = Path(f"/proc/{pid}/root/etc/resolv.conf").read_text()
    except OSError as e:
        raise DriverError(f"agent: can't read the target's /etc/resolv.conf: {e.strerror}") from e
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                return str(ipaddress.IPv4Address(words[1]))
            except ValueError:
                continue
    raise DriverError(
        "agent: the target's /etc/resolv.conf names no IPv4 nameserver to forward other names to"
    )


def _nat(pid: int, verb: str, rule: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", "-t", str(pid), "-n", "iptables", "-w", "-t", "nat", verb, *rule],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def apply(args: DnsArgs, at: locating.Located, undo: dict[str, Any]) -> str:
    mark = str(undo["mark"])
    argv = [
        "nsenter",
        "--target",
        str(at.pid),
        "--net",
        "--pid",
        "--",
        *spawning.interpreter(resolver.__file__),
    ]
    argv += ["--port", str(port_for(mark)), "--answer", args.answer, "--seconds", f"{args.max_duration:g}"]
    argv += ["--upstream", _upstream(at.pid), "--mark", FORWARD_MARK]
    for name in args.domains:
        argv += ["--name", name]
    run_id, _, entry = mark.partition("/")
    ctx = contract.RunContext(run_id=run_id, entry=entry)
    spawning.start(argv, kind="dns", mark=mark, ctx=ctx, what=f"dns in {at.what}")
    added = _nat(at.pid, "-I", undo["rule"])
    if added.returncode != 0:
        spawning.stop(mark, ())
        raise DriverError(
            f"agent: redirecting DNS in {at.what} failed: {added.stderr.strip()}",
            hint="the node's kernel needs the iptables nat table and REDIRECT target (nf_nat)",
        )
    return f"dns: {', '.join(args.domains)} answer {args.answer} in {at.what}"


def revert(undo: dict[str, Any]) -> contract.RevertOutcome:
    deleted = 0
    pid = int(undo["pid"])
    if locating.starttime(pid) == int(undo["starttime"]):  # else its namespace went with it
        for _ in range(4):  # a rule inserted twice needs two deletes; bounded
            if _nat(pid, "-D", undo["rule"]).returncode != 0:
                break
            deleted += 1
    stopped = spawning.stop(str(undo["mark"]), ())
    if deleted or stopped is contract.RevertOutcome.REVERTED:
        return contract.RevertOutcome.REVERTED
    return contract.RevertOutcome.ALREADY_CLEAN
