"""The Docker Engine connection for one run (``DOCKER_HOST`` and docker contexts honoured), and the
translation of the SDK's errors into driver errors that name the container and the API's answer."""

from __future__ import annotations

import os
from typing import Any, NoReturn

from chaoskit.drivers import contract
from chaoskit.errors import ComponentMissing, DriverError

RUN_LABEL = "chaoskit.run-id"
"""Every object chaoskit creates carries this label, so sweep finds it without the ledger."""
ROLE_LABEL = "chaoskit.role"


def where() -> str:
    """Which engine the environment points at, for messages."""
    if os.environ.get("DOCKER_HOST"):
        return f"DOCKER_HOST={os.environ['DOCKER_HOST']}"
    if os.environ.get("DOCKER_CONTEXT"):
        return f"docker context {os.environ['DOCKER_CONTEXT']}"
    return "the current docker context (default unix:///var/run/docker.sock)"


def _connect() -> Any:
    try:
        import docker
    except ImportError as e:
        raise ComponentMissing(
            "the docker driver needs the docker SDK", hint="pip install 'chaoskit[docker]'"
        ) from e
    client = None
    try:
        client = docker.from_env()
        client.ping()
    except Exception as e:
        if client is not None:
            client.close()
        raise ComponentMissing(
            f"can't reach the Docker engine at {where()}: {e}",
            hint="start dockerd, or point DOCKER_HOST / DOCKER_CONTEXT at a running engine",
        ) from e
    return client


def client(ctx: contract.RunContext) -> Any:
    """The run's ``docker.DockerClient``, made once and closed at the end of the run."""
    return ctx.resource("docker.client", _connect, lambda c: c.close())


def is_not_found(error: BaseException) -> bool:
    import docker.errors

    return isinstance(error, docker.errors.NotFound)


def fail(doing: str, target: str, error: BaseException) -> NoReturn:
    """Raise a ``DriverError`` saying what was being done to which target and what the engine said."""
    explanation = getattr(error, "explanation", None) or str(error)
    raise DriverError(f"docker: {doing} {target} failed: {explanation}") from error
