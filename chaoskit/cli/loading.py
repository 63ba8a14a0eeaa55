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
    # Only the drivers the steps name are loaded: importing all of them costs more than the rest
    # of a small run. If planning then finds a problem, it plans again with every driver, so that
    # "did you mean" hints and third-party drivers named unlike their activities are all there.
    names = _driver_names(loaded.document)
    drivers = registry.load(only=names)
    ctx = contract.RunContext(run_id="validate", dry_run=True)
    try:
        try:
            return loaded, drivers, planning.plan(loaded, drivers, probes_path=probes_path, live=ctx)
        except errors.SpecError:
            if names is None:
                raise
        drivers = registry.load()
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


def _driver_names(document: Mapping[str, Any]) -> set[str] | None:
    """The drivers the steps name (``process`` for ``process.stop``); None (all drivers) when a
    step uses a catalog probe, whose driver only the catalog knows."""
    names: set[str] = set()
    for section in models.STEP_SECTIONS:
        steps = document.get(section)
        for step in steps if isinstance(steps, list) else []:
            if not isinstance(step, Mapping) or "use" in step:
                return None
            for key in ("fault", "probe", "action"):
                if isinstance(step.get(key), str):
                    names.add(str(step[key]).split(".", 1)[0])
    return names
