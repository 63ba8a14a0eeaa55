"""The server's counters, as ``/metrics`` shows them: bytes per proxy and direction (Toxiproxy's),
and the HTTP toxics' requests (``http/counting.Counters``)."""

from __future__ import annotations

from chaoskit.proxy.http import counting


class Counters:
    """Bytes per proxy and direction, added when a connection closes (as the real server does)."""

    def __init__(self) -> None:
        self.received: dict[tuple[str, str, str, str], int] = {}
        self.sent: dict[tuple[str, str, str, str], int] = {}
        self.http = counting.Counters()
        """Requests seen, matched and faulted by http_* toxics: live, not at close."""

    def add(self, key: tuple[str, str, str, str], received: int, sent: int) -> None:
        self.received[key] = self.received.get(key, 0) + received
        self.sent[key] = self.sent.get(key, 0) + sent

    def render(self) -> str:
        """Prometheus text exposition of the two counters."""
        lines: list[str] = []
        for metric, values in (
            ("toxiproxy_proxy_received_bytes_total", self.received),
            ("toxiproxy_proxy_sent_bytes_total", self.sent),
        ):
            lines.append(f"# HELP {metric} Bytes the proxy {metric.split('_')[2]} per direction.")
            lines.append(f"# TYPE {metric} counter")
            for (direction, proxy, listener, upstream), value in sorted(values.items()):
                labels = ",".join(
                    f'{k}="{counting.escape(v)}"'
                    for k, v in (
                        ("direction", direction),
                        ("listener", listener),
                        ("proxy", proxy),
                        ("upstream", upstream),
                    )
                )
                lines.append(f"{metric}{{{labels}}} {value}")
        http = (
            self.http.render() if self.http.requests or self.http.tls_refused or self.http.tls_failed else ""
        )
        return "\n".join(lines) + "\n" + http
