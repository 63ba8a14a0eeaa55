"""The Markdown report: the same content as the HTML one, for pull-request comments and job summaries."""

from __future__ import annotations

from collections.abc import Sequence

from chaoskit.engine import journals
from chaoskit.report import checks, scores


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _run(journal: journals.Journal, level: str = "#") -> list[str]:
    items = checks.from_journal(journal)
    lines = [
        f"{level} {journal.experiment.title}",
        "",
        f"**Verdict: {journal.verdict.value.replace('_', ' ')}** (exit {journal.exit_code}) · "
        f"score **{scores.show(scores.of_journal(journal))}** · run `{journal.run_id}`",
        "",
        journal.reason,
        "",
        f"{level}# Injected",
        "",
    ]
    if journal.faults:
        lines += ["| fault | target | injected | reverted | revert |", "| --- | --- | --- | --- | --- |"]
        for fault in journal.faults:
            lines.append(
                f"| {_cell(fault.activity)} | {_cell(fault.target.kind)} {_cell(fault.target.name)} "
                f"| {fault.injected_at.isoformat()} | "
                f"{fault.reverted_at.isoformat() if fault.reverted_at else 'still applied'} "
                f"| {_cell(fault.revert.value if fault.revert else 'not reverted')} |"
            )
    else:
        lines.append("Nothing was injected.")
    lines += ["", f"{level}# Checks", ""]
    if items:
        lines += ["| when | check | result | expected | got |", "| --- | --- | --- | --- | --- |"]
        for check in items:
            mark = "✅" if check.ok else "❌"
            lines.append(
                f"| {check.kind.value} | {_cell(check.name)} | {mark} {check.status.value} "
                f"| {_cell(check.expected)} | {_cell(check.message or check.got)} |"
            )
    else:
        lines.append("The run got to no check.")
    if journal.recovery is not None:
        measured = "never" if journal.recovery.measured is None else f"{journal.recovery.measured:.3f}s"
        lines += [
            "",
            f"Recovery: required within {journal.recovery.required:g}s, measured {measured} "
            f"({'met' if journal.recovery.met else 'not met'}).",
        ]
    for trip in journal.guard_trips:
        lines.append(f"- guard **{trip.guard}** tripped at {trip.at.isoformat()}: {trip.message}")
    for error in journal.errors:
        lines.append(f"- error in {error.phase or 'run'} {error.step or ''}: {error.message}")
    return [*lines, ""]


def render(journal: journals.Journal) -> str:
    return "\n".join(_run(journal))


def render_gameday(title: str, runs: Sequence[journals.Journal], summary: str = "") -> str:
    score = scores.of_gameday(scores.of_journal(j) for j in runs)
    lines = [f"# GameDay: {title}", "", f"GameDay score **{scores.show(score)}**", ""]
    if summary:
        lines += [summary, ""]
    lines += ["| experiment | verdict | score |", "| --- | --- | --- |"]
    lines += [
        f"| {_cell(j.experiment.title)} | {j.verdict.value} | {scores.show(scores.of_journal(j))} |"
        for j in runs
    ]
    lines.append("")
    for journal in runs:
        lines += _run(journal, "##")
    return "\n".join(lines)
