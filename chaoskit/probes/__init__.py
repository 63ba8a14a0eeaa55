"""chaoskit's probes as plain typed functions, for your own code and tests: no experiment, no engine.

Each function runs one probe and returns a ``Result``: ``.value`` (the headline number or status),
``.output`` (everything the probe returned, as in a journal), ``.ok`` (whether the checks you gave
held) and ``.check`` (the deciding check, with an "expected X, got Y" message)::

    from chaoskit import probes

    health = probes.http_request("http://127.0.0.1:8080/health", equals=200)
    assert health.ok, health.check.message

    errors = probes.prometheus_query('sum(rate(http_requests_total{code=~"5.."}[1m]))', below=0.5)
    burn = probes.slo_burn_rate(errors='http_requests_total{code=~"5.."}', total="http_requests_total",
                                objective=0.999, window="10m", below=14.4)

Checks: the keywords ``equals``, ``below``, ``above``, ``between``, ``in_``, ``matches`` apply to
``.value``; ``expect=`` takes the same mapping (or list of mappings) as an experiment's ``expect:``,
where an entry without ``path`` also applies to ``.value``. Without any check, ``.ok`` is True when the
probe answered (``tcp_connect`` checks ``connected`` by default). A probe that can't run at all (an
unreachable Prometheus, a refused query) raises ``chaoskit.errors.DriverError``.
"""

from __future__ import annotations

# The library face: each function lives in the module of its kind of target, and is imported
# from here (``from chaoskit import probes; probes.http_request(...)``).
from chaoskit.probes.calling import Result
from chaoskit.probes.monitoring import alerts_firing, prometheus_query, prometheus_range, slo_burn_rate
from chaoskit.probes.network import http_load, http_request, tcp_connect
from chaoskit.probes.platforms import docker_running, kubernetes_deployment_available, kubernetes_pods_ready

__all__ = [
    "Result",
    "alerts_firing",
    "docker_running",
    "http_load",
    "http_request",
    "kubernetes_deployment_available",
    "kubernetes_pods_ready",
    "prometheus_query",
    "prometheus_range",
    "slo_burn_rate",
    "tcp_connect",
]
