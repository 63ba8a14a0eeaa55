"""The prometheus probes: an instant query, a range query over a window of the run, firing alerts,
and an SLO's error ratio and burn rate. Each returns a JSON object whose documented keys ``expect``
reads (``value``, ``count``, ``burn_rate``, ...)."""

from __future__ import annotations

import math
import time
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from chaoskit.drivers import contract
from chaoskit.drivers.prometheus import querying, reducing
from chaoskit.durations import Duration
from chaoskit.errors import DriverError

MAX_SERIES_SHOWN = 50
"""Outputs list at most this many series (``count`` is always the full number), to keep journals small."""

Window = Literal["run", "fault"] | Duration
"""``run`` (since the run started), ``fault`` (first inject to last revert, or now), or a duration
back from now."""


def _labels(labels: dict[str, str]) -> dict[str, contract.JsonValue]:
    return dict(labels)


def _window(window: str | float, ctx: contract.RunContext, what: str) -> tuple[float, float]:
    """(start, end) epochs of ``window`` in this run."""
    now = time.time()
    if window == "run":
        return ctx.started_at, now
    if window == "fault":
        if "first_inject" not in ctx.marks:
            raise DriverError(
                f"{what}: window 'fault' needs a fault to have been injected, and none has been yet",
                hint="use window: run, or a duration such as 5m, before the method injects anything",
            )
        return ctx.marks["first_inject"], ctx.marks.get("last_revert", now)
    assert isinstance(window, float)
    return now - window, now


# ---------------------------------------------------------------------------------------- query


class QueryArgs(querying.Connection):
    query: str
    """The PromQL expression; it must return an instant vector or a scalar."""
    reduce: str = "max"
    """How the series' values become ``value``: max, min, avg, sum, count, median, first, last or pNN."""
    empty: Literal["null", "zero"] = "null"
    """``value`` when the query returns no series: null (an expectation then fails) or 0 (a counter
    of errors that does not exist yet means no errors)."""
    series_below: float | None = None
    """Check every series: those not strictly below this are listed in ``failing``."""
    series_above: float | None = None
    """Check every series: those not strictly above this are listed in ``failing``."""

    @field_validator("reduce")
    @classmethod
    def _reducer_is_known(cls, value: str) -> str:
        return reducing.check(value)


class Query(contract.Probe[QueryArgs], args=QueryArgs):
    """Output: ``{value, count, series: [{labels, value}], failing: [{labels, value}], failing_count}``."""

    name = "prometheus.query"
    summary = "Instant PromQL query, reduced to one value (max/min/avg/sum/count/pNN) or checked per series"

    def run(self, args: QueryArgs, ctx: contract.RunContext) -> contract.JsonValue:
        samples = querying.instant(args, args.query, ctx)
        values = [s.value for s in samples if s.value is not None]
        value = reducing.finite(reducing.reducer(args.reduce)(values))
        if value is None and args.empty == "zero" and not samples:
            value = 0.0
        failing = [
            s
            for s in samples
            if (args.series_below is not None and not (s.value is not None and s.value < args.series_below))
            or (args.series_above is not None and not (s.value is not None and s.value > args.series_above))
        ]
        return {
            "value": value,
            "count": len(samples),
            "series": [{"labels": _labels(s.labels), "value": s.value} for s in samples[:MAX_SERIES_SHOWN]],
            "failing": [{"labels": _labels(s.labels), "value": s.value} for s in failing[:MAX_SERIES_SHOWN]],
            "failing_count": len(failing),
        }

    def validate(self, args: QueryArgs, ctx: contract.RunContext) -> None:
        _validate(args, [args.query])


def _validate(conn: querying.Connection, queries: list[str]) -> None:
    for query in queries:
        if not querying.validate_query(
            conn.url,
            query,
            headers=conn.headers,
            token=conn.token.get_secret_value() if conn.token else None,
            verify=conn.verify,
            timeout=min(conn.timeout, 5.0),
        ):
            return  # the server can't be asked now; the probe fails clearly at run time instead


# ---------------------------------------------------------------------------------------- range


class RangeArgs(querying.Connection):
    query: str
    """The PromQL expression, evaluated at every ``step`` across the window."""
    window: Window = "run"
    """``run``, ``fault``, or a duration back from now (``5m``)."""
    step: Duration | None = Field(default=None, gt=0)
    """Resolution; by default about 300 points across the window, and never under 1s."""
    reduce: str = "max"
    """How each series' values over time become one number (max, min, avg, last, p99, ...)."""
    across: str = "max"
    """How the per-series numbers become ``value`` (max, min, avg, sum, ...)."""
    empty: Literal["null", "zero"] = "null"
    """``value`` when there are no samples in the window."""

    @field_validator("reduce", "across")
    @classmethod
    def _reducers_are_known(cls, value: str) -> str:
        return reducing.check(value)


class Range(contract.Probe[RangeArgs], args=RangeArgs):
    """Output: ``{value, count, samples, start, end, step, series: [{labels, value, samples}]}``."""

    name = "prometheus.range"
    summary = "Range PromQL query over the run, the fault window or a duration, reduced (incl. quantiles)"

    def run(self, args: RangeArgs, ctx: contract.RunContext) -> contract.JsonValue:
        start, end = _window(args.window, ctx, self.name)
        end = max(end, start)
        step = args.step or max(1.0, math.ceil((end - start) / 300))
        series = querying.range_(args, args.query, ctx, start=start, end=end, step=step)
        over_time = reducing.reducer(args.reduce)
        per_series = [(s, reducing.finite(over_time(s.values))) for s in series]
        value = reducing.finite(reducing.reducer(args.across)([v for _, v in per_series if v is not None]))
        samples = sum(len(s.values) for s in series)
        if value is None and args.empty == "zero" and samples == 0:
            value = 0.0
        return {
            "value": value,
            "count": len(series),
            "samples": samples,
            "start": round(start, 3),
            "end": round(end, 3),
            "step": step,
            "series": [
                {"labels": _labels(s.labels), "value": v, "samples": len(s.values)}
                for s, v in per_series[:MAX_SERIES_SHOWN]
            ],
        }

    def validate(self, args: RangeArgs, ctx: contract.RunContext) -> None:
        _validate(args, [args.query])


