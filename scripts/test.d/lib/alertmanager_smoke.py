#!/usr/bin/env python3
"""Runs deploy/alertmanager/alertmanager.yml in a real, short-lived Alertmanager.

    python3 scripts/test.d/lib/alertmanager_smoke.py [ALERTMANAGER_BINARY]

Starts Alertmanager on a free 127.0.0.1 port (no clustering, a temporary storage dir) with the
shipped config, its webhook URLs pointed at a receiver in this process, and checks that:
  * a MOT page reaches its owning team's webhook (path /<team>), labels intact;
  * the inhibit rule mutes that MOT's ticket while the page fires;
  * another MOT's ticket is not muted by it.
Stops Alertmanager (by its pid) before exiting, whatever happens. Exit 1 on failure.
"""

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

CONFIG = Path("deploy/alertmanager/alertmanager.yml")
PLACEHOLDER = "http://127.0.0.1:9099/"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hooks(BaseHTTPRequestHandler):
    received = []  # (path, payload)
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.lock:
            self.received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def http(method, url, payload=None):
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        body = r.read()
        return json.loads(body) if body else None


def mot_alert(alertname, severity, mot, team, owner):
    return {
        "labels": {
            "alertname": alertname,
            "severity": severity,
            "experience": "airline-departure",
            "mot": mot,
            "team": team,
            "owner": owner,
        },
        "annotations": {"summary": f"{mot} {alertname}"},
    }


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "prometheus-alertmanager"
    hook_server = HTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=hook_server.serve_forever, daemon=True).start()
    hook_base = f"http://127.0.0.1:{hook_server.server_address[1]}/"

    failures = []
    with tempfile.TemporaryDirectory(prefix="motstream-am-") as tmp:
        text = CONFIG.read_text(encoding="utf-8")
        if PLACEHOLDER not in text:
            print(f"{CONFIG}: no webhook URL under {PLACEHOLDER}", file=sys.stderr)
            return 1
        cfg = Path(tmp) / "alertmanager.yml"
        cfg.write_text(text.replace(PLACEHOLDER, hook_base), encoding="utf-8")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = open(Path(tmp) / "alertmanager.log", "w+")
        am = subprocess.Popen(
            [binary, f"--config.file={cfg}", f"--storage.path={tmp}/data", f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    urllib.request.urlopen(f"{base}/-/ready", timeout=1)
                    break
                except OSError:
                    if am.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        print("alertmanager did not start:\n" + log.read(), file=sys.stderr)
                        return 1
                    time.sleep(0.2)

            http("POST", f"{base}/api/v2/alerts", [
                mot_alert("MotPageFastBurn", "page", "bag-drop", "airport-ground-ops", "Lars Eriksen"),
                mot_alert("MotTicketFastBurn", "ticket", "bag-drop", "airport-ground-ops", "Lars Eriksen"),
                mot_alert("MotTicketFastBurn", "ticket", "security", "security-ops", "Airport Security Desk"),
            ])

            # Inhibition is evaluated when alerts are listed.
            deadline = time.monotonic() + 10
            while True:
                alerts = http("GET", f"{base}/api/v2/alerts")
                state = {(a["labels"]["alertname"], a["labels"]["mot"]): a["status"] for a in alerts}
                bag_ticket = state.get(("MotTicketFastBurn", "bag-drop"), {})
                if bag_ticket.get("inhibitedBy") or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            if not bag_ticket.get("inhibitedBy") or bag_ticket.get("state") != "suppressed":
                failures.append(f"bag-drop's ticket is not inhibited by its page: {bag_ticket}")
            sec_ticket = state.get(("MotTicketFastBurn", "security"), {})
            if sec_ticket.get("state") != "active" or sec_ticket.get("inhibitedBy"):
                failures.append(f"security's ticket should be active (another MOT's page must not mute it): {sec_ticket}")

            # The page's route waits group_wait (10s) before notifying.
            deadline = time.monotonic() + 40
            page = None
            while page is None and time.monotonic() < deadline:
                with Hooks.lock:
                    for path, payload in Hooks.received:
                        for a in payload.get("alerts", []):
                            if a["labels"].get("alertname") == "MotPageFastBurn":
                                page = (path, payload, a)
                time.sleep(0.5)
            if page is None:
                failures.append("bag-drop's page reached no webhook within 40s")
            else:
                path, payload, a = page
                if path != "/airport-ground-ops":
                    failures.append(f"bag-drop's page went to {path}, expected /airport-ground-ops")
                if payload.get("receiver") != "airport-ground-ops":
                    failures.append(f"bag-drop's page was sent by receiver {payload.get('receiver')!r}")
                if a["labels"].get("owner") != "Lars Eriksen" or a.get("status") != "firing":
                    failures.append(f"bag-drop's page arrived altered: {a}")
            with Hooks.lock:
                tickets = [(p, a["labels"]["mot"]) for p, pl in Hooks.received for a in pl.get("alerts", []) if a["labels"].get("severity") == "ticket"]
            if any(mot == "bag-drop" for _, mot in tickets):
                failures.append(f"an inhibited ticket was delivered: {tickets}")
        finally:
            am.terminate()
            try:
                am.wait(timeout=10)
            except subprocess.TimeoutExpired:
                am.kill()
                am.wait()
            hook_server.shutdown()
            log.close()

    if failures:
        print("\n".join(failures), file=sys.stderr)
        return 1
    print("ok: a page reaches its team's webhook and mutes the same MOT's ticket; other MOTs' tickets stay active")
    return 0


if __name__ == "__main__":
    sys.exit(main())
