"""``chaoskit proxy``: run the embedded Toxiproxy-compatible fault proxy, and drive any Toxiproxy
API (that one or a real Toxiproxy) with the ``toxiproxy-cli`` verbs: list, create, delete, toggle,
inspect, toxic add/update/remove."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from chaoskit import errors

if TYPE_CHECKING:
    from chaoskit.drivers.toxiproxy import clients


@click.group("proxy")
def command() -> None:
    """The embedded fault proxy, and the toxiproxy-cli verbs.

    `serve` runs chaoskit's own server (it speaks the Toxiproxy HTTP API); the other verbs drive
    that one or a real Toxiproxy at --url."""


@command.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the HTTP API listens on.")
@click.option("--port", default=8474, show_default=True, type=click.IntRange(0, 65535), help="API port.")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A JSON array of proxies to create at start (the body POST /populate takes).",
)
def serve(host: str, port: int, config: Path | None) -> None:
    """Run the embedded proxy until SIGINT or SIGTERM.

    Then it closes every proxy and connection, and exits 0."""
    from chaoskit.proxy import servers

    proxies = servers.read_config(config) if config is not None else None

    def ready(running: servers.Running) -> None:
        count = len(running.table.proxies)
        click.echo(
            f"chaoskit proxy: Toxiproxy API on http://{running.host}:{running.port}"
            + (f", {count} prox{'y' if count == 1 else 'ies'} from {config}" if config else ""),
            err=True,
        )

    # ChaoskitErrors (a bad config, a busy port) reach the CLI group, which prints them.
    with asyncio.Runner(loop_factory=servers.new_loop) as runner:
        runner.run(servers.serve(host, port, proxies, ready, source=str(config)))


# -- the toxiproxy-cli verbs, against the embedded server or a real Toxiproxy

F = TypeVar("F", bound=Callable[..., Any])

_USER_ERRORS = {400: "refused", 404: "not found", 409: "already exists"}
"""Answers that mean the request was wrong (exit 2); any other error answer is exit 4."""


def _api_options(function: F) -> F:
    function = click.option(
        "--output",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="A table for people, or the server's JSON for scripts.",
    )(function)
    return click.option(
        "--url",
        envvar="TOXIPROXY_URL",
        # The driver's default, written out: importing the driver costs ~0.1 s that `serve` needn't pay.
        default="http://127.0.0.1:8474",
        show_default=True,
        help="The Toxiproxy API (the embedded server or a real one); also $TOXIPROXY_URL.",
    )(function)


@contextmanager
def _client(
    url: str,
    what: str,
    *,
    conflict: str = "pick another name",
    refused: str = "`chaoskit drivers toxiproxy` lists each toxic's attributes",
) -> Iterator[clients.Client]:
    """A client whose failures are one message each: exit 2 when the request was wrong (no such
    proxy or toxic, a name taken, a bad attribute), exit 4 when the server failed or isn't there."""
    from chaoskit.drivers.toxiproxy import clients

    try:
        # Two tries, not the driver's four: a person waits at the terminal.
        with clients.Client(url, attempts=2) as client:
            yield client
    except clients.ApiError as e:
        answer = _answer(e)
        message = f"{what}: {answer} (HTTP {e.status} from {url})"
        if e.status in _USER_ERRORS:
            hint = {
                404: f"`chaoskit proxy list --url {url}` shows the proxies (`inspect NAME` their toxics)",
                409: conflict,
                400: refused,
            }[e.status]
            raise errors.UsageError(message, hint=hint) from None
        raise errors.DriverError(message) from None
    except clients.Unreachable as e:
        raise errors.Unreachable(
            f"{what}: no Toxiproxy API answers at {url} ({e.__cause__ or e})",
            hint="start the embedded one with `chaoskit proxy serve`, or give --url (or $TOXIPROXY_URL)",
        ) from None
    except ValueError as e:
        # A 2xx answer that isn't JSON: something else listens there (a web server, a proxy's
        # listen port rather than the API's).
        raise errors.DriverError(
            f"{what}: {url} answered, but not as a Toxiproxy API does ({e})",
            hint="--url is the API (port 8474 by default), not a proxy's listen address",
        ) from None


