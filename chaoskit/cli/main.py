"""The ``chaoskit`` command: a thin group whose subcommands load only when used.

Each subcommand lives in its own module ``chaoskit/cli/<name>.py`` exposing a click command named
``command``; register it with one line in ``COMMANDS``. Nothing heavy is imported for ``--help``.
"""

from __future__ import annotations

import importlib
import traceback

import click

from chaoskit import errors

COMMANDS: dict[str, str] = {
    # name: "module:attribute", kept sorted
    "convert": "chaoskit.cli.convert:command",
    "demo": "chaoskit.cli.demo:command",
    "drivers": "chaoskit.cli.drivers:command",
    "gameday": "chaoskit.cli.gameday:command",
    "gate": "chaoskit.cli.gate:command",
    "history": "chaoskit.cli.history:command",
    "proxy": "chaoskit.cli.proxy:command",
    "recover": "chaoskit.cli.recover:command",
    "report": "chaoskit.cli.report:command",
    "run": "chaoskit.cli.run:command",
    "schema": "chaoskit.cli.schema:command",
    "status": "chaoskit.cli.status:command",
    "validate": "chaoskit.cli.validate:command",
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

    def invoke(self, ctx: click.Context) -> object:
        """The one place errors become exit codes: a ``ChaoskitError`` is one message and a hint,
        no traceback, with its exit code; anything else is a bug (traceback, exit 4)."""
        try:
            return super().invoke(ctx)
        except errors.ChaoskitError as e:
            click.echo(f"error: {e.render()}", err=True)
            ctx.exit(int(e.exit_code))
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception:
            click.echo(traceback.format_exc(), err=True, nl=False)
            click.echo("chaoskit: this is a bug; please report it with the traceback above.", err=True)
            ctx.exit(int(errors.ExitCode.ERROR))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chaoskit")
def cli() -> None:
    """chaoskit: chaos experiments in YAML whose faults always revert, with measured recovery."""


def main() -> None:
    cli()
