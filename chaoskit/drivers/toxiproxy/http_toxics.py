"""The toxiproxy driver's HTTP faults: ``toxiproxy.http_abort``, ``http_delay``, ``http_modify``.

Each adds one ``http_*`` toxic, named and reverted like every other toxic (``toxics.py``), so
the ledger, ``recover`` and ``--sweep`` treat them alike. They act on chosen requests (``match``),
rolled per request. These toxic types are chaoskit's own: only its embedded proxy has them, and
against a real Toxiproxy the fault fails saying so.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import Field, model_validator

from chaoskit import errors, units
from chaoskit.drivers import contract
from chaoskit.drivers.toxiproxy import clients, toxics
from chaoskit.durations import Duration
from chaoskit.proxy.http import rules


class HttpMatch(contract.Args):
    """Which requests the fault acts on: every condition given must hold (none: every request)."""

    method: str | list[str] | None = None
    """A method or a list of them, e.g. ``POST``."""
    path: str | None = None
    """The exact path, without the query, as sent (percent-encoded), e.g. ``/checkout``."""
    path_prefix: str | None = None
    """A prefix of the path, e.g. ``/api/``."""
    path_regex: str | None = None
    """A regular expression the whole path matches, e.g. ``/items/[0-9]+``."""
    headers: dict[str, str | bool] = Field(default_factory=dict)
    """Header name → the value it must have, or ``true``: present with any value."""
    query: dict[str, str | bool] = Field(default_factory=dict)
    """Query parameter → the value it must have, or ``true``: present."""

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, exclude_defaults=True)


class HttpArgs(toxics.ToxicArgs):
    kind: ClassVar[str]
    match: HttpMatch = Field(default_factory=HttpMatch)
    """Which requests to act on (method, path, path_prefix, path_regex, headers, query)."""
    toxicity: float = Field(default=1.0, ge=0.0, le=1.0)
    """The probability that a matching request gets the fault (rolled per request)."""

    def toxic_attributes(self) -> dict[str, Any]:
        """The toxic's attributes as the server takes them (``match`` included)."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _usable(self) -> Self:
        # The proxy's own checks, at validation time: a typo'd header that would break framing or a
        # regex that doesn't compile is found before the run, not when the toxic is added.
        try:
            rules.rule("check", self.kind, self.stream, self.toxicity, self.toxic_attributes())
        except rules.Invalid as e:
            raise ValueError(str(e)) from None
        return self


class HttpAbortArgs(HttpArgs):
    kind: ClassVar[str] = "http_abort"
    status: int = Field(default=503, ge=200, le=599)
    """The status the proxy answers with instead of forwarding the request."""
    body: str = ""
    """The answer's body (``text/plain`` unless ``headers`` gives a Content-Type)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Headers of the answer, e.g. ``{Retry-After: "1"}``."""
    reset: bool = False
    """Reset the connection (TCP RST) instead of answering."""

    def toxic_attributes(self) -> dict[str, Any]:
        return {
            "match": self.match.to_json(),
            "status": self.status,
            "body": self.body,
            "headers": dict(self.headers),
            "reset": self.reset,
        }


class HttpDelayArgs(HttpArgs):
    kind: ClassVar[str] = "http_delay"
    latency: Duration
    """How long a matching request (``stream: upstream``) or its response (``downstream``) is held."""
    jitter: Duration = 0.0
    """Plus or minus up to this much, per request."""

    def toxic_attributes(self) -> dict[str, Any]:
        return {
            "match": self.match.to_json(),
            "latency": units.to_ms(self.latency),
            "jitter": units.to_ms(self.jitter),
        }


class HttpModifyArgs(HttpArgs):
    kind: ClassVar[str] = "http_modify"
    set_headers: dict[str, str] = Field(default_factory=dict)
    """Headers to set on the request (``stream: upstream``) or the response (``downstream``)."""
    remove_headers: list[str] = Field(default_factory=list)
    """Headers to remove."""
    body: str | None = None
    """Replace the response body with this (``downstream`` only)."""
    truncate: int | None = Field(default=None, ge=0)
    """Cut the response body to this many bytes (``downstream`` only); framing stays valid."""

    def toxic_attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "match": self.match.to_json(),
            "set_headers": dict(self.set_headers),
            "remove_headers": list(self.remove_headers),
        }
        if self.body is not None:
            attributes["body"] = self.body
        if self.truncate is not None:
            attributes["truncate"] = self.truncate
        return attributes


class HttpToxicFault(toxics.ToxicFault[toxics.TA]):
    """An ``http_*`` toxic: refused by a real Toxiproxy, which has no such type."""

    def attributes(self, args: toxics.TA) -> dict[str, Any]:
        assert isinstance(args, HttpArgs)
        return args.toxic_attributes()

    def inject(
        self, args: toxics.TA, target: contract.Target, revert: toxics.ToxicRevert, ctx: contract.RunContext
    ) -> toxics.ToxicRevert:
        try:
            return super().inject(args, target, revert, ctx)
        except clients.ApiError as e:
            raise (unknown_type(e, args.url, self.kind) or e) from e


def unknown_type(error: clients.ApiError, url: str, kind: str) -> errors.DriverError | None:
    """What to say when a server refuses an ``http_*`` toxic type it doesn't have (a real
    Toxiproxy); None for any other error."""
    if not kind.startswith("http_") or error.status != 400 or "invalid toxic type" not in error.answer:
        return None
    return errors.DriverError(
        f"the Toxiproxy at {url} has no {kind} toxic (it answered: {error.answer}); the http_* "
        "toxics are chaoskit's own and need its embedded proxy",
        hint="point `url:` at `chaoskit proxy serve` (or chaoskit.proxy.ProxyServer) in front of the "
        "service, instead of a real Toxiproxy",
    )


class HttpAbort(HttpToxicFault[HttpAbortArgs], args=HttpAbortArgs):
    name = "toxiproxy.http_abort"
    summary = "Answer chosen HTTP requests with a status (or reset them) instead of forwarding."
    kind = "http_abort"


class HttpDelay(HttpToxicFault[HttpDelayArgs], args=HttpDelayArgs):
    name = "toxiproxy.http_delay"
    summary = "Hold chosen HTTP requests (stream upstream) or their responses (downstream)."
    kind = "http_delay"


class HttpModify(HttpToxicFault[HttpModifyArgs], args=HttpModifyArgs):
    name = "toxiproxy.http_modify"
    summary = "Set or remove headers of chosen HTTP requests or responses; replace or truncate bodies."
    kind = "http_modify"


FAULTS = (HttpAbort(), HttpDelay(), HttpModify())
