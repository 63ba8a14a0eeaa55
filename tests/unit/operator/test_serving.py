"""The controller's in-process sweep reaches the controller's own cluster, through run settings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import clusters
from chaoskit.kube import kubeconfigs
from chaoskit.operator import serving


def test_the_finalizer_sweep_uses_the_controllers_kubeconfig_and_context(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mine = tmp_path / "controller"
    mine.write_text("apiVersion: v1\nkind: Config\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setenv("KUBECONFIG", str(elsewhere))
    monkeypatch.delenv("CHAOSKIT_KUBE_CONTEXT", raising=False)
    seen: list[kubeconfigs.Connection] = []

    def sweep(run_id: str | None, ctx: contract.RunContext) -> Sequence[str]:
        seen.append(clusters.connection(clusters.ClusterArgs(), ctx))  # as the driver's sweep does
        return [f"swept {run_id}"]

    connection = kubeconfigs.resolve(str(mine), "prod")
    assert serving.sweeper(sweep, connection)("k8s-1") == ["swept k8s-1"]
    assert seen == [connection]
    assert seen[0].kubeconfig == str(mine.resolve()) and seen[0].context == "prod"
