"""``chaoskit convert FILE``: a Chaos Toolkit experiment as chaoskit YAML, on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from chaoskit import errors
from chaoskit.spec import chaostoolkit


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def command(file: Path) -> None:
    """Print the chaoskit YAML for the Chaos Toolkit experiment FILE (JSON or YAML)."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        raise errors.UsageError(f"{file}: can't read: {e.strerror}", hint="check the path") from e
    try:
        doc = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise errors.SpecError([errors.Problem(str(file), 0, 0, "", f"not JSON/YAML: {e}")]) from e
    if not chaostoolkit.is_chaostoolkit(doc):
        raise errors.UsageError(
            f"{file} is not a Chaos Toolkit experiment",
            hint="it needs steady-state-hypothesis or method entries with type: action|probe",
        )
    click.echo(chaostoolkit.to_yaml(chaostoolkit.convert(doc, name=str(file))), nl=False)
