"""Loading and planning an experiment for the commands that need it (run, validate)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from chaoskit import errors
from chaoskit.drivers import contract, registry
from chaoskit.engine import planning
from chaoskit.spec import models, reading, templates


def load_and_plan(
    path: Path,
    variables: Sequence[str],
    var_files: Sequence[Path],
    probes_path: Sequence[Path],
) -> tuple[reading.Loaded, registry.Registry, planning.Plan]:
    """The experiment, the installed drivers and the plan; raises ``SpecError``/``UsageError``."""
    values: dict[str, JsonValue] = dict(templates.parse_var(v) for v in variables)
    try:
        loaded = reading.load(path, variables=values, var_files=var_files)
    except reading.InvalidExperiment as e:
        if e.partial is None:
            raise
        # The planner checks the valid steps too: every problem now, not its own after a fix.
        raise e.together_with(_planning_problems(e.partial, probes_path)) from None
    # Only the drivers the steps name are loaded: importing all of them costs ~110 ms more (the
    # quickstart: 90 ms against 200 ms), a plan 0.2 ms. A name none of them has loads every driver,
    # so that "did you mean" looks across them all. Either way the experiment is planned once
    # (live checks such as Prometheus parsing a query are asked once), and the runner takes the plan.
    named = _activities(loaded.document)
    prefixes = None if named is None else {name.split(".", 1)[0] for _, name in named}
    drivers = registry.load(only=prefixes)
    if named is not None and not all(name in _of_kind(drivers, kind) for kind, name in named):
        drivers = registry.load()
    ctx = contract.RunContext(run_id="validate", dry_run=True)
    try:
        return loaded, drivers, planning.plan(loaded, drivers, probes_path=probes_path, live=ctx)
    finally:
        ctx.close()


def _planning_problems(partial: reading.Loaded, probes_path: Sequence[Path]) -> list[errors.Problem]:
    ctx = contract.RunContext(run_id="validate", dry_run=True)
    try:
        planning.plan(partial, registry.load(), probes_path=probes_path, live=ctx)
    except errors.SpecError as e:
        return list(e.problems)
    finally:
        ctx.close()
    return []


def _activities(document: Mapping[str, Any]) -> set[tuple[str, str]] | None:
    """Every (kind, name) the steps and measures name (``("fault", "process.stop")``); None (all
    drivers) when a step uses a catalog probe, whose driver only the catalog knows."""
    named: set[tuple[str, str]] = set()
    for section in (*models.STEP_SECTIONS, "measure"):
        steps = document.get(section)
        for step in steps if isinstance(steps, list) else []:
            if not isinstance(step, Mapping) or "use" in step:
                return None
            named.update(
                (kind, step[kind]) for kind in ("fault", "probe", "action") if isinstance(step.get(kind), str)
            )
    return named


def _of_kind(drivers: registry.Registry, kind: str) -> Mapping[str, Any]:
    return {"fault": drivers.faults, "probe": drivers.probes, "action": drivers.actions}[kind]
