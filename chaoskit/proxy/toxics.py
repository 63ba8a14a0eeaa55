"""The toxics the proxy knows: their attributes, how they are validated, and their JSON form.

The data-plane behaviour of each type lives in ``links.py``; this module is the data.
"""

from __future__ import annotations

import dataclasses
import math
import unicodedata
from collections.abc import Mapping
from typing import Any

STREAMS = ("upstream", "downstream")

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "slow_close": ("delay",),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "slicer": ("average_size", "size_variation", "delay"),
    "limit_data": ("bytes",),
    "noop": (),
}
"""Toxic type → its integer attributes, in the order the real server echoes them."""

# Attributes that must be strictly positive: zero makes the real server stall or crash.
_POSITIVE = {("bandwidth", "rate"), ("slicer", "average_size")}

DAY_MS = 24 * 60 * 60 * 1000
MAX_INT64 = 2**63 - 1
MAXIMUM: dict[tuple[str, str], int] = {
    ("latency", "latency"): DAY_MS,
    ("latency", "jitter"): DAY_MS,
    ("slow_close", "delay"): DAY_MS,
    ("timeout", "timeout"): DAY_MS,
    ("reset_peer", "timeout"): DAY_MS,
    ("slicer", "delay"): DAY_MS * 1000,  # microseconds
}
"""The largest value of each attribute. Times stop at a day: a longer wait is a toxic that never
ends (and overflows the event loop's timers). Sizes and rates stop at Go's int64, as Toxiproxy's."""

MAX_NAME = 1024
"""Characters in a proxy or toxic name: every allowed name fits in a request line, percent-encoded."""

NAME_RULE = (
    f"a name is 1 to {MAX_NAME} characters, not '.' or '..', without control characters "
    "(U+0000-U+001F, U+007F-U+009F); any other character, '/' included, works when the name is "
    "percent-encoded as one path segment, e.g. urllib.parse.quote(name, safe='')"
)


class RequestError(ValueError):
    """An API request is refused; ``status`` is the HTTP status the API answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclasses.dataclass
class Toxic:
    """One toxic on one proxy. Mutable: PATCH merges attributes and toxicity in place."""

    name: str
    type: str
    stream: str
    """As the client spelled it (matched case-insensitively), like the real server."""
    toxicity: float
    attributes: dict[str, int]

    @property
    def direction(self) -> str:
        """``upstream`` (client → server) or ``downstream`` (server → client)."""
        return self.stream.lower()

    def to_json(self) -> dict[str, Any]:
        toxicity: float | int = int(self.toxicity) if self.toxicity == int(self.toxicity) else self.toxicity
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": toxicity,
        }


def check_name(name: str, what: str) -> str:
    """``name`` if every API path can address it, else a 400 that says what a name may be.

    '.' and '..' are resolved away by URL libraries before the request is sent; control
    characters can't be shown in logs or typed; a longer name would not fit in a request line.
    """
    if name in (".", "..") or len(name) > MAX_NAME or any(unicodedata.category(c) == "Cc" for c in name):
        raise RequestError(f"{what} {name[:80]!r} can't be used: {NAME_RULE}")
    return name


def check_stream(stream: object) -> str:
    if not isinstance(stream, str) or stream.lower() not in STREAMS:
        raise RequestError("stream was invalid, can be either upstream or downstream")
    return stream


def check_type(kind: object) -> str:
    if not isinstance(kind, str) or kind not in ATTRIBUTES:
        raise RequestError("invalid toxic type")
    return kind


def check_toxicity(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"bad request body: toxicity must be a number, got {shown(value)}")
    # Compared before any float(): a 400-digit integer doesn't fit a float, and NaN fails both.
    if not 0 <= value <= 1:
        raise RequestError(f"toxicity must be between 0 and 1 (a probability), got {shown(value)}")
    return float(value)


def shown(value: object) -> str:
    """``value`` for an error message: huge integers shortened, inf and NaN spelled as in JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT64:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_attributes(kind: str, given: object, current: Mapping[str, int] | None = None) -> dict[str, int]:
    """The full attribute set of a ``kind`` toxic: ``given`` merged over ``current`` (or zeros).

    Unknown attributes are dropped, like the real server; wrong types and the values that crash
    or stall the real server are refused with a message that names the attribute.
    """
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise RequestError(f"bad request body: attributes must be an object, got {given!r}")
    result = dict.fromkeys(ATTRIBUTES[kind], 0)
    if current:
        result.update({k: v for k, v in current.items() if k in result})
    for name in ATTRIBUTES[kind]:
        if name not in given:
            continue
        value = given[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise RequestError(
                f"bad request body: attribute {name!r} of a {kind} toxic must be an integer, "
                f"got {shown(value)}"
            )
        result[name] = value
    for name, value in result.items():
        if value < 0:
            raise RequestError(f"attribute {name!r} of a {kind} toxic can't be negative, got {shown(value)}")
        if (kind, name) in _POSITIVE and value == 0:
            raise RequestError(f"attribute {name!r} of a {kind} toxic must be greater than 0, got {value}")
        if value > (most := MAXIMUM.get((kind, name), MAX_INT64)):
            raise RequestError(
                f"attribute {name!r} of a {kind} toxic can be at most {most}, got {shown(value)}"
            )
    return result


def build(body: object, taken: set[str]) -> Toxic:
    """A new toxic from a ``POST /proxies/{p}/toxics`` body, checked in the real server's order."""
    if not isinstance(body, Mapping):
        raise RequestError("bad request body: expected a JSON object")
    stream = check_stream(body.get("stream") or "downstream")
    kind = check_type(body.get("type"))
    name = body.get("name") or f"{kind}_{stream}"
    if not isinstance(name, str):
        raise RequestError(f"bad request body: name must be a string, got {shown(name)}")
    check_name(name, "toxic name")
    if name in taken:
        raise RequestError("toxic already exists", status=409)
    toxicity = check_toxicity(body["toxicity"]) if body.get("toxicity") is not None else 1.0
    attributes = check_attributes(kind, body.get("attributes"))
    return Toxic(name=name, type=kind, stream=stream, toxicity=toxicity, attributes=attributes)


def update(toxic: Toxic, body: object) -> tuple[float, dict[str, int]]:
    """The new (toxicity, attributes) for a PATCH body; only those two fields are read."""
    if not isinstance(body, Mapping):
        raise RequestError("bad request body: expected a JSON object")
    toxicity = check_toxicity(body["toxicity"]) if body.get("toxicity") is not None else toxic.toxicity
    attributes = check_attributes(toxic.type, body.get("attributes"), toxic.attributes)
    return toxicity, attributes
