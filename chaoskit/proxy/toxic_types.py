"""What a toxic type is: its attributes (defaults, bounds, Toxiproxy's error answers), its JSON
form, and the hook through which it acts on a connection; and the registry of types by name.

A type is a ``Toxic`` subclass (the configuration a client sees: shared by every connection of
its proxy, changed in place by PATCH) with a ``Stage`` subclass (that toxic on one direction of
one connection, with its own state). ``links.Link`` runs the stages; the TCP types are in
``tcp_toxics.py``. A type that transforms the stream with per-connection state (a parser, a
byte count) keeps it in its stage: the link creates one per connection and direction when the
toxic first acts there, keeps it across updates of the toxic, and drops it when it is removed.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from chaoskit import units

STREAMS = ("upstream", "downstream")
MAX_INT64 = 2**63 - 1
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


# -- the data plane's vocabulary


class Closing(Exception):
    """A toxic decided the connection ends now (limit_data, timeout, reset_peer)."""

    def __init__(self, reset: bool = False) -> None:
        super().__init__("closing")
        self.reset = reset


@dataclasses.dataclass
class Chunk:
    """Bytes on their way through a link's toxics, with two clocks (``time.monotonic()``).

    A link runs its toxics one chunk at a time, where Toxiproxy runs each toxic in its own
    goroutine so that one holds a chunk while the next holds another. The two times let the
    serial chain keep the pipelined timing: every toxic works out when it would release a chunk
    from these times, and sleeps only until then (not at all if that time has passed).
    """

    data: bytes
    at: float
    """The chunk's timestamp: when the bytes were read, moved on by each latency toxic by the
    latency it applied (Toxiproxy's ``StreamChunk.Timestamp``). A latency toxic releases a chunk at
    ``at`` + its latency, so stacked latency toxics add up; bandwidth and slicer pieces keep it."""
    ready: float
    """When the previous toxic handed the chunk on, had each toxic run on its own: a toxic starts
    on a chunk at ``ready`` or when it is done with the previous one, whichever is later, so a
    bandwidth toxic keeps its pace while a latency toxic after it holds the slices."""


Forward = Callable[[Chunk], Awaitable[None]]
"""The rest of a link's chain: the next toxic's stage, or the write to the destination."""


S = TypeVar("S")


class Link(Protocol):
    """What a stage may ask of the link (one direction of one connection) it runs on."""

    direction: str
    """``upstream`` (the client's bytes) or ``downstream`` (the server's): a two-way toxic's
    stages tell which side they read by it."""

    @property
    def rng(self) -> random.Random:
        """The server's generator (seeded: ``ProxyServer(seed=...)`` replays jitter and slices)."""

    def is_active(self, toxic: Toxic) -> bool:
        """``toxic`` is still on this link and won its toxicity roll (not removed, not updated)."""

    async def hold(self, toxic: Toxic, until: float) -> bool:
        """Wait until ``until``; False if ``toxic`` was removed or updated first (it lets go)."""

    def started(self, toxic: Toxic) -> float:
        """When ``toxic`` started acting on this link (or was last updated, or ``restart``-ed)."""

    def restart(self, toxic: Toxic) -> None:
        """Start ``toxic``'s clock on this link again from now."""

    def close(self) -> None:
        """Close the connection now (both directions)."""

    def shared(self, toxic: Toxic, make: Callable[[], S]) -> S:
        """``toxic``'s state on this connection, one for both links: made by ``make`` on first use,
        kept when the toxic is updated, dropped when it is removed."""

    def send_back(self, data: bytes) -> bool:
        """Write ``data`` to the side this link reads from (an answer the toxic makes up); False
        if that side is closed."""


T = TypeVar("T", bound="Toxic")


class Stage(Generic[T]):
    """One toxic on one link: its per-connection state and what it does to the bytes.

    The defaults pass every chunk on untouched and do nothing at the end of the stream; a type
    overrides what it changes. ``toxic`` is the live configuration: read its attributes each time
    (a PATCH changes them in place).
    """

    def __init__(self, toxic: T, link: Link) -> None:
        self.toxic = toxic
        self.link = link

    async def pipe(self, chunk: Chunk, forward: Forward) -> None:
        """Act on one chunk: call ``forward`` with what goes on (any number of times), or raise
        ``Closing``. A stage that leaves this as it is is left out of the chain (no cost)."""
        await forward(chunk)

    async def end(self) -> None:
        """The source closed its side: runs before the EOF is passed on (or ``Closing``)."""

    def deadline(self) -> float | None:
        """When the link closes if no chunk has come by then (``time.monotonic()``), or None."""
        return None

    def removed(self) -> None:
        """The toxic was removed while it was acting on this link."""

    @property
    def touches_data(self) -> bool:
        return type(self).pipe is not Stage.pipe


# -- attributes


@dataclasses.dataclass(frozen=True)
class Attribute:
    """One integer attribute of a toxic type, in the order the real server echoes them."""

    name: str
    unit: units.Unit
    positive: bool = False
    """Zero is refused: it makes the real server stall or crash."""

    @property
    def maximum(self) -> int:
        return units.most(self.unit, MAX_INT64)


@dataclasses.dataclass
class Toxic:
    """One toxic on one proxy: a type's configuration. Mutable: PATCH merges attributes and
    toxicity in place. Subclasses name their ``type``, ``schema`` and ``stage``."""

    kind: ClassVar[str]
    """The type's name, as clients give it in ``type``, e.g. ``latency``."""
    schema: ClassVar[tuple[Attribute, ...]] = ()
    stage: ClassVar[type[Stage[Any]]] = Stage
    """The per-connection behaviour: instantiated as ``stage(toxic, link)``."""
    both_ways: ClassVar[bool] = False
    """It acts on both directions of its connections (its ``stream`` is where it is listed and
    rolled): each direction gets a stage, and the two can share state through ``Link.shared``.
    For a toxic that follows a protocol, e.g. answers a request itself with ``Link.send_back``."""
    resets: ClassVar[bool] = False
    """Its close is a TCP RST (the proxy sets SO_LINGER 0 on connections accepted while it exists)."""

    name: str
    stream: str
    """As the client spelled it (matched case-insensitively), like the real server."""
    toxicity: float
    attributes: dict[str, Any]
    """As the API echoes them: JSON values from ``check_attributes`` (integers for the TCP types)."""

    @property
    def direction(self) -> str:
        """``upstream`` (client → server) or ``downstream`` (server → client)."""
        return self.stream.lower()

    def seconds(self, attribute: str) -> float:
        """A time attribute in seconds, whatever its unit."""
        unit = next(a.unit for a in self.schema if a.name == attribute)
        return units.seconds(self.attributes[attribute], unit)

    def to_json(self) -> dict[str, Any]:
        toxicity: float | int = int(self.toxicity) if self.toxicity == int(self.toxicity) else self.toxicity
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.kind,
            "stream": self.stream,
            "toxicity": toxicity,
        }

    @classmethod
    def check_attributes(cls, given: object, current: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The full attribute set: ``given`` merged over ``current`` (or zeros). This checks the
        integer attributes of ``schema``; a type with other attributes overrides it.

        Unknown attributes are dropped, like the real server; wrong types and the values that crash
        or stall the real server are refused with a message that names the attribute.
        """
        if given is None:
            given = {}
        if not isinstance(given, Mapping):
            raise RequestError(f"bad request body: attributes must be an object, got {given!r}")
        kind = cls.kind
        result = {a.name: 0 for a in cls.schema}
        if current:
            result.update({k: v for k, v in current.items() if k in result})
        for name in result:
            if name not in given:
                continue
            value = given[name]
            if isinstance(value, bool) or not isinstance(value, int):
                raise RequestError(
                    f"bad request body: attribute {name!r} of a {kind} toxic must be an integer, "
                    f"got {shown(value)}"
                )
            result[name] = value
        for attribute in cls.schema:
            name, value = attribute.name, result[attribute.name]
            if value < 0:
                raise RequestError(
                    f"attribute {name!r} of a {kind} toxic can't be negative, got {shown(value)}"
                )
            if attribute.positive and value == 0:
                raise RequestError(
                    f"attribute {name!r} of a {kind} toxic must be greater than 0, got {value}"
                )
            if value > attribute.maximum:
                raise RequestError(
                    f"attribute {name!r} of a {kind} toxic can be at most {attribute.maximum}, "
                    f"got {shown(value)}"
                )
        return result


@functools.cache
def registry() -> Mapping[str, type[Toxic]]:
    """Every toxic type by name. Built on first use: the modules of types import this one."""
    from chaoskit.proxy import tcp_toxics
    from chaoskit.proxy.http import http_toxic_types

    found: dict[str, type[Toxic]] = {}
    for toxic_type in (*tcp_toxics.TYPES, *http_toxic_types.TYPES):
        if toxic_type.kind in found:
            raise RuntimeError(
                f"two toxic types are named {toxic_type.kind!r}: {found[toxic_type.kind]}, {toxic_type}"
            )
        found[toxic_type.kind] = toxic_type
    return found


# -- API requests


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


def check_type(kind: object) -> type[Toxic]:
    if not isinstance(kind, str) or kind not in registry():
        raise RequestError("invalid toxic type")
    return registry()[kind]


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


def build(body: object, taken: set[str]) -> Toxic:
    """A new toxic from a ``POST /proxies/{p}/toxics`` body, checked in the real server's order."""
    if not isinstance(body, Mapping):
        raise RequestError("bad request body: expected a JSON object")
    stream = check_stream(body.get("stream") or "downstream")
    kind = check_type(body.get("type"))
    name = body.get("name") or f"{kind.kind}_{stream}"
    if not isinstance(name, str):
        raise RequestError(f"bad request body: name must be a string, got {shown(name)}")
    check_name(name, "toxic name")
    if name in taken:
        raise RequestError("toxic already exists", status=409)
    toxicity = check_toxicity(body["toxicity"]) if body.get("toxicity") is not None else 1.0
    attributes = kind.check_attributes(body.get("attributes"))
    return kind(name=name, stream=stream, toxicity=toxicity, attributes=attributes)


def update(toxic: Toxic, body: object) -> tuple[float, dict[str, Any]]:
    """The new (toxicity, attributes) for a PATCH body; only those two fields are read."""
    if not isinstance(body, Mapping):
        raise RequestError("bad request body: expected a JSON object")
    toxicity = check_toxicity(body["toxicity"]) if body.get("toxicity") is not None else toxic.toxicity
    attributes = toxic.check_attributes(body.get("attributes"), toxic.attributes)
    # A new instance runs the type's own checks of the whole (an http_* toxic's depend on its stream).
    dataclasses.replace(toxic, toxicity=toxicity, attributes=attributes)
    return toxicity, attributes
