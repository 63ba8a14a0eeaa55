"""Every error chaoskit raises on purpose, in one tree, with the exit code each one means.

    ChaoskitError                 exit 4 unless a subclass says otherwise; shown without a traceback
    ├── UsageError                exit 2  bad flags or arguments on the command line
    ├── SpecError                 exit 2  an experiment, plan or catalog file is invalid
    ├── DriverConflict            exit 2  installed drivers are ambiguous (a name registered twice)
    ├── DriverError               exit 4  a driver could not do what it was asked
    │   ├── ComponentMissing      exit 4  an optional library, server or kernel feature is not there
    │   ├── TargetError           exit 4  target selection found nothing, or found too much at run time
    │   │   └── LeaseHeld         exit 4  another applied fault already holds that target (leases)
    │   └── Unreachable           exit 4  the server that holds a fault (or would) can't be reached
    ├── LedgerError               exit 4  the fault ledger could not be written or read
    ├── HaltInForce               exit 5  a halt lever is pulled: no new run starts (chaoskit resume)
    └── Interrupted               exit 130 SIGINT or SIGTERM

User-caused errors say what to change. Tracebacks are for bugs: anything that is not a
``ChaoskitError`` reaching the CLI is one.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class ExitCode(enum.IntEnum):
    """The exit codes of ``chaoskit run`` (and the other commands): the CI contract."""

    COMPLETED = 0
    """The hypothesis held before and after, and recovery was within the deadline."""
    DEVIATED = 1
    """It did not hold after, recovery was too slow, a guard tripped or a method check failed."""
    INVALID = 2
    """Bad file, bad flags, unknown fault or probe, ambiguous drivers: nothing was run."""
    NOT_STEADY = 3
    """The hypothesis did not hold before: nothing was injected."""
    ERROR = 4
    """A fault could not be injected or reverted, or a driver or chaoskit failed."""
    HALTED = 5
    """A halt lever was pulled (``chaoskit halt``) or ``max_duration`` ran out: faults were
    reverted, rollbacks run and the journal written; or no run started because a halt is in force."""
    VETOED = 6
    """A preflight check said no: nothing ran."""
    INTERRUPTED = 130
    """A terminating signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2): faults were
    reverted and the journal written."""


class ChaoskitError(Exception):
    """Base of every error chaoskit raises on purpose."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The text the CLI prints: the message, then the fix when there is one."""
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


def text(e: BaseException, *, typed: bool = False) -> str:
    """How chaoskit shows any exception: a ``ChaoskitError`` as it renders (message, then hint);
    anything else by its message, after its type name when ``typed`` (an exception nobody raised on
    purpose, from a driver or a user's function, is only understood with its type)."""
    if isinstance(e, ChaoskitError):
        return e.render()
    return f"{type(e).__name__}: {e}" if typed else str(e)


class UsageError(ChaoskitError):
    """A command-line flag or argument is wrong."""

    exit_code = ExitCode.INVALID


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file, with where it is and what to change."""

    file: str
    line: int
    """1-based; 0 when the position is unknown."""
    col: int
    """1-based; 0 when the position is unknown."""
    path: str
    """The YAML path, e.g. ``steady_state[1].expect``; empty for the whole document."""
    message: str

    def render(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SpecError(ChaoskitError):
    """A file chaoskit reads (experiment, plan, probe catalog) is invalid: every problem, not the first."""

    exit_code = ExitCode.INVALID

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: Sequence[Problem] = tuple(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} found"
        super().__init__("\n".join([head, *(p.render() for p in self.problems)]))


class DriverConflict(ChaoskitError):
    """The installed drivers are ambiguous: two drivers or two activities of one kind share a name,
    or an activity is named outside its driver's prefix. Nothing runs until one is removed."""

    exit_code = ExitCode.INVALID


class DriverError(ChaoskitError):
    """A driver could not inject, revert or probe. Chain the cause: ``raise DriverError(...) from e``."""

    exit_code = ExitCode.ERROR


class ComponentMissing(DriverError):
    """An optional library, a server or a kernel feature that an activity needs is not there."""


class TargetError(DriverError):
    """Target selection found nothing to act on, or more than the blast radius allows."""


class LeaseHeld(TargetError):
    """A fault of the same kind on the same target is already applied (by this or another live
    run, or by a dead one not yet recovered): stacking it would lose the state to restore."""


class Unreachable(DriverError):
    """The server that holds a fault (a proxy's API, a Docker engine) can't be reached."""


class LedgerError(ChaoskitError):
    """The fault ledger could not be written or read."""

    exit_code = ExitCode.ERROR


class HaltInForce(ChaoskitError):
    """A halt lever is pulled: new runs are refused until ``chaoskit resume``."""

    exit_code = ExitCode.HALTED


class Interrupted(ChaoskitError):
    """The run was stopped by SIGINT or SIGTERM."""

    exit_code = ExitCode.INTERRUPTED
