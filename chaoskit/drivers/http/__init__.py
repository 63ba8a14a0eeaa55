"""The http driver (being written)."""

from chaoskit.drivers import contract


def driver() -> contract.Driver:
    return contract.Driver(name="http", summary="http (not yet available)")
