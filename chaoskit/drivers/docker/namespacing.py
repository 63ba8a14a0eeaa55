"""Running iptables/tc inside a container's network namespace: with ``nsenter`` when chaoskit runs
as root on the Docker host, else in a short-lived helper container that shares the target's network
namespace with NET_ADMIN (labelled with the run id so that sweep finds it if we die meanwhile)."""

from __future__ import annotations

import enum
import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoskit.drivers import contract
from chaoskit.drivers.docker import engines
from chaoskit.errors import ComponentMissing, DriverError

DEFAULT_HELPER_IMAGE = "nicolaka/netshoot:latest"
"""Any image with ``sh``, ``iptables`` and ``tc`` will do; ``CHAOSKIT_DOCKER_HELPER_IMAGE`` overrides."""
HELPER_TIMEOUT = 60.0
_MARK = "@@chaoskit-rc="


class Mechanism(enum.Enum):
    AUTO = "auto"
    """``nsenter`` when we are root on the Docker host, else the helper container."""
    NSENTER = "nsenter"
    HELPER = "helper"


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def helper_image(given: str | None) -> str:
    return given or os.environ.get("CHAOSKIT_DOCKER_HELPER_IMAGE") or DEFAULT_HELPER_IMAGE


def local_pid(container: Any) -> int | None:
    """The container's init pid if its processes are visible here as root (the daemon is local)."""
    pid = int(container.attrs.get("State", {}).get("Pid") or 0)
    if pid <= 0 or os.geteuid() != 0 or shutil.which("nsenter") is None:
        return None
    try:
        # A remote or VM-hosted daemon reports pids of another kernel; the cgroup names the container.
        cgroup = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return None
    return pid if str(container.id) in cgroup else None


def choose(container: Any, mechanism: Mechanism) -> Mechanism:
    if mechanism is not Mechanism.AUTO:
        return mechanism
    return Mechanism.NSENTER if local_pid(container) is not None else Mechanism.HELPER


def run(
    container: Any,
    commands: Sequence[Sequence[str]],
    ctx: contract.RunContext,
    *,
    mechanism: Mechanism = Mechanism.AUTO,
    image: str | None = None,
    stop_on_error: bool = False,
) -> list[Result]:
    """Run each command in ``container``'s network namespace; every command's exit code and output.

    With ``stop_on_error`` the commands after the first failing one are not run."""
    if not commands:
        return []
    if choose(container, mechanism) is Mechanism.NSENTER:
        return _nsenter(container, commands, stop_on_error)
    return _helper(container, commands, ctx, helper_image(image), stop_on_error)


def _nsenter(container: Any, commands: Sequence[Sequence[str]], stop_on_error: bool) -> list[Result]:
    pid = local_pid(container)
    if pid is None:
        raise ComponentMissing(
            f"can't enter the network namespace of container {container.name} with nsenter",
            hint="run chaoskit as root on the Docker host, or use mechanism: helper",
        )
    results: list[Result] = []
    for argv in commands:
        tool = shutil.which(argv[0])
        if tool is None:
            raise ComponentMissing(
                f"{argv[0]} is not installed on this host",
                hint=f"install it (iptables, iproute2) or use mechanism: helper for {container.name}",
            )
        done = subprocess.run(
            ["nsenter", "-t", str(pid), "-n", tool, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=HELPER_TIMEOUT,
            check=False,
        )
        results.append(Result(tuple(argv), done.returncode, (done.stdout + done.stderr).strip()))
        if stop_on_error and done.returncode != 0:
            break
    return results


def _script(commands: Sequence[Sequence[str]], stop_on_error: bool) -> str:
    lines = []
    for argv in commands:
        line = f"{shlex.join(argv)} 2>&1; rc=$?; echo; echo {_MARK}$rc"
        if stop_on_error:
            line += '; [ "$rc" = 0 ] || exit 0'
        lines.append(line)
    return "\n".join(lines)


def _parse(commands: Sequence[Sequence[str]], logs: str) -> list[Result]:
    results: list[Result] = []
    chunks = logs.split(_MARK)
    output = chunks[0]
    for argv, chunk in zip(commands, chunks[1:], strict=False):
        code_text, _, rest = chunk.partition("\n")
        results.append(Result(tuple(argv), int(code_text.strip() or 1), output.strip()))
        output = rest
    return results


def _helper(
    container: Any,
    commands: Sequence[Sequence[str]],
    ctx: contract.RunContext,
    image: str,
    stop_on_error: bool,
) -> list[Result]:
    client = engines.client(ctx)
    try:
        client.images.get(image)
    except Exception as e:
        if engines.is_not_found(e):
            raise ComponentMissing(
                f"the network helper image {image} is not on the Docker engine",
                hint=f"docker pull {image}, or set helper_image / CHAOSKIT_DOCKER_HELPER_IMAGE to an "
                "image with sh, iptables and tc",
            ) from e
        engines.fail("looking up helper image", image, e)
    try:
        helper = client.containers.run(
            image,
            ["sh", "-c", _script(commands, stop_on_error)],
            detach=True,
            network_mode=f"container:{container.id}",
            cap_add=["NET_ADMIN", "NET_RAW"],
            labels={engines.RUN_LABEL: ctx.run_id, engines.ROLE_LABEL: "helper"},
            entrypoint=[],
        )
    except Exception as e:
        engines.fail(f"starting a network helper ({image}) for", f"container {container.name}", e)
    try:
        helper.wait(timeout=HELPER_TIMEOUT)
        logs = helper.logs().decode("utf-8", "replace")
    except Exception as e:
        engines.fail("running the network helper for", f"container {container.name}", e)
    finally:
        try:
            helper.remove(force=True)
        except Exception as e:
            if not engines.is_not_found(e):
                ctx.log(f"docker: could not remove helper container {helper.id[:12]}: {e}")
    results = _parse(commands, logs)
    if not results:
        raise DriverError(
            f"docker: the network helper ({image}) for container {container.name} ran nothing: {logs.strip()}"
        )
    return results
