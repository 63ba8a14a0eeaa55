"""What an ``http_*`` toxic does, from its JSON attributes: the request it matches and its fault.

``parse(kind, attributes, stream)`` checks everything a client sends and says, naming the
attribute, what is wrong; the result is frozen and shared by every connection of the proxy.
"""

from __future__ import annotations

import http
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chaoskit.proxy.http import heads

KINDS = ("http_abort", "http_delay", "http_modify")
DAY_MS = 24 * 60 * 60 * 1000
MAX_BODY = 16 * 1024 * 1024
"""Bytes in a body an abort answers with or a modify puts in place."""

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "http_abort": ("match", "status", "body", "headers", "reset"),
    "http_delay": ("match", "latency", "jitter"),
    "http_modify": ("match", "set_headers", "remove_headers", "body", "truncate"),
}
MATCH_KEYS = ("method", "path", "path_prefix", "path_regex", "headers", "query")
FRAMING_FIELDS = frozenset({"content-length", "transfer-encoding", "connection", "upgrade"})
"""Header fields a modify may not touch: they delimit messages, and the proxy keeps framing valid."""

_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class Invalid(ValueError):
    """An attribute can't be used; the message names it and says what it may be."""


@dataclass(frozen=True)
class Match:
    """Which requests a toxic acts on: all of the given conditions hold (none given: every request)."""

    methods: frozenset[str] = frozenset()
    path: str | None = None
    path_prefix: str | None = None
    path_regex: re.Pattern[str] | None = None
    headers: tuple[tuple[str, str | None], ...] = ()
    """(lowercased name, value) - ``None``: the field is present, with any value."""
    query: tuple[tuple[str, str | None], ...] = ()

    def matches(self, head: heads.Head) -> bool:
        if self.methods and head.method not in self.methods:
            return False
        if self.path is not None or self.path_prefix is not None or self.path_regex or self.query:
            path, _, query = _path_and_query(head.target)
            if self.path is not None and path != self.path:
                return False
            if self.path_prefix is not None and not path.startswith(self.path_prefix):
                return False
            if self.path_regex is not None and not self.path_regex.fullmatch(path):
                return False
            if self.query and not _query_matches(self.query, query):
                return False
        for name, want in self.headers:
            values = head.values(name)
            if not values or (want is not None and want not in values):
                return False
        return True


def _path_and_query(target: str) -> tuple[str, str, str]:
    if target.startswith(("http://", "https://")):  # absolute form, sent to proxies
        parts = urllib.parse.urlsplit(target)
        return parts.path or "/", "?", parts.query
    return target.partition("?")


def _query_matches(want: tuple[tuple[str, str | None], ...], query: str) -> bool:
    got: dict[str, list[str]] = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        got.setdefault(name, []).append(value)
    return all(name in got and (value is None or value in got[name]) for name, value in want)


@dataclass(frozen=True)
class Abort:
    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    reset: bool


@dataclass(frozen=True)
class Delay:
    latency: int
    jitter: int


