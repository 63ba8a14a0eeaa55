"""Which containers an activity acts on: by name, labels (compose project/service too) or regex,
then ``count``/``percent``/``all`` through the shared selection, with the blast-radius caps."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Self

from pydantic import model_validator

from chaoskit.drivers import contract, targeting
from chaoskit.drivers.docker import connecting
from chaoskit.errors import TargetError
from chaoskit.patterns import Regex

KIND = "container"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"


class Match(contract.Args):
    """Which containers to consider. Every criterion given must hold."""

    name: str | None = None
    """A container name (or an id prefix of at least 12 characters)."""
    names: list[str] | None = None
    """Any of these container names."""
    labels: dict[str, str] | None = None
    """Every label given must be set to that value; an empty value only requires the label."""
    compose_project: str | None = None
    """Containers of this docker compose project."""
    compose_service: str | None = None
    """Containers of this docker compose service."""
    regex: Regex | None = None
    """A regular expression searched in the container name."""

    @model_validator(mode="after")
    def _something(self) -> Self:
        criteria = ("name", "names", "labels", "compose_project", "compose_service", "regex")
        if all(getattr(self, c) is None for c in criteria):
            raise ValueError(
                f"say which containers: give at least one of {', '.join(criteria)} "
                "(chaoskit never acts on every container by default)"
            )
        return self

    def describe(self) -> str:
        """The criteria given, for messages."""
        given = self.model_dump(exclude_none=True, include=set(Match.model_fields))
        return ", ".join(f"{k}={v}" for k, v in given.items())


class Selector(Match, targeting.Selection):
    """Containers to consider, then how many of them to hit."""


class ContainerRevert(contract.Revert):
    """Which container to find again when reverting, by the id that stays its own."""

    container_id: str
    """The container's full id; revert looks it up by this (a new container with the same name is
    another container)."""
    name: str
    """Its name, for messages."""


def _name(container: Any) -> str:
    return str(container.name).lstrip("/")


def _matches(match: Match, container: Any) -> bool:
    name = _name(container)
    cid = str(container.id)
    labels: dict[str, str] = container.labels or {}
    if match.name is not None and not (
        name == match.name.lstrip("/") or (len(match.name) >= 12 and cid.startswith(match.name))
    ):
        return False
    if match.names is not None and name not in {n.lstrip("/") for n in match.names}:
        return False
    wanted = dict(match.labels or {})
    if match.compose_project is not None:
        wanted[COMPOSE_PROJECT] = match.compose_project
    if match.compose_service is not None:
        wanted[COMPOSE_SERVICE] = match.compose_service
    for key, value in wanted.items():
        if key not in labels or (value != "" and labels[key] != value):
            return False
    if match.regex is not None and not re.search(match.regex, name):
        return False
    # chaoskit's own helper containers are never targets.
    return labels.get(connecting.ROLE_LABEL) != "helper"


def to_target(container: Any) -> contract.Target:
    labels: dict[str, str] = container.labels or {}
    detail = {"status": str(container.status)}
    image = container.attrs.get("Config", {}).get("Image")
    if image:
        detail["image"] = str(image)
    for key, short in ((COMPOSE_PROJECT, "compose_project"), (COMPOSE_SERVICE, "compose_service")):
        if key in labels:
            detail[short] = labels[key]
    return contract.Target(kind=KIND, id=str(container.id), name=_name(container), detail=detail)


def find(match: Match, ctx: contract.RunContext, *, include_stopped: bool) -> list[Any]:
    """The containers ``match`` selects, as SDK objects."""
    client = connecting.client(ctx)
    try:
        # The SDK inspects each listed container; one removed in between is simply not a candidate.
        containers = client.containers.list(all=include_stopped, ignore_removed=True)
    except Exception as e:
        connecting.fail("listing containers at", connecting.where(), e)
    return [c for c in containers if _matches(match, c)]


def resolve(
    selector: Selector, ctx: contract.RunContext, *, include_stopped: bool = False
) -> Sequence[contract.Target]:
    """Match, then choose with the run's seeded RNG; ``TargetError`` names the selector when empty."""
    candidates = [to_target(c) for c in find(selector, ctx, include_stopped=include_stopped)]
    state = "" if include_stopped else "running "
    try:
        return targeting.choose(candidates, selector, ctx.rng, what=f"{state}containers")
    except TargetError as e:
        raise TargetError(f"{e.message} ({selector.describe()})", hint=e.hint) from None


def get(target_id: str, ctx: contract.RunContext) -> Any | None:
    """The container with that id, or None when it is gone."""
    try:
        return connecting.client(ctx).containers.get(target_id)
    except Exception as e:
        if connecting.is_not_found(e):
            return None
        connecting.fail("looking up container", target_id[:12], e)