def _answer(e: clients.ApiError) -> str:
    """The server's own words: Toxiproxy's ``{"error": ...}``, else the start of the body."""
    try:
        body = json.loads(e.answer)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    text = " ".join(e.answer.split())
    if not text:
        return _USER_ERRORS.get(e.status, "error")
    return text if len(text) <= 200 else text[:197] + "..."


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _toxics_table(toxics: Sequence[clients.ToxicInfo]) -> str:
    rows = [("TOXIC", "TYPE", "STREAM", "TOXICITY", "ATTRIBUTES")]
    for toxic in toxics:
        attributes = " ".join(f"{k}={v}" for k, v in sorted(toxic["attributes"].items()))
        rows.append((toxic["name"], toxic["type"], toxic["stream"], f"{toxic['toxicity']:g}", attributes))
    return _table(rows)


def _show_proxy(proxy: clients.ProxyInfo, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(proxy, indent=2))
        return
    state = "enabled" if proxy["enabled"] else "disabled"
    click.echo(f"{proxy['name']}: {proxy['listen']} → {proxy['upstream']} ({state})")
    if proxy["toxics"]:
        click.echo(_toxics_table(proxy["toxics"]))
    else:
        click.echo("no toxics")


def _show_toxic(proxy: str, toxic: clients.ToxicInfo, output: str, done: str) -> None:
    if output == "json":
        click.echo(json.dumps(toxic, indent=2))
        return
    click.echo(f"{done} toxic {toxic['name']} on proxy {proxy}")
    click.echo(_toxics_table([toxic]))


def _attributes(values: tuple[str, ...]) -> dict[str, Any]:
    """``k=v`` pairs as the API's attributes: an integer (milliseconds, bytes, KB/s: see each toxic)
    or any JSON value (the ``http_*`` toxics take objects, e.g. ``match={"path": "/checkout"}``)."""
    attributes: dict[str, Any] = {}
    for value in values:
        key, sep, text = value.partition("=")
        try:
            if not sep or not key:
                raise ValueError
            attributes[key.strip()] = json.loads(text.strip())
        except ValueError:
            raise errors.UsageError(
                f"--attribute {value!r} is not KEY=VALUE with an integer or JSON value",
                hint="e.g. --attribute latency=300 (the server's units: milliseconds, bytes, KB/s), "
                '--attribute \'match={"path": "/checkout"}\', --attribute \'body="busy"\'',
            ) from None
    return attributes


@command.command("list")
@_api_options
def list_(url: str, output: str) -> None:
    """The proxies on the server.

    Each with its listen address, upstream, whether it is enabled, and how many toxics it has."""
    with _client(url, "list proxies") as client:
        proxies = client.proxies()
    ordered = [proxies[name] for name in sorted(proxies)]
    if output == "json":
        click.echo(json.dumps(ordered, indent=2))
        return
    if not ordered:
        click.echo(f"no proxies at {url} (create one with `chaoskit proxy create`)")
        return
    rows = [("NAME", "LISTEN", "UPSTREAM", "ENABLED", "TOXICS")]
    for proxy in ordered:
        rows.append(
            (
                proxy["name"],
                proxy["listen"],
                proxy["upstream"],
                "yes" if proxy["enabled"] else "no",
                str(len(proxy["toxics"])),
            )
        )
    click.echo(_table(rows))


