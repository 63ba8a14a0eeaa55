"""Starting the controller: connect, find the kubernetes driver's sweep, lead (when elected), watch
until stopped."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from chaoskit import errors
from chaoskit.drivers import contract, registry
from chaoskit.engine import halts
from chaoskit.kube import apis, haltlevers, kubeconfigs
from chaoskit.operator import leading, reconciling, watching

log = logging.getLogger("chaoskit.operator")


@dataclass(frozen=True)
class Election:
    """Leader election settings (``chaoskit operator run --leader-elect``)."""

    namespace: str | None = None
    """Where the Lease lives; default the namespace the controller runs in (in a cluster), else the
    kubeconfig context's."""
    duration: float = 15.0


def sweeper(sweep: contract.Sweep, connection: kubeconfigs.Connection) -> reconciling.Revert:
    """The finalizer's revert: the kubernetes driver's sweep of one run id, in-process, on the
    controller's own cluster (its ``--kubeconfig`` and ``--context``, handed over as run settings)."""
    cluster = {
        kubeconfigs.KUBECONFIG_SETTING: connection.kubeconfig,
        kubeconfigs.CONTEXT_SETTING: connection.context,
    }
    settings = {key: value for key, value in cluster.items() if value is not None}

    def revert(run_id: str) -> list[str]:
        ctx = contract.RunContext(run_id=run_id, settings=settings)
        try:
            return list(sweep(run_id, ctx))
        finally:
            ctx.close()

    return revert


def halt_reader(lever: contract.Lever) -> Callable[[], halts.Halt | None]:
    """Whether the cluster's halt lever is pulled; a lever that can't be read is no halt (said once)."""
    said: list[str] = []

    def halt() -> halts.Halt | None:
        try:
            return halts.read_lever(lever, timeout=5.0)
        except errors.ChaoskitError as e:
            if e.message not in said:
                said.append(e.message)
                log.warning("the halt lever can't be read (not a halt): %s", e.message)
            return None

    return halt


def serve(
    *,
    namespace: str | None,
    kubeconfig: Path | None,
    context: str | None,
    image: str,
    interval: float,
    once: bool,
    election: Election | None = None,
) -> list[str]:
    """Run the controller until SIGTERM/SIGINT (or one pass with ``once``); the last pass's failures.

    With ``election``, act only while this replica holds the Lease; raises ``DriverError`` when the
    Lease is lost, so that the process exits and its pod restarts as a follower."""
    if kubeconfig is not None and not kubeconfig.is_file():
        raise errors.UsageError(
            f"--kubeconfig {kubeconfig}: no such file", hint="give an existing kubeconfig"
        )
    kubernetes = registry.load().drivers.get("kubernetes")
    if kubernetes is None or kubernetes.sweep is None:
        raise errors.ComponentMissing(
            "the kubernetes driver is not installed", hint="pip install 'chaoskit[operator]'"
        )
    connection = kubeconfigs.resolve(str(kubeconfig) if kubeconfig else None, context)
    api = apis.open_api(connection)
    lever = haltlevers.ConfigMapLever(haltlevers.DEFAULT_URI, api=api)
    controller = reconciling.Controller(
        api=api,
        revert=sweeper(kubernetes.sweep, connection),
        image=image,
        namespace=namespace,
        halt=halt_reader(lever),
        halt_lever=lever.uri,
    )
    watcher = watching.Watcher(controller, interval=interval)

    def stop(signum: int, frame: FrameType | None) -> None:
        watcher.stop.set()
        watcher.wake.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    elector: leading.Elector | None = None
    lost = threading.Event()
    try:
        if election is not None and not once:
            # Its own client: renewals must not queue behind a long reconcile pass's requests.
            lease_api = apis.open_api(connection)
            elector = leading.Elector(
                api=lease_api,
                namespace=election.namespace or lease_api.default_namespace,
                duration=election.duration,
                renew_deadline=election.duration * 2 / 3,
                retry_period=max(0.5, election.duration / 7.5),
            )
            if not elector.acquire(watcher.stop):
                return controller.failures  # stopped while waiting to lead
            keeper = threading.Thread(
                target=elector.keep, args=(watcher.stop, lost, watcher.wake.set), daemon=True
            )
            keeper.start()
        watcher.serve(passes=1 if once else None)
    finally:
        if elector is not None:
            if not lost.is_set():
                elector.release()
            elector.api.client.close()
        api.client.close()
    if lost.is_set():
        assert elector is not None
        raise errors.DriverError(
            f"lost the {elector.where}; stopped acting so that another replica can",
            hint="the pod restarts and waits to lead again; check the API server's health",
        )
    return controller.failures
