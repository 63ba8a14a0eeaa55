"""What the ``http_*`` toxics count, live, for ``/metrics``: requests per proxy, and per proxy and
toxic the requests each saw, matched and faulted (so that an experiment can measure retry
amplification: requests at the proxy per client request)."""

from __future__ import annotations


class Counters:
    """Requests seen per proxy, and seen, matched and faulted per proxy and toxic. Live: an
    experiment reads them while a fault runs (retry amplification = requests at the proxy per
    client request)."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.seen: dict[tuple[str, str], int] = {}
        self.matched: dict[tuple[str, str], int] = {}
        self.faulted: dict[tuple[str, str], int] = {}
        self.tls_refused: dict[str, int] = {}
        self.tls_failed: dict[tuple[str, str], int] = {}
        """Handshakes of a proxy that terminates TLS that failed, by proxy and side (``http/tls.py``)."""

    @staticmethod
    def add(counts: dict[tuple[str, str], int], key: tuple[str, str]) -> None:
        counts[key] = counts.get(key, 0) + 1

    def render(self) -> str:
        """The counters in Prometheus text form."""
        lines: list[str] = []
        for metric, help_text, per_proxy in (
            ("chaoskit_proxy_http_requests_total", "HTTP requests the proxy parsed", self.requests),
            ("chaoskit_proxy_http_tls_refused_total", "TLS connections refused", self.tls_refused),
        ):
            lines += [f"# HELP {metric} {help_text}.", f"# TYPE {metric} counter"]
            lines += [f'{metric}{{proxy="{escape(p)}"}} {n}' for p, n in sorted(per_proxy.items())]
        if self.tls_failed:
            metric = "chaoskit_proxy_tls_handshake_failed_total"
            lines += [f"# HELP {metric} TLS handshakes that failed, with the client or the upstream."]
            lines += [f"# TYPE {metric} counter"]
            lines += [
                f'{metric}{{proxy="{escape(p)}",side="{side}"}} {n}'
                for (p, side), n in sorted(self.tls_failed.items())
            ]
        for what, counts in (("seen", self.seen), ("matched", self.matched), ("faulted", self.faulted)):
            metric = f"chaoskit_proxy_http_toxic_{what}_total"
            lines += [f"# HELP {metric} HTTP requests an http_* toxic {what}.", f"# TYPE {metric} counter"]
            lines += [
                f'{metric}{{proxy="{escape(p)}",toxic="{escape(t)}"}} {n}'
                for (p, t), n in sorted(counts.items())
            ]
        return "\n".join(lines) + "\n"


def escape(value: str) -> str:
    """A Prometheus label value, escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
