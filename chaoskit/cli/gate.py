"""``chaoskit gate JOURNAL...``: the CI resilience gate; the exit code decides.

Exit codes: 0 every run passes; otherwise the worst verdict's code (1 deviated, 3 not steady,
4 error, 130 interrupted); 1 when only a threshold (``--min-score``, ``--max-recovery``,
``--max-rpo``, ``--max-rto``) fails; 2 when a journal file is missing or not a journal.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chaoskit import durations, errors
from chaoskit.engine import journals
from chaoskit.report import gating, journal_files

ALLOWABLE = [v.value for v in journals.Verdict if v is not journals.Verdict.COMPLETED]


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return durations.parse(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _rpo(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int | None, float | None]:
    """``--max-rpo``: a bare count is acknowledged writes (``0``), a duration is seconds of writes."""
    if value is None:
        return None, None
    if value.strip().isdigit():
        return int(value), None
    try:
        return None, durations.parse(value)
    except ValueError as e:
        raise click.BadParameter(f"{e}; give a count of writes (0) or a duration (2s)") from None


@click.command()
@click.argument(
    "journal_paths", metavar="JOURNAL...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@click.option(
    "--min-score", type=click.FloatRange(0, 100), help="Fail a run whose resilience score is lower."
)
@click.option(
    "--max-recovery",
    metavar="DURATION",
    callback=_duration,
    help="Fail a run that recovered slower, e.g. 30s.",
)
@click.option(
    "--max-rpo",
    metavar="WRITES|DURATION",
    callback=_rpo,
    help="Fail a run that lost more acknowledged writes (a count, e.g. 0) or more seconds of "
    "writes (a duration, e.g. 2s) than this, as its data.verify probe measured.",
)
@click.option(
    "--max-rto",
    metavar="DURATION",
    callback=_duration,
    help="Fail a run whose writes were accepted again later than this after the fault, e.g. 30s.",
)
@click.option(
    "--allow",
    "allowed",
    multiple=True,
    type=click.Choice(ALLOWABLE + [v.replace("_", "-") for v in ALLOWABLE if "_" in v]),
    help="Let runs with this verdict pass too (repeatable), e.g. --allow deviated.",
)
def command(
    *,
    journal_paths: tuple[Path, ...],
    min_score: float | None,
    max_recovery: float | None,
    max_rpo: tuple[int | None, float | None],
    max_rto: float | None,
    allowed: tuple[str, ...],
) -> None:
    """Decide from journals whether CI passes: exit 0, or the worst verdict's exit code.

    Exit codes: 0 pass; 1 deviated, or a --min-score/--max-recovery/--max-rpo/--max-rto
    threshold not met (a run with no RPO/RTO measured fails --max-rpo and --max-rto);
    2 a journal file is missing or invalid; 3 not steady; 4 error; 130 interrupted.
    """
    runs: list[tuple[Path, journals.Journal]] = []
    bad: list[str] = []
    for path in journal_paths:
        try:
            runs.append((path, journal_files.read(path)))
        except errors.ChaoskitError as e:
            bad.append(e.render())
    if bad:
        for message in bad:
            click.echo(f"chaoskit gate: {message}", err=True)
        sys.exit(int(errors.ExitCode.INVALID))
    thresholds = gating.Thresholds(
        min_score=min_score,
        max_recovery=max_recovery,
        max_rpo_writes=max_rpo[0],
        max_rpo_seconds=max_rpo[1],
        max_rto=max_rto,
        allow=frozenset(journals.Verdict(a.replace("-", "_")) for a in allowed),
    )
    decision = gating.decide(runs, thresholds)
    for line in decision.lines:
        click.echo(line)
    sys.exit(decision.exit_code)
