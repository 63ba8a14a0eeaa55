"""``http.metrics``: read a Prometheus text endpoint directly (no Prometheus server), sum the
series an experiment names, and optionally their increase over a window and ratios between them,
e.g. calls a service made to its dependency per request it answered (retry amplification).
"""

from __future__ import annotations

import math
import re
import time
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from chaoskit.drivers import contract
from chaoskit.durations import Duration
from chaoskit.errors import DriverError

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_SELECTOR = re.compile(rf"^\s*({_NAME})\s*(?:\{{(.*)\}})?\s*$")
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})?\s+(\S+)(?:\s+-?\d+)?\s*$")

Matchers = tuple[str, tuple[tuple[str, str, str], ...]]
"""A metric name and its label matchers ``(label, '=' or '!=', value)``."""


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
    """``name`` or ``name{label="v",other!="w"}`` as matchers; ``ValueError`` saying what is wrong."""
    match = _SELECTOR.match(selector)
    if match is None:
        raise ValueError(f'{selector!r} is not a series selector (e.g. requests_total{{status="200"}})')
    return match.group(1), _labels(match.group(2) or "", selector)


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


def total(samples: list[tuple[str, dict[str, str], float]], matchers: Matchers) -> tuple[float, int]:
    """The sum of the samples ``matchers`` select, and how many they are."""
    name, wanted = matchers
    selected = [
        value
        for metric, labels, value in samples
        if metric == name
        and all((labels.get(label, "") == expected) == (op == "=") for label, op, expected in wanted)
    ]
    return math.fsum(selected), len(selected)


class MetricsArgs(contract.Args):
    """Where the text endpoint is, which series to read, and over which window."""

    url: str
    """The endpoint, e.g. ``http://127.0.0.1:18080/metrics``."""
    series: dict[str, Selector] = Field(min_length=1)
    """A name for each value to report, and its selector: a metric name, optionally with label
    matchers (``=``, ``!=``); the samples it selects are summed (none selected: 0)."""
    over: Duration | None = None
    """Read twice, this far apart, and report each series' increase (counters) instead of its value."""
    ratios: dict[str, tuple[str, str]] = Field(default_factory=dict)
    """Ratios to report: a name and ``[numerator, denominator]``, two names from ``series``;
    ``null`` when the denominator is 0."""
    timeout: Duration = 5.0
    """Seconds to wait for each read."""

    @model_validator(mode="after")
    def _known_ratio_terms(self) -> MetricsArgs:
        for name, terms in self.ratios.items():
            unknown = [term for term in terms if term not in self.series]
            if unknown:
                raise ValueError(
                    f"ratios.{name}: {', '.join(unknown)} not in series (has: {', '.join(self.series)})"
                )
        return self


def _scrape(args: MetricsArgs) -> dict[str, tuple[float, int]]:
    import httpx

    try:
        response = httpx.get(args.url, timeout=args.timeout)
    except httpx.HTTPError as e:
        raise DriverError(f"http.metrics: can't read {args.url}: {e}") from e
    if response.status_code != 200:
        raise DriverError(f"http.metrics: {args.url} answered {response.status_code}, not 200")
    samples = parse_text(response.text)
    return {name: total(samples, parse_selector(selector)) for name, selector in args.series.items()}


class MetricsProbe(contract.Probe[MetricsArgs], args=MetricsArgs):
    name = "http.metrics"
    summary = (
        "Series from a Prometheus text endpoint, summed: {values, matched, ratios}; with over: increases."
    )

    def run(self, args: MetricsArgs, ctx: contract.RunContext) -> contract.JsonValue:
        first = _scrape(args)
        values = {name: value for name, (value, _) in first.items()}
        if args.over is not None:
            started = time.monotonic()
            if ctx.cancel.wait(args.over):
                raise DriverError("http.metrics: cancelled before the window ended")
            second = _scrape(args)
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
