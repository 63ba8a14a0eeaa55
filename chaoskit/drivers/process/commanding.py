"""``process.command``: run a command to completion (as a probe or an action) and report its exit
code and output. A timeout kills the command's whole process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from typing import Literal, Self

from pydantic import Field, model_validator

from chaoskit.drivers import contract
from chaoskit.drivers.process import starting
from chaoskit.durations import Duration
from chaoskit.errors import DriverError

OUTPUT_LIMIT = 64 * 1024
"""Characters of stdout and of stderr kept; the rest is cut and marked."""


def truncate(text: str, limit: int = OUTPUT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... truncated {len(text) - limit} more characters]"


class CommandArgs(contract.Args):
    argv: list[starting.Arg] | None = Field(default=None, min_length=1)
    """The program and its arguments, run without a shell, e.g. ``[curl, -fsS, http://...]``."""
    command: str | None = None
    """A shell command line; only together with ``shell: true``."""
    shell: bool = False
    """Run ``command`` with ``/bin/sh -c``; off unless asked, since it re-parses the text."""
    timeout: Duration = 60.0
    """Kill the command (its whole process group) after this long; it then reports
    ``exit_code: null`` and ``timed_out: true``."""
    cwd: str | None = None
    """The working directory; default: chaoskit's."""
    env: dict[str, starting.Arg] = Field(default_factory=dict)
    """Variables added to (or replacing ones in) chaoskit's environment."""
    dialect: Literal["chaoskit", "chaostoolkit"] = "chaoskit"
    """Set on steps translated from a Chaos Toolkit file: a timeout then fails a probe too (as it
    does there), and failures are explained in that format's terms."""

    @model_validator(mode="after")
    def _argv_or_shell(self) -> Self:
        if self.shell and (self.command is None or self.argv is not None):
            raise ValueError('shell: true runs command: "..."; give command, not argv')
        if not self.shell and self.command is not None:
            raise ValueError("command: runs through a shell only with shell: true; or give argv: [...]")
        if not self.shell and self.argv is None:
            raise ValueError("give argv: [program, args...] (or command: with shell: true)")
        return self


def run(args: CommandArgs, ctx: contract.RunContext) -> dict[str, contract.JsonValue]:
    """Run the command; a timeout or a cancelled run kills it and is reported, not raised."""
    argv: list[str] = ["/bin/sh", "-c", args.command or ""] if args.shell else list(args.argv or [])
    started = time.perf_counter()
    try:
        child = subprocess.Popen(
            argv,
            cwd=args.cwd,
            env={**os.environ, **args.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as e:
        raise DriverError(f"process.command: can't run {argv[0]!r}: {e.strerror or e}") from e
    deadline = started + args.timeout
    timed_out = False
    with child:
        while True:
            # Short slices so that a cancelled run stops waiting soon.
            slice_ = max(0.0, min(0.2, deadline - time.perf_counter()))
            try:
                out, err = child.communicate(timeout=slice_)
                break
            except subprocess.TimeoutExpired:
                if ctx.cancel.is_set() or time.perf_counter() >= deadline:
                    timed_out = True
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)
                    try:
                        out, err = child.communicate(timeout=5.0)
                    except subprocess.TimeoutExpired:
                        # A descendant that left the group still holds the pipes open.
                        out, err = b"", b""
                    break
    elapsed_ms = (time.perf_counter() - started) * 1000
    return {
        "exit_code": None if timed_out else child.returncode,
        "stdout": truncate(out.decode("utf-8", "replace")),
        "stderr": truncate(err.decode("utf-8", "replace")),
        "elapsed_ms": round(elapsed_ms, 3),
        "timed_out": timed_out,
    }


class CommandProbe(contract.Probe[CommandArgs], args=CommandArgs):
    name = "process.command"
    summary = "Run a command and report {exit_code, stdout, stderr, elapsed_ms, timed_out}."

    def run(self, args: CommandArgs, ctx: contract.RunContext) -> contract.JsonValue:
        output = run(args, ctx)
        if args.dialect == "chaostoolkit" and output["timed_out"]:
            raise DriverError(
                f"process.command: {_program(args)} did not finish within the provider's timeout of "
                f"{args.timeout:g}s; killed it",
                hint="raise the provider's timeout if the command needs longer",
            )
        return output


def _program(args: CommandArgs) -> str:
    if args.argv:
        return args.argv[0]
    return (args.command or "").split(" ", 1)[0] or "sh -c"


class CommandActionArgs(CommandArgs):
    check: bool = True
    """Fail the step when the command exits non-zero or times out."""


class CommandAction(contract.Action[CommandActionArgs], args=CommandActionArgs):
    name = "process.command"
    summary = "Run a command to completion; fails on a non-zero exit unless check: false."

    def run(self, args: CommandActionArgs, ctx: contract.RunContext) -> contract.ActionResult:
        output = run(args, ctx)
        program = _program(args)
        if args.check and output["timed_out"]:
            raise DriverError(
                f"process.command: {program} did not finish within {args.timeout:g}s; killed it"
            )
        if args.check and output["exit_code"] != 0:
            stderr = str(output["stderr"]).strip().splitlines()[-starting.STDERR_TAIL_LINES :]
            hint = "set check: false to carry on when the command fails"
            if args.dialect == "chaostoolkit":
                hint = (
                    "Chaos Toolkit only warns about a non-zero exit and carries on; chaoskit stops the "
                    'run (exit 4). To carry on here too, add "x-chaoskit": {"check": false} to this '
                    "activity (a key Chaos Toolkit does not read)"
                )
            raise DriverError(
                f"process.command: {program} exited with code {output['exit_code']}"
                + ("; last lines of its stderr:\n" + "\n".join(stderr) if stderr else ""),
                hint=hint,
            )
        return contract.ActionResult(output=output)
