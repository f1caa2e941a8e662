"""Shared by the dashboard's browser test and its benchmark: Debian's headless Chromium under
Selenium, the `motstream run` service on fresh ports, and events produced with kcat.

Nothing here downloads anything: Chromium and chromedriver come from apt (/usr/bin), and the
driver path is given to Selenium so that Selenium Manager is never asked to fetch one.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = os.environ.get("MOTSTREAM_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MOTSTREAM_CHROMEDRIVER", "/usr/bin/chromedriver")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Browser:
    """One headless Chromium with its own fresh profile, a 1280x800 viewport and the browser
    console log kept (for the no-console-errors check)."""

    def __init__(self, width=1280, height=800):
        self.profile = tempfile.mkdtemp(prefix="motstream-chromium-")
        o = webdriver.ChromeOptions()
        o.binary_location = CHROMIUM
        for a in (
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-extensions", "--hide-scrollbars",
            f"--window-size={width},{height}", f"--user-data-dir={self.profile}",
        ):
            o.add_argument(a)
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # Return from get() once the DOM is parsed; callers wait for what they need.
        o.page_load_strategy = "eager"
        self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=o)
        # The window size includes headless Chromium's (invisible) browser frame; the viewport,
        # which screenshots capture, is set exactly.
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.driver.set_page_load_timeout(120)
        self.driver.set_script_timeout(30)

    def console_errors(self):
        """Console messages at SEVERE since the last call (errors, CSP violations, failed loads)."""
        return [e for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]

    def quit(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


class Motstream:
    """`motstream run` on fresh loopback ports with its own consumer group and alerts topic."""

    def __init__(self, binary, brokers, topic, name, log_dir, extra=()):
        self.http_port, self.grpc_port = free_port(), free_port()
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.log = open(self.log_path, "w")
        args = [
            binary, "run", "--brokers", brokers, "--topics", topic, "--dlq-topic", f"{topic}.dlq",
            "--alerts-topic", f"{topic}.alerts", "--group-id", f"{topic}-{name}",
            "--metrics-listen", f"127.0.0.1:{self.http_port}",
            "--grpc-listen", f"127.0.0.1:{self.grpc_port}", *extra,
        ]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.http_port}"

    def wait_ready(self, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"motstream exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"motstream not ready after {timeout} s; see {self.log_path}")

    def status(self, window="1h", token=None):
        req = urllib.request.Request(self.base + f"/status?window={window}")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def tail(self, n=30):
        with open(self.log_path) as f:
            return "".join(f.readlines()[-n:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def produce(brokers, topic, events):
    """Produces (key, event dict) pairs as JSON with kcat and waits for every acknowledgement."""
    lines = "".join(f"{k}\t{json.dumps(e)}\n" for k, e in events)
    subprocess.run(
        ["kcat", "-P", "-b", brokers, "-t", topic, "-K", "\t", "-H", "content-type=application/json",
         "-X", "message.timeout.ms=20000"],
        input=lines.encode(), check=True, timeout=60,
    )


def now_ms():
    return int(time.time() * 1000)
