"""The HTML report: one self-contained file (inline CSS and SVG, no script, nothing fetched) with
the verdict, what was injected where, every check, and the timeline.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from chaoskit import wording
from chaoskit.engine import journals
from chaoskit.report import checks, scores, timelines

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #212121; }
h1 { margin-bottom: 4px; } h2 { margin-top: 28px; border-bottom: 1px solid #e0e0e0; }
.verdict { display: inline-block; padding: 6px 14px; border-radius: 4px; color: #fff; font-weight: bold; }
.completed { background: #2e7d32; } .deviated { background: #c62828; } .not_steady { background: #6a1b9a; }
.error { background: #4e342e; } .interrupted { background: #455a64; } .invalid { background: #455a64; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eeeeee; vertical-align: top; }
th { background: #f5f5f5; }
td.ok { color: #2e7d32; font-weight: bold; } td.bad { color: #c62828; font-weight: bold; }
.score { font-size: 28px; font-weight: bold; margin-left: 16px; }
.meta { color: #616161; }
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _run(journal: journals.Journal, heading: str = "h1") -> str:
    items = checks.from_journal(journal)
    score = scores.of_journal(journal)
    lines = [
        f"<section class='run' id='run-{_e(journal.run_id)}'>",
        f"<{heading}>{_e(journal.experiment.title)}</{heading}>",
        f"<p><span class='verdict {_e(journal.verdict.value)}'>"
        f"{_e(journal.verdict.value.replace('_', ' '))}</span>"
        f"<span class='score' title='resilience score, 0-100'>score {_e(scores.show(score))}</span></p>",
        f"<p>{_e(journal.reason)}</p>",
        f"<p class='meta'>run {_e(journal.run_id)} · {_e(journal.started.isoformat())} → "
        f"{_e(journal.ended.isoformat())} · exit code {journal.exit_code}"
        f"{' · ' + _e(journal.experiment.file) if journal.experiment.file else ''}</p>",
        "<h2>Injected</h2>",
    ]
    if journal.faults:
        lines.append(
            "<table><tr><th>fault</th><th>step</th><th>target</th><th>injected</th><th>reverted</th>"
            "<th>revert</th></tr>"
        )
        for fault in journal.faults:
            reverted = fault.reverted_at.isoformat() if fault.reverted_at else "still applied"
            revert = fault.revert.value if fault.revert else "not reverted"
            if fault.revert_error:
                revert += f": {fault.revert_error}"
            lines.append(
                f"<tr><td>{_e(fault.activity)}</td><td>{_e(fault.step)}</td>"
                f"<td>{_e(fault.target.kind)} {_e(fault.target.name)} ({_e(fault.target.id)})</td>"
                f"<td>{_e(fault.injected_at.isoformat())}</td><td>{_e(reverted)}</td><td>{_e(revert)}</td></tr>"
            )
        lines.append("</table>")
    else:
        lines.append("<p>Nothing was injected.</p>")
    lines.append("<h2>Checks</h2>")
    if items:
        lines.append(
            "<table><tr><th>when</th><th>check</th><th>result</th><th>expected</th><th>got</th><th>polls</th></tr>"
        )
        for check in items:
            css = "ok" if check.ok else "bad"
            lines.append(
                f"<tr><td>{_e(check.kind.value)}</td><td>{_e(check.name)} <span class='meta'>"
                f"{_e(check.activity)}</span></td><td class='{css}'>{_e(check.status.value)}</td>"
                f"<td>{_e(check.expected)}</td><td>{_e(check.message or check.got)}</td>"
                f"<td>{check.polls}</td></tr>"
            )
        lines.append("</table>")
    else:
        lines.append("<p>The run got to no check.</p>")
    if journal.recovery is not None:
        recovery = journal.recovery
        measured = "never" if recovery.measured is None else f"{recovery.measured:.3f}s"
        lines.append(
            f"<h2>Recovery</h2><p>required within {recovery.required:g}s, measured {_e(measured)} "
            f"({'met' if recovery.met else 'not met'}, {wording.counted(recovery.polls, 'poll')})</p>"
        )
    if journal.guard_trips:
        lines.append("<h2>Guard trips</h2><ul>")
        lines.extend(
            f"<li>{_e(t.guard)} at {_e(t.at.isoformat())}: {_e(t.message)}</li>" for t in journal.guard_trips
        )
        lines.append("</ul>")
    if journal.errors:
        lines.append("<h2>Errors</h2><ul>")
        lines.extend(
            f"<li>{_e(e.phase or '')} {_e(e.step or '')}: {_e(e.message)}</li>" for e in journal.errors
        )
        lines.append("</ul>")
    lines.append("<h2>Timeline</h2>")
    for measure in journal.measures:
        skipped = f", {wording.counted(measure.skipped, 'tick')} skipped (a sample still running)"
        lines.append(
            f"<p class='meta measure'>measured {_e(measure.name)} ({_e(measure.activity)}) every "
            f"{measure.every:g}s from the start of the method until recovery was judged: "
            f"{wording.counted(measure.samples, 'sample')}{skipped if measure.skipped else ''}</p>"
        )
    lines.append(timelines.render(journal))
    lines.append("</section>")
    return "\n".join(lines)


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def render(journal: journals.Journal) -> str:
    return _page(f"chaoskit: {journal.experiment.title}", _run(journal))


def render_gameday(title: str, runs: Sequence[journals.Journal], summary: str = "") -> str:
    """One page for a GameDay: its score, then each experiment's report."""
    score = scores.of_gameday(scores.of_journal(j) for j in runs)
    head = [
        f"<h1>{_e(title)}</h1>",
        f"<p><span class='score'>GameDay score {_e(scores.show(score))}</span></p>",
        f"<p>{_e(summary)}</p>" if summary else "",
        "<table><tr><th>experiment</th><th>verdict</th><th>score</th></tr>",
        *(
            f"<tr><td><a href='#run-{_e(j.run_id)}'>{_e(j.experiment.title)}</a></td>"
            f"<td>{_e(j.verdict.value)}</td><td>{_e(scores.show(scores.of_journal(j)))}</td></tr>"
            for j in runs
        ),
        "</table>",
    ]
    return _page(f"chaoskit GameDay: {title}", "\n".join([*head, *(_run(j, "h2") for j in runs)]))


def write(journal: journals.Journal, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(journal), encoding="utf-8")
