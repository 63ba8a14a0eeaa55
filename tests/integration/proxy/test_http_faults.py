"""The driver faults ``toxiproxy.http_*``, the ``chaoskit.faults`` context managers and the pytest
fixture, against the embedded proxy and real HTTP traffic; and what a real Toxiproxy says to them."""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator

import httpx
import pydantic
import pytest

from chaoskit import errors, faults
from chaoskit.drivers import contract
from chaoskit.drivers.toxiproxy import http_toxics, sweeping, toxics
from chaoskit.proxy import servers
from tests.integration.proxy import http_upstream

pytest_plugins = ["pytester"]


@pytest.fixture
def ctx() -> Iterator[contract.RunContext]:
    context = contract.RunContext(run_id="run7")
    yield context
    context.close()


@pytest.fixture
def web_url(api: httpx.Client) -> Iterator[str]:
    with http_upstream.Server() as web:
        created = api.post("/proxies", json={"name": "web", "upstream": web.address})
        yield f"http://{created.json()['listen']}"


def ledgered(fault: contract.Fault[contract.A, contract.R], revert: contract.R) -> contract.R:
    """``revert`` as ``chaoskit recover`` reads it back: through the ledger's JSON and the model."""
    loaded = contract.load_revert(fault, json.loads(json.dumps(contract.dump_revert(revert))))
    assert isinstance(loaded, type(revert))
    return loaded


def test_http_abort_fault_injects_per_request_and_reverts_from_ledger_data(
    server: servers.ProxyServer, web_url: str, ctx: contract.RunContext
) -> None:
    fault = http_toxics.HttpAbort()
    args = http_toxics.HttpAbortArgs.model_validate(
        {"proxy": "web", "url": server.url, "status": 503, "match": {"method": "POST", "path": "/checkout"}}
    )
    (target,) = fault.targets(args, ctx)
    revert = fault.inject(args, target, fault.prepare(args, target, ctx), ctx)
    assert revert.toxic.startswith("chaoskit-run7-") and revert.toxic.endswith("-http_abort")
    with httpx.Client(base_url=web_url) as client:
        assert client.post("/checkout").status_code == 503
        assert client.get("/checkout").status_code == 200  # the method doesn't match
    assert fault.revert(ledgered(fault, revert), ctx) is contract.RevertOutcome.REVERTED
    assert fault.revert(revert, ctx) is contract.RevertOutcome.ALREADY_CLEAN
    assert httpx.post(f"{web_url}/checkout").status_code == 200


def test_http_delay_and_modify_faults_reach_the_proxy_in_its_units(
    server: servers.ProxyServer, api: httpx.Client, web_url: str, ctx: contract.RunContext
) -> None:
    delay = http_toxics.HttpDelay()
    delay_args = http_toxics.HttpDelayArgs(
        proxy="web", url=server.url, latency="1.5s", jitter="20ms", stream="upstream"
    )
    modify = http_toxics.HttpModify()
    modify_args = http_toxics.HttpModifyArgs.model_validate(
        {
            "proxy": "web",
            "url": server.url,
            "body": "{}",
            "toxicity": 0.5,
            "match": {"headers": {"X-Canary": True}},
        }
    )
    for fault, args in ((delay, delay_args), (modify, modify_args)):
        (target,) = fault.targets(args, ctx)  # type: ignore[attr-defined]
        fault.inject(args, target, fault.prepare(args, target, ctx), ctx)  # type: ignore[attr-defined]
    listed = {t["type"]: t for t in api.get("/proxies/web/toxics").json()}
    assert listed["http_delay"]["attributes"] == {"match": {}, "latency": 1500, "jitter": 20}
    assert listed["http_delay"]["stream"] == "upstream"
    assert listed["http_modify"]["attributes"]["match"] == {"headers": {"X-Canary": True}}
    assert listed["http_modify"]["toxicity"] == 0.5
    assert sorted(sweeping.sweep("run7", ctx, urls=[server.url])) == sorted(
        f"removed toxic {t['name']} from proxy web at {server.url}" for t in listed.values()
    )


def test_arguments_the_proxy_would_refuse_fail_validation_before_the_run() -> None:
    with pytest.raises(pydantic.ValidationError, match="use stream 'downstream'"):
        http_toxics.HttpModifyArgs(proxy="web", stream="upstream", truncate=3)
    with pytest.raises(pydantic.ValidationError, match="can't change 'content-length'"):
        http_toxics.HttpAbortArgs(proxy="web", headers={"Content-Length": "3"})
    with pytest.raises(pydantic.ValidationError, match="path_regex"):
        http_toxics.HttpAbortArgs.model_validate({"proxy": "web", "match": {"path_regex": "(["}})


