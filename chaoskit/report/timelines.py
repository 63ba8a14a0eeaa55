"""The SVG timeline of a run: the ``measure`` samples (p50/p99 latency in ms, error ratio in %)
and each probe's values over time, each in its own lane with its scale; fault windows shaded,
guard trips, the recovery time and measured RTO/RPO windows marked, the time axis in
seconds. Plain SVG: no script, no
external resources.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import JsonValue

from chaoskit.engine import journals, phases

WIDTH = 1000
LANE = 70
MEASURE_LANE = 120
LEFT = 230
RIGHT = 20
TOP = 30
BOTTOM = 66
PAD = 10
OK = "#2e7d32"
BAD = "#c62828"
FAULT = "#ff9800"
LINE = "#1565c0"
GRID = "#eeeeee"
MUTED = "#757575"
SERIES = {"p50_ms": "#1565c0", "p99_ms": "#6a1b9a", "error_ratio": "#c62828"}
OTHER_SERIES = ("#00838f", "#ef6c00", "#5d4037", "#558b2f")


@dataclass(frozen=True)
class Point:
    seconds: float
    value: float | None
    """The number plotted; None when the probe gave nothing numeric (only the ok/bad dot shows)."""
    ok: bool
    label: str


def _lookup(value: JsonValue, path: str) -> JsonValue:
    current = value
    for part in path.replace("[", ".").replace("]", "").split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def number(record: journals.CheckRecord) -> float | None:
    """The number a check looked at: the value itself, or the value at the path its expectation names."""
    value: JsonValue = record.value
    if isinstance(value, dict | list):
        for expected in record.expected:
            words = expected.split()
            if words:
                found = _lookup(value, words[0])
                if found is not None:
                    value = found
                    break
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None


def _seconds(start: datetime, when: datetime) -> float:
    return (when - start).total_seconds()


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is >= ``value`` (a scale's top)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10.0 * power


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    points: list[tuple[float, float | None]]
    """(seconds since the start, value in the lane's unit); None is a gap."""


@dataclass(frozen=True)
class MeasureLane:
    title: str
    unit: str
    """What the scale's labels end with: ``ms``, ``%`` or nothing."""
    series: list[Series]
    errors: list[tuple[float, str]]
    """Samples whose probe failed: (seconds, error)."""
    low: float = 0.0
    high: float = 1.0
    measure: str = ""


def _unit_of(label: str) -> tuple[str, str, float]:
    """(lane, unit, factor) of a sample label: ``_ms`` → latency in ms, ``_ratio`` → % (x100)."""
    if label.endswith("_ms"):
        return "latency", "ms", 1.0
    if label == "error_ratio":
        return "errors", "%", 100.0
    if label.endswith("_ratio"):
        return label.removesuffix("_ratio").replace("_", " "), "%", 100.0
    return label.replace("_", " "), "", 1.0


def measure_lanes(journal: journals.Journal) -> list[MeasureLane]:
    """One lane per measure and unit: p50 and p99 together in ms, the error ratio in %."""
    start = journal.started
    names = [m.name for m in journal.measures] or list(dict.fromkeys(s.measure for s in journal.samples))
    lanes: list[MeasureLane] = []
    for name in names:
        samples = [s for s in journal.samples if s.measure == name]
        if not samples:
            continue
        labels = list(dict.fromkeys(k for s in samples for k in s.values if k != "requests"))
        grouped: dict[tuple[str, str], list[Series]] = {}
        for index, label in enumerate(labels):
            lane, unit, factor = _unit_of(label)
            points = [
                (
                    _seconds(start, s.at),
                    None if s.values.get(label) is None else float(s.values[label] or 0.0) * factor,
                )
                for s in samples
            ]
            colour = SERIES.get(label, OTHER_SERIES[index % len(OTHER_SERIES)])
            shown = label.removesuffix("_ms").removesuffix("_ratio").replace("_", " ")
            grouped.setdefault((lane, unit), []).append(Series(shown, colour, points))
        errors = [(_seconds(start, s.at), s.error) for s in samples if s.error is not None]
        if not grouped:  # every sample failed: still a lane, to show when
            grouped[("samples", "")] = []
        for (lane, unit), series in grouped.items():
            numbers = [v for one in series for _, v in one.points if v is not None]
            top = max(numbers, default=0.0)
            floor = min(numbers, default=0.0)
            # Latency and error ratios start at 0 (a flat 0 % line sits on the floor, not midway);
            # 5 % is the least scale for errors, so noise does not look like an outage.
            high = nice_ceiling(max(top, 5.0 if unit == "%" else 0.0))
            low = 0.0 if floor >= 0 else -nice_ceiling(-floor)
            title = f"{lane} ({unit})" if unit else lane
            lanes.append(MeasureLane(title, unit, series, errors, low, high, measure=name))
    return lanes


def _show_number(value: float, unit: str) -> str:
    text = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{text} {unit}".rstrip() if unit != "%" else f"{text} %"


def _label(
    parts: list[str],
    x: float,
    y: float,
    text: str,
    *,
    size: int = 12,
    fill: str = "#212121",
    anchor: str = "start",
    css: str = "",
) -> None:
    klass = f' class="{css}"' if css else ""
    parts.append(
        f'<text{klass} x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}">'
        f"{html.escape(text)}</text>"
    )


def _scale(
    parts: list[str],
    top: float,
    height: float,
    ticks: Sequence[tuple[float, str]],
    y: Callable[[float], float],
) -> None:
    """The lane's y axis: a line at the plot's left edge, gridlines and labelled ticks."""
    parts.append('<g class="scale">')
    parts.append(
        f'<line x1="{LEFT}" y1="{top + 4:.1f}" x2="{LEFT}" y2="{top + height - 4:.1f}" stroke="#9e9e9e"/>'
    )
    for value, text in ticks:
        at = y(value)
        parts.append(f'<line x1="{LEFT}" y1="{at:.1f}" x2="{WIDTH - RIGHT}" y2="{at:.1f}" stroke="{GRID}"/>')
        parts.append(f'<line x1="{LEFT - 4}" y1="{at:.1f}" x2="{LEFT}" y2="{at:.1f}" stroke="#9e9e9e"/>')
        _label(parts, LEFT - 6, at + 3.5, text, size=10, fill=MUTED, anchor="end")
    parts.append("</g>")


def _title(
    parts: list[str],
    top: float,
    height: float,
    title: str,
    *,
    legend: Sequence[tuple[str, str]] = (),
    subtitle: str = "",
) -> None:
    def cut(text: str) -> str:
        return text if len(text) <= 22 else text[:21] + "…"  # clear of the scale's labels

    lines = 1 + bool(subtitle) + bool(legend)
    y = top + height / 2 - (lines - 1) * 7 + 4
    _label(parts, 8, y, cut(title), css="lane-title")
    if subtitle:
        y += 14
        _label(parts, 8, y, cut(subtitle), size=10, fill=MUTED)
    if legend:
        y += 15
        parts.append(f'<text class="legend" x="8" y="{y:.1f}" font-size="11">')
        parts.extend(
            f'<tspan fill="{colour}" font-weight="bold">━ {html.escape(name)}</tspan><tspan> </tspan>'
            for name, colour in legend
        )
        parts.append("</text>")


@dataclass(frozen=True)
class _Frame:
    """Where things go: the run's start and span in seconds, the picture's height in pixels."""

    start: datetime
    span: float
    height: int

    def x(self, seconds: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * min(max(seconds / self.span, 0.0), 1.0)

    def at(self, when: datetime) -> float:
        return self.x(_seconds(self.start, when))


PLOTTED = {phases.Phase.BEFORE, phases.Phase.METHOD, phases.Phase.GUARD, phases.Phase.AFTER}


def _probe_points(journal: journals.Journal) -> dict[str, list[Point]]:
    """Each step's checks in the phases a timeline shows, by step name."""
    lanes: dict[str, list[Point]] = {}
    for record in journal.checks:
        if record.phase not in PLOTTED:
            continue
        lanes.setdefault(f"{record.step}", []).append(
            Point(
                seconds=_seconds(journal.started, record.at),
                value=number(record),
                ok=record.ok,
                label=f"{record.phase.value} {record.step}: {record.message or 'ok'}",
            )
        )
    return lanes


def render(journal: journals.Journal) -> str:
    """The ``<svg>`` element, sized for a 1000 px wide page."""
    lanes = _probe_points(journal)
    measured = measure_lanes(journal)
    plotted = MEASURE_LANE * len(measured) + LANE * len(lanes)
    frame = _Frame(
        journal.started,
        max(_seconds(journal.started, journal.ended), 1e-3),
        TOP + BOTTOM + max(plotted, LANE),
    )
    height = frame.height
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="timeline of measured latency and errors, probe values and faults">',
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
    ]
    _fault_windows(parts, frame, journal)
    top = float(TOP)
    for lane in measured:
        _measure_lane(parts, frame, lane, top)
        top += MEASURE_LANE
    for name, points in lanes.items():
        _probe_lane(parts, frame, name, points, top)
        top += LANE
    _guard_trips(parts, frame, journal)
    _objectives(parts, frame, journal)
    _recovery(parts, frame, journal)
    _time_axis(parts, frame)
    parts.append("</svg>")
    return "\n".join(parts)


def _fault_windows(parts: list[str], frame: _Frame, journal: journals.Journal) -> None:
    """Each fault's time applied, shaded across every lane, its name above."""
    for fault in journal.faults:
        begin = frame.at(fault.injected_at)
        end = frame.at(fault.reverted_at or journal.ended)
        title = html.escape(f"{fault.activity} on {fault.target.kind} {fault.target.name}")
        parts.append(
            f'<rect class="fault-window" x="{begin:.1f}" y="{TOP}" width="{max(end - begin, 2):.1f}" '
            f'height="{frame.height - TOP - BOTTOM}" fill="{FAULT}" fill-opacity="0.22">'
            f"<title>{title}</title></rect>"
        )
        _label(parts, begin + 3, TOP - 8, fault.activity, size=11, fill="#e65100")


def _measure_lane(parts: list[str], frame: _Frame, lane: MeasureLane, top: float) -> None:
    parts.append(f'<g class="measure-lane" data-unit="{html.escape(lane.unit)}">')
    _title(
        parts,
        top,
        MEASURE_LANE,
        lane.title,
        legend=[(s.name, s.colour) for s in lane.series],
        subtitle=lane.measure,
    )

    def y(value: float) -> float:
        share = (value - lane.low) / (lane.high - lane.low)
        return top + MEASURE_LANE - PAD - (MEASURE_LANE - 2 * PAD) * min(max(share, 0.0), 1.0)

    middle = (lane.low + lane.high) / 2
    _scale(
        parts, top, MEASURE_LANE, [(v, _show_number(v, lane.unit)) for v in (lane.low, middle, lane.high)], y
    )
    for series in lane.series:
        _series(parts, frame, series, y)
    for seconds, error in lane.errors:
        parts.append(
            f'<rect class="sample-error" x="{frame.x(seconds) - 2:.1f}" y="{top + 2:.1f}" '
            'width="4" height="8" '
            f'fill="{BAD}"><title>{html.escape(f"sample failed: {error}")}</title></rect>'
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{top + MEASURE_LANE}" x2="{WIDTH - RIGHT}" y2="{top + MEASURE_LANE}" '
        'stroke="#e0e0e0"/>'
    )
    parts.append("</g>")


def _series(parts: list[str], frame: _Frame, series: Series, y: Callable[[float], float]) -> None:
    """One measured series: a line through each run of samples, a dot for a lone one, gaps left open."""
    segments: list[list[str]] = [[]]
    for seconds, value in series.points:
        if value is None:
            segments.append([])
        else:
            segments[-1].append(f"{frame.x(seconds):.1f},{y(value):.1f}")
    klass = f"measure-series {html.escape(series.name.replace(' ', '-'))}"
    for coords in filter(None, segments):
        if len(coords) > 1:
            parts.append(
                f'<polyline class="{klass}" points="{" ".join(coords)}" fill="none" '
                f'stroke="{series.colour}" stroke-width="2"/>'
            )
        else:
            cx, cy = coords[0].split(",")
            parts.append(f'<circle class="{klass}" cx="{cx}" cy="{cy}" r="2.5" fill="{series.colour}"/>')


def _probe_lane(parts: list[str], frame: _Frame, name: str, points: list[Point], top: float) -> None:
    """One step's checks: a dot each (green passed, red failed) at its value, joined when numeric."""
    parts.append('<g class="probe-lane">')
    _title(parts, top, LANE, name)
    numbers = [p.value for p in points if p.value is not None]
    low, high = (min(numbers), max(numbers)) if numbers else (0.0, 1.0)

    def y(value: float | None) -> float:
        if value is None or high == low:
            return top + LANE / 2
        return top + LANE - PAD - (LANE - 2 * PAD) * (value - low) / (high - low)

    if not numbers:
        marks = [(0.5, "ok / failed")]  # only dots, on the lane's middle: pass or fail
    elif high == low:
        marks = [(low, f"{low:g}")]
    else:
        marks = [(low, f"{low:g}"), (high, f"{high:g}")]
    _scale(parts, top, LANE, marks, y)
    if len(numbers) > 1:
        path = " ".join(f"{frame.x(p.seconds):.1f},{y(p.value):.1f}" for p in points if p.value is not None)
        parts.append(
            f'<polyline class="series" points="{path}" fill="none" stroke="{LINE}" stroke-width="2"/>'
        )
    for point in points:
        parts.append(
            f'<circle class="{"check-ok" if point.ok else "check-failed"}" cx="{frame.x(point.seconds):.1f}" '
            f'cy="{y(point.value):.1f}" r="4" fill="{OK if point.ok else BAD}">'
            f"<title>{html.escape(point.label)}</title></circle>"
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{top + LANE}" x2="{WIDTH - RIGHT}" y2="{top + LANE}" stroke="#e0e0e0"/>'
    )
    parts.append("</g>")


def _guard_trips(parts: list[str], frame: _Frame, journal: journals.Journal) -> None:
    for trip in journal.guard_trips:
        at = frame.at(trip.at)
        parts.append(
            f'<line class="guard-trip" x1="{at:.1f}" y1="{TOP}" x2="{at:.1f}" y2="{frame.height - BOTTOM}" '
            f'stroke="{BAD}" stroke-width="2" stroke-dasharray="4 3">'
            f"<title>{html.escape(trip.message)}</title></line>"
        )
        text = f"guard tripped: {trip.guard}"[:40]
        _label(parts, at + 3, TOP + 10, text, size=10, fill=BAD, css="guard-trip-label")


def _objectives(parts: list[str], frame: _Frame, journal: journals.Journal) -> None:
    """Each RPO/RTO reading as two bars along the top: the acknowledged writes lost (from the
    last write kept to the last one lost) and the outage (from the fault until writes were
    accepted again, or to the end of the run when they were not)."""
    for row, reading in enumerate(journal.objectives):
        y = TOP + 4 + row * 26
        if reading.lost_since is not None and reading.lost_until is not None:
            begin, end = frame.at(reading.lost_since), frame.at(reading.lost_until)
            text = f"RPO {reading.rpo_writes} acknowledged writes lost ({reading.rpo_seconds:.2f}s)"
            _bar(parts, "rpo", begin, end, y=y, colour=BAD, text=text)
        if reading.fault_at is not None:
            begin = frame.at(reading.fault_at)
            end = frame.at(reading.accepted_again_at or journal.ended)
            rto = reading.rto_seconds
            text = "writes not accepted again" if rto is None else f"RTO {rto:.2f}s: writes accepted again"
            _bar(parts, "rto", begin, end, y=y + 12, colour=LINE if rto is not None else BAD, text=text)


def _bar(parts: list[str], css: str, begin: float, end: float, *, y: float, colour: str, text: str) -> None:
    parts.append(
        f'<rect class="{css}" x="{begin:.1f}" y="{y:.1f}" width="{max(end - begin, 2):.1f}" height="5" '
        f'fill="{colour}"><title>{html.escape(text)}</title></rect>'
    )
    near_end = end > WIDTH - 300
    x = begin - 4 if near_end else end + 4
    _label(
        parts, x, y + 5, text, size=10, fill=colour, css=f"{css}-label", anchor="end" if near_end else "start"
    )


def _recovery(parts: list[str], frame: _Frame, journal: journals.Journal) -> None:
    """The time from the last revert until the steady state held again, under the time axis."""
    reverts = [f.reverted_at for f in journal.faults if f.reverted_at is not None]
    recovery = journal.recovery
    if recovery is None or not reverts:
        return
    last = _seconds(frame.start, max(reverts))
    below = frame.height - BOTTOM
    if recovery.measured is None:
        text = f"not recovered within {recovery.required:g}s"
        _label(parts, frame.x(last) + 4, below + 50, text, size=11, fill=BAD, css="recovery")
        return
    at = frame.x(last + recovery.measured)
    colour = OK if recovery.met else BAD
    parts.append(
        f'<line class="recovery" x1="{frame.x(last):.1f}" y1="{below + 34}" x2="{at:.1f}" '
        f'y2="{below + 34}" stroke="{colour}" stroke-width="3"/>'
    )
    parts.append(
        f'<line class="recovery-mark" x1="{at:.1f}" y1="{TOP}" x2="{at:.1f}" '
        f'y2="{below + 38}" stroke="{colour}" stroke-width="2"/>'
    )
    near_end = at > WIDTH - 260
    _label(
        parts,
        at - 4 if near_end else at + 4,
        below + 50,
        f"recovered in {recovery.measured:.2f}s (≤ {recovery.required:g}s)",
        size=11,
        fill=colour,
        anchor="end" if near_end else "start",
    )


def _time_axis(parts: list[str], frame: _Frame) -> None:
    axis = frame.height - BOTTOM
    parts.append(f'<line x1="{LEFT}" y1="{axis}" x2="{WIDTH - RIGHT}" y2="{axis}" stroke="#9e9e9e"/>')
    for tick in range(6):
        seconds = frame.span * tick / 5
        at = frame.x(seconds)
        parts.append(f'<line x1="{at:.1f}" y1="{axis}" x2="{at:.1f}" y2="{axis + 4}" stroke="#9e9e9e"/>')
        _label(parts, at, axis + 15, f"{seconds:.1f} s", size=10, fill=MUTED, anchor="middle")
    _label(parts, 8, axis + 15, "seconds since the run started", size=10, fill=MUTED, css="axis-title")
