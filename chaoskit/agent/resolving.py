"""The agent's ``dns`` fault: inside the target's network namespace, resolving the chosen names fails
(NXDOMAIN, SERVFAIL) or returns a chosen address, other names resolve as before.

chaoskit's DNS responder (``chaoskit/stressors/resolver.py``) runs in the target's network and pid
namespaces and an iptables ``nat`` rule there redirects its DNS queries (UDP 53) to it; it forwards
the rest to the target's own resolver (its ``/etc/resolv.conf``) with a firewall mark the rule lets
through. The revert deletes the rule and stops the responder, found by the mark in its environment.
"""

from __future__ import annotations

import subprocess
from typing import Any

from chaoskit.agent import locating
from chaoskit.drivers import contract
from chaoskit.errors import DriverError
from chaoskit.stressors import inside, spawning

FORWARD_MARK = inside.FORWARD_MARK
DnsArgs = inside.DnsAnswer
"""What the agent's ``dns`` takes (the same as ``docker.network.dns`` and ``kubernetes.pods.dns``)."""


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
        str(inside.responder_port(mark)),
    ]
    return {"pid": at.pid, "starttime": at.starttime, "mark": mark, "rule": rule}


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
    argv = inside.responder_command(at.pid, mark, args, "the target")
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