@dataclass(frozen=True)
class Modify:
    set_headers: tuple[tuple[bytes, bytes], ...] = ()
    remove_headers: frozenset[bytes] = frozenset()
    body: bytes | None = None
    truncate: int | None = None

    def fields(self, fields: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """``fields`` with the removals and the settings applied (a set field replaces all of its
        name, in the place of the first)."""
        replaced = {name.lower(): (name, value) for name, value in self.set_headers}
        placed: set[bytes] = set()
        result: list[tuple[bytes, bytes]] = []
        for name, value in fields:
            key = name.lower()
            if key in self.remove_headers:
                continue
            if key in replaced:
                if key not in placed:
                    result.append(replaced[key])
                    placed.add(key)
                continue
            result.append((name, value))
        result.extend(v for k, v in replaced.items() if k not in placed)
        return result


@dataclass(frozen=True)
class Rule:
    """One ``http_*`` toxic as the data plane uses it."""

    name: str
    kind: str
    response: bool
    """Acts on the response (``downstream``) rather than the request (``upstream``); an abort
    answers instead of forwarding either way."""
    toxicity: float
    match: Match
    fault: Abort | Delay | Modify


def parse(kind: str, attributes: object, stream: str) -> Abort | Delay | Modify:
    """The fault of a ``kind`` toxic on ``stream`` (``upstream``/``downstream``)."""
    given = _object(attributes, kind, "attributes")
    unknown = sorted(set(given) - set(ATTRIBUTES[kind]))
    if unknown:
        known = ", ".join(ATTRIBUTES[kind])
        raise Invalid(f"unknown attribute {unknown[0]!r} of an {kind} toxic (it takes: {known})")
    if kind == "http_abort":
        status = _integer(given.get("status", 503), kind, "status", 200, 599)
        headers = _headers(given.get("headers"), kind, "headers")
        return Abort(status, _body(given.get("body", ""), kind), headers, _bool(given, kind, "reset"))
    if kind == "http_delay":
        latency = _integer(given.get("latency", 0), kind, "latency", 0, DAY_MS)
        return Delay(latency, _integer(given.get("jitter", 0), kind, "jitter", 0, DAY_MS))
    remove = given.get("remove_headers") or []
    if not isinstance(remove, list) or not all(isinstance(n, str) and _TOKEN.fullmatch(n) for n in remove):
        raise Invalid(f"attribute 'remove_headers' of an {kind} toxic must be a list of header names")
    _refuse_framing([n.lower() for n in remove], kind, "remove_headers")
    body = given.get("body")
    truncate = given.get("truncate")
    if (body is not None or truncate is not None) and stream.lower() != "downstream":
        raise Invalid(
            f"attributes 'body' and 'truncate' of an {kind} toxic act on responses: "
            "use stream 'downstream' (upstream modifies request headers only)"
        )
    if body is not None and truncate is not None:
        raise Invalid(f"an {kind} toxic takes 'body' or 'truncate', not both")
    return Modify(
        set_headers=_headers(given.get("set_headers"), kind, "set_headers", framing_allowed=False),
        remove_headers=frozenset(n.lower().encode() for n in remove),
        body=None if body is None else _body(body, kind),
        truncate=None if truncate is None else _integer(truncate, kind, "truncate", 0, 2**63 - 1),
    )


def parse_match(value: object, kind: str) -> Match:
    given = _object(value, kind, "match")
    unknown = sorted(set(given) - set(MATCH_KEYS))
    if unknown:
        raise Invalid(
            f"unknown key {unknown[0]!r} in attribute 'match' of an {kind} toxic "
            f"(it takes: {', '.join(MATCH_KEYS)})"
        )
    methods = given.get("method", [])
    if isinstance(methods, str):
        methods = [methods]
    if not isinstance(methods, list) or not all(isinstance(m, str) and _TOKEN.fullmatch(m) for m in methods):
        raise Invalid(f"'match.method' of an {kind} toxic must be a method or a list of them, e.g. 'POST'")
    paths = {}
    for key in ("path", "path_prefix", "path_regex"):
        path = given.get(key)
        if path is not None and (not isinstance(path, str) or not path):
            raise Invalid(f"'match.{key}' of an {kind} toxic must be a non-empty string, e.g. '/checkout'")
        paths[key] = path
    regex = None
    if paths["path_regex"] is not None:
        try:
            regex = re.compile(paths["path_regex"])
        except re.error as e:
            raise Invalid(f"'match.path_regex' of an {kind} toxic is not a regular expression: {e}") from e
    return Match(
        methods=frozenset(m.upper() for m in methods),
        path=paths["path"],
        path_prefix=paths["path_prefix"],
        path_regex=regex,
        headers=tuple((n.lower(), v) for n, v in _conditions(given.get("headers"), kind, "headers")),
        query=_conditions(given.get("query"), kind, "query"),
    )


def _conditions(value: object, kind: str, key: str) -> tuple[tuple[str, str | None], ...]:
    given = _object(value, kind, f"match.{key}")
    result: list[tuple[str, str | None]] = []
    for name, want in given.items():
        if want is True:
            result.append((name, None))
        elif isinstance(want, str):
            result.append((name, want))
        else:
            raise Invalid(
                f"'match.{key}.{name}' of an {kind} toxic must be a string (equals) or true (present)"
            )
    return tuple(result)


def _object(value: object, kind: str, what: str) -> Mapping[str, object]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Invalid(f"attribute {what!r} of an {kind} toxic must be an object")
    return value


def _integer(value: object, kind: str, what: str, least: int, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise Invalid(f"attribute {what!r} of an {kind} toxic must be an integer from {least} to {most}")
    return value


def _bool(given: Mapping[str, object], kind: str, what: str) -> bool:
    value = given.get(what, False)
    if not isinstance(value, bool):
        raise Invalid(f"attribute {what!r} of an {kind} toxic must be true or false")
    return value


def _body(value: object, kind: str) -> bytes:
    if not isinstance(value, str):
        raise Invalid(f"attribute 'body' of an {kind} toxic must be a string")
    body = value.encode()
    if len(body) > MAX_BODY:
        raise Invalid(f"attribute 'body' of an {kind} toxic can be at most {MAX_BODY} bytes")
    return body


def _headers(
    value: object, kind: str, what: str, framing_allowed: bool = False
) -> tuple[tuple[bytes, bytes], ...]:
    given = _object(value, kind, what)
    result: list[tuple[bytes, bytes]] = []
    for name, text in given.items():
        if not _TOKEN.fullmatch(name) or not isinstance(text, str) or not _VALUE.fullmatch(text):
            raise Invalid(
                f"attribute {what!r} of an {kind} toxic must map header names to values "
                f"without control characters, got {name[:40]!r}"
            )
        result.append((name.encode(), text.encode("latin-1", errors="replace")))
    if not framing_allowed:
        _refuse_framing([n.decode().lower() for n, _ in result], kind, what)
    return tuple(result)


def _refuse_framing(names: Sequence[str], kind: str, what: str) -> None:
    for name in names:
        if name in FRAMING_FIELDS:
            raise Invalid(
                f"attribute {what!r} of an {kind} toxic can't change {name!r}: the proxy sets the "
                "fields that delimit messages itself, so that framing stays valid"
            )


def rule(name: str, kind: str, stream: str, toxicity: float, attributes: Mapping[str, object]) -> Rule:
    """A ``Rule`` from a toxic's checked parts; ``Invalid`` if the attributes can't be used."""
    fault = parse(kind, attributes, stream)
    match = parse_match(attributes.get("match"), kind)
    return Rule(name, kind, stream.lower() == "downstream", toxicity, match, fault)


def answer(abort: Abort, method: str, close: bool) -> bytes:
    """The response an ``http_abort`` gives: its status, headers and body, with valid framing."""
    try:
        reason = http.HTTPStatus(abort.status).phrase
    except ValueError:
        reason = "Fault"
    fields = list(abort.headers)
    if abort.body and not any(n.lower() == b"content-type" for n, _ in fields):
        fields.append((b"Content-Type", b"text/plain; charset=utf-8"))
    fields.append((b"Content-Length", str(len(abort.body)).encode()))
    if close:
        fields.append((b"Connection", b"close"))
    head = b"".join(
        [f"HTTP/1.1 {abort.status} {reason}\r\n".encode(), *(n + b": " + v + b"\r\n" for n, v in fields)]
    )
    return head + b"\r\n" + (b"" if method == "HEAD" else abort.body)
