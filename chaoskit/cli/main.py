"""The ``chaoskit`` command (being written)."""

import click


@click.group()
@click.version_option(package_name="chaoskit")
def cli() -> None:
    """chaoskit: chaos experiments whose faults always revert."""


def main() -> None:
    cli()
