"""``chaoskit --help`` lists every command from ``main.COMMANDS``, whole, without importing them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import click
from click.testing import CliRunner

from chaoskit.cli import main


def test_the_listing_shows_each_declared_short_help_whole() -> None:
    # What an 80-column terminal shows: click keeps two columns free of the terminal's width.
    shown = CliRunner().invoke(main.cli, ["--help"], terminal_width=78)
    assert shown.exit_code == 0, shown.output
    listed = shown.output.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed] == sorted(main.COMMANDS)
    for line, (name, lazy) in zip(listed, sorted(main.COMMANDS.items()), strict=True):
        # One line each: click wraps a short help that is too long.
        assert line.split(None, 1)[1] == lazy.short_help, (name, line)


def test_every_declared_command_loads_and_says_more_in_its_own_help() -> None:
    ctx = click.Context(main.cli)
    for name, lazy in main.COMMANDS.items():
        command = main.cli.get_command(ctx, name)
        assert isinstance(command, click.Command), lazy.target
        assert command.help and len(command.help) >= len(lazy.short_help), name


def test_the_listing_imports_no_command_module() -> None:
    code = textwrap.dedent(
        """
        import sys
        from chaoskit.cli import main
        try:
            main.cli(["--help"])
        except SystemExit:
            pass
        print(sorted(m for m in sys.modules if m.startswith("chaoskit.cli.") and m != "chaoskit.cli.main"))
        """
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "Commands:" in ran.stdout
    assert ran.stdout.strip().splitlines()[-1] == "[]"
