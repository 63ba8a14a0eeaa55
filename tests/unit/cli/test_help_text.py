"""Every ``--help`` is plain text: the reStructuredText that docstrings carry for Sphinx (double
backquotes, ``:ref:`` roles) never reaches a terminal."""

from __future__ import annotations

import re

from click.testing import CliRunner

from chaoskit.cli import main, reference

RST = re.compile(r"``|:(ref|func|class|mod|meth|attr|doc):`")


def test_no_help_shows_rst_markup() -> None:
    commands = reference._walk(main.cli, ["chaoskit"], None)
    assert len(commands) > len(main.COMMANDS)  # the groups' subcommands too
    for path, _ in commands:
        shown = CliRunner().invoke(main.cli, [*path[1:], "--help"])
        assert shown.exit_code == 0, (path, shown.output)
        found = RST.search(shown.output)
        assert found is None, f"{' '.join(path)} --help shows {found.group(0)!r}:\n{shown.output}"


def test_plain_keeps_the_words_of_roles_and_literals() -> None:
    assert (
        main.plain("see :ref:`the guide <guide>` and :func:`chaoskit.run`")
        == "see the guide and chaoskit.run"
    )
    assert main.plain("``use:`` in an experiment") == "`use:` in an experiment"
