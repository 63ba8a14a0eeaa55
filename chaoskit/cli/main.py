"""The ``chaoskit`` command: a thin group whose subcommands load only when used.

Each subcommand lives in its own module ``chaoskit/cli/<name>.py`` exposing a click command named
``command``; register it with one line in ``COMMANDS``. Nothing heavy is imported for ``--help``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import traceback
from pathlib import Path

import click

from chaoskit import errors

COMMANDS: dict[str, str] = {
    # name: "module:attribute", kept sorted
    "convert": "chaoskit.cli.convert:command",
    "demo": "chaoskit.cli.demo:command",
    "drivers": "chaoskit.cli.drivers:command",
    "init": "chaoskit.cli.init:command",
    "gameday": "chaoskit.cli.gameday:command",
    "gate": "chaoskit.cli.gate:command",
    "halt": "chaoskit.cli.halt:command",
    "history": "chaoskit.cli.history:command",
    "operator": "chaoskit.cli.operator:command",
    "probes": "chaoskit.cli.probes:command",
    "proxy": "chaoskit.cli.proxy:command",
    "recover": "chaoskit.cli.recover:command",
    "report": "chaoskit.cli.report:command",
    "resume": "chaoskit.cli.resume:command",
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
            return _plain_help(command)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, from the commands' docstrings read without importing
        their modules (click would import every one, and with them their heavy libraries)."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows: list[tuple[str, str]] = []
        for name in names:
            if name in COMMANDS:
                rows.append((name, _short(plain(_docstring(COMMANDS[name])), limit)))
            elif (command := super().get_command(ctx, name)) is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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


def _short(doc: str, limit: int) -> str:
    """The first sentence of a docstring's first paragraph, cut to ``limit`` (as click does)."""
    words = doc.split("\n\n", 1)[0].split()
    text = " ".join(words)
    end = text.find(". ")
    if end != -1:
        text = text[: end + 1]
    return text if len(text) <= limit else text[: max(0, limit - 3)].rsplit(" ", 1)[0] + "..."


def _docstring(target: str) -> str:
    """The docstring of the function ``module:attribute`` names (or of its module), from source."""
    module_name, attribute = target.split(":")
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None:
        return ""
    try:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return ""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == attribute:
            return ast.get_docstring(node) or ""
    return ast.get_docstring(tree) or ""


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chaoskit")
def cli() -> None:
    """chaoskit: chaos experiments in YAML whose faults always revert, with measured recovery."""


def main() -> None:
    cli()
