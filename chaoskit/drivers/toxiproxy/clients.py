"""A small typed client for the Toxiproxy HTTP API (chaoskit's embedded server or a real one).

One client per server URL, so an experiment can drive several servers (the ``toxiproxy-python``
package keeps one global host/port). Calls have timeouts; connection errors are retried a few
times; an error answer is raised as a ``DriverError`` that quotes what the server said.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict, cast

from chaoskit import errors

if TYPE_CHECKING:
    import httpx

    from chaoskit.drivers import contract

DEFAULT_URL = "http://127.0.0.1:8474"
TIMEOUT = 10.0
"""Seconds per API call."""
ATTEMPTS = 4
"""Tries per call when the server can't be reached (it may still be starting)."""
DEFAULT_PORTS = {"http": 80, "https": 443}


class ToxicInfo(TypedDict):
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, int]


class ProxyInfo(TypedDict):
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: list[ToxicInfo]


class ApiError(errors.DriverError):
    """The server answered with an error status."""

    def __init__(self, message: str, status: int, answer: str) -> None:
        super().__init__(message)
        self.status = status
        self.answer = answer


class Unreachable(errors.Unreachable):
    """The server could not be reached at all."""


def _q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


class Client:
    """The Toxiproxy API at ``url``."""

    def __init__(self, url: str = DEFAULT_URL, timeout: float = TIMEOUT, attempts: int = ATTEMPTS) -> None:
        self.url = url.rstrip("/")
        self._attempts = attempts
        # httpx (and through it rich and pygments) is imported only when a client is made: loading
        # the driver for `chaoskit validate` or `--help` of an experiment without toxics stays fast.
        import httpx

        # Toxiproxy answers 403 to browser user agents; httpx's default is fine, but be explicit.
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, headers={"User-Agent": "chaoskit-toxiproxy-client"}
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """One call; ``ApiError`` for an error status, ``Unreachable`` if the server can't be reached."""
        import httpx
        import tenacity

        retryable = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError)
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._attempts),
            wait=tenacity.wait_exponential(multiplier=0.2, max=2.0),
            retry=tenacity.retry_if_exception_type(retryable),
            reraise=True,
        )
        try:
            response = retrying(
                self._http.request, method, path, content=None if body is None else json.dumps(body)
            )
        except httpx.HTTPError as e:
            raise Unreachable(
                f"toxiproxy at {self.url}: {method} {path} failed: {type(e).__name__}: {e}",
                hint="start one with `chaoskit proxy serve`, or set `url:` to where yours listens",
            ) from e
        if response.status_code >= 400:
            answer = response.text.strip()
            try:
                message = str(response.json().get("error", answer))
            except (ValueError, AttributeError):
                message = answer
            raise ApiError(
                f"toxiproxy at {self.url}: {method} {path} answered {response.status_code}: {message}",
                response.status_code,
                answer,
            )
        return response

    def version(self) -> str:
        text = self.request("GET", "/version").text
        try:
            return str(json.loads(text)["version"])
        except (ValueError, KeyError, TypeError):
            return text.strip()

    def proxies(self) -> dict[str, ProxyInfo]:
        return cast(dict[str, ProxyInfo], self.request("GET", "/proxies").json())

    def proxy(self, name: str) -> ProxyInfo:
        return cast(ProxyInfo, self.request("GET", f"/proxies/{_q(name)}").json())

    def create_proxy(
        self,
        name: str,
        upstream: str,
        listen: str = "",
        enabled: bool = True,
        tls: Mapping[str, Any] | None = None,
    ) -> ProxyInfo:
        """``tls`` (chaoskit's proxy only, see docs/proxy.md): terminate TLS with these files."""
        body: dict[str, Any] = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        if tls is not None:
            body["tls"] = dict(tls)
        created = self.request("POST", "/proxies", body).json()
        if tls is not None and "tls" not in created:
            # A real Toxiproxy ignores fields it doesn't know: it made a plain TCP proxy.
            self.delete_proxy(name)
            raise errors.DriverError(
                f"toxiproxy at {self.url} can't terminate TLS (it created proxy {name!r} without it, "
                "so it was deleted again): TLS termination needs chaoskit's embedded proxy",
                hint="run `chaoskit proxy serve` and point `url:` at it",
            )
        return cast(ProxyInfo, created)

    def update_proxy(self, name: str, **fields: Any) -> ProxyInfo:
        # POST is what every server version accepts for updates (PATCH arrived in 2.6).
        return cast(ProxyInfo, self.request("POST", f"/proxies/{_q(name)}", fields).json())

    def delete_proxy(self, name: str) -> bool:
        """True if it was deleted, False if there was no such proxy."""
        return self._delete(f"/proxies/{_q(name)}")

    def add_toxic(
        self,
        proxy: str,
        type: str,
        attributes: Mapping[str, Any],
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> ToxicInfo:
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes,
        }
        if name:
            body["name"] = name
        return cast(ToxicInfo, self.request("POST", f"/proxies/{_q(proxy)}/toxics", body).json())

    def toxics(self, proxy: str) -> list[ToxicInfo]:
        return cast(list[ToxicInfo], self.request("GET", f"/proxies/{_q(proxy)}/toxics").json())

    def remove_toxic(self, proxy: str, name: str) -> bool:
        """True if it was removed, False if the toxic (or its proxy) was already gone."""
        return self._delete(f"/proxies/{_q(proxy)}/toxics/{_q(name)}")

    def reset(self) -> None:
        self.request("POST", "/reset")

    def _delete(self, path: str) -> bool:
        try:
            self.request("DELETE", path)
        except ApiError as e:
            if e.status == 404:
                return False
            raise
        return True


def client(url: str, ctx: contract.RunContext) -> Client:
    """The run's shared client for ``url``."""
    return ctx.resource(f"toxiproxy:{url}", lambda: Client(url), Client.close)


def endpoint(url: str) -> str:
    """``host:port`` of the Toxiproxy API at ``url``, as ``Action.serves`` names a listener:
    ``localhost`` is 127.0.0.1, IPv6 is in brackets, a missing port is the scheme's default."""
    parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    host = (parts.hostname or "127.0.0.1").lower()
    if host == "localhost":
        host = "127.0.0.1"
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme, 80)
    except ValueError:  # a port that is not a number: the client will say so when it is used
        return f"{host}:{parts.netloc.rpartition(':')[2]}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def server_key(url: str) -> str:
    """The API at ``url`` in lease keys: one server written two ways (``localhost``,
    ``127.0.0.1:8474/``) is one key."""
    parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    return f"{parts.scheme or 'http'}://{endpoint(url)}{parts.path.rstrip('/')}"
