"""A small DNS responder for DNS faults: queries for the chosen names get NXDOMAIN, SERVFAIL or a
chosen IPv4 address; every other query is forwarded to the original resolver and its answer relayed.

Standard library only, run as a file like the stressor (``python -I resolver.py ...``), inside the
target's network namespace, where an iptables rule redirects port 53 to it. Its forwarded queries
carry a firewall mark (``SO_MARK``) that the rule leaves alone, so they reach the real resolver.
It prints ``ready`` once it listens, and ends on SIGTERM or at its deadline.
"""

from __future__ import annotations

import argparse
import fnmatch
import ipaddress
import signal
import socket
import struct
import sys
import threading
import time
from typing import NoReturn

SO_MARK = 36
MAX_FORWARDS = 16
"""Queries forwarded at once; more are dropped (the client asks again)."""


def question(query: bytes) -> tuple[str, int, int] | None:
    """(name, type, end offset of the question) of a query, or None when it is not one we read."""
    if len(query) < 12 or struct.unpack("!H", query[4:6])[0] != 1:
        return None
    labels, offset = [], 12
    while offset < len(query):
        length = query[offset]
        if length == 0:
            offset += 1
            break
        if length & 0xC0:  # compression has no place in a question
            return None
        labels.append(query[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    if offset + 4 > len(query):
        return None
    qtype = struct.unpack("!H", query[offset : offset + 2])[0]
    return ".".join(labels).lower().rstrip("."), qtype, offset + 4


def answer(query: bytes, end: int, qtype: int, reply: str) -> bytes:
    """The response to ``query`` (question ending at ``end``): ``nxdomain``, ``servfail`` or an IPv4
    address (an A record for A queries; no records, NOERROR, for any other type)."""
    flags = 0x8180 | (struct.unpack("!H", query[2:4])[0] & 0x0100)  # QR, RA, and the client's RD
    records = b""
    if reply == "nxdomain":
        flags |= 3
    elif reply == "servfail":
        flags |= 2
    elif qtype == 1:
        address = ipaddress.IPv4Address(reply).packed
        records = struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) + address
    header = query[:2] + struct.pack("!HHHHH", flags, 1, 1 if records else 0, 0, 0)
    return header + query[12:end] + records


def matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p.lower().rstrip(".")) for p in patterns)


def _forward(
    server: socket.socket, query: bytes, client: tuple[str, int], upstream: tuple[str, int], mark: int
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        out.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
        out.settimeout(3.0)
        try:
            out.sendto(query, upstream)
            response, _ = out.recvfrom(4096)
        except OSError:
            return  # no answer: the client times out and asks again, as with a lost packet
        server.sendto(response, client)


def serve(
    server: socket.socket,
    patterns: list[str],
    *,
    reply: str,
    upstream: tuple[str, int],
    mark: int,
    deadline: float,
) -> None:
    slots = threading.BoundedSemaphore(MAX_FORWARDS)

    def relay(query: bytes, client: tuple[str, int]) -> None:
        try:
            _forward(server, query, client, upstream, mark)
        finally:
            slots.release()

    server.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            query, client = server.recvfrom(4096)
        except TimeoutError:
            continue
        asked = question(query)
        if asked is not None and matches(asked[0], patterns):
            server.sendto(answer(query, asked[2], asked[1], reply), client)
        elif slots.acquire(blocking=False):
            threading.Thread(target=relay, args=(query, client), daemon=True).start()


def _stop(signum: int, frame: object) -> NoReturn:
    sys.exit(0)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="resolver", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", action="append", required=True, help="a name or pattern (*.example.com)")
    parser.add_argument("--answer", required=True, help="nxdomain, servfail or an IPv4 address")
    parser.add_argument("--upstream", required=True, help="the original resolver: IPv4 address[:port]")
    parser.add_argument("--mark", type=lambda text: int(text, 0), default=0x104B)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _stop)
    deadline = time.monotonic() + args.seconds
    host, _, port = args.upstream.partition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        try:
            server.bind(("0.0.0.0", args.port))
        except OSError as e:
            sys.stderr.write(f"can't listen on UDP port {args.port}: {e.strerror}\n")
            return 1
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        serve(
            server,
            args.name,
            reply=args.answer,
            upstream=(host, int(port or 53)),
            mark=args.mark,
            deadline=deadline,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
