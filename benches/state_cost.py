#!/usr/bin/env python3
"""State topic benchmark (not a test): what publishing and following the window state costs on a
running deployment, measured rather than inferred from the snapshot size.

Setup: a generated catalog of one experience with --mots MOTs (default 1,000); a topic with the
broker's default partitions (4 with deploy/kafka); every MOT seeded with events through kcat and
`motstream loadgen` at --rate events/s (default 2,000: every MOT busy every second). Two runs,
each with --instances instances of the release binary in one consumer group, --secs long after
they are ready and a --warm warm-up:
  1. `--state-topic true` (the default): each instance publishes its partitions' state every
     second and follows the others';
  2. `--state-topic false`: the same without it, for the CPU it costs.
Per run: each instance's CPU (cores, from /proc/PID/stat), RSS, and for run 1 the bytes each
publishes per second (`motstream_state_snapshot_bytes_total` on /metrics: encoded, before the
producer's lz4) and snapshots per second; then the state topic's size on the broker's disk
(compressed, as stored), read from the broker's data directory when --kafka-data is given.

Usage: python3 benches/state_cost.py --bin ~/.cache/motstream/target/release/motstream \
           --brokers 127.0.0.1:PORT [--kafka-data RUN_DIR/data] [--mots 1000] [--rate 2000]
Needs kcat (scripts/test.d/30-dashboard.sh installs it).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts", "test.d", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
from browser import Motstream, now_ms, produce  # noqa: E402
from dashboard import catalog, cpu_seconds  # noqa: E402


def metric(base, name):
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith(name + "_"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS")).split()[1]) // 1024


def disk_bytes(data_dir, topic):
    if not data_dir:
        return None
    total = 0
    pattern = re.compile(re.escape(topic) + r"-\d+$")
    for root, dirs, _ in os.walk(data_dir):
        for d in dirs:
            if pattern.match(d):
                for f in os.listdir(os.path.join(root, d)):
                    if f.endswith(".log"):
                        total += os.path.getsize(os.path.join(root, d, f))
    return total


def run(a, cat, state_on, tmp):
    topic = f"state-cost-{'on' if state_on else 'off'}-{os.getpid()}-{time.time_ns()}"
    t = now_ms()
    seed = [(f"j{i}", {"mot_id": f"m-{i % a.mots:04d}", "event_time_ms": t - 60_000 + i,
                        "outcome": "failure" if i % 17 == 0 else "success", "duration_ms": 200 + i % 5000})
            for i in range(5 * a.mots)]
    produce(a.brokers, topic, seed)
    svcs = []
    for i in range(a.instances):
        # One name, so one consumer group; a log directory each.
        logs = os.path.join(tmp, f"{topic}-{i}")
        os.makedirs(logs)
        svcs.append(Motstream(a.bin, a.brokers, topic, "cost", logs,
                              ["--catalog", cat, "--state-topic", "true" if state_on else "false"]))
    load = None
    try:
        for s in svcs:
            s.wait_ready()
        load = subprocess.Popen([a.bin, "loadgen", "--brokers", a.brokers, "--topic", topic, "--catalog", cat,
                                 "--rate", str(a.rate), "--duration", "30m"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(a.warm)
        c0 = [cpu_seconds(s.proc.pid) for s in svcs]
        b0 = [metric(s.base, "motstream_state_snapshot_bytes_total") for s in svcs]
        n0 = [metric(s.base, "motstream_state_snapshots_published_total") for s in svcs]
        d0 = disk_bytes(a.kafka_data, topic + ".state")
        t0 = time.monotonic()
        time.sleep(a.secs)
        dt = time.monotonic() - t0
        cpu = [(cpu_seconds(s.proc.pid) - c) / dt for s, c in zip(svcs, c0)]
        sent = [(metric(s.base, "motstream_state_snapshot_bytes_total") - b) / dt for s, b in zip(svcs, b0)]
        snaps = [(metric(s.base, "motstream_state_snapshots_published_total") - n) / dt for s, n in zip(svcs, n0)]
        d1 = disk_bytes(a.kafka_data, topic + ".state")
        rss = [rss_mib(s.proc.pid) for s in svcs]
    finally:
        if load:
            load.terminate()
            load.wait()
        for s in svcs:
            s.stop()
    disk = None if d0 is None or d1 is None else (d1 - d0) / dt
    return cpu, sent, snaps, rss, disk


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--kafka-data", help="the broker's data directory, for the state topic's size on disk")
    ap.add_argument("--mots", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--instances", type=int, default=2)
    ap.add_argument("--secs", type=float, default=30)
    ap.add_argument("--warm", type=float, default=15)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="motstream-state-cost-")
    cat = os.path.join(tmp, "catalog.yaml")
    catalog(cat, a.mots)
    print(f"state topic bench: {a.mots} MOTs, loadgen {a.rate:.0f} events/s, {a.instances} instances, "
          f"{a.secs:.0f} s measured after {a.warm:.0f} s", flush=True)
    for state_on in (True, False):
        cpu, sent, snaps, rss, disk = run(a, cat, state_on, tmp)
        label = "state topic on " if state_on else "state topic off"
        print(f"  {label}: CPU per instance {', '.join(f'{c:.3f}' for c in cpu)} cores; "
              f"RSS {', '.join(f'{r} MiB' for r in rss)}", flush=True)
        if state_on:
            print(f"    published per instance: {', '.join(f'{b / 1e6:.2f} MB/s' for b in sent)} encoded "
                  f"({', '.join(f'{n:.1f}' for n in snaps)} snapshots/s)", flush=True)
            if disk is not None:
                print(f"    state topic on the broker's disk grew {disk / 1e6:.2f} MB/s (compressed, before compaction)",
                      flush=True)


if __name__ == "__main__":
    main()
