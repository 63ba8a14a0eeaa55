"""Starting the controller: connect, find the kubernetes driver's sweep, watch until stopped."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import FrameType

from chaoskit import errors
from chaoskit.drivers import contract, registry
from chaoskit.drivers.kubernetes import connecting
from chaoskit.operator import reconciling, watching


def serve(
    *,
    namespace: str | None,
    kubeconfig: Path | None,
    context: str | None,
    image: str,
    interval: float,
    once: bool,
) -> list[str]:
    """Run the controller until SIGTERM/SIGINT (or one pass with ``once``); the last pass's failures."""
    if kubeconfig is not None:
        if not kubeconfig.is_file():
            raise errors.UsageError(
                f"--kubeconfig {kubeconfig}: no such file", hint="give an existing kubeconfig"
            )
        # The in-process sweep (the kubernetes driver's) finds its cluster through $KUBECONFIG.
        os.environ["KUBECONFIG"] = str(kubeconfig)
    kubernetes = registry.load().drivers.get("kubernetes")
    if kubernetes is None or kubernetes.sweep is None:
        raise errors.ComponentMissing(
            "the kubernetes driver is not installed", hint="pip install 'chaoskit[operator]'"
        )
    sweep = kubernetes.sweep
    connection = connecting.resolve(
        connecting.ClusterArgs(kubeconfig=str(kubeconfig) if kubeconfig else None, context=context)
    )
    api = connecting.open_api(connection)

    def revert(run_id: str) -> list[str]:
        ctx = contract.RunContext(run_id=run_id)
        try:
            return list(sweep(run_id, ctx))
        finally:
            ctx.close()

    controller = reconciling.Controller(api=api, revert=revert, image=image, namespace=namespace)
    watcher = watching.Watcher(controller, interval=interval)

    def stop(signum: int, frame: FrameType | None) -> None:
        watcher.stop.set()
        watcher.wake.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        watcher.serve(passes=1 if once else None)
    finally:
        api.client.close()
    return controller.failures
