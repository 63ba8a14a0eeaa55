"""``chaoskit schema``: the JSON Schema of the experiment format (or of the journal)."""

from __future__ import annotations

import click

from chaoskit.engine import journals
from chaoskit.spec import schemas


@click.command()
@click.option("--journal", is_flag=True, help="Print the journal's schema instead.")
def command(journal: bool) -> None:
    """Print the JSON Schema of experiment files (for editors and CI linting)."""
    click.echo(journals.schema_text() if journal else schemas.dumps(), nl=False)
