"""Probes of what runs on a platform: Docker containers, Kubernetes pods and Deployments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import JsonValue

from chaoskit.probes import calling


def docker_running(
    name: str | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    regex: str | None = None,
    expect: calling.ExpectLike | None = None,
    equals: JsonValue = None,
    **options: Any,
) -> calling.Result:
    """Whether the matching containers all run (Docker Engine from ``DOCKER_HOST`` or the current
    context). ``.value`` is ``running``; by default ``.ok`` means they all run. ``.output`` has
    ``count``, ``total`` and each container's status. Options: ``names``, ``compose_project``,
    ``compose_service``.

    >>> probes.docker_running("checkout-db").ok
    True
    """
    from chaoskit.drivers.docker import containers as docker

    arguments = {"name": name, "labels": dict(labels) if labels else None, "regex": regex, **options}
    return calling.call(
        docker.Running(),
        arguments,
        headline="running",
        expect=expect,
        shortcuts={"equals": equals},
        default={"equals": True},
    )


def kubernetes_pods_ready(
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
    min_ready: int | None = None,
    wait: float | str = 0.0,
    expect: calling.ExpectLike | None = None,
    equals: JsonValue = None,
    below: float | None = None,
    above: float | None = None,
    between: tuple[float, float] | None = None,
    **options: Any,
) -> calling.Result:
    """How many selected pods are Ready (cluster from ``KUBECONFIG``; ``kubeconfig=``/``context=`` in
    ``options``). ``.value`` is ``ready``; ``.output`` has ``total``, ``ratio`` and ``not_ready``. With
    ``min_ready`` and ``wait``, it polls until that many are Ready or the time runs out.

    >>> probes.kubernetes_pods_ready("shop", label_selector="app=checkout", above=2).ok
    True
    """
    from chaoskit.drivers.kubernetes import pods

    arguments = {
        "namespace": namespace,
        "label_selector": label_selector,
        "min_ready": min_ready,
        "wait": wait,
    }
    return calling.call(
        pods.PodsReady(),
        {**arguments, **options},
        headline="ready",
        expect=expect,
        shortcuts={"equals": equals, "below": below, "above": above, "between": between},
    )


def kubernetes_deployment_available(
    name: str,
    namespace: str | None = None,
    *,
    expect: calling.ExpectLike | None = None,
    equals: JsonValue = None,
    below: float | None = None,
    above: float | None = None,
    between: tuple[float, float] | None = None,
    **options: Any,
) -> calling.Result:
    """A Deployment's replica counts. ``.value`` is ``available``; ``.output`` has ``replicas``,
    ``ready``, ``updated``, ``unavailable`` and ``available_condition``.

    >>> probes.kubernetes_deployment_available("checkout", "shop", above=0).ok
    True
    """
    from chaoskit.drivers.kubernetes import workloads

    return calling.call(
        workloads.DeploymentAvailable(),
        {"name": name, "namespace": namespace, **options},
        headline="available",
        expect=expect,
        shortcuts={"equals": equals, "below": below, "above": above, "between": between},
    )
