"""chaoskit's embedded, Toxiproxy-compatible TCP fault proxy (``chaoskit proxy serve``).

``ProxyServer`` is the in-process server for tests and libraries; see ``servers.py``.
"""

from chaoskit.proxy.servers import ProxyServer

__all__ = ["ProxyServer"]
