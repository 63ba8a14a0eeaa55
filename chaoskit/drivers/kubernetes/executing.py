"""The ``kubernetes.exec`` action: run a command in the containers of selected pods, through the
API server's exec subresource (a websocket to the pod's kubelet), and report each exit code."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import Field

from chaoskit.drivers import contract, targeting
from chaoskit.drivers.kubernetes import clusters, pods
from chaoskit.durations import Duration
from chaoskit.errors import DriverError
from chaoskit.kube import apis

ERROR_CHANNEL = 3
"""The channel on which the API server sends the command's final Status (its exit code)."""


class Stream(Protocol):
    """The part of the client's ``WSClient`` an exec needs."""

    def run_forever(self, timeout: float | None = None) -> None: ...
    def is_open(self) -> bool: ...
    def read_stdout(self, timeout: float | None = None) -> str: ...
    def read_stderr(self, timeout: float | None = None) -> str: ...
    def read_channel(self, channel: int, timeout: float = 0) -> str: ...
    def close(self, **kwargs: Any) -> None: ...


def exit_code(status_text: str) -> int | None:
    """The exit code in the Status an exec ends with: 0 for Success, the ExitCode cause otherwise,
    None when the command did not finish (no Status)."""
    if not status_text.strip():
        return None
    try:
        status = json.loads(status_text)
    except ValueError as e:
        raise DriverError(f"exec: unreadable final status from the API server: {status_text[:200]!r}") from e
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message"))
    raise DriverError(f"exec failed: {status.get('message') or status_text[:200]}")


def collect(stream: Stream, timeout: float) -> dict[str, contract.JsonValue]:
    """Run an opened exec stream to its end (or ``timeout``) and gather what it said."""
    try:
        stream.run_forever(timeout=timeout)
        finished = not stream.is_open()
        stdout, stderr = stream.read_stdout(timeout=0), stream.read_stderr(timeout=0)
        status = stream.read_channel(ERROR_CHANNEL)
    finally:
        stream.close()
        # websocket-client's close() does nothing once it has read the server's close frame (the
        # end of every exec): it marks the socket closed without closing it. Shut it down here.
        shutdown = getattr(getattr(stream, "sock", None), "shutdown", None)
        if callable(shutdown):
            shutdown()
    code = exit_code(status) if finished or status else None
    return {"exit_code": code, "stdout": stdout or "", "stderr": stderr or "", "timed_out": code is None}


def open_stream(api: apis.Api, namespace: str, pod: str, container: str | None, command: list[str]) -> Stream:
    from kubernetes import client, stream

    core = client.CoreV1Api(api.client)
    kwargs: dict[str, Any] = {
        "command": command,
        "stderr": True,
        "stdin": False,
        "stdout": True,
        "tty": False,
    }
    if container:
        kwargs["container"] = container
    try:
        opened: Stream = stream.stream(
            core.connect_get_namespaced_pod_exec, pod, namespace, _preload_content=False, **kwargs
        )
    except Exception as e:
        status, body = getattr(e, "status", None), getattr(e, "body", None)
        answer = f"{status} {body}" if status else f"{type(e).__name__}: {e}"
        raise DriverError(f"exec in pod {namespace}/{pod}: the API server answered {answer}") from e
    return opened


class ExecArgs(pods.SelectedPodArgs):
    command: list[str] = Field(min_length=1)
    """The argv, e.g. ``[sh, -c, "kill 1"]``; no shell unless you ask for one."""
    container: str | None = None
    """Default the pod's first container."""
    timeout: Duration = 30.0
    """Per pod."""


class Exec(contract.Action[ExecArgs], args=ExecArgs):
    name = "kubernetes.exec"
    summary = (
        "Run a command in the selected pods' containers (needs real kubelets): per-pod exit codes and output."
    )

    def __init__(self, opener: Callable[..., Stream] = open_stream) -> None:
        self.opener = opener

    def run(self, args: ExecArgs, ctx: contract.RunContext) -> contract.ActionResult:
        api = clusters.connect(args, ctx)
        candidates = [pods.pod_target(p) for p in pods.candidate_pods(args, api)]
        chosen = targeting.choose(candidates, args, ctx.rng, what="pods")
        results: list[contract.JsonValue] = []
        for target in chosen:
            namespace = target.detail["namespace"]
            stream = self.opener(api, namespace, target.name, args.container, list(args.command))
            result = collect(stream, args.timeout)
            results.append({"pod": target.id, **result})
            ctx.log(f"exec in {target.id}: exit {result['exit_code']}")
        failed = sum(1 for r in results if isinstance(r, dict) and r.get("exit_code") != 0)
        return contract.ActionResult(output={"pods": results, "count": len(results), "failed": failed})
