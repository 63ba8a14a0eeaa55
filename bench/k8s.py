"""Benchmark: ``kubernetes.pods.delete`` of 500 pods chosen by label selector on the real API
server in KUBECONFIG (scripts/kube-up's, or any disposable cluster).

Prints the seconds taken and the API calls made, counted at the client's ``call_api``: the target
is one list call, then one delete per pod — O(n), never a get per candidate. Writes the figures
as JSON. Not a pass/fail test.

    python -m bench k8s                 (or: python -m bench.k8s --pods 500 --json out.json)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from chaoskit.drivers import contract
from chaoskit.drivers.kubernetes import clusters, pods
from chaoskit.kube import apis, kubeconfigs


def missing() -> str | None:
    if not os.environ.get("KUBECONFIG"):
        return "KUBECONFIG is not set (scripts/kube-up prints one)"
    try:
        api = apis.open_api(kubeconfigs.resolve())
        try:
            api.get("/version", what="checking the API server")
        finally:
            api.client.close()
    except Exception as e:
        return f"the API server in KUBECONFIG does not answer: {e}"
    return None


def _pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    # A node selector nothing matches keeps the pods Pending on a cluster with real nodes, so that
    # what is measured is the API work of deleting, not kubelets stopping containers.
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "nodeSelector": {"chaoskit.io/bench": "nowhere"},
            # No token: older servers refuse pods until the namespace's token secret exists.
            "automountServiceAccountToken": False,
            "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.9"}],
        },
    }


def _wait(what: str, check: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.k8s", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=500, help="pods to delete (default 500)")
    parser.add_argument(
        "--decoys", type=int, default=50, help="pods the selector must not match (default 50)"
    )
    default_json = Path(os.environ.get("CHAOSKIT_CACHE", tempfile.gettempdir())) / "bench" / "k8s.json"
    parser.add_argument(
        "--json", type=Path, default=default_json, help=f"where to write figures ({default_json})"
    )
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    why = missing()
    if why:
        print(f"k8s bench can't run: {why}", file=sys.stderr)
        return 2

    ctx = contract.RunContext(run_id=f"bench-{uuid.uuid4().hex[:8]}")
    api = clusters.api(ctx, kubeconfigs.resolve())
    namespace = f"ck-bench-{uuid.uuid4().hex[:6]}"
    api.post("/api/v1/namespaces", {"metadata": {"name": namespace}}, what="bench: namespace")
    try:
        _wait(
            "the namespace's service account",
            lambda: api.list(f"/api/v1/namespaces/{namespace}/serviceaccounts", what="bench"),
        )
        path = f"/api/v1/namespaces/{namespace}/pods"
        made = time.perf_counter()
        made_pods = [(f"victim-{i:04d}", {"bench": "delete"}) for i in range(args.pods)]
        made_pods += [(f"decoy-{i:04d}", {"bench": "keep"}) for i in range(args.decoys)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda p: api.post(path, _pod(*p), what="bench: pod"), made_pods))
        print(f"created {len(made_pods)} pods in {time.perf_counter() - made:.1f}s (not measured)")

        calls: Counter[str] = Counter()
        original = api.client.call_api

        def counting(method: str, url: str, *rest: Any, **kwargs: Any) -> Any:
            calls[method] += 1
            return original(method, url, *rest, **kwargs)

        api.client.call_api = counting
        fault = pods.PodsDelete()
        fault_args = fault.args.model_validate({"namespace": namespace, "label_selector": "bench=delete"})
        started = time.perf_counter()
        targets = fault.targets(fault_args, ctx)
        selected = time.perf_counter()
        for target in targets:
            fault.inject(fault_args, target, fault.prepare(fault_args, target, ctx), ctx)
        ended = time.perf_counter()
        api.client.call_api = original

        left = api.list(path, what="bench: check")
        victims_left = sum(1 for p in left if p["metadata"]["labels"].get("bench") == "delete")
        decoys_left = sum(1 for p in left if p["metadata"]["labels"].get("bench") == "keep")
        figures = {
            "pods": args.pods,
            "selected": len(targets),
            "seconds_total": round(ended - started, 3),
            "seconds_select": round(selected - started, 3),
            "seconds_delete": round(ended - selected, 3),
            "ms_per_pod": round(1000 * (ended - started) / max(1, len(targets)), 2),
            "api_calls": sum(calls.values()),
            "api_calls_by_method": dict(calls),
            "calls_per_pod": round(sum(calls.values()) / max(1, len(targets)), 3),
            "victims_left": victims_left,
            "decoys_left": decoys_left,
        }
        print(
            f"deleted {len(targets)} pods chosen by selector in {figures['seconds_total']}s "
            f"(select {figures['seconds_select']}s, delete {figures['seconds_delete']}s, "
            f"{figures['ms_per_pod']} ms/pod)"
        )
        print(f"API calls: {figures['api_calls']} {dict(calls)} = {figures['calls_per_pod']} per pod")
        print(f"left: {victims_left} of the selected, {decoys_left} of {args.decoys} decoys")
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")
        return 0 if victims_left == 0 and decoys_left == args.decoys else 1
    finally:
        api.delete(f"/api/v1/namespaces/{namespace}", what="bench: cleanup")
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
