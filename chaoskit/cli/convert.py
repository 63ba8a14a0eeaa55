"""``chaoskit convert FILE``: a Chaos Toolkit experiment as chaoskit YAML, on stdout."""

from __future__ import annotations

from pathlib import Path

import click

from chaoskit.spec import chaostoolkit, reading


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def command(file: Path) -> None:
    """Print the chaoskit YAML for the Chaos Toolkit experiment FILE (JSON or YAML)."""
    # The loader's reader gives problems with FILE:LINE:COL in the original file, like `run` does.
    click.echo(chaostoolkit.to_yaml(reading.read_chaostoolkit(file)), nl=False)
