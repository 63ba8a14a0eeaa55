"""The ``chaoskit`` command: a thin group whose subcommands load only when used.

Each subcommand lives in its own module ``chaoskit/cli/<name>.py`` exposing a click command named
``command``; register it with one line in ``COMMANDS``, its module path and its short help (click's
lazy-group pattern). Nothing heavy is imported for ``--help``.
"""

from __future__ import annotations

import importlib
import re
import traceback
from typing import NamedTuple

import click

from chaoskit import errors


class Lazy(NamedTuple):
    """A subcommand the group imports only when it is invoked or its own help is shown."""

    target: str
    """``module:attribute`` of the click command."""
    short_help: str
    """What ``chaoskit --help`` lists for it, declared here so that listing imports nothing."""


COMMANDS: dict[str, Lazy] = {
    # name: where it lives and its line in `chaoskit --help`, kept sorted
    "agent": Lazy(
        "chaoskit.cli.agent:command", "The node agent: faults inside this node's containers and pods."
    ),
    "convert": Lazy("chaoskit.cli.convert:command", "Print a Chaos Toolkit experiment as chaoskit YAML."),
    "demo": Lazy(
        "chaoskit.cli.demo:command", "Run the demo: a frontend calling a backend through the proxy."
    ),
    "drivers": Lazy(
        "chaoskit.cli.drivers:command", "The installed drivers, their faults, probes and actions."
    ),
    "gameday": Lazy(
        "chaoskit.cli.gameday:command", "Several experiments as one event, now or on a schedule."
    ),
    "gate": Lazy("chaoskit.cli.gate:command", "Decide from journals whether CI passes."),
    "halt": Lazy("chaoskit.cli.halt:command", "Halt every experiment and refuse new runs until resumed."),
    "history": Lazy(
        "chaoskit.cli.history:command", "Runs recorded so far: verdict, recovery time and score."
    ),
    "init": Lazy("chaoskit.cli.init:command", "Scaffold a commented, validated experiment for one target."),
    "operator": Lazy(
        "chaoskit.cli.operator:command", "Run ChaosExperiment and ChaosSchedule resources as Jobs."
    ),
    "probes": Lazy(
        "chaoskit.cli.probes:command", "List the probe catalog, or show one entry with an example."
    ),
    "proxy": Lazy("chaoskit.cli.proxy:command", "The embedded fault proxy, and the toxiproxy-cli verbs."),
    "recover": Lazy("chaoskit.cli.recover:command", "Revert every fault that dead runs left applied."),
    "report": Lazy("chaoskit.cli.report:command", "Render journals as HTML, Markdown or JUnit XML."),
    "resume": Lazy("chaoskit.cli.resume:command", "Lift a halt, so runs may start again."),
    "run": Lazy("chaoskit.cli.run:command", "Run the experiment in FILE (chaoskit or Chaos Toolkit format)."),
    "schema": Lazy("chaoskit.cli.schema:command", "Print the JSON Schema of experiment files."),
    "status": Lazy(
        "chaoskit.cli.status:command", "List outstanding faults of every run, and which runs are live."
    ),
    "validate": Lazy(
        "chaoskit.cli.validate:command", "Check FILE without running it: format, variables and activities."
    ),
}


class LazyGroup(click.Group):
    """Click's lazy-loading group: a subcommand's module is imported only when that subcommand is
    invoked or its own help is shown; the group's help lists the short help declared in ``COMMANDS``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attribute = COMMANDS[cmd_name].target.split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            assert isinstance(command, click.Command)
            return _plain_help(command)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own would import every command module (and their libraries) for its short help.
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            if name in COMMANDS:
                rows.append((name, COMMANDS[name].short_help))
            elif (command := super().get_command(ctx, name)) is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        """The one place errors become exit codes: a ``ChaoskitError`` is one message and a hint,
        no traceback, with its exit code; anything else is a bug (traceback, exit 4)."""
        try:
            return super().invoke(ctx)
        except errors.ChaoskitError as e:
            from chaoskit import installing  # only on the way out: --help stays light

            click.echo(f"error: {installing.install_hints(e.render())}", err=True)
            ctx.exit(int(e.exit_code))
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            # Ctrl-C before a run started (while loading or planning): nothing was injected.
            click.echo("interrupted", err=True)
            ctx.exit(int(errors.ExitCode.INTERRUPTED))
        except Exception:
            click.echo(traceback.format_exc(), err=True, nl=False)
            click.echo("chaoskit: this is a bug; please report it with the traceback above.", err=True)
            ctx.exit(int(errors.ExitCode.ERROR))


_ROLE = re.compile(r":[\w:]+:`([^`]*?)(?:\s*<[^`>]*>)?`")
"""A Sphinx role, ``:ref:`the text <target>``` or ``:func:`name```: its text is what a terminal shows."""


def plain(text: str) -> str:
    """Help text without the reStructuredText markup that docstrings use for Sphinx: a role becomes
    its text and a ``literal`` the single-backquoted `literal` the rest of the help uses."""
    return _ROLE.sub(lambda m: m.group(1), text).replace("``", "`")


def _plain_help(command: click.Command) -> click.Command:
    """``command`` (and its subcommands) with plain help texts; idempotent."""
    for attribute in ("help", "short_help", "epilog"):
        text = getattr(command, attribute)
        if text:
            setattr(command, attribute, plain(text))
    for param in command.params:
        if isinstance(param, click.Option) and param.help:
            param.help = plain(param.help)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _plain_help(sub)
    return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chaoskit")
def cli() -> None:
    """chaoskit: chaos experiments in YAML whose faults always revert, with measured recovery."""


def main() -> None:
    cli()
