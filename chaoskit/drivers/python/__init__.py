"""The python driver: call any ``module:function`` as a probe or an action."""

from __future__ import annotations

from chaoskit.drivers import contract
from chaoskit.drivers.python import functions


def driver() -> contract.Driver:
    return contract.Driver(
        name="python",
        summary="Call a Python function (package.module:function) as a probe or an action.",
        probes=[functions.CallProbe()],
        actions=[functions.CallAction()],
    )
