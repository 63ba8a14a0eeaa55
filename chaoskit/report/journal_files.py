"""Reading journal files given on the command line, with errors that name the file and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pydantic

from chaoskit import errors, wording
from chaoskit.engine import journals


class BadJournal(errors.UsageError):
    """A file given as a journal is missing, not JSON, or not a chaoskit journal (exit 2)."""


def read(path: Path) -> journals.Journal:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise BadJournal(
            f"{path}: can't read the journal: {e.strerror or e}",
            hint="pass the file `chaoskit run --journal PATH` wrote (default ./chaoskit-journal.json)",
        ) from e
    except UnicodeDecodeError as e:
        raise BadJournal(
            f"{path}: not a chaoskit journal: not UTF-8 text (byte 0x{e.object[e.start]:02x} at "
            f"offset {e.start})",
            hint="pass the file `chaoskit run --journal PATH` wrote (journals are UTF-8 JSON)",
        ) from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadJournal(f"{path}:{e.lineno}:{e.colno}: not JSON: {e.msg}") from e
    except (RecursionError, ValueError) as e:
        # Nesting deeper than the parser's stack, or an integer of thousands of digits: not a
        # journal either way (json.loads raises these for input no journal has).
        raise BadJournal(
            f"{path}: not a chaoskit journal ({'nested too deeply' if isinstance(e, RecursionError) else e})",
            hint="pass the file `chaoskit run --journal PATH` wrote",
        ) from None
    if not isinstance(data, dict) or "run_id" not in data or "verdict" not in data:
        raise BadJournal(
            f"{path}: not a chaoskit journal (no run_id/verdict)",
            hint="pass the file `chaoskit run --journal PATH` wrote",
        )
    try:
        return journals.Journal.model_validate(data)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadJournal(
            f"{path}: {where}: {first['msg']} ({wording.counted(e.error_count(), 'problem')}; "
            f"journal schema_version {data.get('schema_version')!r})",
            hint=f"this chaoskit reads journals of schema_version {journals.SCHEMA_VERSION}",
        ) from e
