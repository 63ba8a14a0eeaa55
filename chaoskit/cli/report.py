"""``chaoskit report JOURNAL... [--format html|md|junit] [-o FILE]``: a report from finished runs.

Given neither ``--format`` nor ``-o``, the HTML page goes to a file beside the journal (a page of
markup is of no use in a terminal) and its path is printed; an explicit format goes to stdout."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chaoskit import errors
from chaoskit.cli import options
from chaoskit.report import html, journal_files, junit, markdown


@click.command()
@click.argument(
    "journal_paths", metavar="JOURNAL...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md", "junit"]),
    default=None,
    help=(
        "html: one self-contained page with a timeline; md: Markdown; junit: JUnit XML for CI. "
        "Given, the report goes to stdout (or -o). Without --format and -o: an HTML page written "
        "beside the (first) journal as JOURNAL.html (in the current directory if that one can't be "
        "written), and its path printed."
    ),
)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write here instead of to stdout.")
@click.option(
    "--title", default="chaoskit report", show_default=True, help="Heading when several journals are given."
)
def command(journal_paths: tuple[Path, ...], fmt: str | None, output: Path | None, title: str) -> None:
    """Render the journal(s) of finished runs as HTML, Markdown or JUnit XML."""
    try:
        options.check_writable("-o", output)
        runs = [journal_files.read(p) for p in journal_paths]
    except errors.ChaoskitError as e:
        click.echo(f"chaoskit report: {e.render()}", err=True)
        sys.exit(int(e.exit_code))
    if fmt is None and output is None:
        _write_beside(
            journal_paths[0], html.render(runs[0]) if len(runs) == 1 else html.render_gameday(title, runs)
        )
        return
    if fmt == "junit":
        text = junit.render(runs)
    elif fmt == "md":
        text = markdown.render(runs[0]) if len(runs) == 1 else markdown.render_gameday(title, runs)
    else:
        text = html.render(runs[0]) if len(runs) == 1 else html.render_gameday(title, runs)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        click.echo(f"chaoskit report: can't write {output}: {e.strerror or e}", err=True)
        sys.exit(int(errors.ExitCode.INVALID))
    click.echo(f"wrote {output}", err=True)


def _write_beside(journal: Path, text: str) -> None:
    """``JOURNAL.html`` beside the journal, else in the current directory; prints where."""
    target = journal.with_suffix(".html")
    if target == journal:  # never over the journal itself
        target = journal.with_name(journal.name + ".html")
    failure = ""
    for path in (target, Path.cwd() / target.name):
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as e:
            failure = f"can't write {path}: {e.strerror or e}"
            continue
        click.echo(f"wrote {path}")
        return
    click.echo(f"chaoskit report: {failure}; give -o FILE, or --format html to print it", err=True)
    sys.exit(int(errors.ExitCode.INVALID))
