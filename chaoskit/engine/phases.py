"""Where a step runs in a run, and what kind of step it is: the planner needs these, the journal
records them. Kept apart from the journal's models so that ``validate`` does not build those."""

from __future__ import annotations

import enum


class Phase(enum.StrEnum):
    PREFLIGHT = "preflight"
    """Checks asked before anything runs; one that does not hold vetoes the run."""
    SETUP = "setup"
    BEFORE = "before"
    """The steady-state hypothesis before anything is injected."""
    METHOD = "method"
    GUARD = "guard"
    """A guard poll while the method runs."""
    AFTER = "after"
    """The steady-state hypothesis after the last revert, polled until it holds."""
    ROLLBACKS = "rollbacks"
    TEARDOWN = "teardown"


class StepKind(enum.StrEnum):
    PROBE = "probe"
    FAULT = "fault"
    ACTION = "action"
    PAUSE = "pause"
