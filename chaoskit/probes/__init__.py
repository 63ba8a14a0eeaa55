"""chaoskit's probes as plain typed functions, for your own code and tests: no experiment, no engine.

Each function runs one probe and returns a ``Result``: ``.value`` (the headline number or status),
``.output`` (everything the probe returned, as in a journal), ``.ok`` (whether the checks you gave
held) and ``.check`` (the deciding check, with an "expected X, got Y" message)::

    from chaoskit import probes

    health = probes.http_request("http://127.0.0.1:8080/health", equals=200)
    assert health.ok, health.check.message

    errors = probes.prometheus_query('sum(rate(http_requests_total{code=~"5.."}[1m]))', below=0.5)
    burn = probes.slo_burn_rate(errors='http_requests_total{code=~"5.."}', total="http_requests_total",
                                objective=0.999, window="10m", below=14.4)

Checks: the keywords ``equals``, ``below``, ``above``, ``between``, ``in_``, ``matches`` apply to
``.value``; ``expect=`` takes the same mapping (or list of mappings) as an experiment's ``expect:``,
where an entry without ``path`` also applies to ``.value``. Without any check, ``.ok`` is True when the
probe answered (``tcp_connect`` checks ``connected`` by default). A probe that can't run at all (an
unreachable Prometheus, a refused query) raises ``chaoskit.errors.DriverError``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from pydantic import JsonValue, ValidationError

from chaoskit.drivers import contract
from chaoskit.errors import UsageError
from chaoskit.spec import expectations, models, paths

__all__ = [
    "Result",
    "alerts_firing",
    "docker_running",
    "http_load",
    "http_request",
    "kubernetes_deployment_available",
    "kubernetes_pods_ready",
    "prometheus_query",
    "prometheus_range",
    "slo_burn_rate",
    "tcp_connect",
]

ExpectLike: TypeAlias = models.Expect | Mapping[str, Any] | Sequence[models.Expect | Mapping[str, Any]]
"""An ``expect:`` as in an experiment: a mapping (``{"path": "status", "equals": 200}``), a model,
or a list of them."""

PROMETHEUS_URL = "http://127.0.0.1:9090"
"""Prometheus base URL when neither ``url=`` nor ``$CHAOSKIT_PROMETHEUS_URL`` gives one."""


@dataclass(frozen=True)
class Result:
    """What one probe call found, and whether the checks held."""

    probe: str
    """The probe that ran, e.g. ``prometheus.query``."""
    value: JsonValue
    """The headline value: a status, a ratio, a PromQL result, a count (see each function)."""
    output: JsonValue
    """Everything the probe returned (the same JSON an experiment's journal records)."""
    checks: tuple[expectations.Check, ...]
    """One per check given, in order."""
    elapsed: float
    """Seconds the probe took."""

    @property
    def ok(self) -> bool:
        """Every check held (True when none was given)."""
        return all(c.ok for c in self.checks)

    @property
    def check(self) -> expectations.Check | None:
        """The deciding check: the first that failed, else the first; None without checks."""
        return next((c for c in self.checks if not c.ok), self.checks[0] if self.checks else None)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        detail = f": {self.check.message}" if self.check else f": {self.value!r}"
        return f"{self.probe} {verdict}{detail}"


def _expects(
    headline: str, expect: ExpectLike | None, shortcuts: Mapping[str, Any], default: Mapping[str, Any] | None
) -> list[models.Expect]:
    given: list[models.Expect | Mapping[str, Any]] = []
    if expect is not None:
        given.extend([expect] if isinstance(expect, models.Expect | Mapping) else list(expect))
    checks = {("in" if k == "in_" else k): v for k, v in shortcuts.items() if v is not None}
    if checks:
        given.append(checks)
    if not given and default:
        given.append(default)
    out: list[models.Expect] = []
    for item in given:
        data = (
            item.model_dump(by_alias=True, exclude_unset=True)
            if isinstance(item, models.Expect)
            else dict(item)
        )
        data.setdefault("path", headline)
        out.append(models.Expect.model_validate(data))
    return out


def _call(
    probe: contract.Probe[Any],
    arguments: Mapping[str, Any],
    *,
    headline: str,
    expect: ExpectLike | None,
    shortcuts: Mapping[str, Any],
    ctx: contract.RunContext | None = None,
    default: Mapping[str, Any] | None = None,
) -> Result:
    checks = _expects(headline, expect, shortcuts, default)
    try:
        args = probe.args.model_validate({k: v for k, v in arguments.items() if v is not None})
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in e.errors()
        )
        raise UsageError(f"{probe.name}: {problems}") from None
    own = ctx is None
    context = ctx or contract.RunContext(run_id=f"library-{os.urandom(4).hex()}")
    started = time.perf_counter()
    try:
        output = probe.run(args, context)
    finally:
        if own:
            context.close()
    elapsed = time.perf_counter() - started
    value: JsonValue = None
    with contextlib.suppress(paths.PathError):
        value = paths.lookup(output, paths.parse(headline))
    return Result(
        probe=probe.name,
        value=value,
        output=output,
        checks=tuple(expectations.check_all(checks, output)),
        elapsed=elapsed,
    )


