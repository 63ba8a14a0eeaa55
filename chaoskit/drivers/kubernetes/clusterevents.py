"""Events: the ``kubernetes.events`` probe, the Warning events of the selected objects since the
run started."""

from __future__ import annotations

import calendar
import time
from typing import Self
from urllib.parse import quote

from pydantic import model_validator

from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import apiresources, clusters, namespaces


class EventsArgs(namespaces.ReadArgs):
    kind: str | None = None
    """Only events about objects of this kind (``Pod``, ``Deployment``...)."""
    name: str | None = None
    """Only events about the object of this name."""
    label_selector: str | None = None
    """Only events about the objects of ``kind`` (default Pod) carrying these labels."""
    reason: str | None = None
    """Only events with this reason (``BackOff``, ``FailedScheduling``...)."""

    @model_validator(mode="after")
    def _name_or_labels(self) -> Self:
        if self.name and self.label_selector:
            raise ValueError("give name or label_selector, not both")
        return self


def _epoch(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return float(calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


class Events(contract.Probe[EventsArgs], args=EventsArgs):
    name = "kubernetes.events"
    summary = "Warning events for the selected objects since the run started: {count, events}."

    def run(self, args: EventsArgs, ctx: contract.RunContext) -> contract.JsonValue:
        api = clusters.connect(args, ctx)
        fields = ["type=Warning"]
        if args.kind:
            fields.append(f"involvedObject.kind={args.kind}")
        if args.name:
            fields.append(f"involvedObject.name={args.name}")
        if args.reason:
            fields.append(f"reason={args.reason}")
        found: list[contract.JsonValue] = []
        for namespace in args.resolved_namespaces(api):
            names: set[str] | None = None
            if args.label_selector:
                collection, _ = apiresources.resource_path(
                    api, "v1" if not args.kind else apiresources._group_of(args.kind), args.kind or "Pod"
                )
                prefix, rest = collection.rsplit("/", 1)
                objects = api.list(
                    f"{prefix}/namespaces/{quote(namespace)}/{rest}",
                    what=f"listing {args.kind or 'Pod'} in {namespace}",
                    labelSelector=args.label_selector,
                )
                names = {str(o["metadata"]["name"]) for o in objects}
            for event in api.list(
                f"/api/v1/namespaces/{quote(namespace)}/events",
                what=f"listing events in {namespace}",
                fieldSelector=",".join(fields),
            ):
                involved = event.get("involvedObject") or {}
                if names is not None and involved.get("name") not in names:
                    continue
                when = (
                    _epoch(event.get("lastTimestamp"))
                    or _epoch(event.get("eventTime"))
                    or _epoch((event.get("metadata") or {}).get("creationTimestamp"))
                )
                # Whole seconds on the server: allow the second the run started in.
                if when is None or when < int(ctx.started_at):
                    continue
                found.append(
                    {
                        "namespace": namespace,
                        "object": f"{involved.get('kind')}/{involved.get('name')}",
                        "reason": event.get("reason"),
                        "message": event.get("message"),
                        "count": int(event.get("count") or 1),
                    }
                )
        return {"count": len(found), "events": found}
