"""The docker driver (being written)."""

from chaoskit.drivers import contract


def driver() -> contract.Driver:
    return contract.Driver(name="docker", summary="docker (not yet available)")
