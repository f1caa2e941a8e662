#!/usr/bin/env python3
"""Dashboard benchmark (not a test): server CPU per connected browser and the time to render
the Experience view of a 1,000-MOT experience in headless Chromium with 100 browsers connected.

Setup: a generated catalog of one experience with 1,000 MOTs; `motstream run` (pass the release
binary) against the broker given, with its own topic; every MOT seeded with events through kcat
and `motstream loadgen` adding a steady --rate meanwhile, so the status changes every second.

Phases, each --secs long, reading the service's CPU time from /proc/PID/stat:
  1. no dashboard client (the baseline: ingest, alert engine, exporter);
  2. 1 Server-Sent Events client on /api/events?window=5m (what an open page holds);
  3. --clients SSE clients (default 100), each reading every byte as a browser would.
CPU per browser = (phase 3 - phase 1) / clients. The SSE clients stand in for browsers' network
side: 100 real Chromium tabs would not fit this machine next to the service.

Then, with the clients of phase 3 still connected, one headless Chromium opens the Experience
view and reports (from the page's own performance marks): time from navigation start to the
first rendered table, and the duration of each once-a-second re-render (data to DOM) over
--renders updates: median and max. Target < 200 ms.

Usage: python3 benches/dashboard.py --bin ~/.cache/motstream/target/release/motstream \
           --brokers 127.0.0.1:PORT [--clients 100] [--secs 20] [--rate 2000]
Needs chromium, chromium-driver, kcat and selenium (scripts/test.d/30-dashboard.sh installs
them; run it with that venv's python: ~/.cache/motstream/dashboard-venv/bin/python).
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts", "test.d", "lib"))
from browser import Browser, Motstream, now_ms, produce  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def catalog(path, n):
    lines = ["version: 1", "defaults:", "  target: 0.98", "experiences:",
             "  - id: big", "    name: A thousand Moments of Truth",
             "    manager: { name: Bench Manager, team: bench, contact: bench@example.com }",
             f"    sco: m-{n - 1:04d}", "    mots:"]
    for i in range(n):
        lines += [f"      - id: m-{i:04d}", f"        name: MOT {i:04d}",
                  f"        owner: {{ name: Owner {i % 37}, team: team-{i % 11}, contact: o{i % 37}@example.com }}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


class SseClient(threading.Thread):
    """Reads /api/events like a browser's EventSource: one connection, every byte read."""

    def __init__(self, port, window):
        super().__init__(daemon=True)
        self.port, self.window = port, window
        self.bytes = 0
        self.events = 0
        self.stop = False
        self.ok = False

    def run(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.sendall(f"GET /api/events?window={self.window} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
        while not self.stop:
            try:
                b = s.recv(1 << 16)
            except socket.timeout:
                continue
            if not b:
                break
            if not self.ok and b.startswith(b"HTTP/1.1 200"):
                self.ok = True
            self.bytes += len(b)
            self.events += b.count(b"event: status")
        s.close()


def phase(pid, secs):
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(secs)
    return (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--mots", type=int, default=1000)
    ap.add_argument("--secs", type=float, default=20)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--renders", type=int, default=10)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="motstream-dashboard-bench-")
    cat = os.path.join(tmp, "catalog.yaml")
    catalog(cat, a.mots)
    topic = f"dashboard-bench-{os.getpid()}-{time.time_ns()}"
    t = now_ms()
    seed = [(f"j{i}", {"mot_id": f"m-{i % a.mots:04d}", "event_time_ms": t - 60_000 + i,
                        "outcome": "failure" if i % 17 == 0 else "success", "duration_ms": 200 + i % 5000})
            for i in range(20 * a.mots)]
    produce(a.brokers, topic, seed)
    svc = Motstream(a.bin, a.brokers, topic, "bench", tmp, ["--catalog", cat])
    load = None
    clients = []
    b = None
    try:
        svc.wait_ready()
        load = subprocess.Popen([a.bin, "loadgen", "--brokers", a.brokers, "--topic", topic, "--catalog", cat,
                                 "--rate", str(a.rate), "--duration", "30m"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3)
        pid = svc.proc.pid
        base = phase(pid, a.secs)
        one = SseClient(svc.http_port, "5m")
        one.start()
        time.sleep(2)
        single = phase(pid, a.secs)
        one.stop = True
        clients = [SseClient(svc.http_port, "5m") for _ in range(a.clients)]
        for c in clients:
            c.start()
        time.sleep(3)
        b0 = sum(c.bytes for c in clients)
        e0 = sum(c.events for c in clients)
        t0 = time.monotonic()
        many = phase(pid, a.secs)
        dt = time.monotonic() - t0
        rate_bytes = (sum(c.bytes for c in clients) - b0) / dt / a.clients
        rate_events = (sum(c.events for c in clients) - e0) / dt / a.clients
        connected = sum(1 for c in clients if c.ok and c.is_alive())
        with open(f"/proc/{pid}/status") as f:
            rss = next(l for l in f if l.startswith("VmRSS")).split()[1]

        # Printed before the browser part, which a loaded machine can time out.
        print(f"dashboard bench: {a.mots} MOTs, {a.clients} SSE clients on /api/events?window=5m, "
              f"loadgen {a.rate:.0f} events/s, {a.secs:.0f} s per phase", flush=True)
        print(f"  service CPU, no dashboard client : {base:.3f} cores")
        print(f"  service CPU, 1 client            : {single:.3f} cores")
        print(f"  service CPU, {a.clients} clients         : {many:.3f} cores ({connected} connected)")
        print(f"  CPU per connected browser        : {1000 * (many - base) / a.clients:.2f} ms per second")
        print(f"  per client: {rate_events:.2f} status events/s, {rate_bytes / 1024:.0f} KiB/s; "
              f"service RSS {int(rss) // 1024} MiB", flush=True)
        b = Browser()
        d = b.driver
        d.get(f"{svc.base}/#/experience/big?window=5m")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not d.execute_script("return performance.getEntriesByName('first-render').length"):
            time.sleep(0.05)
        first = d.execute_script("return performance.getEntriesByName('first-render')[0]?.startTime ?? null")
        marks = d.execute_script("return Object.fromEntries(['catalog', 'first-status'].map(n => [n, performance.getEntriesByName(n)[0]?.startTime]))")
        rows = d.execute_script("return document.querySelectorAll('#mot-table tbody tr').length")
        label = d.find_element("id", "rows").text
        deadline = time.monotonic() + a.renders * 3 + 10
        while time.monotonic() < deadline and d.execute_script("return performance.getEntriesByName('render:experience').length") < a.renders + 1:
            time.sleep(0.2)
        renders = d.execute_script("return performance.getEntriesByName('render:experience').map(e => e.duration)")
        errors = b.console_errors()
    finally:
        for c in clients:
            c.stop = True
        if b:
            b.quit()
        if load:
            load.terminate()
            load.wait()
        svc.stop()

    result = {
        "mots": a.mots, "clients": a.clients, "phase_secs": a.secs, "loadgen_rate": a.rate,
        "cpu_no_clients": base, "cpu_one_client": single, "cpu_clients": many,
        "cpu_per_client": (many - base) / a.clients, "clients_connected": connected,
        "status_events_per_client_per_s": rate_events, "bytes_per_client_per_s": rate_bytes,
        "rss_kib": int(rss), "first_render_ms": first, "table_rows": rows, "rows_label": label,
        "render_ms": renders, "marks_ms": marks, "console_errors": errors,
    }
    print(f"  Experience view, headless Chromium, {a.clients} clients connected:")
    ms = lambda v: "not reached" if v is None else f"{v:.0f} ms"  # noqa: E731
    print(f"    navigation start to first rendered table: {ms(first)} ({rows} rows shown; {label}); "
          f"catalog loaded at {ms(marks.get('catalog'))}, first status received at {ms(marks.get('first-status'))}")
    if renders:
        print(f"    re-render on each update (data to DOM), {len(renders)} updates: "
              f"median {statistics.median(renders):.1f} ms, max {max(renders):.1f} ms")
    print(f"  console errors: {len(errors)}")
    out = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/motstream/target")), "dashboard.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"  written to {out}")


if __name__ == "__main__":
    main()