@command.command("create")
@click.argument("name")
@click.option("--upstream", required=True, help="Where it forwards to, HOST:PORT.")
@click.option(
    "--listen",
    default="127.0.0.1:0",
    show_default=True,
    help="Where it listens, HOST:PORT; port 0 picks a free one (shown in the output).",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Terminate TLS with this PEM certificate (chain): clients speak HTTPS to the proxy, and "
    "its toxics see the requests (embedded proxy only; see docs/proxy.md). Read by the server.",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Its private key (default: in --tls-cert).",
)
@click.option(
    "--upstream-plain",
    is_flag=True,
    help="With --tls-cert: speak plain HTTP to the upstream (default: TLS, its certificate verified).",
)
@click.option(
    "--upstream-ca",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --tls-cert: the CAs (PEM) the upstream's certificate is verified with "
    "(default: the system's).",
)
@click.option(
    "--upstream-name", help="With --tls-cert: the name the upstream's certificate must carry (and SNI)."
)
@_api_options
def create(
    name: str,
    upstream: str,
    listen: str,
    *,
    tls_cert: Path | None,
    tls_key: Path | None,
    upstream_plain: bool,
    upstream_ca: Path | None,
    upstream_name: str | None,
    url: str,
    output: str,
) -> None:
    """Create proxy NAME, forwarding to --upstream HOST:PORT.

    With --tls-cert it terminates TLS, so that http_* toxics can act on HTTPS. Relative paths are
    made absolute here; the proxy server reads the files, once, when it creates the proxy."""
    tls = _tls(tls_cert, tls_key, upstream_plain, upstream_ca, upstream_name)
    conflict = f"pick another name, or `chaoskit proxy delete {name}` first"
    refused = (
        "--tls-cert, --tls-key and --upstream-ca name PEM files on the proxy server's machine "
        "(docs/proxy.md, HTTPS)"
        if tls
        else "--upstream and --listen are HOST:PORT"
    )
    with _client(url, f"create proxy {name}", conflict=conflict, refused=refused) as client:
        proxy = client.create_proxy(name, upstream, listen, tls=tls)
    if output == "json":
        click.echo(json.dumps(proxy, indent=2))
    else:
        shown = " (terminates TLS)" if "tls" in proxy else ""
        click.echo(f"created proxy {proxy['name']}: {proxy['listen']} → {proxy['upstream']}{shown}")


def _tls(
    cert: Path | None, key: Path | None, plain: bool, ca: Path | None, name: str | None
) -> dict[str, Any] | None:
    """The ``tls`` field of a new proxy from ``create``'s options (None: no TLS termination)."""
    if cert is None:
        given = [
            flag
            for flag, value in (
                ("--tls-key", key),
                ("--upstream-plain", plain),
                ("--upstream-ca", ca),
                ("--upstream-name", name),
            )
            if value
        ]
        if given:
            raise click.UsageError(
                f"{given[0]} only goes with --tls-cert (the certificate to terminate TLS with)"
            )
        return None
    tls: dict[str, Any] = {"cert": str(cert.absolute())}
    if key is not None:
        tls["key"] = str(key.absolute())
    if plain:
        tls["upstream_tls"] = False
    if ca is not None:
        tls["upstream_ca"] = str(ca.absolute())
    if name is not None:
        tls["upstream_name"] = name
    return tls


@command.command("delete")
@click.argument("name")
@_api_options
def delete(name: str, url: str, output: str) -> None:
    """Delete proxy NAME and its toxics.

    Its open connections are closed."""
    with _client(url, f"delete proxy {name}") as client:
        if not client.delete_proxy(name):
            raise errors.UsageError(
                f"delete proxy {name}: no proxy named {name!r} at {url}",
                hint=f"`chaoskit proxy list --url {url}` shows the proxies",
            )
    click.echo(json.dumps({"deleted": name}) if output == "json" else f"deleted proxy {name}")


@command.command("toggle")
@click.argument("name")
@_api_options
def toggle(name: str, url: str, output: str) -> None:
    """Disable proxy NAME, or enable it if disabled.

    Disabling closes its listener and its open connections."""
    with _client(url, f"toggle proxy {name}") as client:
        enabled = client.proxy(name)["enabled"]
        proxy = client.update_proxy(name, enabled=not enabled)
    if output == "json":
        click.echo(json.dumps(proxy, indent=2))
    else:
        click.echo(f"proxy {name} is now {'enabled' if proxy['enabled'] else 'disabled'}")


@command.command("inspect")
@click.argument("name")
@_api_options
def inspect(name: str, url: str, output: str) -> None:
    """Show proxy NAME and its toxics.

    Its addresses, whether it is enabled, and each toxic with its stream, toxicity and attributes."""
    with _client(url, f"inspect proxy {name}") as client:
        proxy = client.proxy(name)
    _show_proxy(proxy, output)


