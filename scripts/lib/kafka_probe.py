#!/usr/bin/env python3
"""Readiness probe for a Kafka broker, speaking the Kafka wire protocol directly.

    kafka_probe.py HOST:PORT [TIMEOUT_SECONDS]

Sends one Metadata request (v4: the oldest version Kafka 4.x still accepts,
non-flexible encoding, no topics, no auto-creation) and succeeds (exit 0) only
when the response lists at least one registered broker, i.e. the broker has
joined the KRaft metadata log, is unfenced and serves requests.  Prints one
line, e.g. `ok brokers=1 controller=1 cluster_id=...`.  Exit 1 otherwise, with
the reason on stderr.  Standard library only, so it needs no install and
starts fast.
"""

import socket
import struct
import sys

API_METADATA = 3
VERSION = 4
CORRELATION_ID = 0x6D6F7473  # "mots"
CLIENT_ID = b"motstream-probe"


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return bytes(buf)


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, fmt):
        size = struct.calcsize(fmt)
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos : self.pos + n].decode("utf-8", "replace")
        self.pos += n
        return s


def probe(host, port, timeout):
    body = struct.pack(">hhih", API_METADATA, VERSION, CORRELATION_ID, len(CLIENT_ID)) + CLIENT_ID
    body += struct.pack(">ib", 0, 0)  # topics: empty array; allow_auto_topic_creation: false
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", recv_exact(sock, 4))
        r = Reader(recv_exact(sock, size))
    if r.take(">i") != CORRELATION_ID:
        raise ValueError("unexpected correlation id")
    r.take(">i")  # throttle_time_ms
    brokers = []
    for _ in range(r.take(">i")):
        node_id = r.take(">i")
        bhost = r.string()
        bport = r.take(">i")
        r.string()  # rack
        brokers.append((node_id, bhost, bport))
    cluster_id = r.string()
    controller = r.take(">i")
    return brokers, cluster_id, controller


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    host, _, port = sys.argv[1].rpartition(":")
    timeout = float(sys.argv[2]) if len(sys.argv) == 3 else 2.0
    try:
        brokers, cluster_id, controller = probe(host or "127.0.0.1", int(port), timeout)
    except (OSError, ValueError, struct.error) as e:
        print(f"not ready: {e}", file=sys.stderr)
        return 1
    if not brokers:
        print("not ready: no registered brokers yet", file=sys.stderr)
        return 1
    print(f"ok brokers={len(brokers)} controller={controller} cluster_id={cluster_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
