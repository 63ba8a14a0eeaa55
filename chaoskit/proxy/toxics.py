"""The toxics the proxy knows: their attributes, how they are validated, and their JSON form.

The data-plane behaviour of each type lives in ``links.py``; this module is the data.
"""

from __future__ import annotations

import dataclasses
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
        raise RequestError(f"bad request body: toxicity must be a number, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise RequestError(f"toxicity must be between 0 and 1 (a probability), got {value}")
    return float(value)


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
                f"bad request body: attribute {name!r} of a {kind} toxic must be an integer, got {value!r}"
            )
        result[name] = value
    for name, value in result.items():
        if value < 0:
            raise RequestError(f"attribute {name!r} of a {kind} toxic can't be negative, got {value}")
        if (kind, name) in _POSITIVE and value == 0:
            raise RequestError(f"attribute {name!r} of a {kind} toxic must be greater than 0, got {value}")
    return result


def build(body: object, taken: set[str]) -> Toxic:
    """A new toxic from a ``POST /proxies/{p}/toxics`` body, checked in the real server's order."""
    if not isinstance(body, Mapping):
        raise RequestError("bad request body: expected a JSON object")
    stream = check_stream(body.get("stream") or "downstream")
    kind = check_type(body.get("type"))
    name = body.get("name") or f"{kind}_{stream}"
    if not isinstance(name, str):
        raise RequestError(f"bad request body: name must be a string, got {name!r}")
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
