"""The prometheus driver (being written)."""

from chaoskit.drivers import contract


def driver() -> contract.Driver:
    return contract.Driver(name="prometheus", summary="prometheus (not yet available)")
