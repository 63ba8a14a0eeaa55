"""HTTP/1.1 faults for the embedded proxy: framing, matching and the ``http_*`` toxics' behaviour.

Sans-I/O: ``sessions.Session`` takes a connection's bytes as they arrive and says what to send
where and when; the proxy's data plane carries that out. See docs/proxy.md, "HTTP toxics".
"""
