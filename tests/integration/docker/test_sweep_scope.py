"""``recover --sweep`` on a shared Docker host takes only what runs that are not live left: a live
run keeps its faults, a run with no ledger here is named (with the command that sweeps it by id),
and a dead run's helpers and rules are removed. Against the real dockerd."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.docker.conftest import Web, iptables_rules, wait_until

pytestmark = pytest.mark.docker


def _remove(container: Any) -> None:
    """Remove a container the sweep may have removed already."""
    with contextlib.suppress(Exception):
        container.remove(force=True)


def test_a_sweep_without_a_run_id_takes_only_dead_runs_leftovers(
    engine: Any, web: Callable[..., Web]
) -> None:
    from chaoskit.drivers import contract
    from chaoskit.drivers.docker import leftovers
    from tests.integration.docker import faulting

    sites = {state: web() for state in ("live", "dead", "unknown")}
    runs = {state: contract.RunContext(run_id=f"{state}-{uuid.uuid4().hex[:8]}") for state in sites}
    states = {ctx.run_id: state for state, ctx in runs.items()}
    with contextlib.ExitStack() as stack:
        for ctx in runs.values():
            stack.callback(ctx.close)
        for state, site in sites.items():
            faulting.apply("docker.network.partition", {"name": site.name, "ports": [80]}, runs[state])
            # A helper container a killed run would have left behind.
            helper = engine.containers.create(
                "chaoskit-test/nethelper:latest",
                ["sleep", "600"],
                labels={"chaoskit.run-id": runs[state].run_id, "chaoskit.role": "helper"},
            )
            stack.callback(_remove, helper)
        for site in sites.values():
            assert not site.ok(timeout=1.5)

        recover = contract.RunContext(
            run_id="recover", run_state=lambda run_id: states.get(run_id, "unknown")
        )
        stack.callback(recover.close)
        done = list(leftovers.sweep(None, recover))

        dead, live, unknown = runs["dead"].run_id, runs["live"].run_id, runs["unknown"].run_id
        assert any(f"iptables rules from container {sites['dead'].name}" in line for line in done), done
        assert "chaoskit:" not in iptables_rules(sites["dead"].container)
        assert wait_until(sites["dead"].ok, 20)
        assert not engine.containers.list(all=True, filters={"label": f"chaoskit.run-id={dead}"})

        assert f"chaoskit:{live}" in iptables_rules(sites["live"].container)
        assert f"chaoskit:{unknown}" in iptables_rules(sites["unknown"].container)
        for run_id in (live, unknown):
            assert engine.containers.list(all=True, filters={"label": f"chaoskit.run-id={run_id}"})
        said = {line.split(" ")[2]: line for line in done if line.startswith("skipped run ")}
        assert said[live].endswith(": it is live") and f"container {sites['live'].name}" in said[live]
        assert f"chaoskit recover {unknown} --sweep" in said[unknown]

        # Named by its id, a run that is not live is swept; a live one never is.
        assert any("iptables rule" in line for line in leftovers.sweep(unknown, recover))
        assert "chaoskit:" not in iptables_rules(sites["unknown"].container)
        kept = list(leftovers.sweep(live, recover))
        assert kept and all(line.startswith(f"skipped run {live}") for line in kept), kept
        assert f"chaoskit:{live}" in iptables_rules(sites["live"].container)

        # Once it is no longer live, its own id sweeps it.
        states[live] = "dead"
        assert any("iptables rule" in line for line in leftovers.sweep(live, recover))
        assert "chaoskit:" not in iptables_rules(sites["live"].container)
