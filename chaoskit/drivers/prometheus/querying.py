"""Talking to the Prometheus HTTP API through ``prometheus-api-client``: one client per server and
run, retries on connection errors, and Prometheus's own error message when it refuses a query.

``validate_query`` asks the server to parse a query without needing any data, so ``chaoskit
validate`` can refuse a typo in PromQL before anything is injected.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tenacity
from pydantic import Field, SecretStr

from chaoskit.drivers import contract
from chaoskit.drivers.prometheus import reducing
from chaoskit.durations import Duration
from chaoskit.errors import ChaoskitError, ComponentMissing, DriverError, ExitCode

T = TypeVar("T")

_API_ERROR = re.compile(r"HTTP Status Code (\d+) \((.*)\)\s*$", re.DOTALL)


class Connection(contract.Args):
    """How to reach a Prometheus server; mixed into every prometheus probe's arguments."""

    url: str = "http://127.0.0.1:9090"
    """Base URL of the server (a path prefix such as ``/prometheus`` is kept)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra HTTP headers, e.g. a tenant header for Thanos or Mimir."""
    token: SecretStr | None = None
    """Bearer token, usually ``${secrets.prometheus_token}``; never logged."""
    verify: bool | str = True
    """TLS: verify the server's certificate (``false`` to skip), or a CA bundle path."""
    timeout: Duration = 10.0
    """Give up on one HTTP request after this long."""
    retries: int = Field(default=2, ge=0, le=10)
    """How many times to retry on a connection error or timeout (with backoff)."""