# ---------------------------------------------------------------------------------------- alerts


class AlertsArgs(querying.Connection):
    names: list[str] = Field(default_factory=list)
    """Only alerts with these names (``alertname``); every alert when empty."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Only alerts carrying all of these labels, e.g. ``{severity: critical}``."""
    state: Literal["firing", "pending", "any"] = "firing"
    """Which alerts count: firing (the default), pending (``for:`` not yet elapsed), or any."""


class Alerts(contract.Probe[AlertsArgs], args=AlertsArgs):
    """Output: ``{count, firing: [names], alerts: [{name, state, labels}]}``. As a guard ("stop
    condition"): ``expect: {path: count, equals: 0}``; to expect an alert: ``{path: count, above: 0}``."""

    name = "prometheus.alerts"
    summary = "Alerts matching names/labels that are firing (or pending), for guards and expected alerts"

    def run(self, args: AlertsArgs, ctx: contract.RunContext) -> contract.JsonValue:
        # The ALERTS series carry every active alert with its labels, through the same query API.
        samples = querying.instant(args, "ALERTS", ctx)
        matching: list[dict[str, contract.JsonValue]] = []
        for sample in samples:
            labels = dict(sample.labels)
            name = labels.pop("alertname", "")
            state = labels.pop("alertstate", "")
            labels.pop("__name__", None)
            if args.names and name not in args.names:
                continue
            if any(labels.get(k) != v for k, v in args.labels.items()):
                continue
            if args.state not in ("any", state):
                continue
            matching.append({"name": name, "state": state, "labels": _labels(labels)})
        matching.sort(key=lambda a: (str(a["name"]), str(a["labels"])))
        names = sorted({str(a["name"]) for a in matching if a["state"] == "firing"})
        firing: list[contract.JsonValue] = [*names]
        alerts: list[contract.JsonValue] = list(matching[:MAX_SERIES_SHOWN])
        return {"count": len(matching), "firing": firing, "alerts": alerts}


# ---------------------------------------------------------------------------------------- slo


class SloArgs(querying.Connection):
    total: str
    """Counter selector of all events, e.g. ``http_requests_total{job="api"}``."""
    errors: str | None = None
    """Counter selector of bad events, e.g. ``http_requests_total{job="api",code=~"5.."}``."""
    good: str | None = None
    """Or: counter selector of good events (then errors = total - good)."""
    objective: float = Field(gt=0, lt=1)
    """The SLO as a fraction: 0.999 for 99.9%."""
    window: Window = 300.0
    """``run``, ``fault``, or a duration back from now (``5m``, the default)."""

    @field_validator("objective", mode="before")
    @classmethod
    def _fraction(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value < 100:
            raise ValueError(f"write the objective as a fraction: {value / 100:g} for {value:g}%")
        return value

    @model_validator(mode="after")
    def _errors_or_good(self) -> Self:
        if (self.errors is None) == (self.good is None):
            raise ValueError("give exactly one of errors: (bad events) or good: (good events)")
        return self


class Slo(contract.Probe[SloArgs], args=SloArgs):
    """Output: ``{error_ratio, burn_rate, budget_remaining, errors, total, objective, window_seconds}``.
    ``burn_rate`` 1 spends the error budget exactly; ``budget_remaining`` is the share of this window's
    budget left (negative when overspent). With no traffic in the window the ratio is 0."""

    name = "prometheus.slo"
    summary = "Error ratio and burn rate of an SLO from counters (errors or good, and total) over a window"

    def _queries(self, args: SloArgs, seconds: int) -> tuple[str, str]:
        counted = args.errors if args.errors is not None else args.good
        assert counted is not None
        return f"sum(increase({counted}[{seconds}s]))", f"sum(increase({args.total}[{seconds}s]))"

    def run(self, args: SloArgs, ctx: contract.RunContext) -> contract.JsonValue:
        start, end = _window(args.window, ctx, self.name)
        seconds = max(1, math.ceil(end - start))
        counted_query, total_query = self._queries(args, seconds)
        at = end if args.window == "fault" else None
        counted = _scalar(querying.instant(args, counted_query, ctx, at=at))
        total = _scalar(querying.instant(args, total_query, ctx, at=at))
        errors = counted if args.errors is not None else max(0.0, total - counted)
        ratio = min(1.0, errors / total) if total > 0 else 0.0
        burn = ratio / (1 - args.objective)
        return {
            "error_ratio": ratio,
            "burn_rate": burn,
            "budget_remaining": 1 - burn,
            "errors": errors,
            "total": total,
            "objective": args.objective,
            "window_seconds": seconds,
        }

    def validate(self, args: SloArgs, ctx: contract.RunContext) -> None:
        _validate(args, list(self._queries(args, 300)))


def _scalar(samples: list[querying.Sample]) -> float:
    """A ``sum(...)`` result: no series means nothing was counted."""
    return sum(s.value for s in samples if s.value is not None)