# ---------------------------------------------------------------------------------------- http


def http_request(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout: float | str = 5.0,
    verify: bool = True,
    expect: ExpectLike | None = None,
    equals: JsonValue = None,
    below: float | None = None,
    above: float | None = None,
    between: tuple[float, float] | None = None,
    in_: Sequence[JsonValue] | None = None,
    **options: Any,
) -> Result:
    """One HTTP request. ``.value`` is the status; ``.output`` has ``status``, ``headers``, ``body``,
    ``json``, ``elapsed_ms``. Other ``http.request`` arguments (``params``, ``json``, ``body``,
    ``follow_redirects``) go in ``options``.

    >>> probes.http_request("http://127.0.0.1:8080/health", between=(200, 299)).ok
    True
    """
    from chaoskit.drivers.http import requesting

    arguments = {"url": url, "method": method, "headers": dict(headers or {}), "timeout": timeout}
    return _call(
        requesting.RequestProbe(),
        {**arguments, "verify": verify, **options},
        headline="status",
        expect=expect,
        shortcuts={"equals": equals, "below": below, "above": above, "between": between, "in_": in_},
    )


def http_load(
    url: str,
    *,
    requests: int | None = None,
    concurrency: int | None = None,
    rate: float | None = None,
    duration: float | str | None = None,
    expect: ExpectLike | None = None,
    equals: JsonValue = None,
    below: float | None = None,
    above: float | None = None,
    between: tuple[float, float] | None = None,
    **options: Any,
) -> Result:
    """Many requests (a count, a rate, a duration). ``.value`` is ``success_ratio``; ``.output`` has
    ``latency_ms`` (``p50``, ``p90``, ``p99``, ``p99_9``, ...), ``errors`` by kind, ``rate_rps``.

    >>> r = probes.http_load("http://127.0.0.1:8080/", requests=200, concurrency=8, above=0.99)
    >>> r.output["latency_ms"]["p99"] < 200
    True
    """
    from chaoskit.drivers.http import loading

    arguments = {"url": url, "requests": requests, "concurrency": concurrency, "rate": rate}
    return _call(
        loading.LoadProbe(),
        {**arguments, "duration": duration, **options},
        headline="success_ratio",
        expect=expect,
        shortcuts={"equals": equals, "below": below, "above": above, "between": between},
    )


def tcp_connect(
    host: str,
    port: int,
    *,
    timeout: float | str = 5.0,
    expect: ExpectLike | None = None,
    equals: JsonValue = None,
) -> Result:
    """Open (and close) a TCP connection. ``.value`` is ``connected``; by default ``.ok`` means it
    connected. ``.output`` has ``elapsed_ms`` and the ``error`` when it did not.

    >>> probes.tcp_connect("127.0.0.1", 5432).ok
    True
    """
    from chaoskit.drivers.http import connecting

    return _call(
        connecting.ConnectProbe(),
        {"host": host, "port": port, "timeout": timeout},
        headline="connected",
        expect=expect,
        shortcuts={"equals": equals},
        default={"equals": True},
    )


# ---------------------------------------------------------------------------------------- prometheus


def _connection(
    url: str | None,
    headers: Mapping[str, str] | None,
    token: str | None,
    verify: bool | str,
    timeout: float | str,
) -> dict[str, Any]:
    return {
        "url": url or os.environ.get("CHAOSKIT_PROMETHEUS_URL") or PROMETHEUS_URL,
        "headers": dict(headers or {}),
        "token": token,
        "verify": verify,
        "timeout": timeout,
    }


