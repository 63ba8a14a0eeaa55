"""Running a GameDay plan: every experiment through the engine's Python API (each with its own
journal and history row), groups in order, a parallel group's experiments at the same time, stop
early when ``stop_on`` says so; then one combined result with its score.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import JsonValue

from chaoskit import errors
from chaoskit.drivers import registry as registry_module
from chaoskit.engine import events, journals, planning, running
from chaoskit.gameday import plans
from chaoskit.report import gating, history, scores
from chaoskit.spec import reading, templates

SEVERITY = {v: int(code) for v, code in gating.VERDICT_CODES.items()}
STOP_AT = {
    plans.StopOn.DEVIATED: SEVERITY[journals.Verdict.DEVIATED],
    plans.StopOn.NOT_STEADY: SEVERITY[journals.Verdict.NOT_STEADY],
    plans.StopOn.ERROR: SEVERITY[journals.Verdict.ERROR],
}


@dataclass(frozen=True)
class Prepared:
    """An experiment of the plan, loaded and planned before anything runs."""

    label: str
    ref: plans.ExperimentRef
    path: Path
    loaded: reading.Loaded
    plan: planning.Plan
    secrets: Mapping[str, str]


@dataclass(frozen=True)
class Outcome:
    label: str
    file: str
    journal: journals.Journal
    journal_path: Path | None
    """Where the journal was written: in the journal folder, else under the state directory."""
    score: float | None
    journal_moved: bool = False
    """The journal folder did not take it: it is under the state directory, or (None) nowhere."""


@dataclass
class Result:
    title: str
    key: str
    started: datetime
    ended: datetime
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Labels of experiments not run because ``stop_on`` stopped the plan (or it was interrupted)."""

    @property
    def score(self) -> float | None:
        return scores.of_gameday(o.score for o in self.outcomes)

    @property
    def verdict(self) -> journals.Verdict:
        """The worst verdict of the experiments (``completed`` when all completed)."""
        worst = journals.Verdict.COMPLETED
        for outcome in self.outcomes:
            if SEVERITY[outcome.journal.verdict] > SEVERITY[worst]:
                worst = outcome.journal.verdict
        return worst

    @property
    def exit_code(self) -> int:
        """The worst verdict's code; at least 4 (error) when a journal is not where it was asked for,
        so that CI does not take the GameDay for a pass."""
        code = SEVERITY[self.verdict]
        if any(o.journal_moved for o in self.outcomes):
            code = max(code, SEVERITY[journals.Verdict.ERROR])
        return code

    def summary(self) -> dict[str, JsonValue]:
        """The JSON the webhook receives."""
        return {
            "kind": "chaoskit.gameday",
            "title": self.title,
            "plan": self.key,
            "started": self.started.isoformat(),
            "ended": self.ended.isoformat(),
            "verdict": self.verdict.value,
            "exit_code": self.exit_code,
            "score": self.score,
            "experiments": [
                {
                    "name": o.label,
                    "file": o.file,
                    "run_id": o.journal.run_id,
                    "verdict": o.journal.verdict.value,
                    "reason": o.journal.reason,
                    "score": o.score,
                    "recovery_seconds": o.journal.recovery.measured if o.journal.recovery else None,
                    "journal": str(o.journal_path) if o.journal_path is not None else None,
                }
                for o in self.outcomes
            ],
            "skipped": list(self.skipped),
        }


def prepare(loaded: plans.Loaded, drivers: registry_module.Registry) -> list[list[Prepared]]:
    """Load and plan every experiment first, so a bad file stops the GameDay before any fault."""
    problems: list[errors.Problem] = []
    stages: list[list[Prepared]] = []
    for group in loaded.plan.groups():
        stage: list[Prepared] = []
        for ref in group:
            path = loaded.resolve(ref.file)
            try:
                experiment = reading.load(
                    path,
                    variables={**loaded.plan.vars, **ref.vars},
                    var_files=[loaded.resolve(f) for f in ref.var_files],
                )
                planned = planning.plan(experiment, drivers)
            except errors.SpecError as e:
                problems.extend(e.problems)
                continue
            label = ref.name or experiment.experiment.title
            stage.append(
                Prepared(
                    label=label,
                    ref=ref,
                    path=path,
                    loaded=experiment,
                    plan=planned,
                    secrets=templates.resolve_secrets(experiment.experiment),
                )
            )
        stages.append(stage)
    if problems:
        raise errors.SpecError(problems)
    return stages


