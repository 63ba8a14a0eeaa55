"""Paths into JSON-like data as users write them (``json.items[-1].name``), and as messages show them.

Shared by ``expect: {path: ...}``, ``${steps.<id>.output.<path>}`` templates and the YAML paths
in validation messages, so that all three spell a path the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pydantic import JsonValue

Segment = str | int
Location = tuple[Segment, ...]
"""A place in a document, as segments (``("method", 0, "with")``)."""
_TOKEN = re.compile(r"""\.?([^.\[\]]+)|\[(-?\d+)\]|\[["']([^"']*)["']\]""")
_PLAIN_KEY = re.compile(r"[A-Za-z_][\w-]*")


class PathError(ValueError):
    """A path could not be followed; the message says which part is missing and what is there."""


def parse(path: str) -> list[Segment]:
    """``a.b[0]["c.d"]`` → ``["a", "b", 0, "c.d"]``; raises ``ValueError`` on a malformed path."""
    segments: list[Segment] = []
    pos = 0
    text = path.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or (pos == 0 and text.startswith(".")):
            raise ValueError(f"not a valid path: {path!r} (write it like a.b[0].c)")
        key, index, quoted = match.groups()
        if index is not None:
            segments.append(int(index))
        else:
            segments.append(quoted if quoted is not None else key)
        pos = match.end()
    return segments


def render(segments: Sequence[Segment]) -> str:
    """The inverse of ``parse``: ``["method", 0, "with"]`` → ``method[0].with``."""
    out = ""
    for segment in segments:
        if isinstance(segment, int):
            out += f"[{segment}]"
        elif _PLAIN_KEY.fullmatch(segment):
            out += f".{segment}" if out else segment
        else:
            out += f"[{segment!r}]"
    return out


def _describe_keys(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:12])
    return shown + (", ..." if len(keys) > 12 else "") if keys else "nothing"


def lookup(value: JsonValue, segments: Sequence[Segment], *, root: str = "output") -> JsonValue:
    """The value at ``segments``; raises ``PathError`` naming the missing part and what exists.

    ``root`` is what messages call the top of ``value``: "no 'x' in output (has: a, b)".
    """
    current = value
    for done, given in enumerate(segments):
        segment = given
        where = f" in {render(segments[:done])}" if done else f" in {root}"
        if isinstance(current, Mapping):
            key = str(segment)
            if key not in current:
                raise PathError(f"no {key!r}{where} (has: {_describe_keys(list(current))})")
            current = current[key]
        elif isinstance(current, list):
            if not isinstance(segment, int):
                if segment.lstrip("-").isdigit():
                    segment = int(segment)
                else:
                    raise PathError(f"{segment!r}{where}: expected an index, the value is a list")
            if not -len(current) <= segment < len(current):
                raise PathError(f"no item [{segment}]{where} (the list has {len(current)} items)")
            current = current[segment]
        else:
            kind = "text" if isinstance(current, str) else type(current).__name__
            kind = "null" if current is None else kind
            raise PathError(f"no {segment!r}{where}: the value there is {kind}, not a mapping or list")
    return current


# --- JSONPath (the subset Chaos Toolkit experiments use) ------------------------------------

_JSONPATH_TOKEN = re.compile(
    r"""\.\.(?P<deep>[A-Za-z_][\w-]*|\*)"""
    r"""|\.(?P<key>[A-Za-z_][\w-]*|\*)"""
    r"""|\[(?P<index>-?\d+)\]"""
    r"""|\[\*\]"""
    r"""|\[["'](?P<quoted>[^"']*)["']\]"""
)

JsonPathStep = tuple[str, str | int]
"""("key", name) | ("index", n) | ("all", "*") | ("deep", name or "*")."""


def jsonpath_parse(text: str) -> list[JsonPathStep]:
    """``$.items[*].status`` → steps; supports ``$``, ``.key``, ``['key']``, ``[n]``, ``[*]``, ``.*``,
    ``..key``. Raises ``ValueError`` naming what is not supported (filters, slices, unions)."""
    source = text.strip()
    if not source.startswith("$"):
        raise ValueError(f"a JSONPath starts with '$', got {text!r}")
    steps: list[JsonPathStep] = []
    pos = 1
    while pos < len(source):
        match = _JSONPATH_TOKEN.match(source, pos)
        if not match:
            raise ValueError(
                f"unsupported JSONPath {text!r} at {source[pos:]!r}: chaoskit supports $, .key, ['key'], "
                "[n], [*], .* and ..key (no filters, slices or unions)"
            )
        if match.group("deep") is not None:
            steps.append(("deep", match.group("deep")))
        elif match.group("key") is not None:
            key = match.group("key")
            steps.append(("all", "*") if key == "*" else ("key", key))
        elif match.group("index") is not None:
            steps.append(("index", int(match.group("index"))))
        elif match.group("quoted") is not None:
            steps.append(("key", match.group("quoted")))
        else:
            steps.append(("all", "*"))
        pos = match.end()
    return steps


def _children(value: JsonValue) -> list[JsonValue]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    return []


def _descendants(value: JsonValue) -> list[JsonValue]:
    found = [value]
    for child in _children(value):
        found.extend(_descendants(child))
    return found


def jsonpath_find(value: JsonValue, text: str) -> list[JsonValue]:
    """Every value ``text`` selects in ``value``, in document order."""
    current: list[JsonValue] = [value]
    for kind, arg in jsonpath_parse(text):
        found: list[JsonValue] = []
        for node in current:
            if kind == "key" and isinstance(node, dict) and arg in node:
                found.append(node[str(arg)])
            elif kind == "index" and isinstance(node, list) and isinstance(arg, int):
                if -len(node) <= arg < len(node):
                    found.append(node[arg])
            elif kind == "all":
                found.extend(_children(node))
            elif kind == "deep":
                for inner in _descendants(node):
                    if arg == "*":
                        found.extend(_children(inner))
                    elif isinstance(inner, dict) and arg in inner:
                        found.append(inner[str(arg)])
        current = found
    return current