def prometheus_query(
    query: str,
    *,
    reduce: str = "max",
    empty: str = "null",
    url: str | None = None,
    headers: Mapping[str, str] | None = None,
    token: str | None = None,
    verify: bool | str = True,
    timeout: float | str = 10.0,
    expect: ExpectLike | None = None,
    equals: JsonValue = None,
    below: float | None = None,
    above: float | None = None,
    between: tuple[float, float] | None = None,
    **options: Any,
) -> Result:
    """An instant PromQL query. ``.value`` is the series' values reduced with ``reduce`` (max, min,
    avg, sum, count, pNN); ``.output`` also has ``count`` and each ``series`` with its labels.
    Options: ``series_below`` / ``series_above`` list the ``failing`` series.

    >>> probes.prometheus_query('max(up{job="api"})', equals=1).ok
    True
    """
    from chaoskit.drivers.prometheus import probes as prometheus

    connection = _connection(url, headers, token, verify, timeout)
    return _call(
        prometheus.Query(),
        {**connection, "query": query, "reduce": reduce, "empty": empty, **options},
        headline="value",
        expect=expect,
        shortcuts={"equals": equals, "below": below, "above": above, "between": between},
    )


def prometheus_range(
    query: str,
    *,
    window: str | float = "5m",
    since: float | None = None,
    reduce: str = "max",
    across: str = "max",
    step: float | str | None = None,
    url: str | None = None,
    headers: Mapping[str, str] | None = None,
    token: str | None = None,
    verify: bool | str = True,
    timeout: float | str = 10.0,
    ctx: contract.RunContext | None = None,
    expect: ExpectLike | None = None,
    equals: JsonValue = None,
    below: float | None = None,
    above: float | None = None,
    between: tuple[float, float] | None = None,
) -> Result:
    """A PromQL range query over the last ``window`` (``"5m"``), or from epoch ``since`` until now.
    Each series is reduced over time with ``reduce`` (``p99``, ``max``, ``avg``, ...), then the series
    with ``across``; that is ``.value``. (``window="fault"`` works with the ``ctx`` of a run.)

    >>> probes.prometheus_range("histogram_quantile(0.99, rate(latency_bucket[1m]))",
    ...                         window="10m", reduce="max", below=0.2).ok
    True
    """
    from chaoskit.drivers.prometheus import probes as prometheus

    context = ctx
    if since is not None:
        context = ctx or contract.RunContext(run_id=f"library-{os.urandom(4).hex()}", started_at=since)
        window = "run"
    connection = _connection(url, headers, token, verify, timeout)
    arguments = {"query": query, "window": window, "reduce": reduce, "across": across, "step": step}
    try:
        return _call(
            prometheus.Range(),
            {**connection, **arguments},
            headline="value",
            expect=expect,
            shortcuts={"equals": equals, "below": below, "above": above, "between": between},
            ctx=context,
        )
    finally:
        if context is not None and ctx is None:
            context.close()


def alerts_firing(
    names: Sequence[str] = (),
    *,
    labels: Mapping[str, str] | None = None,
    state: str = "firing",
    url: str | None = None,
    headers: Mapping[str, str] | None = None,
    token: str | None = None,
    verify: bool | str = True,
    timeout: float | str = 10.0,
    expect: ExpectLike | None = None,
    equals: JsonValue = None,
    below: float | None = None,
    above: float | None = None,
) -> Result:
    """Alerts matching ``names`` and ``labels`` in ``state``. ``.value`` is how many; ``.output`` has
    ``firing`` (their names) and ``alerts`` (name, state, labels).

    >>> probes.alerts_firing(labels={"severity": "critical"}, equals=0).ok
    True
    """
    from chaoskit.drivers.prometheus import probes as prometheus

    connection = _connection(url, headers, token, verify, timeout)
    return _call(
        prometheus.Alerts(),
        {**connection, "names": list(names), "labels": dict(labels or {}), "state": state},
        headline="count",
        expect=expect,
        shortcuts={"equals": equals, "below": below, "above": above},
    )


