"""``chaoskit validate FILE``: every problem, each as FILE:LINE:COL: path: message; exit 0 or 2."""

from __future__ import annotations

import os
from pathlib import Path

import click

from chaoskit import errors, wording
from chaoskit.cli import loading, options
from chaoskit.spec import reading


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@options.variables
@options.probes_path
def command(
    file: Path, variables: tuple[str, ...], var_files: tuple[Path, ...], probes_path: tuple[Path, ...]
) -> None:
    """Check FILE without running it: format, variables, and every fault/probe against the
    installed drivers. Exit 0 when valid, 2 with every problem listed."""
    loaded, _, plan = loading.load_and_plan(file, variables, var_files, probes_path)
    missing = reading.missing_secrets(loaded, {**os.environ, **options.dotenv(var_files)})
    if missing:
        raise errors.SpecError(missing)
    options.print_warnings(loaded.warnings)
    count = sum(len(steps) for _, steps in plan.sections())
    faults = wording.counted(len(plan.faults()), "fault")
    click.echo(f"{file}: valid ({loaded.kind}, {wording.counted(count, 'step')}, {faults})")
