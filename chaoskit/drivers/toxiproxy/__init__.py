"""The toxiproxy driver (being written)."""

from chaoskit.drivers import contract


def driver() -> contract.Driver:
    return contract.Driver(name="toxiproxy", summary="toxiproxy (not yet available)")
