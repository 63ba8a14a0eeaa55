"""Leader election against the real API server: one Lease, one leader, a takeover when the leader
goes silent or steps down, and two `chaoskit operator run` processes of which only one acts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chaoskit.kube import apis
from chaoskit.operator import leading
from tests.k8s.clusters import Cluster, wait_until
from tests.k8s.operator.test_operator import BASE, EXPERIMENT, crds, create_experiment, finalized, get

__all__ = ["crds", "finalized"]  # fixtures used here

pytestmark = pytest.mark.k8s


def lease(cluster: Cluster, namespace: str) -> dict[str, Any]:
    """The spec of the Lease in ``namespace`` ({} before there is one)."""
    path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{leading.LEASE_NAME}"
    spec: dict[str, Any] = (get(cluster, path) or {}).get("spec") or {}
    return spec


def test_one_lease_one_leader_and_a_takeover_when_it_expires_or_is_given_up(
    cluster: Cluster, namespace: str
) -> None:
    a = leading.Elector(api=cluster.api, namespace=namespace, identity="a", duration=2)
    b = leading.Elector(api=cluster.api, namespace=namespace, identity="b", duration=2)

    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    assert a.try_acquire_or_renew()  # a renewal, which b sees on its next try
    assert not b.try_acquire_or_renew()
    assert lease(cluster, namespace)["holderIdentity"] == "a"
    assert lease(cluster, namespace)["leaseTransitions"] == 0

    time.sleep(2.3)  # a goes silent for longer than the lease duration
    assert b.try_acquire_or_renew() and not a.try_acquire_or_renew()
    assert lease(cluster, namespace)["holderIdentity"] == "b"
    assert lease(cluster, namespace)["leaseTransitions"] == 1

    b.release()  # stepping down: a may take over at once, not after the duration
    assert not lease(cluster, namespace).get("holderIdentity")
    assert a.try_acquire_or_renew()
    assert lease(cluster, namespace)["holderIdentity"] == "a"
    b.release()  # not b's any more: leaves it alone
    assert lease(cluster, namespace)["holderIdentity"] == "a"


def test_expiry_is_judged_by_the_followers_own_clock_not_the_leaders_timestamps(
    cluster: Cluster, namespace: str
) -> None:
    # The leader's clock runs an hour behind: its renewTime looks long expired to anyone comparing
    # timestamps. A follower that sees the record change (a renewal) must still wait.
    behind = leading.Elector(
        api=cluster.api, namespace=namespace, identity="behind", duration=2,
        now=lambda: datetime.now(UTC) - timedelta(hours=1),
    )  # fmt: skip
    follower = leading.Elector(api=cluster.api, namespace=namespace, identity="follower", duration=2)
    assert behind.try_acquire_or_renew()
    assert not follower.try_acquire_or_renew()
    for _ in range(3):  # renewing within the duration, as a live leader does
        time.sleep(1)
        assert behind.try_acquire_or_renew()
        assert not follower.try_acquire_or_renew()
    assert lease(cluster, namespace)["holderIdentity"] == "behind"


class _RacingApi:
    """The API, except that right after ``get`` reads the Lease, ``rival`` writes it first."""

    def __init__(self, api: apis.Api, rival: leading.Elector) -> None:
        self.api, self.rival = api, rival

    def get(self, path: str, *, what: str) -> apis.JSON:
        found = self.api.get(path, what=what)
        assert self.rival.try_acquire_or_renew()
        return found

    def request(self, method: str, path: str, *, what: str, body: object = None) -> apis.JSON:
        return self.api.request(method, path, what=what, body=body)


def test_two_replicas_taking_over_at_once_can_not_both_win(cluster: Cluster, namespace: str) -> None:
    old = leading.Elector(api=cluster.api, namespace=namespace, identity="old", duration=1)
    assert old.try_acquire_or_renew()
    winner = leading.Elector(api=cluster.api, namespace=namespace, identity="winner", duration=15)
    loser = leading.Elector(api=cluster.api, namespace=namespace, identity="loser", duration=15)
    assert not winner.try_acquire_or_renew() and not loser.try_acquire_or_renew()  # both see old
    time.sleep(1.3)  # old is silent for longer than its duration: both may take over
    loser.api = _RacingApi(cluster.api, winner)  # type: ignore[assignment]

    # loser read the expired Lease, winner wrote in between: the server refuses loser's write (409).
    assert not loser.try_acquire_or_renew()
    assert lease(cluster, namespace)["holderIdentity"] == "winner"


Operator = tuple["subprocess.Popen[bytes]", Path]
"""A running `chaoskit operator run` and the file its output goes to."""


def start_operator(cluster: Cluster, namespace: str, log: Path) -> subprocess.Popen[bytes]:
    """`chaoskit operator run` watching ``namespace`` and electing in it (a 3 s Lease), its output
    going to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "chaoskit", "operator", "run", "--namespace", namespace,
             "--kubeconfig", cluster.api.connection.kubeconfig or "", "--image", "chaoskit:test",
             "--lease-namespace", namespace, "--lease-duration", "3", "--interval", "1"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip


