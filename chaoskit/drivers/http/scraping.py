"""``http.metrics``: read Prometheus text endpoints directly (no Prometheus server), sum the series
an experiment names, and optionally their increase over a window and ratios between them, e.g.
requests a proxy in front of a dependency saw per request the service answered (retry
amplification): series may come from several endpoints, read together.
"""

from __future__ import annotations

import math
import re
import time
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from chaoskit.drivers import contract
from chaoskit.durations import Duration
from chaoskit.errors import DriverError

if TYPE_CHECKING:
    import httpx

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_SELECTOR = re.compile(rf"^\s*({_NAME})\s*(?:\{{(.*)\}})?\s*$")
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})?\s+(\S+)(?:\s+-?\d+)?\s*$")

Matchers = tuple[str, tuple[tuple[str, str, str], ...]]
"""A metric name and its label matchers ``(label, operator, value)``; the operators are
Prometheus's: ``=``, ``!=``, and ``=~``, ``!~`` with a regular expression matched whole."""


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def _labels(text: str, where: str) -> tuple[tuple[str, str, str], ...]:
    out: list[tuple[str, str, str]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _LABEL.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"{where}: can't read the labels at {text[position:][:40]!r}")
        out.append((match.group(1), match.group(2), _unescape(match.group(3))))
        position = match.end()
    return tuple(out)


def parse_selector(selector: str) -> Matchers:
    """``name`` or ``name{label="v",other!="w",third=~"re.*"}`` as matchers; ``ValueError`` saying
    what is wrong."""
    match = _SELECTOR.match(selector)
    if match is None:
        raise ValueError(f'{selector!r} is not a series selector (e.g. requests_total{{status="200"}})')
    matchers = _labels(match.group(2) or "", selector)
    for label, op, value in matchers:
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as e:
                shown = f"{label}{op}{value!r}"
                raise ValueError(f"{selector!r}: {shown} is not a regular expression: {e}") from e
    return match.group(1), matchers


def _selector(value: str) -> str:
    parse_selector(value)
    return value


Selector = Annotated[str, AfterValidator(_selector)]


def parse_text(text: str) -> list[tuple[str, dict[str, str], float]]:
    """The samples of a Prometheus text exposition; lines that are not samples are skipped."""
    samples = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        try:
            labels = {name: value for name, _, value in _labels(match.group(2) or "", line)}
            value = float(match.group(3))
        except ValueError:
            continue
        samples.append((match.group(1), labels, value))
    return samples


def _holds(op: str, expected: str, actual: str) -> bool:
    if op in ("=", "!="):
        return (actual == expected) == (op == "=")
    return (re.fullmatch(expected, actual) is not None) == (op == "=~")


def total(samples: list[tuple[str, dict[str, str], float]], matchers: Matchers) -> tuple[float, int]:
    """The sum of the samples ``matchers`` select, and how many they are (a missing label is the
    empty string, as in Prometheus)."""
    name, wanted = matchers
    selected = [
        value
        for metric, labels, value in samples
        if metric == name
        and all(_holds(op, expected, labels.get(label, "")) for label, op, expected in wanted)
    ]
    return math.fsum(selected), len(selected)


