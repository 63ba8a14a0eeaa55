"""``chaoskit init``: write a commented starter experiment for one named target, validated first.

Like Chaos Toolkit's ``chaos init``, but the user names the target (an HTTP URL, a Docker
container, a Kubernetes Deployment or a local process) instead of answering a questionnaire; the
scaffold is planned against the installed drivers before it is written, so it always validates.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import click

from chaoskit import errors
from chaoskit.cli import options

KINDS = ("url", "container", "deployment", "process")
"""The target flags, in the order the usage error and the prompt list them."""

_FLAGS = "--url URL, --container NAME, --deployment NAMESPACE/NAME or --process NAME"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def _q(value: str) -> str:
    """``value`` as a YAML scalar: a JSON string is a valid double-quoted YAML scalar."""
    return json.dumps(value)


@dataclass(frozen=True)
class Scaffold:
    kind: str
    target: str
    text: str


def scaffold(kind: str, target: str) -> Scaffold:
    """The experiment text for ``--<kind> <target>``; ``UsageError`` when the target is malformed."""
    builders = {"url": _http, "container": _container, "deployment": _deployment, "process": _process}
    if kind not in builders:
        raise errors.UsageError(f"unknown target kind {kind!r}", hint=f"give one of {_FLAGS}")
    # A `${` the user typed is theirs, not a chaoskit variable: `$${` is a literal `${`.
    return Scaffold(kind, target, builders[kind](target.strip().replace("${", "$${")))


_HTTP = """\
# A starter experiment written by `chaoskit init --url {url}`.
#
#   chaoskit validate {{file}}      # check it without running anything
#   chaoskit run {{file}}           # needs the service at {upstream} to be up
#
# What it does: `setup` starts chaoskit's embedded fault proxy and puts a proxy named "service" in
# front of {upstream}. The steady state is judged THROUGH that proxy (what a caller of the proxy
# sees): the health URL answers 200 and p99 latency stays under budget. The method adds 300 ms of
# latency on the proxy for 10 s, and the steady state must hold again within `recovery.within`
# once the latency is taken off (it always is: end of duration, Ctrl-C, a guard tripping).
#
# To learn how your service copes with a slow DEPENDENCY, put the proxy in front of that
# dependency instead (change `upstream:` below) and point your service at the proxy's listen
# address (127.0.0.1:${{proxy_port}}). Every argument of every activity: `chaoskit drivers NAME`.
title: {title}
description: >
  Steady state: {path} answers 200 and p99 latency stays below 500 ms. Then 300 ms of latency
  is added to the proxied link for 10 s. After it is removed the steady state must hold again
  within 30 s; the measured recovery time is reported.
tags: [http, latency, toxiproxy]

# Variables used below as ${{name}}; override any of them with `--var name=value`.
config:
  upstream: {upstream_q}
  # Ports on 127.0.0.1 for the proxy's API and for the proxied service: change them if taken.
  proxy_api: 18474
  proxy_port: 18475

# Runs first; `teardown` (and `chaoskit recover`, after a crash) undoes it: the started proxy
# server is stopped and the created proxy deleted.
setup:
  - name: start chaoskit's embedded fault proxy (or point `url:` below at a real Toxiproxy)
    action: process.start
    with:
      argv: [chaoskit, proxy, serve, --port, "${{proxy_api}}"]
      wait_for: {{url: "http://127.0.0.1:${{proxy_api}}/version"}}
      timeout: 30s
  - name: a proxy "service" in front of the target
    action: toxiproxy.proxy
    with:
      url: "http://127.0.0.1:${{proxy_api}}"
      name: service
      upstream: "${{upstream}}"
      listen: "127.0.0.1:${{proxy_port}}"

# The hypothesis: every probe must hold before the method (else nothing is injected, exit 3)
# and again after it. Tune the thresholds to your service's real budget.
steady_state:
  - name: the health URL answers 200
    probe: http.request
    with:
      url: {through}
      timeout: 2s{verify}
    expect: {{path: status, equals: 200}}
  - name: p99 latency below 500 ms, at least 99% success
    probe: http.load
    with:
      url: {through}
      requests: 100
      concurrency: 4
      timeout: 2s{verify}
    expect:
      - {{path: success_ratio, between: [0.99, 1.0]}}
      - {{path: latency_ms.p99, below: 500}}

