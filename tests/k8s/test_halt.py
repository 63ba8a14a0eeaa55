"""The Kubernetes lever against a real API server: ``chaoskit halt --kubernetes`` makes the
ConfigMap, a run's watch sees it through ``$CHAOSKIT_HALT``, ``resume --kubernetes`` releases it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaoskit.engine import halts
from tests.k8s.clusters import Cluster

pytestmark = pytest.mark.k8s


def _chaoskit(*args: str, state: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoskit", *args, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "CHAOSKIT_HALT": "", **(env or {})},
    )


def test_the_cluster_lever_is_pulled_seen_and_released(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    uri = f"kubernetes://{namespace}/chaoskit-halt"
    halted = _chaoskit(
        "halt", "--kubernetes", "--namespace", namespace, "--reason", "zone down", state=tmp_path
    )
    assert halted.returncode == 0, halted.stdout + halted.stderr
    assert f"lever pulled: {uri}" in halted.stdout
    found = cluster.api.get(f"/api/v1/namespaces/{namespace}/configmaps/chaoskit-halt", what="test")
    assert found["data"]["halted"] == "true" and found["data"]["reason"] == "zone down"

    # Another machine (another state dir) that watches the cluster's lever sees the halt.
    watch = halts.Watch(tmp_path / "elsewhere", environ={halts.ENV: uri})
    try:
        seen = watch.check()
    finally:
        watch.close()
    assert seen is not None and (seen.reason, seen.lever) == ("zone down", uri)
    status = _chaoskit("status", state=tmp_path / "elsewhere", env={"CHAOSKIT_HALT": uri})
    assert status.stdout.splitlines()[0].endswith(": zone down")

    resumed = _chaoskit("resume", "--kubernetes", "--namespace", namespace, state=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{uri}: lifted the halt by " in resumed.stdout
    found = cluster.api.get(f"/api/v1/namespaces/{namespace}/configmaps/chaoskit-halt", what="test")
    assert found["data"]["halted"] == "false"


def test_an_unreadable_cluster_lever_is_no_halt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    watch = halts.Watch(tmp_path, environ={halts.ENV: "kubernetes://chaoskit/chaoskit-halt"})
    try:
        assert watch.check() is None
    finally:
        watch.close()
    assert len(watch.problems) == 1 and "chaoskit/chaoskit-halt" in watch.problems[0]
