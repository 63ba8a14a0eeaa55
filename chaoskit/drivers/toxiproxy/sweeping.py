"""``recover --sweep`` for the toxiproxy driver: the toxics a run left on the servers it can find,
recognised by their names (``toxics.owner_of``), scoped to runs that are not live."""

from __future__ import annotations

import os

from chaoskit.drivers import contract
from chaoskit.drivers.toxiproxy import clients, toxics


def sweep_urls() -> list[str]:
    """The servers ``sweep`` looks at: the default one, and any in CHAOSKIT_TOXIPROXY_URLS/TOXIPROXY_URL."""
    urls = [clients.DEFAULT_URL]
    for variable in ("CHAOSKIT_TOXIPROXY_URLS", "TOXIPROXY_URL"):
        urls.extend(u.strip().rstrip("/") for u in os.environ.get(variable, "").split(",") if u.strip())
    return list(dict.fromkeys(urls))


def sweep(run_id: str | None, ctx: contract.RunContext, urls: list[str] | None = None) -> list[str]:
    """Delete toxics named for ``run_id`` on every known server; without a run id, those of runs
    whose ledger here is dead. A live run's toxics are its own; a run with no ledger here is named,
    with the command that sweeps it."""
    done: list[str] = []
    skipped: dict[str, str] = {}
    for url in urls or sweep_urls():
        api = clients.Client(url, attempts=1)
        try:
            for proxy in api.proxies().values():
                for toxic in proxy.get("toxics") or []:
                    owner = toxics.owner_of(toxic["name"])
                    if owner is None or (run_id is not None and owner != run_id):
                        continue
                    state = ctx.run_state(owner)
                    if state == "live" or (state == "unknown" and run_id is None):
                        skipped[owner] = state
                        continue
                    if api.remove_toxic(proxy["name"], toxic["name"]):
                        done.append(f"removed toxic {toxic['name']} from proxy {proxy['name']} at {url}")
        except clients.Unreachable:
            continue
        finally:
            api.close()
    for owner, state in sorted(skipped.items()):
        why = "it is live" if state == "live" else f"no ledger for it here (chaoskit recover {owner} --sweep)"
        done.append(f"skipped the toxics of run {owner}: {why}")
    return done