@command.group("toxic")
def toxic() -> None:
    """Add, update and remove the toxics of a proxy."""


@toxic.command("add")
@click.argument("name")
@click.option(
    "--type", "type_", required=True, help="latency, bandwidth, slow_close, timeout, reset_peer, ..."
)
@click.option("-a", "--attribute", "attribute", multiple=True, metavar="KEY=VALUE", help="Repeatable.")
@click.option(
    "--toxicity",
    type=click.FloatRange(0, 1),
    default=1.0,
    show_default=True,
    help="Share of connections hit.",
)
@click.option(
    "--downstream/--upstream",
    "downstream",
    default=True,
    help="Server → client (default), or client → server.",
)
@click.option("--toxic-name", help="Its name; default TYPE_STREAM, as Toxiproxy names it.")
@_api_options
def toxic_add(
    *,
    name: str,
    type_: str,
    attribute: tuple[str, ...],
    toxicity: float,
    downstream: bool,
    toxic_name: str | None,
    url: str,
    output: str,
) -> None:
    """Add a toxic to proxy NAME, e.g. `--type latency -a latency=300 -a jitter=50`."""
    attributes = _attributes(attribute)
    stream = "downstream" if downstream else "upstream"
    conflict = "give it another --toxic-name, or change the one there with `chaoskit proxy toxic update`"
    with _client(url, f"add a {type_} toxic to proxy {name}", conflict=conflict) as client:
        added = client.add_toxic(name, type_, attributes, name=toxic_name, stream=stream, toxicity=toxicity)
    _show_toxic(name, added, output, "added")


@toxic.command("update")
@click.argument("name")
@click.option("--toxic-name", required=True, help="The toxic to change (`chaoskit proxy inspect NAME`).")
@click.option(
    "-a",
    "--attribute",
    "attribute",
    multiple=True,
    metavar="KEY=VALUE",
    help="Repeatable; others keep their values.",
)
@click.option("--toxicity", type=click.FloatRange(0, 1), help="A new share of connections hit.")
@_api_options
def toxic_update(
    *, name: str, toxic_name: str, attribute: tuple[str, ...], toxicity: float | None, url: str, output: str
) -> None:
    """Change attributes (or the toxicity) of toxic --toxic-name on proxy NAME."""
    attributes = _attributes(attribute)
    if not attributes and toxicity is None:
        raise errors.UsageError(
            "toxic update: nothing to change", hint="give --attribute KEY=INTEGER (repeatable) or --toxicity"
        )
    body: dict[str, Any] = {"attributes": attributes}
    if toxicity is not None:
        body["toxicity"] = toxicity
    path = f"/proxies/{_quote(name)}/toxics/{_quote(toxic_name)}"
    with _client(url, f"update toxic {toxic_name} of proxy {name}") as client:
        updated = cast("clients.ToxicInfo", client.request("POST", path, body).json())
    _show_toxic(name, updated, output, "updated")


@toxic.command("remove")
@click.argument("name")
@click.option("--toxic-name", required=True, help="The toxic to remove (`chaoskit proxy inspect NAME`).")
@_api_options
def toxic_remove(name: str, toxic_name: str, url: str, output: str) -> None:
    """Remove toxic --toxic-name from proxy NAME."""
    with _client(url, f"remove toxic {toxic_name} from proxy {name}") as client:
        # A 404 here may be the proxy or the toxic: ask which, to say which.
        client.proxy(name)
        if not client.remove_toxic(name, toxic_name):
            raise errors.UsageError(
                f"remove toxic {toxic_name} from proxy {name}: proxy {name} has no toxic {toxic_name!r}",
                hint=f"`chaoskit proxy inspect {name} --url {url}` lists its toxics",
            )
    if output == "json":
        click.echo(json.dumps({"removed": toxic_name, "proxy": name}))
    else:
        click.echo(f"removed toxic {toxic_name} from proxy {name}")


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")