class Series(BaseModel):
    """A series read from one of ``endpoints``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str
    """A name from ``endpoints``."""
    selector: Selector
    """As in ``series``: a metric name, optionally with label matchers."""


class MetricsArgs(contract.Args):
    """Where the text endpoints are, which series to read, and over which window."""

    url: str | None = None
    """The endpoint series given as a plain selector are read from, e.g.
    ``http://127.0.0.1:18080/metrics``."""
    endpoints: dict[str, str] = Field(default_factory=dict)
    """More endpoints by name, e.g. ``{proxy: "http://127.0.0.1:8474/metrics"}``, for series that
    compare what two components saw. With ``over``, every endpoint is read at the start and again
    at the end of the window, in the same order."""
    series: dict[str, Selector | Series] = Field(min_length=1)
    """A name for each value to report, and its selector: a metric name, optionally with label
    matchers (``=``, ``!=``, ``=~``, ``!~``), read from ``url``; or ``{endpoint: NAME, selector:
    ...}`` to read it from one of ``endpoints``. The samples it selects are summed (none: 0)."""
    over: Duration | None = None
    """Read twice, this far apart, and report each series' increase (counters) instead of its value."""
    ratios: dict[str, tuple[str, str]] = Field(default_factory=dict)
    """Ratios to report: a name and ``[numerator, denominator]``, two names from ``series``;
    ``null`` when the denominator is 0."""
    timeout: Duration = 5.0
    """Seconds to wait for each read."""

    @model_validator(mode="after")
    def _known_names(self) -> MetricsArgs:
        for name, series in self.series.items():
            if isinstance(series, Series) and series.endpoint not in self.endpoints:
                known = ", ".join(self.endpoints) or "none"
                raise ValueError(
                    f"series.{name}: endpoint {series.endpoint!r} not in endpoints (has: {known})"
                )
            if isinstance(series, str) and self.url is None:
                raise ValueError(
                    f"series.{name}: a plain selector is read from url, and there is no url; give url, "
                    "or write {endpoint: NAME, selector: ...} with NAME from endpoints"
                )
        for name, terms in self.ratios.items():
            unknown = [term for term in terms if term not in self.series]
            if unknown:
                raise ValueError(
                    f"ratios.{name}: {', '.join(unknown)} not in series (has: {', '.join(self.series)})"
                )
        return self

    def reads(self) -> dict[str, list[tuple[str, Matchers]]]:
        """Each URL to read, with the named series to take from it."""
        out: dict[str, list[tuple[str, Matchers]]] = {}
        for name, series in self.series.items():
            if isinstance(series, Series):
                url, selector = self.endpoints[series.endpoint], series.selector
            else:
                assert self.url is not None  # checked by _known_names
                url, selector = self.url, series
            out.setdefault(url, []).append((name, parse_selector(selector)))
        return out


def _scrape(args: MetricsArgs, client: httpx.Client) -> dict[str, tuple[float, int]]:
    import httpx

    found: dict[str, tuple[float, int]] = {}
    for url, wanted in args.reads().items():
        try:
            response = client.get(url)
        except httpx.HTTPError as e:
            raise DriverError(f"http.metrics: can't read {url}: {e}") from e
        if response.status_code != 200:
            raise DriverError(f"http.metrics: {url} answered {response.status_code}, not 200")
        samples = parse_text(response.text)
        found.update((name, total(samples, matchers)) for name, matchers in wanted)
    return {name: found[name] for name in args.series}


class MetricsProbe(contract.Probe[MetricsArgs], args=MetricsArgs):
    name = "http.metrics"
    summary = (
        "Series from Prometheus text endpoints, summed: {values, matched, ratios}; with over: increases."
    )

    def run(self, args: MetricsArgs, ctx: contract.RunContext) -> contract.JsonValue:
        import httpx

        # One client, made before the first read: making one costs tens of milliseconds (TLS
        # setup), which between the reads of two endpoints would skew a ratio of their counts.
        with httpx.Client(timeout=args.timeout) as client:
            return self._read(args, ctx, client)

    def _read(self, args: MetricsArgs, ctx: contract.RunContext, client: httpx.Client) -> contract.JsonValue:
        first = _scrape(args, client)
        values = {name: value for name, (value, _) in first.items()}
        if args.over is not None:
            started = time.monotonic()
            if ctx.cancel.wait(args.over):
                raise DriverError("http.metrics: cancelled before the window ended")
            second = _scrape(args, client)
            values = {name: second[name][0] - first[name][0] for name in args.series}
            seconds = round(time.monotonic() - started, 3)
        ratios: dict[str, float | None] = {
            name: (values[top] / values[bottom] if values[bottom] else None)
            for name, (top, bottom) in args.ratios.items()
        }
        output: dict[str, contract.JsonValue] = {
            "values": dict(values),
            "matched": {name: n for name, (_, n) in first.items()},
            "ratios": dict(ratios),
        }
        if args.over is not None:
            output["seconds"] = seconds
        return output