@pytest.fixture
def operators(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[list[Operator]]:
    """Two `chaoskit operator run` processes watching ``namespace``, electing in it (3 s Lease)."""
    started: list[Operator] = []
    for n in (1, 2):
        log = tmp_path / f"operator-{n}.log"
        started.append((start_operator(cluster, namespace, log), log))
    try:
        yield started
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def test_of_two_operators_one_acts_and_the_other_takes_over_when_it_dies(
    cluster: Cluster, namespace: str, crds: None, finalized: None, operators: list[Operator]
) -> None:
    def leader() -> Operator | None:
        """The live operator whose identity holds the Lease (each logs the identity it leads as)."""
        holder = lease(cluster, namespace).get("holderIdentity")
        said = f"leading: Lease {namespace}/chaoskit-operator, as {holder}"
        live = [o for o in operators if o[0].poll() is None]
        return next((o for o in live if holder and said in o[1].read_text()), None)

    def job(name: str) -> object:
        return get(cluster, f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")

    first, _ = wait_until("one operator leading", leader)
    second, second_log = next(o for o in operators if o[0] is not first)
    wait_until("the other waiting to lead", lambda: "waiting to lead" in second_log.read_text())
    time.sleep(1.5)  # three of its tries (every 0.5 s with a 3 s Lease): still only waiting
    assert "leading:" not in second_log.read_text()
    create_experiment(cluster, namespace, "one", {"experiment": EXPERIMENT})
    wait_until("the leader's Job", lambda: job("one-run"))

    first.kill()  # no goodbye: the follower waits for the Lease to expire (3 s), then acts
    first.wait(timeout=10)
    assert wait_until("the follower leading", leader) == (second, second_log)
    assert lease(cluster, namespace)["leaseTransitions"] == 1
    create_experiment(cluster, namespace, "two", {"experiment": EXPERIMENT})
    wait_until("the new leader's Job", lambda: job("two-run"))

    second.send_signal(signal.SIGTERM)  # a clean stop gives the Lease up
    assert second.wait(timeout=30) == 0, second_log.read_text()
    assert not lease(cluster, namespace).get("holderIdentity")
    assert "released Lease" in second_log.read_text()
    assert get(cluster, f"{BASE}/namespaces/{namespace}/chaosexperiments/two") is not None


def test_a_leader_whose_lease_was_taken_stops_acting_and_exits_4(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    process = start_operator(cluster, namespace, log)
    try:
        wait_until("it leading", lambda: "leading:" in log.read_text())
        # Another replica took the Lease (as one would after this one was cut off for too long).
        path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{leading.LEASE_NAME}"
        taken = cluster.api.get(path, what="test: lease")
        taken["spec"]["holderIdentity"] = "another-replica"
        cluster.api.request("PUT", path, what="test: take the lease", body=taken)
        assert process.wait(timeout=30) == 4
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    said = log.read_text()
    assert f"lost the Lease {namespace}/chaoskit-operator" in said and "Traceback" not in said
    assert lease(cluster, namespace)["holderIdentity"] == "another-replica"  # not released: not its own
