"""The SVG timeline of a run: each probe's values over time in its own lane, fault windows
shaded, guard trips and the recovery time marked. Plain SVG: no script, no external resources.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime

from pydantic import JsonValue

from chaoskit.engine import journals, phases

WIDTH = 1000
LANE = 70
LEFT = 210
RIGHT = 20
TOP = 30
BOTTOM = 50
OK = "#2e7d32"
BAD = "#c62828"
FAULT = "#ff9800"
LINE = "#1565c0"


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


def render(journal: journals.Journal) -> str:
    """The ``<svg>`` element, sized for a 1000 px wide page."""
    start = journal.started
    span = max(_seconds(start, journal.ended), 1e-3)
    lanes: dict[str, list[Point]] = {}
    for record in journal.checks:
        if record.phase not in {
            phases.Phase.BEFORE,
            phases.Phase.METHOD,
            phases.Phase.GUARD,
            phases.Phase.AFTER,
        }:
            continue
        key = f"{record.step}"
        lanes.setdefault(key, []).append(
            Point(
                seconds=_seconds(start, record.at),
                value=number(record),
                ok=record.ok,
                label=f"{record.phase.value} {record.step}: {record.message or 'ok'}",
            )
        )
    height = TOP + BOTTOM + LANE * max(len(lanes), 1)
    plot = WIDTH - LEFT - RIGHT

    def x(seconds: float) -> float:
        return LEFT + plot * min(max(seconds / span, 0.0), 1.0)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="timeline of probe values and faults">',
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
    ]
    for fault in journal.faults:
        begin = x(_seconds(start, fault.injected_at))
        end = x(_seconds(start, fault.reverted_at or journal.ended))
        title = html.escape(f"{fault.activity} on {fault.target.kind} {fault.target.name}")
        parts.append(
            f'<rect class="fault-window" x="{begin:.1f}" y="{TOP}" width="{max(end - begin, 2):.1f}" '
            f'height="{height - TOP - BOTTOM}" fill="{FAULT}" fill-opacity="0.22">'
            f"<title>{title}</title></rect>"
        )
        parts.append(
            f'<text x="{begin + 3:.1f}" y="{TOP - 8}" font-size="11" fill="#e65100">'
            f"{html.escape(fault.activity)}</text>"
        )
    for index, (name, points) in enumerate(lanes.items()):
        top = TOP + index * LANE
        middle = top + LANE / 2
        parts.append(
            f'<line x1="{LEFT}" y1="{top + LANE}" x2="{WIDTH - RIGHT}" y2="{top + LANE}" stroke="#e0e0e0"/>'
        )
        parts.append(
            f'<text x="{LEFT - 8}" y="{middle + 4:.1f}" font-size="12" text-anchor="end" fill="#212121">'
            f"{html.escape(name[:30])}</text>"
        )
        numbers = [p.value for p in points if p.value is not None]
        low, high = (min(numbers), max(numbers)) if numbers else (0.0, 1.0)

        def y(
            value: float | None, top: float = top, low: float = low, high: float = high, pad: float = 10
        ) -> float:
            if value is None or high == low:
                return top + LANE / 2
            return top + LANE - pad - (LANE - 2 * pad) * (value - low) / (high - low)

        if len(numbers) > 1:
            path = " ".join(f"{x(p.seconds):.1f},{y(p.value):.1f}" for p in points if p.value is not None)
            parts.append(
                f'<polyline class="series" points="{path}" fill="none" stroke="{LINE}" stroke-width="2"/>'
            )
        if numbers and high != low:
            parts.append(
                f'<text x="{WIDTH - RIGHT}" y="{top + 12}" font-size="10" text-anchor="end" fill="#757575">'
                f"{low:g} to {high:g}</text>"
            )
        for point in points:
            colour = OK if point.ok else BAD
            parts.append(
                f'<circle class="{"check-ok" if point.ok else "check-failed"}" cx="{x(point.seconds):.1f}" '
                f'cy="{y(point.value):.1f}" r="4" fill="{colour}">'
                f"<title>{html.escape(point.label)}</title></circle>"
            )
    for trip in journal.guard_trips:
        at = x(_seconds(start, trip.at))
        parts.append(
            f'<line class="guard-trip" x1="{at:.1f}" y1="{TOP}" x2="{at:.1f}" y2="{height - BOTTOM}" '
            f'stroke="{BAD}" stroke-dasharray="4 3"><title>{html.escape(trip.message)}</title></line>'
        )
    reverts = [f.reverted_at for f in journal.faults if f.reverted_at is not None]
    recovery = journal.recovery
    if recovery is not None and reverts:
        last = _seconds(start, max(reverts))
        if recovery.measured is not None:
            at = x(last + recovery.measured)
            colour = OK if recovery.met else BAD
            parts.append(
                f'<line class="recovery" x1="{x(last):.1f}" y1="{height - BOTTOM + 20}" x2="{at:.1f}" '
                f'y2="{height - BOTTOM + 20}" stroke="{colour}" stroke-width="3"/>'
            )
            parts.append(
                f'<line class="recovery-mark" x1="{at:.1f}" y1="{TOP}" x2="{at:.1f}" '
                f'y2="{height - BOTTOM + 24}" stroke="{colour}" stroke-width="2"/>'
            )
            near_end = at > WIDTH - 260
            parts.append(
                f'<text x="{at - 4 if near_end else at + 4:.1f}" y="{height - BOTTOM + 38}" font-size="11" '
                f'text-anchor="{"end" if near_end else "start"}" fill="{colour}">'
                f"recovered in {recovery.measured:.2f}s (≤ {recovery.required:g}s)</text>"
            )
        else:
            parts.append(
                f'<text class="recovery" x="{x(last) + 4:.1f}" y="{height - BOTTOM + 38}" font-size="11" '
                f'fill="{BAD}">not recovered within {recovery.required:g}s</text>'
            )
    axis = height - BOTTOM
    parts.append(f'<line x1="{LEFT}" y1="{axis}" x2="{WIDTH - RIGHT}" y2="{axis}" stroke="#9e9e9e"/>')
    for tick in range(6):
        seconds = span * tick / 5
        parts.append(
            f'<text x="{x(seconds):.1f}" y="{axis + 12}" font-size="10" text-anchor="middle" fill="#757575">'
            f"{seconds:.1f}s</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)
