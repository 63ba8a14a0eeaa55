"""Leader election through a ``coordination.k8s.io/v1`` Lease, the way client-go's leaderelection
package does it: several controller replicas can run, and exactly one acts.

The leader renews the Lease every ``retry_period``; the others try as often and take the Lease
over once they have seen it unchanged for ``duration`` (by their own clock, as client-go does, so
clocks that disagree between nodes don't matter). Every write carries the Lease's resourceVersion,
so two replicas taking over at once can't both win: the API server refuses the second (409). A
leader that can't renew for ``renew_deadline`` stops acting (``serving`` then exits, and its pod
restarts); one that stops cleanly gives the Lease up, so another takes over at once.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

from chaoskit import errors
from chaoskit.kube import apis

log = logging.getLogger("chaoskit.operator")
LEASE_NAME = "chaoskit-operator"
_MICROTIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def identity() -> str:
    """This replica's name in the Lease: the pod's (host) name and a random part, so that a
    restarted pod with the same name is a new holder."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def _time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    for pattern in (_MICROTIME, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


@dataclass
class Elector:
    api: apis.Api
    namespace: str
    identity: str = field(default_factory=identity)
    name: str = LEASE_NAME
    duration: float = 15.0
    """How long a Lease holds without renewal (``leaseDurationSeconds``)."""
    renew_deadline: float = 10.0
    """A leader that could not renew for this long stops acting."""
    retry_period: float = 2.0
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    clock: Callable[[], float] = time.monotonic
    _seen: tuple[str, str] | None = field(default=None, init=False)
    """The other holder's record (identity, renewTime) last seen, and when it last changed."""
    _seen_at: float = field(default=0.0, init=False)

    @property
    def path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{quote(self.namespace)}/leases/{quote(self.name)}"

    @property
    def where(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    def _spec(self, now: datetime, acquired: datetime, transitions: int) -> apis.JSON:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.duration)),
            "acquireTime": acquired.strftime(_MICROTIME),
            "renewTime": now.strftime(_MICROTIME),
            "leaseTransitions": transitions,
        }

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this replica holds the Lease afterwards."""
        now = self.now()
        try:
            lease = self.api.get(self.path, what=f"reading {self.where}")
        except apis.ApiError as e:
            if e.status != 404:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now, now, 0),
            }
            return self._write("POST", self.path.rsplit("/", 1)[0], body)
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        mine = holder == self.identity
        if holder and not mine:
            record = (holder, str(spec.get("renewTime")))
            if record != self._seen:
                self._seen, self._seen_at = record, self.clock()
            held_for = float(spec.get("leaseDurationSeconds") or self.duration)
            if self.clock() < self._seen_at + held_for:
                return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        acquired = (_time(spec.get("acquireTime")) if mine else None) or now
        # The whole object back, resourceVersion included: a concurrent change makes this a 409.
        return self._write("PUT", self.path, {**lease, "spec": self._spec(now, acquired, transitions)})

    def _write(self, method: str, path: str, body: apis.JSON) -> bool:
        try:
            self.api.request(method, path, what=f"taking {self.where}", body=body)
        except apis.ApiError as e:
            if e.status == 409:  # another replica wrote first
                return False
            raise
        return True

    def acquire(self, stop: threading.Event) -> bool:
        """Try every ``retry_period`` until this replica leads (True) or ``stop`` is set (False)."""
        log.info("waiting to lead: %s, as %s", self.where, self.identity)
        while not stop.is_set():
            try:
                if self.try_acquire_or_renew():
                    log.info("leading: %s, as %s", self.where, self.identity)
                    return True
            except errors.ChaoskitError as e:  # the API server restarting: try again
                log.warning("leader election: %s", e.render())
            stop.wait(self.retry_period)
        return False

    def keep(
        self, stop: threading.Event, lost: threading.Event, wake: Callable[[], None] = lambda: None
    ) -> None:
        """Renew every ``retry_period`` until ``stop``; set ``lost`` and ``stop``, and call ``wake``
        (so that a controller waiting for work sees it now), when the Lease is gone to another
        replica or could not be renewed for ``renew_deadline``."""
        renewed = self.clock()
        while not stop.wait(self.retry_period):
            try:
                if self.try_acquire_or_renew():
                    renewed = self.clock()
                    continue
                why = "another replica holds it"
            except errors.ChaoskitError as e:
                why = e.render()
                if self.clock() - renewed < self.renew_deadline:
                    log.warning("renewing %s failed, will retry: %s", self.where, why)
                    continue
            log.error("lost %s: %s; stopping", self.where, why)
            lost.set()
            stop.set()
            wake()
            return

    def release(self) -> None:
        """Give the Lease up, if this replica still holds it, so another takes over at once."""
        try:
            lease = self.api.get(self.path, what=f"reading {self.where}")
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            now = self.now().strftime(_MICROTIME)
            released = {
                "leaseDurationSeconds": 1,
                "renewTime": now,
                "acquireTime": now,
                "leaseTransitions": int(spec.get("leaseTransitions") or 0),
            }
            self.api.request(
                "PUT", self.path, what=f"releasing {self.where}", body={**lease, "spec": released}
            )
            log.info("released %s", self.where)
        except errors.ChaoskitError as e:  # it expires by itself
            log.warning("could not release %s (it expires in %gs): %s", self.where, self.duration, e.render())
