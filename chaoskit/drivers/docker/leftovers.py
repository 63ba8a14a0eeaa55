"""Finding and removing what chaoskit left on a Docker engine, without the ledger: helper containers
by their ``chaoskit.run-id`` label, iptables rules by their ``chaoskit:<run id>`` comment, and netem
qdiscs by chaoskit's handle.

Scoped to runs that are not live (``RunContext.run_state``): a live run's faults are its own to
revert. Without a run id, only runs whose ledger is here and dead are swept; what belongs to a run
with no ledger here is named, with the command that sweeps it by run id. A netem qdisc names no run,
so only its run can be sure it is a leftover: the sweep names it and leaves it."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from chaoskit import wording
from chaoskit.drivers import contract
from chaoskit.drivers.docker import engines, namespacing, networks


def leftover_rules(listing: str, run_id: str | None) -> list[list[str]]:
    """The rule specs in ``iptables -S`` output whose comment is chaoskit's (for ``run_id``, or any)."""
    return [rule for _, rule in _owned_rules(listing, run_id)]


def _owned_rules(listing: str, run_id: str | None) -> list[tuple[str, list[str]]]:
    """(owner as the comment spells it, rule spec) for chaoskit's rules (of ``run_id``, or any)."""
    wanted = networks.comment_for(run_id) if run_id else None
    rules: list[tuple[str, list[str]]] = []
    for line in listing.splitlines():
        if not line.startswith("-A "):
            continue
        words = shlex.split(line)
        comment = words[words.index("--comment") + 1] if "--comment" in words[:-1] else ""
        if (wanted is not None and comment == wanted) or (
            wanted is None and comment.startswith(networks.COMMENT_PREFIX)
        ):
            rules.append((comment.removeprefix(networks.COMMENT_PREFIX), words[1:]))
    return rules


class _Scope:
    """Which runs' leftovers this sweep may take, and what it left alone (by run)."""

    def __init__(self, run_id: str | None, ctx: contract.RunContext) -> None:
        self.run_id, self.ctx = run_id, ctx
        self.states: dict[str, str] = {}
        self.skipped: dict[str, list[str]] = {}

    def allows(self, owner: str, what: str) -> bool:
        if owner not in self.states:
            self.states[owner] = self.ctx.run_state(owner)
        state = self.states[owner]
        if state == "live" or (state == "unknown" and self.run_id is None):
            self.skipped.setdefault(owner, []).append(what)
            return False
        return True

    def report(self) -> list[str]:
        lines = []
        for owner, things in sorted(self.skipped.items()):
            if self.states[owner] == "live":
                why = "it is live"
            else:
                why = f"no ledger for it here (sweep it by run id: chaoskit recover {owner} --sweep)"
            lines.append(f"skipped run {owner} ({', '.join(things)}): {why}")
        return lines


def sweep(run_id: str | None, ctx: contract.RunContext) -> Sequence[str]:
    client = engines.client(ctx)
    done: list[str] = []
    scope = _Scope(run_id, ctx)
    label = f"{engines.RUN_LABEL}={run_id}" if run_id else engines.RUN_LABEL
    try:
        helpers = client.containers.list(all=True, filters={"label": label}, ignore_removed=True)
    except Exception as e:
        engines.fail("listing helper containers at", engines.where(), e)
    for helper in helpers:
        labels = helper.labels or {}
        role = "helper" if labels.get(engines.ROLE_LABEL) == "helper" else "started"
        if not scope.allows(str(labels.get(engines.RUN_LABEL, "")), f"{role} container {helper.name}"):
            continue
        try:
            helper.remove(force=True)
            done.append(f"removed {role} container {helper.name}")
        except Exception as e:
            if not engines.is_not_found(e):
                engines.fail("removing helper container", str(helper.name), e)
    try:
        running = client.containers.list(filters={"status": "running"}, ignore_removed=True)
        running += client.containers.list(filters={"status": "paused"}, ignore_removed=True)
    except Exception as e:
        engines.fail("listing containers at", engines.where(), e)
    for container in running:
        labels = container.labels or {}
        if labels.get(engines.ROLE_LABEL) == "helper":
            continue
        done.extend(_sweep_container(container, scope, ctx))
    return done + scope.report()


def _sweep_container(container: Any, scope: _Scope, ctx: contract.RunContext) -> list[str]:
    done: list[str] = []
    try:
        listing, qdiscs, nat = namespacing.run(
            container,
            [
                ["iptables", "-w", "-S"],
                ["tc", "qdisc", "show"],
                ["iptables", "-w", "-t", "nat", "-S", "OUTPUT"],
            ],
            ctx,
        )
    except Exception as e:
        # One container we can't look into must not stop the sweep of the others.
        ctx.log(f"docker: could not inspect the network of container {container.name}: {e}")
        return done
    by_owner: dict[str, list[list[str]]] = {}
    for owner, rule in _owned_rules(listing.output, scope.run_id) if listing.ok else []:
        by_owner.setdefault(owner, []).append(rule)
    # docker.network.dns redirects port 53 in the nat table; the rule spec carries its table.
    for owner, rule in _owned_rules(nat.output, scope.run_id) if nat.ok else []:
        by_owner.setdefault(owner, []).append(["-t", "nat", *rule])
    rules: list[list[str]] = []
    for owner, group in by_owner.items():
        if scope.allows(
            owner, f"{wording.counted(len(group), 'iptables rule')} in container {container.name}"
        ):
            rules.extend(group)
    if rules:
        deletes = [
            ["iptables", "-w", *rule[:2], "-D", *rule[2:]]
            if rule[0] == "-t"
            else ["iptables", "-w", "-D", *rule]
            for rule in rules
        ]
        results = namespacing.run(container, deletes, ctx)
        removed = sum(1 for r in results if r.ok)
        done.append(f"removed {wording.counted(removed, 'iptables rule')} from container {container.name}")
    if scope.run_id is None and qdiscs.ok:
        for line in qdiscs.output.splitlines():
            words = line.split()
            if (
                len(words) > 4
                and words[1] == "netem"
                and words[2] == networks.NETEM_HANDLE
                and "dev" in words
            ):
                iface = words[words.index("dev") + 1]
                done.append(
                    f"left netem on {iface} of container {container.name}: it names no run, and may be "
                    f"a live one's; once no run uses it: tc qdisc del dev {iface} root handle "
                    f"{networks.NETEM_HANDLE} (in the container's network namespace)"
                )
    return done
