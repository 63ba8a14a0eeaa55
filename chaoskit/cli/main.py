"""The ``chaoskit`` command: a thin group whose subcommands load only when used.

Each subcommand lives in its own module ``chaoskit/cli/<name>.py`` exposing a click command named
``command``; register it with one line in ``COMMANDS``. Nothing heavy is imported for ``--help``.
"""

from __future__ import annotations

import importlib

import click

COMMANDS: dict[str, str] = {
    # name: "module:attribute", kept sorted
    "gate": "chaoskit.cli.gate:command",
    "history": "chaoskit.cli.history:command",
    "proxy": "chaoskit.cli.proxy:command",
    "report": "chaoskit.cli.report:command",
}


class LazyGroup(click.Group):
    """Loads a subcommand's module only when that subcommand is invoked or its help is shown."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attribute = COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chaoskit")
def cli() -> None:
    """chaoskit: chaos experiments in YAML whose faults always revert, with measured recovery."""


def main() -> None:
    cli()