def _info(item: Prepared) -> journals.ExperimentInfo:
    return journals.ExperimentInfo(
        title=item.loaded.experiment.title,
        file=str(item.path),
        kind=item.loaded.kind,
        tags=list(item.loaded.experiment.tags),
        sha256=hashlib.sha256(item.path.read_bytes()).hexdigest(),
    )


async def _run_stage(
    stage: list[Prepared],
    state_dir: Path,
    stop: threading.Event,
    subscribe: Callable[[events.Event], None] | None,
    observers: Callable[[], Callable[[events.Event], None]] | None = None,
) -> list[journals.Journal]:
    runners = []
    for item in stage:
        bus = events.Bus()
        if subscribe is not None:
            bus.subscribe(subscribe)
        if observers is not None:
            # One subscriber per run: runs of a parallel group must not share per-run state.
            bus.subscribe(observers())
        settings = running.Settings(state_dir=state_dir, experiment=_info(item), secrets=dict(item.secrets))
        runners.append(running.Runner(item.plan, settings, bus=bus))

    async def watch() -> None:
        # The daemon's SIGTERM arrives as a threading event; the engine stops on its own interrupt.
        while not stop.is_set():
            await asyncio.sleep(0.2)
        for runner in runners:
            runner.interrupt()

    watcher = asyncio.create_task(watch())
    try:
        return list(await asyncio.gather(*(r.run() for r in runners)))
    finally:
        watcher.cancel()


def _write_journal(
    journal: journals.Journal, journal_dir: Path, state_dir: Path, name: str, log: Callable[[str], None]
) -> Path | None:
    """Write the run's journal into ``journal_dir``; if that fails (a daemon's folder can vanish),
    into ``<state dir>/journals`` instead. The path written, or None when neither took it."""
    path = journal_dir / name
    try:
        journals.write(journal, path)
    except OSError as e:
        problem = f"can't write the journal {path}: {e.strerror or e}"
        rescue = state_dir / "journals" / name
        if rescue != path:
            try:
                journals.write(journal, rescue)
            except OSError:
                pass
            else:
                log(f"error: {problem}; saved it as {rescue} instead")
                return rescue
        log(f"error: {problem}; it is lost")
        return None
    return path


def run(
    loaded: plans.Loaded,
    *,
    state_dir: Path,
    journal_dir: Path,
    drivers: registry_module.Registry | None = None,
    stop: threading.Event | None = None,
    subscribe: Callable[[events.Event], None] | None = None,
    observers: Callable[[], Callable[[events.Event], None]] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> Result:
    """Run the plan's experiments; raises ``SpecError`` (nothing run) when a file is invalid.

    ``subscribe`` sees every run's events; ``observers`` makes a fresh subscriber for each run
    (chaoskit's metrics use it to label each run with its own experiment)."""
    stop = stop or threading.Event()
    stages = prepare(loaded, drivers or registry_module.load())
    result = Result(
        title=loaded.plan.title, key=loaded.key, started=datetime.now(UTC), ended=datetime.now(UTC)
    )
    stamp = result.started.strftime("%Y%m%dT%H%M%SZ")
    threshold = STOP_AT.get(loaded.plan.stop_on) if loaded.plan.stop_on else None
    number = 0
    for index, stage in enumerate(stages):
        log(f"running {', '.join(item.label for item in stage)}")
        completed = asyncio.run(_run_stage(stage, state_dir, stop, subscribe, observers))
        for item, journal in zip(stage, completed, strict=True):
            number += 1
            name = f"{loaded.key}-{stamp}-{number:02d}-{item.path.stem}.json"
            path = _write_journal(journal, journal_dir, state_dir, name, log)
            score = history.record(journal, state_dir, journal_path=path, gameday=loaded.key)
            moved = path != journal_dir / name
            result.outcomes.append(Outcome(item.label, str(item.path), journal, path, score, moved))
            log(f"{item.label}: {journal.verdict.value}, score {scores.show(score)} ({path})")
        worst = max(SEVERITY[j.verdict] for j in completed)
        interrupted = stop.is_set() or any(j.verdict is journals.Verdict.INTERRUPTED for j in completed)
        if interrupted or (threshold is not None and worst >= threshold):
            result.skipped = [item.label for later in stages[index + 1 :] for item in later]
            if result.skipped:
                why = "interrupted" if interrupted else f"stop_on: {loaded.plan.stop_on}"
                log(f"{why}: skipping {', '.join(result.skipped)}")
            break
    result.ended = datetime.now(UTC)
    return result