class QueryError(DriverError):
    """Prometheus answered, but refused the query or the request (its own message is included)."""

    def __init__(self, message: str, *, status: int = 0, answer: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        """The HTTP status Prometheus answered with (0 when it is not an HTTP answer)."""
        self.answer = answer
        """Prometheus's own error text, e.g. ``bad_data: 1:5: parse error: unexpected ...``."""


class InvalidQuery(ChaoskitError):
    """``validate_query``: the server says the PromQL does not parse. Exit 2, like any bad file."""

    exit_code = ExitCode.INVALID


@dataclass(frozen=True)
class Sample:
    """One series of an instant result: its labels and value (None for NaN/Inf)."""

    labels: dict[str, str]
    value: float | None


@dataclass(frozen=True)
class Series:
    """One series of a range result: its labels and the values at each step, in time order."""

    labels: dict[str, str]
    values: list[float] = field(default_factory=list)


def _connect(conn: Connection) -> Any:
    try:
        import requests
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry
    except ImportError as e:
        raise ComponentMissing(
            "the prometheus driver needs prometheus-api-client", hint="pip install 'chaoskit[prometheus]'"
        ) from e
    session = requests.Session()
    session.verify = conn.verify
    headers = dict(conn.headers)
    if conn.token is not None:
        headers["Authorization"] = f"Bearer {conn.token.get_secret_value()}"
    # The adapter's own retries would also retry 5xx answers and hide Prometheus's error text; retries
    # on connection errors are ours (tenacity), so they can be bounded and cancelled.
    return PrometheusConnect(
        url=conn.url.rstrip("/"),
        headers=headers or None,
        retry=Retry(total=0, status_forcelist=[], raise_on_status=False),
        session=session,
        timeout=conn.timeout,
    )


def client(conn: Connection, ctx: contract.RunContext) -> Any:
    """The run's ``PrometheusConnect`` for this server and credentials, made once."""
    identity = json.dumps(
        [conn.url, sorted(conn.headers.items()), conn.token and conn.token.get_secret_value(), conn.verify],
        default=str,
    )
    # The key holds a digest, not the token, because resource keys may show up in debugging output.
    key = "prometheus.client:" + hashlib.sha256(identity.encode()).hexdigest()
    return ctx.resource(key, lambda: _connect(conn), lambda c: c.close())


def _api_error(error: Exception) -> tuple[int, str]:
    """Status and Prometheus's own message out of a ``PrometheusApiClientException``."""
    text = str(error)
    match = _API_ERROR.match(text)
    if not match:
        return 0, text
    status, body = int(match.group(1)), match.group(2)
    try:
        raw = ast.literal_eval(body)
        payload = json.loads(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
    except (ValueError, SyntaxError, TypeError):
        return status, body[:300]
    if isinstance(payload, dict) and payload.get("error"):
        kind = payload.get("errorType")
        return status, f"{kind}: {payload['error']}" if kind else str(payload["error"])
    return status, body[:300]


def call(conn: Connection, ctx: contract.RunContext, doing: str, request: Callable[[Any], T]) -> T:
    """Run ``request(client)``, retrying connection errors; failures become ``DriverError``s that say
    which server, what was asked, and what Prometheus answered."""
    import requests
    from prometheus_api_client.exceptions import PrometheusApiClientException

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(conn.retries + 1) | _Cancelled(ctx),
        wait=tenacity.wait_exponential(multiplier=0.25, max=2.0),
        retry=tenacity.retry_if_exception(
            lambda e: (
                isinstance(e, requests.ConnectionError | requests.Timeout)
                and not isinstance(e, requests.exceptions.SSLError)
            )
        ),
        sleep=lambda seconds: _wait(ctx, seconds),
        reraise=True,
    )
    try:
        with warnings.catch_warnings():
            if conn.verify is False:
                # The user turned verification off on purpose; urllib3 would warn on every request.
                from urllib3.exceptions import InsecureRequestWarning

                warnings.simplefilter("ignore", InsecureRequestWarning)
            return retrying(request, client(conn, ctx))
    except requests.exceptions.SSLError as e:
        raise DriverError(
            f"prometheus: {doing}: TLS verification of {conn.url} failed: {e}",
            hint="give verify: /path/to/ca.pem, or verify: false for a test server",
        ) from e
    except requests.Timeout as e:
        raise DriverError(
            f"prometheus: {doing}: {conn.url} did not answer within {conn.timeout:g}s ({_attempts(conn)})"
        ) from e
    except requests.ConnectionError as e:
        raise DriverError(
            f"prometheus: {doing}: can't reach Prometheus at {conn.url} ({_attempts(conn)}): {_root_cause(e)}"
        ) from e
    except PrometheusApiClientException as e:
        status, message = _api_error(e)
        hint = "check token / headers" if status in {401, 403} else None
        raise QueryError(
            f"prometheus: {doing}: {conn.url} answered {status}: {message}" if status else message,
            status=status,
            answer=message,
            hint=hint,
        ) from e
    except (ValueError, KeyError, TypeError) as e:
        raise DriverError(
            f"prometheus: {doing}: {conn.url} did not answer like the Prometheus API "
            f"({type(e).__name__}: {e}); is the url the server's base URL?"
        ) from e


def _attempts(conn: Connection) -> str:
    return "1 attempt" if conn.retries == 0 else f"{conn.retries + 1} attempts"


def _wait(ctx: contract.RunContext, seconds: float) -> None:
    ctx.sleep(seconds)  # returns early when the run stops; _Cancelled then ends the retries


class _Cancelled(tenacity.stop.stop_base):
    """Stop retrying as soon as the run is stopping."""

    def __init__(self, ctx: contract.RunContext) -> None:
        self.ctx = ctx

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self.ctx.cancel.is_set()


def _root_cause(error: BaseException) -> str:
    while error.__context__ is not None and error.__context__ is not error:
        error = error.__context__
    return f"{type(error).__name__}: {error}"


def _value(pair: Any) -> float | None:
    try:
        return reducing.finite(float(pair[1]))
    except (TypeError, ValueError, IndexError):
        return None


def instant(
    conn: Connection, query: str, ctx: contract.RunContext, *, at: float | None = None
) -> list[Sample]:
    """Evaluate ``query`` now (or at epoch ``at``): a sample per series; a scalar is one unlabelled one."""
    params: dict[str, str] = {} if at is None else {"time": f"{at:.3f}"}
    result = call(conn, ctx, f"query {query!r}", lambda c: c.custom_query(query, params=params))
    if isinstance(result, list) and len(result) == 2 and isinstance(result[0], int | float):
        return [Sample(labels={}, value=_value(result))]  # scalar or string result
    samples: list[Sample] = []
    for item in result or []:
        if "values" in item:
            raise QueryError(
                f"prometheus: query {query!r} returns a range vector; use prometheus.range, "
                "or wrap it in a function such as rate(...) or max_over_time(...)"
            )
        samples.append(Sample(labels=dict(item.get("metric") or {}), value=_value(item.get("value"))))
    return samples


def range_(
    conn: Connection, query: str, ctx: contract.RunContext, *, start: float, end: float, step: float
) -> list[Series]:
    """Evaluate ``query`` every ``step`` seconds from ``start`` to ``end`` (epochs)."""
    from datetime import UTC, datetime

    def request(c: Any) -> Any:
        return c.custom_query_range(
            query,
            start_time=datetime.fromtimestamp(start, UTC),
            end_time=datetime.fromtimestamp(end, UTC),
            step=f"{step:g}s",
        )

    result = call(conn, ctx, f"range query {query!r}", request)
    out: list[Series] = []
    for item in result or []:
        values = [v for v in (_value(pair) for pair in item.get("values") or []) if v is not None]
        out.append(Series(labels=dict(item.get("metric") or {}), values=values))
    return out


def validate_query(
    url: str,
    query: str,
    *,
    headers: Mapping[str, str] | None = None,
    token: str | None = None,
    verify: bool | str = True,
    timeout: float = 5.0,
) -> bool:
    """Ask the server at ``url`` whether ``query`` parses (it is evaluated at time 0, where no data
    is). True when the server accepted it; False when it could not be asked (unreachable, auth, a
    run-time template in the query); raises ``InvalidQuery`` with Prometheus's message otherwise."""
    if "${" in query or "${" in url:
        return False
    conn = Connection(
        url=url,
        headers=dict(headers or {}),
        token=SecretStr(token) if token and "${" not in token else None,
        verify=verify,
        timeout=timeout,
        retries=0,
    )
    ctx = contract.RunContext(run_id="validate")
    try:
        instant(conn, query, ctx, at=0.0)
    except QueryError as e:
        if e.status in {400, 422}:
            raise InvalidQuery(
                f"Prometheus at {url} refused the query {query!r}: {e.answer}",
                hint="fix the PromQL; the message above is Prometheus's own",
            ) from e
        return False
    except DriverError:
        return False
    finally:
        ctx.close()
    return True
