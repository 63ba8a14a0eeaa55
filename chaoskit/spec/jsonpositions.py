"""Where each node of a JSON document is, read from the JSON itself.

YAML 1.1 reads nearly all JSON but not all of it (a key over 1024 characters, some escapes, raw
tabs): positions taken through a YAML parser were lost for such files, and with them the
``FILE:LINE:COL`` of every problem. This walks text that ``json.loads`` already accepted.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable

from chaoskit.spec import paths

_SPACE = re.compile(r"[ \t\n\r]*")
_SCALAR = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null")

Duplicate = Callable[[paths.Location, tuple[int, int], str, tuple[int, int]], None]
"""Called with (mapping's place, the repeated key's position, the key, its first position)."""


def index(text: str, positions: dict[paths.Location, tuple[int, int]], duplicate: Duplicate) -> None:
    """Record the 1-based (line, col) of every node of the valid JSON ``text`` in ``positions`` (a
    mapping entry at its key, as for YAML), and report each key given twice in one object."""
    starts = [0, *(i + 1 for i, c in enumerate(text) if c == "\n")]

    def mark(pos: int) -> tuple[int, int]:
        line = bisect.bisect_right(starts, pos)
        return line, pos - starts[line - 1] + 1

    def skip(pos: int) -> int:
        end = _SPACE.match(text, pos)
        return end.end() if end else pos

    def value(pos: int, at: paths.Location | None) -> int:
        """Walk the value starting at ``pos``; ``at`` None: a duplicate's value, not recorded."""
        if at is not None:
            positions.setdefault(at, mark(pos))
        char = text[pos]
        if char == "{":
            return _object(pos, at)
        if char == "[":
            return _array(pos, at)
        if char == '"':
            return json.decoder.scanstring(text, pos + 1)[1]  # type: ignore[attr-defined,no-any-return]
        scalar = _SCALAR.match(text, pos)
        if scalar is None:  # json.loads accepted it: NaN, Infinity
            scalar = re.compile(r"-?Infinity|NaN").match(text, pos)
        assert scalar is not None, f"not JSON at {mark(pos)}"
        return scalar.end()

    def _object(pos: int, at: paths.Location | None) -> int:
        pos = skip(pos + 1)
        first: dict[str, tuple[int, int]] = {}
        while text[pos] != "}":
            key_at = mark(pos)
            key, pos = json.decoder.scanstring(text, pos + 1)  # type: ignore[attr-defined]
            pos = skip(skip(pos) + 1)  # past the colon
            child: paths.Location | None = None
            if at is not None and key in first:
                duplicate(at, key_at, key, first[key])
            elif at is not None:
                first[key] = key_at
                positions[(*at, key)] = key_at
                child = (*at, key)
            pos = skip(value(pos, child))
            if text[pos] == ",":
                pos = skip(pos + 1)
        return pos + 1

    def _array(pos: int, at: paths.Location | None) -> int:
        pos = skip(pos + 1)
        i = 0
        while text[pos] != "]":
            pos = skip(value(pos, None if at is None else (*at, i)))
            i += 1
            if text[pos] == ",":
                pos = skip(pos + 1)
        return pos + 1

    start = skip(0)
    if start < len(text):
        value(start, ())
