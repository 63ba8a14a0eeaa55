"""Loading and planning an experiment for the commands that need it (run, validate)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import JsonValue

from chaoskit.drivers import contract, registry
from chaoskit.engine import planning
from chaoskit.spec import loading, templates


def load_and_plan(
    path: Path,
    variables: Sequence[str],
    var_files: Sequence[Path],
    probes_path: Sequence[Path],
) -> tuple[loading.Loaded, registry.Registry, planning.Plan]:
    """The experiment, the installed drivers and the plan; raises ``SpecError``/``UsageError``."""
    values: dict[str, JsonValue] = dict(templates.parse_var(v) for v in variables)
    loaded = loading.load(path, variables=values, var_files=var_files)
    drivers = registry.load()
    ctx = contract.RunContext(run_id="validate", dry_run=True)
    try:
        return loaded, drivers, planning.plan(loaded, drivers, probes_path=probes_path, live=ctx)
    finally:
        ctx.close()
