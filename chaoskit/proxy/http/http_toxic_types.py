"""The ``http_abort``, ``http_delay`` and ``http_modify`` toxic types.

Their attributes are JSON (a ``match`` object, a status, headers, a body), checked by
``rules``. They act per request, through the connection's ``sessions.Session`` that the data
plane runs while its proxy has any of them - not through a per-link stage, since one request's
fault spans both directions (an abort read upstream answers downstream).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from chaoskit.proxy import toxic_types
from chaoskit.proxy.http import rules


@dataclasses.dataclass
class HttpToxic(toxic_types.Toxic):
    """An ``http_*`` toxic: its ``toxicity`` is rolled per request, not per connection."""

    _rule: rules.Rule | None = dataclasses.field(default=None, init=False, repr=False, compare=False)
    _rule_of: tuple[object, float] | None = dataclasses.field(
        default=None, init=False, repr=False, compare=False
    )

    @classmethod
    def check_attributes(cls, given: object, current: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``given`` merged over ``current`` key by key, then checked whole (unknown keys refused:
        a misspelt ``match`` would otherwise fault every request)."""
        if given is None:
            given = {}
        if not isinstance(given, Mapping):
            raise toxic_types.RequestError(
                f"bad request body: attributes must be an object, got {toxic_types.shown(given)}"
            )
        merged = {**(current or {}), **given}
        try:
            # The stream only decides which checks apply; the real one is checked in rule().
            rules.parse(cls.kind, merged, "downstream")
            rules.parse_match(merged.get("match"), cls.kind)
        except rules.Invalid as e:
            raise toxic_types.RequestError(str(e)) from None
        return merged

    def __post_init__(self) -> None:
        # What depends on the stream (a body change acts on responses only) is checked here, where
        # the stream is known: at creation, and on a PATCH through ``toxic_types.update``.
        try:
            self.rule()
        except rules.Invalid as e:
            raise toxic_types.RequestError(str(e)) from None

    def rule(self) -> rules.Rule:
        """This toxic as the sessions use it; made again after a PATCH (which replaces the
        attributes object or the toxicity)."""
        made_for = self._rule_of
        if (
            self._rule is None
            or made_for is None
            or made_for[0] is not self.attributes
            or made_for[1] != self.toxicity
        ):
            self._rule = rules.rule(self.name, self.kind, self.stream, self.toxicity, self.attributes)
            self._rule_of = (self.attributes, self.toxicity)
        return self._rule


@dataclasses.dataclass
class HttpAbort(HttpToxic):
    kind: ClassVar[str] = "http_abort"
    resets: ClassVar[bool] = True


@dataclasses.dataclass
class HttpDelay(HttpToxic):
    kind: ClassVar[str] = "http_delay"


@dataclasses.dataclass
class HttpModify(HttpToxic):
    kind: ClassVar[str] = "http_modify"


TYPES: tuple[type[toxic_types.Toxic], ...] = (HttpAbort, HttpDelay, HttpModify)