def slo_burn_rate(
    *,
    total: str,
    objective: float,
    errors: str | None = None,
    good: str | None = None,
    window: str | float = "5m",
    url: str | None = None,
    headers: Mapping[str, str] | None = None,
    token: str | None = None,
    verify: bool | str = True,
    timeout: float | str = 10.0,
    ctx: contract.RunContext | None = None,
    expect: ExpectLike | None = None,
    below: float | None = None,
    above: float | None = None,
    between: tuple[float, float] | None = None,
) -> Result:
    """An SLO's burn rate over ``window`` from counter selectors (``errors`` or ``good``, and
    ``total``) and an ``objective`` (0.999). ``.value`` is the burn rate (1 spends the error budget
    exactly); ``.output`` also has ``error_ratio``, ``budget_remaining``, ``errors``, ``total``.

    >>> probes.slo_burn_rate(errors='http_requests_total{code=~"5.."}', total="http_requests_total",
    ...                      objective=0.999, window="1h", below=14.4).ok
    True
    """
    from chaoskit.drivers.prometheus import probes as prometheus

    connection = _connection(url, headers, token, verify, timeout)
    arguments = {"total": total, "errors": errors, "good": good, "objective": objective, "window": window}
    return _call(
        prometheus.Slo(),
        {**connection, **arguments},
        headline="burn_rate",
        expect=expect,
        shortcuts={"below": below, "above": above, "between": between},
        ctx=ctx,
    )


# ---------------------------------------------------------------------------------------- docker


def docker_running(
    name: str | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    regex: str | None = None,
    expect: ExpectLike | None = None,
    equals: JsonValue = None,
    **options: Any,
) -> Result:
    """Whether the matching containers all run (Docker Engine from ``DOCKER_HOST`` or the current
    context). ``.value`` is ``running``; by default ``.ok`` means they all run. ``.output`` has
    ``count``, ``total`` and each container's status. Options: ``names``, ``compose_project``,
    ``compose_service``.

    >>> probes.docker_running("checkout-db").ok
    True
    """
    from chaoskit.drivers.docker import probes as docker

    arguments = {"name": name, "labels": dict(labels) if labels else None, "regex": regex, **options}
    return _call(
        docker.Running(),
        arguments,
        headline="running",
        expect=expect,
        shortcuts={"equals": equals},
        default={"equals": True},
    )


# ---------------------------------------------------------------------------------------- kubernetes


def kubernetes_pods_ready(
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
    min_ready: int | None = None,
    wait: float | str = 0.0,
    expect: ExpectLike | None = None,
    equals: JsonValue = None,
    below: float | None = None,
    above: float | None = None,
    between: tuple[float, float] | None = None,
    **options: Any,
) -> Result:
    """How many selected pods are Ready (cluster from ``KUBECONFIG``; ``kubeconfig=``/``context=`` in
    ``options``). ``.value`` is ``ready``; ``.output`` has ``total``, ``ratio`` and ``not_ready``. With
    ``min_ready`` and ``wait``, it polls until that many are Ready or the time runs out.

    >>> probes.kubernetes_pods_ready("shop", label_selector="app=checkout", above=2).ok
    True
    """
    from chaoskit.drivers.kubernetes import probes as kubernetes

    arguments = {
        "namespace": namespace,
        "label_selector": label_selector,
        "min_ready": min_ready,
        "wait": wait,
    }
    return _call(
        kubernetes.PodsReady(),
        {**arguments, **options},
        headline="ready",
        expect=expect,
        shortcuts={"equals": equals, "below": below, "above": above, "between": between},
    )


def kubernetes_deployment_available(
    name: str,
    namespace: str | None = None,
    *,
    expect: ExpectLike | None = None,
    equals: JsonValue = None,
    below: float | None = None,
    above: float | None = None,
    between: tuple[float, float] | None = None,
    **options: Any,
) -> Result:
    """A Deployment's replica counts. ``.value`` is ``available``; ``.output`` has ``replicas``,
    ``ready``, ``updated``, ``unavailable`` and ``available_condition``.

    >>> probes.kubernetes_deployment_available("checkout", "shop", above=0).ok
    True
    """
    from chaoskit.drivers.kubernetes import probes as kubernetes

    return _call(
        kubernetes.DeploymentAvailable(),
        {"name": name, "namespace": namespace, **options},
        headline="available",
        expect=expect,
        shortcuts={"equals": equals, "below": below, "above": above, "between": between},
    )
