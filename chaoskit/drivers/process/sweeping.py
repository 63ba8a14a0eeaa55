"""``recover --sweep`` for processes: stop what ``process.start`` left running without a ledger,
found by the run id every started process carries in its environment (``CHAOSKIT_RUN_ID``).

Scoped to runs that are not live: a live run's processes are its own to stop. Without a run id,
only runs whose ledger is here and dead are swept; a process of a run with no ledger here is named
with the command that sweeps it by name."""

from __future__ import annotations

from chaoskit.drivers import contract
from chaoskit.drivers.process import processes, starting


def sweep(run_id: str | None, ctx: contract.RunContext) -> list[str]:
    protected = processes.protected()
    found: dict[str, list[processes.Info]] = {}
    for info in processes.all_live():
        if info.pid in protected:
            continue
        variables = processes.environ(info.pid)
        owner = variables.get(starting.RUN_ID) if variables else None
        if owner is not None and (run_id is None or owner == run_id):
            found.setdefault(owner, []).append(info)
    done: list[str] = []
    for owner, members in sorted(found.items()):
        state = ctx.run_state(owner)
        if state == "live":
            done.append(f"skipped {len(members)} process(es) of run {owner}: it is live")
            continue
        if state == "unknown" and run_id is None:
            done.append(
                f"skipped {len(members)} process(es) of run {owner}: no ledger for it here; "
                f"sweep it by name: chaoskit recover {owner} --sweep"
            )
            continue
        groups = sorted({m.pgid for m in members})
        for pgid in groups:
            undo = starting.Undo(program="(swept)", argv=["(swept)"], pid=pgid, pgid=pgid, mark=None)
            # The same stop as the undo's (TERM, CONT, then KILL after the grace period).
            if starting._stop(undo) is contract.RevertOutcome.REVERTED:
                names = ", ".join(f"{m.pid}" for m in members if m.pgid == pgid)
                done.append(f"stopped process group {pgid} of run {owner} (pids {names})")
    return done
