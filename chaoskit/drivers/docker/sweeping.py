"""Finding and removing what chaoskit left on a Docker engine, without the ledger: helper containers
by their ``chaoskit.run-id`` label, iptables rules by their ``chaoskit:<run id>`` comment, and netem
qdiscs by chaoskit's handle."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from chaoskit import wording
from chaoskit.drivers import contract
from chaoskit.drivers.docker import connecting, namespacing, networks


def leftover_rules(listing: str, run_id: str | None) -> list[list[str]]:
    """The rule specs in ``iptables -S`` output whose comment is chaoskit's (for ``run_id``, or any)."""
    wanted = networks.comment_for(run_id) if run_id else None
    rules: list[list[str]] = []
    for line in listing.splitlines():
        if not line.startswith("-A "):
            continue
        words = shlex.split(line)
        comment = words[words.index("--comment") + 1] if "--comment" in words[:-1] else ""
        if (wanted is not None and comment == wanted) or (
            wanted is None and comment.startswith(networks.COMMENT_PREFIX)
        ):
            rules.append(words[1:])
    return rules


def sweep(run_id: str | None, ctx: contract.RunContext) -> Sequence[str]:
    client = connecting.client(ctx)
    done: list[str] = []
    label = f"{connecting.RUN_LABEL}={run_id}" if run_id else connecting.RUN_LABEL
    try:
        helpers = client.containers.list(all=True, filters={"label": label}, ignore_removed=True)
    except Exception as e:
        connecting.fail("listing helper containers at", connecting.where(), e)
    for helper in helpers:
        try:
            helper.remove(force=True)
            role = "helper" if (helper.labels or {}).get(connecting.ROLE_LABEL) == "helper" else "started"
            done.append(f"removed {role} container {helper.name}")
        except Exception as e:
            if not connecting.is_not_found(e):
                connecting.fail("removing helper container", str(helper.name), e)
    try:
        running = client.containers.list(filters={"status": "running"}, ignore_removed=True)
        running += client.containers.list(filters={"status": "paused"}, ignore_removed=True)
    except Exception as e:
        connecting.fail("listing containers at", connecting.where(), e)
    for container in running:
        labels = container.labels or {}
        if labels.get(connecting.ROLE_LABEL) == "helper":
            continue
        done.extend(_sweep_container(container, run_id, ctx))
    return done


def _sweep_container(container: Any, run_id: str | None, ctx: contract.RunContext) -> list[str]:
    done: list[str] = []
    try:
        listing, qdiscs = namespacing.run(container, [["iptables", "-w", "-S"], ["tc", "qdisc", "show"]], ctx)
    except Exception as e:
        # One container we can't look into must not stop the sweep of the others.
        ctx.log(f"docker: could not inspect the network of container {container.name}: {e}")
        return done
    rules = leftover_rules(listing.output, run_id) if listing.ok else []
    if rules:
        results = namespacing.run(container, [["iptables", "-w", "-D", *rule] for rule in rules], ctx)
        removed = sum(1 for r in results if r.ok)
        done.append(f"removed {wording.counted(removed, 'iptables rule')} from container {container.name}")
    # netem qdiscs carry no run id: they are swept only when sweeping every run.
    if run_id is None and qdiscs.ok:
        for line in qdiscs.output.splitlines():
            words = line.split()
            if (
                len(words) > 4
                and words[1] == "netem"
                and words[2] == networks.NETEM_HANDLE
                and "dev" in words
            ):
                iface = words[words.index("dev") + 1]
                (result,) = namespacing.run(
                    container,
                    [["tc", "qdisc", "del", "dev", iface, "root", "handle", networks.NETEM_HANDLE]],
                    ctx,
                )
                if result.ok:
                    done.append(f"removed netem from {iface} of container {container.name}")
    return done
