"""The kubernetes driver (being written)."""

from chaoskit.drivers import contract


def driver() -> contract.Driver:
    return contract.Driver(name="kubernetes", summary="kubernetes (not yet available)")