def test_two_http_aborts_on_one_proxy_and_stream_share_a_lease() -> None:
    fault = http_toxics.HttpAbort()
    args = http_toxics.HttpAbortArgs(proxy="web", url="http://localhost:8474")
    target = contract.Target(kind="toxiproxy proxy", id="x", name="web")
    assert fault.lease(args, target) == "toxiproxy.http_abort@http://127.0.0.1:8474#web/downstream"
    assert fault.lease(args, target) != toxics.Latency().lease(
        toxics.LatencyArgs(proxy="web", url="http://localhost:8474", latency=1), target
    )


def test_library_context_managers_fault_inside_and_revert_on_exit(
    server: servers.ProxyServer, web_url: str
) -> None:
    with httpx.Client(base_url=web_url) as client:
        with faults.http_abort("web", 429, body="slow down", match={"path_prefix": "/api/"}, url=server.url):
            limited = client.get("/api/items")
            assert (limited.status_code, limited.text) == (429, "slow down")
            assert client.get("/health").status_code == 200
        assert client.get("/api/items").status_code == 200
        with faults.http_modify("web", set_headers={"X-Fault": "1"}, truncate=4, url=server.url):
            assert (client.get("/x").headers["x-fault"], len(client.get("/x").content)) == ("1", 4)
        with pytest.raises(RuntimeError), faults.http_delay("web", "10ms", url=server.url):
            raise RuntimeError("the block fails")
        assert httpx.get(f"{server.url}/proxies/web/toxics").json() == []


class _RealToxiproxy(http.server.BaseHTTPRequestHandler):
    """Answers an unknown toxic type as Toxiproxy 2.x does (api.go, ErrInvalidToxicType)."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"error":"invalid toxic type","status":400}\n'
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def real_toxiproxy() -> Iterator[str]:
    """``TOXIPROXY_URL`` when set (a real server with a proxy named ``web``), else a stand-in that
    answers as one does."""
    if url := os.environ.get("TOXIPROXY_URL"):
        with httpx.Client(base_url=url) as api:
            api.delete("/proxies/web")
            api.post("/proxies", json={"name": "web", "upstream": "127.0.0.1:9", "listen": "127.0.0.1:0"})
            yield url
            api.delete("/proxies/web")
        return
    stand_in = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RealToxiproxy)
    threading.Thread(target=stand_in.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{stand_in.server_port}"
    stand_in.shutdown()
    stand_in.server_close()


def test_a_real_toxiproxy_refusing_http_toxics_is_explained(
    real_toxiproxy: str, ctx: contract.RunContext
) -> None:
    fault = http_toxics.HttpAbort()
    args = http_toxics.HttpAbortArgs(proxy="web", url=real_toxiproxy)
    target = contract.Target(kind="toxiproxy proxy", id="x", name="web")
    with pytest.raises(errors.DriverError) as caught:
        fault.inject(args, target, fault.prepare(args, target, ctx), ctx)
    assert "has no http_abort toxic" in caught.value.message
    assert "need its embedded proxy" in caught.value.message and "invalid toxic type" in caught.value.message
    assert caught.value.hint is not None and "chaoskit proxy serve" in caught.value.hint
    with (
        pytest.raises(errors.DriverError, match="need its embedded proxy"),
        faults.http_delay("web", "1s", url=real_toxiproxy),
    ):
        pass


def test_the_pytest_fixture_applies_http_faults(pytester: pytest.Pytester) -> None:
    with http_upstream.Server() as web:
        pytester.makepyfile(
            f"""
            import httpx

            def test_checkout_survives_one_503(chaoskit_proxy, chaoskit_faults):
                address = chaoskit_proxy.add("shop", upstream="{web.address}")
                chaoskit_faults.http_abort("shop", 503, match={{"path": "/pay"}})
                assert httpx.get(f"http://{{address}}/pay").status_code == 503
                assert httpx.get(f"http://{{address}}/cart").status_code == 200
                chaoskit_faults.revert_all()
                assert httpx.get(f"http://{{address}}/pay").status_code == 200
            """
        )
        result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)
