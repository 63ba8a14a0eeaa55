"""The controller loop: a reconcile pass now, then again when a watch sees a change to a
ChaosExperiment, ChaosSchedule, Job or pod (or after ``interval``, for time-based work: schedules
coming due, TTLs). Watches only wake the loop, so a missed or broken watch costs latency, never
correctness.
"""

from __future__ import annotations

import logging
import threading

from chaoskit import errors
from chaoskit.operator import reconciling, resources

log = logging.getLogger("chaoskit.operator")
WATCH_SECONDS = 20
"""Each watch request ends after this long and is made again (so a stop is seen that soon)."""


class Watcher:
    def __init__(
        self, controller: reconciling.Controller, interval: float = 5.0, watch_seconds: int = WATCH_SECONDS
    ) -> None:
        self.controller = controller
        self.interval = interval
        self.watch_seconds = watch_seconds
        self.stop = threading.Event()
        self.wake = threading.Event()
        self._threads: list[threading.Thread] = []

    def _paths(self) -> list[str]:
        ns = self.controller.namespace
        prefix = f"/namespaces/{ns}" if ns else ""
        custom = f"/apis/{resources.GROUP}/{resources.VERSION}{prefix}"
        return [
            f"{custom}/{resources.EXPERIMENTS}",
            f"{custom}/{resources.SCHEDULES}",
            f"/apis/batch/v1{prefix}/jobs",
            f"/api/v1{prefix}/pods",
        ]

    def _watch(self, path: str) -> None:
        api = self.controller.api
        selector = "job-name" if path.endswith("/pods") else None
        while not self.stop.is_set():
            try:
                for line in api.watch(path, seconds=self.watch_seconds, label_selector=selector):
                    if line:
                        self.wake.set()
                    if self.stop.is_set():
                        break
            except Exception as e:  # the API server restarting: wait, then watch again
                log.debug("watch %s: %s", path, e)
                self.stop.wait(2)

    def serve(self, passes: int | None = None) -> None:
        """Reconcile until ``stop`` is set (or ``passes`` passes were made)."""
        # A bounded number of passes (``--once``) is over before a watch could wake anything.
        for path in self._paths() if passes is None else []:
            thread = threading.Thread(target=self._watch, args=(path,), name=f"watch {path}", daemon=True)
            thread.start()
            self._threads.append(thread)
        made = 0
        try:
            while not self.stop.is_set() and (passes is None or made < passes):
                self.wake.clear()
                try:
                    self.controller.reconcile_once()
                except errors.ChaoskitError as e:  # listing failed: the API server is down
                    log.warning("reconcile pass failed: %s", e.render())
                made += 1
                self.wake.wait(self.interval)
                # Coalesce a burst of watch events (a Job and its pod change together) into one pass.
                self.stop.wait(0.2)
        finally:
            self.stop.set()
            # Watches only wake the loop. One still inside its request (up to watch_seconds) ends
            # by itself (a daemon thread that sees stop); stopping, and handing the leader Lease
            # over, does not wait for it.
            for thread in self._threads:
                thread.join(timeout=1)
