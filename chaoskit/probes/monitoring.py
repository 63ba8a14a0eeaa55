"""Probes that ask Prometheus: a PromQL query, a range query, firing alerts, an SLO's burn rate."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import JsonValue

from chaoskit.drivers import contract
from chaoskit.probes import calling

PROMETHEUS_URL = "http://127.0.0.1:9090"
"""Prometheus base URL when neither ``url=`` nor ``$CHAOSKIT_PROMETHEUS_URL`` gives one."""


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
    expect: calling.ExpectLike | None = None,
    equals: JsonValue = None,
    below: float | None = None,
    above: float | None = None,
    between: tuple[float, float] | None = None,
    **options: Any,
) -> calling.Result:
    """An instant PromQL query. ``.value`` is the series' values reduced with ``reduce`` (max, min,
    avg, sum, count, pNN); ``.output`` also has ``count`` and each ``series`` with its labels.
    Options: ``series_below`` / ``series_above`` list the ``failing`` series.

    >>> probes.prometheus_query('max(up{job="api"})', equals=1).ok
    True
    """
    from chaoskit.drivers.prometheus import queries as prometheus

    connection = _connection(url, headers, token, verify, timeout)
    return calling.call(
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
    expect: calling.ExpectLike | None = None,
    equals: JsonValue = None,
    below: float | None = None,
    above: float | None = None,
    between: tuple[float, float] | None = None,
) -> calling.Result:
    """A PromQL range query over the last ``window`` (``"5m"``), or from epoch ``since`` until now.
    Each series is reduced over time with ``reduce`` (``p99``, ``max``, ``avg``, ...), then the series
    with ``across``; that is ``.value``. (``window="fault"`` works with the ``ctx`` of a run.)

    >>> probes.prometheus_range("histogram_quantile(0.99, rate(latency_bucket[1m]))",
    ...                         window="10m", reduce="max", below=0.2).ok
    True
    """
    from chaoskit.drivers.prometheus import queries as prometheus

    context = ctx
    if since is not None:
        context = ctx or contract.RunContext(run_id=f"library-{os.urandom(4).hex()}", started_at=since)
        window = "run"
    connection = _connection(url, headers, token, verify, timeout)
    arguments = {"query": query, "window": window, "reduce": reduce, "across": across, "step": step}
    try:
        return calling.call(
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
    expect: calling.ExpectLike | None = None,
    equals: JsonValue = None,
    below: float | None = None,
    above: float | None = None,
) -> calling.Result:
    """Alerts matching ``names`` and ``labels`` in ``state``. ``.value`` is how many; ``.output`` has
    ``firing`` (their names) and ``alerts`` (name, state, labels).

    >>> probes.alerts_firing(labels={"severity": "critical"}, equals=0).ok
    True
    """
    from chaoskit.drivers.prometheus import queries as prometheus

    connection = _connection(url, headers, token, verify, timeout)
    return calling.call(
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
    expect: calling.ExpectLike | None = None,
    below: float | None = None,
    above: float | None = None,
    between: tuple[float, float] | None = None,
) -> calling.Result:
    """An SLO's burn rate over ``window`` from counter selectors (``errors`` or ``good``, and
    ``total``) and an ``objective`` (0.999). ``.value`` is the burn rate (1 spends the error budget
    exactly); ``.output`` also has ``error_ratio``, ``budget_remaining``, ``errors``, ``total``.

    >>> probes.slo_burn_rate(errors='http_requests_total{code=~"5.."}', total="http_requests_total",
    ...                      objective=0.999, window="1h", below=14.4).ok
    True
    """
    from chaoskit.drivers.prometheus import queries as prometheus

    connection = _connection(url, headers, token, verify, timeout)
    arguments = {"total": total, "errors": errors, "good": good, "objective": objective, "window": window}
    return calling.call(
        prometheus.Slo(),
        {**connection, **arguments},
        headline="burn_rate",
        expect=expect,
        shortcuts={"below": below, "above": above, "between": between},
        ctx=ctx,
    )