# The faults, in order, each taken back after its `duration`. Other network faults of the same
# proxy: toxiproxy.bandwidth, toxiproxy.timeout, toxiproxy.reset_peer, toxiproxy.down (see
# `chaoskit drivers toxiproxy`).
method:
  - name: 300 ms latency on the proxied link
    fault: toxiproxy.latency
    with:
      url: "http://127.0.0.1:${{proxy_api}}"
      proxy: service
      latency: 300ms
    duration: 10s
  - name: what callers see under the latency (recorded, not judged)
    probe: http.load
    with:
      url: {through}
      duration: 5s
      concurrency: 4
      timeout: 3s{verify}

# How long the steady state may take to hold again after the last fault is taken back.
recovery: {{within: 30s, interval: 1s}}
"""
"""The ``--url`` scaffold (``str.format`` fields; ``{{`` is a literal brace)."""


def _http(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.UsageError(
            f"--url {url!r} is not an http:// or https:// URL with a host",
            hint="e.g. chaoskit init --url http://127.0.0.1:8080/health",
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise errors.UsageError(f"--url {url!r}: {e}", hint="a port is a number from 1 to 65535") from None
    host = parts.hostname
    upstream = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    # The embedded proxy forwards TCP; a certificate names the real host, not 127.0.0.1.
    verify = (
        "\n      # TLS goes through the proxy untouched, but the certificate names the real host, not"
        "\n      # 127.0.0.1: don't check it here (or put the proxy where its name resolves to it).\n"
        "      verify: false"
        if parts.scheme == "https"
        else ""
    )
    return _HTTP.format(
        url=url,
        upstream=upstream,
        upstream_q=_q(upstream),
        title=_q(f"{host} answers within its latency budget through 300 ms of added latency, and recovers"),
        path=path,
        through=_q(f"{parts.scheme}://127.0.0.1:${{proxy_port}}{path}"),
        verify=verify,
    )


def _container(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise errors.UsageError(
            f"--container {name!r} is not a container name",
            hint="give the name `docker ps` shows, e.g. chaoskit init --container web",
        )
    return f"""\
# A starter experiment written by `chaoskit init --container {name}`.
#
#   chaoskit validate {{file}}      # check it without running anything
#   chaoskit run {{file}}           # needs the Docker engine and the container to run
#
# What it does: the steady state says the container runs; the method freezes it for 10 s
# (docker pause, reverted by unpausing whatever happens: end of duration, Ctrl-C, a crash and
# `chaoskit recover`), and the steady state must hold again within `recovery.within`.
# Add a probe of what the container serves (http.request, tcp.connect) to the steady state: that
# is what tells you whether its clients rode it out. Every argument: `chaoskit drivers docker`.
title: {_q(f"The container {name} comes back after being frozen for 10 s")}
tags: [docker]

# Variables used below as ${{name}}; override with `--var container=other`.
config:
  container: {_q(name)}

# The hypothesis: every probe must hold before the method (else nothing is injected, exit 3)
# and again after it.
steady_state:
  - name: the container runs
    probe: docker.container.running
    with: {{name: "${{container}}"}}
    expect: {{path: running, equals: true}}
  # If the image has a HEALTHCHECK, judge its health too:
  # - name: the container is healthy
  #   probe: docker.container.healthy
  #   with: {{name: "${{container}}"}}
  #   expect: {{path: healthy, equals: true}}
  # And what it serves, e.g.:
  # - name: it answers on its port
  #   probe: http.request
  #   with: {{url: "http://127.0.0.1:8080/", timeout: 2s}}
  #   expect: {{path: status, equals: 200}}

# The faults, in order, each taken back after its `duration`.
method:
  - name: freeze the container for 10 s
    fault: docker.container.pause
    with: {{name: "${{container}}"}}
    duration: 10s
  # A harder one: stop it (SIGTERM, SIGKILL after `grace`), started again on revert unless
  # its restart policy brought it back first:
  # - name: stop the container for 10 s
  #   fault: docker.container.stop
  #   with: {{name: "${{container}}", grace: 10}}
  #   duration: 10s

# How long the steady state may take to hold again after the last fault is taken back.
recovery: {{within: 30s, interval: 1s}}
"""


def _deployment(target: str) -> str:
    namespace, _, name = target.rpartition("/")
    namespace = namespace or "default"
    if not (_K8S_NAME.fullmatch(namespace) and _K8S_NAME.fullmatch(name)):
        raise errors.UsageError(
            f"--deployment {target!r} is not NAMESPACE/NAME",
            hint="e.g. chaoskit init --deployment shop/web (lower-case names, as Kubernetes has them)",
        )
    return f"""\
# A starter experiment written by `chaoskit init --deployment {namespace}/{name}`.
#
#   chaoskit validate {{file}}      # check it without running anything
#   chaoskit run {{file}}           # needs a cluster in $KUBECONFIG (or ~/.kube/config)
#
# What it does: the steady state says every replica of the Deployment is available; the method
# deletes one of its pods (its ReplicaSet replaces it), and every replica must be available
# again within `recovery.within`; the measured recovery time is reported.
# CHANGE `selector` to your pods' labels: kubectl -n {namespace} get deploy {name} \\
#   -o jsonpath='{{.spec.selector.matchLabels}}'
# Every argument: `chaoskit drivers kubernetes`.
title: {_q(f"The Deployment {namespace}/{name} heals after one of its pods is deleted")}
tags: [kubernetes, pods]

# Variables used below as ${{name}}; override with `--var selector=app=shop`.
config:
  namespace: {_q(namespace)}
  deployment: {_q(name)}
  selector: {_q(f"app={name}")}

# The hypothesis: every probe must hold before the method (else nothing is injected, exit 3)
# and again after it.
steady_state:
  - name: every replica available
    probe: kubernetes.deployment.available
    with: {{namespace: "${{namespace}}", name: "${{deployment}}"}}
    expect:
      - {{path: available, above: 0}}
      - {{path: unavailable, equals: 0}}

# The faults, in order. `max_targets` refuses the run if the selector matches more pods than
# that would hit: the blast radius, checked before anything is deleted.
method:
  - name: delete one pod
    fault: kubernetes.pods.delete
    with:
      namespace: "${{namespace}}"
      label_selector: "${{selector}}"
      count: 1
      max_targets: 1

# How long the Deployment may take to have every replica available again.
recovery: {{within: 60s, interval: 1s}}
"""


def _process(name: str) -> str:
    if not name or "\n" in name:
        raise errors.UsageError(
            f"--process {name!r} is not a process name", hint="e.g. chaoskit init --process nginx"
        )
    pattern = f"^{re.escape(name)}$"
    return f"""\
# A starter experiment written by `chaoskit init --process {name}`.
#
#   chaoskit validate {{file}}      # check it without running anything
#   chaoskit run {{file}}           # needs a process named {name} on this machine
#
# What it does: the steady state says a process named {name} runs; the method freezes one of
# them for 10 s (SIGSTOP, continued with SIGCONT on revert whatever happens: end of duration,
# Ctrl-C, a crash and `chaoskit recover`); the steady state must hold again afterwards.
# Add a probe of what the process serves (http.request, tcp.connect) to the steady state: that
# is what tells you whether its clients rode it out. Every argument: `chaoskit drivers process`.
title: {_q(f"{name} carries on after being frozen for 10 s")}
tags: [process]

# Variables used below as ${{name}}. `process` is a regular expression searched in the process
# name; anchored (^...$) it matches that name exactly. `cmdline:` matches the full command line.
config:
  process: {_q(pattern)}

# The hypothesis: every probe must hold before the method (else nothing is injected, exit 3)
# and again after it.
steady_state:
  - name: the process runs
    probe: process.running
    with: {{name: "${{process}}"}}
    expect: {{path: running, equals: true}}
  # And what it serves, e.g.:
  # - name: it accepts connections
  #   probe: tcp.connect
  #   with: {{host: 127.0.0.1, port: 8080}}
  #   expect: {{path: connected, equals: true}}

# The faults, in order, each taken back after its `duration`. `max_targets` refuses the run if
# more processes match than that: the blast radius, checked before anything is touched.
method:
  - name: freeze one {name} process for 10 s
    fault: process.stop
    with: {{name: "${{process}}", count: 1, max_targets: 4}}
    duration: 10s

# How long the steady state may take to hold again after the last fault is taken back.
recovery: {{within: 30s, interval: 1s}}
"""


def validate(path: Path) -> None:
    """Plan ``path`` the way ``chaoskit validate`` does; raises ``SpecError`` when it is invalid."""
    from chaoskit.cli import loading
    from chaoskit.spec import reading

    loaded, _, _ = loading.load_and_plan(path, (), (), ())
    missing = reading.missing_secrets(loaded, dict(os.environ))
    if missing:
        raise errors.SpecError(missing)


def _interactive() -> bool:
    return sys.stdin.isatty()


def _prompt() -> tuple[str, str]:
    click.echo("What should the experiment target?", err=True)
    for number, (kind, example) in enumerate(
        zip(
            KINDS,
            ("an HTTP URL", "a Docker container", "a Kubernetes Deployment", "a local process"),
            strict=True,
        ),
        start=1,
    ):
        click.echo(f"  {number}. {example} (--{kind})", err=True)
    choice = click.prompt("Choose", type=click.IntRange(1, len(KINDS)), default=1, err=True)
    kind = KINDS[choice - 1]
    question = {
        "url": "URL (e.g. http://127.0.0.1:8080/health)",
        "container": "Container name",
        "deployment": "Deployment as NAMESPACE/NAME",
        "process": "Process name",
    }[kind]
    return kind, str(click.prompt(question, err=True))


@click.command()
@click.option("--url", help="An HTTP service: its health URL, e.g. http://127.0.0.1:8080/health.")
@click.option("--container", help="A Docker container, by name.")
@click.option("--deployment", help="A Kubernetes Deployment, as NAMESPACE/NAME.")
@click.option("--process", "process_name", help="A local process, by name.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("experiment.yaml"),
    show_default=True,
    help="Where to write it.",
)
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
def command(
    *,
    url: str | None,
    container: str | None,
    deployment: str | None,
    process_name: str | None,
    output: Path,
    force: bool,
) -> None:
    """Scaffold a commented, validated experiment for one target.

    The target is an HTTP URL, a Docker container, a Kubernetes Deployment or a local process; the
    experiment is validated as `chaoskit validate` does before it is written.

    Without a target flag it asks, when run in a terminal; otherwise that is a usage error (exit 2).
    """
    given = [
        (kind, value)
        for kind, value in zip(KINDS, (url, container, deployment, process_name), strict=True)
        if value is not None
    ]
    if len(given) > 1:
        raise errors.UsageError(
            f"give one target, not {len(given)} ({', '.join('--' + k for k, _ in given)})",
            hint="write one experiment per target, each with its own -o FILE",
        )
    if given:
        kind, target = given[0]
    elif _interactive():
        kind, target = _prompt()
    else:
        raise errors.UsageError(
            "chaoskit init needs a target",
            hint=f"give one of {_FLAGS} (e.g. --url http://127.0.0.1:8080/health)",
        )
    if output.exists() and not force:
        raise errors.UsageError(
            f"{output} already exists", hint="pick another file with -o FILE, or overwrite it with --force"
        )
    result = scaffold(kind, target)
    text = result.text.replace("{file}", str(output))
    options.check_writable("-o", output)
    directory = output.parent
    directory.mkdir(parents=True, exist_ok=True)
    # Written beside the output and renamed: validation reads a real file (so its messages name
    # lines), and a half-written or invalid scaffold never takes the output's name.
    fd, temporary = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".yaml", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        try:
            validate(Path(temporary))
        except errors.SpecError as e:
            # Named as the file the user asked for (which is left untouched), not the temporary one.
            problems = [dataclasses.replace(p, file=str(output)) for p in e.problems]
            raise errors.SpecError(problems) from None
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    click.echo(
        f"wrote {output} ({kind} {target}); next: chaoskit validate {output}, then chaoskit run {output}"
    )
