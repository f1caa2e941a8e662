"""The dashboard in a real browser against `motstream run` fed through the real broker.

Checks, each printed as ok/FAIL: every view loads and renders without console errors (CSP
violations included); the numbers on the page equal the gRPC API's (`motstream mot get` and
`motstream experience get`, i.e. GetMot and GetExperience) and /status for the same window; an
journey funnel and a MOT's channels equal
GetExperience's and GetMot's, and the funnel equals the baseline's truth; an
incident (bag-drop failing 60%) turns its row red and shows the firing alert within 3 s; a
hostile MOT id shows up as text in Unidentified MOTs and runs nothing; with a token configured
the page and its data are refused without it. Screenshots of each view at 1280x800 go to
--shots (not committed).

Usage: dashboard_test.py --bin target/debug/motstream --brokers 127.0.0.1:PORT --shots DIR
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

sys.path.insert(0, os.path.dirname(__file__))
from browser import Browser, Motstream, now_ms, produce  # noqa: E402

HOSTILE = "<img src=x onerror=alert(1)>"
WINDOW = "1h"
EXP = "airline-departure"
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f"\n     | {detail}"), flush=True)
    if not ok:
        failures.append(name)
    return ok


def wait_for(fn, timeout, step=0.05):
    """Polls fn until it returns a truthy value or the timeout passes; returns the last value."""
    deadline = time.monotonic() + timeout
    v = fn()
    while not v and time.monotonic() < deadline:
        time.sleep(step)
        v = fn()
    return v


def rendered_after(driver, t_ms):
    """The page has rendered a status computed at or after t_ms."""
    v = driver.execute_script("return document.body.dataset.rendered || ''")
    return v and int(v) >= t_ms


def pct(r, digits=2):
    return "\u2014" if r is None else f"{r * 100:.{digits}f}%"


def count(n):
    return f"{n:,}"


def cli(binary, grpc, *args):
    out = subprocess.run([binary, *args, "--server", f"http://127.0.0.1:{grpc}", "--output", "json"],
                         capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


CHANNELS = ["web", "app", "kiosk"]
ABANDONED = 12
STOPS = 3


def baseline_events(catalog):
    """60 journeys through the airline departure MOTs, 1 in 25 interactions failing, on three
    channels; then ABANDONED journeys that stopped after the first, second or third MOT long
    enough ago (4.5 min: inside the 5-minute lateness, past the catalog's 3-minute journey
    timeout) that the service closes them as abandoned on its next tick."""
    exp = next(e for e in catalog["experiences"] if e["id"] == EXP)
    t = now_ms() - 90_000
    out, k = [], 0
    for j in range(60):
        jid = f"j-base-{j}"
        for m in exp["mots"]:
            k += 1
            # One failure per MOT in 60 journeys: under every MOT's error budget.
            fail = j == 7 * exp["mots"].index(m) + 3
            e = {"mot_id": m, "experience_id": EXP, "journey_id": jid, "event_time_ms": t + k * 50,
                 "outcome": "failure" if fail else "success", "channel": CHANNELS[k % 3],
                 "duration_ms": 1000 + (k * 37) % 9000}
            if fail:
                e["failure_reason"] = "timeout"
            out.append((jid, e))
    t = now_ms() - 270_000
    for j in range(ABANDONED):
        jid = f"j-gone-{j}"
        for i, m in enumerate(exp["mots"][: j % STOPS + 1]):
            out.append((jid, {"mot_id": m, "experience_id": EXP, "journey_id": jid,
                              "event_time_ms": t + j * 500 + i * 100, "outcome": "success", "channel": "web"}))
    return out


def expected_funnel(catalog):
    """The baseline's funnel by construction: (reached, abandoned here) per MOT in journey order."""
    mots = next(e for e in catalog["experiences"] if e["id"] == EXP)["mots"]
    out = []
    for i, m in enumerate(mots):
        gone = [j for j in range(ABANDONED) if j % STOPS + 1 > i]
        here = [j for j in range(ABANDONED) if j % STOPS == i]
        out.append({"mot_id": m, "journeys_reached": 60 + len(gone), "journeys_abandoned_here": len(here)})
    return out


def funnel_rows(driver):
    return driver.execute_script("""
        return [...document.querySelectorAll('#funnel-table tbody tr')].map(tr => ({
          mot: tr.dataset.mot,
          reached: tr.querySelector('[data-field=journeys_reached]').textContent,
          here: tr.querySelector('[data-field=journeys_abandoned_here]').textContent,
        }));""")


def channel_rows(driver):
    return driver.execute_script("""
        return [...document.querySelectorAll('#channels-table tbody tr')].map(tr => ({
          channel: tr.dataset.channel,
          amount: tr.querySelector('[data-field=amount]').textContent,
          smoto_rate: tr.querySelector('[data-field=smoto_rate]').textContent,
          failures: tr.querySelector('[data-field=failures]').textContent,
        }));""")


def table_rows(driver):
    return driver.execute_script("""
        return [...document.querySelectorAll('#mot-table tbody tr')].map(tr => ({
          mot: tr.dataset.mot, state: tr.dataset.state,
          label: tr.querySelector('.badge').textContent,
          amount: tr.querySelector('[data-field=amount]').textContent,
          ratio: tr.querySelector('[data-field=ratio] .v').textContent,
          impact: tr.querySelector('[data-field=impact]').textContent,
        }));""")


def tiles(driver):
    return driver.execute_script("""
        const o = {};
        for (const t of document.querySelectorAll('[data-field]')) if (t.querySelector('.v')) o[t.dataset.field] = t.querySelector('.v').textContent;
        return o;""")


def load(d, url):
    """Opens url and waits until the page has rendered a status computed after the request."""
    t = now_ms()
    d.get(url)
    wait_for(lambda: rendered_after(d, t), 10)


def read_until_equal(read, tries=3):
    """Calls read() (a tuple: the page's view and the APIs') until all parts are equal, at most
    `tries` times: the numbers are live, and a journey may close between the reads."""
    got = read()
    for _ in range(tries - 1):
        if all(g == got[0] for g in got):
            break
        got = read()
    return got


def fmt(f, key="mot_id"):
    """A funnel step as the page shows it."""
    return {"mot_id": f[key], "journeys_reached": count(f["journeys_reached"]),
            "journeys_abandoned_here": count(f["journeys_abandoned_here"])}


def fmt_channel(name, c):
    """A channel row as the page shows it."""
    return {"channel": name, "amount": count(c["amount"]), "smoto_rate": pct(c["smoto_rate"]),
            "failures": count(c["failures"])}


def compare_funnel(b, svc, binary, catalog):
    """The funnel on the page equals GetExperience's and /status's, and the baseline's truth."""
    d = b.driver
    truth = expected_funnel(catalog)
    exp = None

    def read():
        nonlocal exp
        load(d, f"{svc.base}/#/experience/{EXP}?window={WINDOW}")
        shown = [{"mot_id": r["mot"], "journeys_reached": r["reached"], "journeys_abandoned_here": r["here"]}
                 for r in funnel_rows(d)]
        exp = cli(binary, svc.grpc_port, "experience", "get", EXP, "--window", WINDOW)
        status = next(e for e in svc.status(WINDOW)["experiences"] if e["experience"] == EXP)
        return shown, [fmt(f) for f in exp["funnel"]], [fmt(f, "mot") for f in status["funnel"]]

    shown, want, want_status = read_until_equal(read)
    check(f"Experience view's journey funnel equals GetExperience's and /status's ({len(shown)} steps)",
          shown == want == want_status and len(shown) > 0,
          f"page {shown}, GetExperience {want}, /status {want_status}")
    check("the funnel is the baseline's truth: 60 journeys reach every MOT, the abandoned ones stop where they stopped",
          [fmt(f) for f in truth] == want, f"truth {[fmt(f) for f in truth]}, GetExperience {want}")
    check("abandoned here adds up to journeys abandoned",
          sum(f["journeys_abandoned_here"] for f in exp["funnel"]) == exp["journeys_abandoned"],
          f"funnel {exp['funnel']}, abandoned {exp['journeys_abandoned']}")


def compare_channels(b, svc, binary, mot):
    """The MOT view's channel table equals GetMot's channels and its 'other'."""
    d = b.driver

    def read():
        load(d, f"{svc.base}/#/mot/{mot}?window={WINDOW}")
        got = cli(binary, svc.grpc_port, "mot", "get", mot, "--window", WINDOW)["windows"][0]
        want = [fmt_channel(c["channel"], c) for c in got["channels"]]
        other = got.get("channels_other") or {}
        if other.get("amount"):
            want.append(fmt_channel("Other", other))
        return channel_rows(d), want

    shown, want = read_until_equal(read)
    check(f"MOT view's channel table equals GetMot's channels ({mot}: {len(want)} rows)",
          shown == want and len(want) > 0, f"page {shown}, GetMot {want}")


def compare_numbers(b, svc, binary):
    d = b.driver
    t = now_ms()
    d.get(f"{svc.base}/#/experience/{EXP}?window={WINDOW}")
    wait_for(lambda: rendered_after(d, t), 10)
    rows = {r["mot"]: r for r in table_rows(d)}
    page_tiles = tiles(d)
    exp = cli(binary, svc.grpc_port, "experience", "get", EXP, "--window", WINDOW)
    status = svc.status(WINDOW)
    by_mot = {m["mot"]: m for m in status["mots"]}
    bad = []
    for m in exp["mots"]:
        r = rows.get(m["mot_id"])
        got = cli(binary, svc.grpc_port, "mot", "get", m["mot_id"], "--window", WINDOW)["windows"][0]
        want = {"amount": count(got["amount"]), "ratio": pct(got["smoto_rate"]), "impact": pct(got["impact"], 1)}
        want_exp = {"amount": count(m["amount"]), "ratio": pct(m["ratio"]), "impact": pct(m["impact"], 1)}
        s = by_mot[m["mot_id"]]
        want_status = {"amount": count(s["amount"]), "ratio": pct(s["smoto_rate"]), "impact": pct(s["impact"] or 0, 1)}
        shown = {k: r[k] for k in want} if r else None
        if not (shown == want == want_exp == want_status):
            bad.append(f"{m['mot_id']}: page {shown}, GetMot {want}, GetExperience {want_exp}, /status {want_status}")
    check(f"Experience view's MOT table equals GetMot, GetExperience and /status ({len(exp['mots'])} MOTs, window {WINDOW})",
          not bad and len(rows) == len(exp["mots"]), "; ".join(bad) or f"rows {list(rows)}")
    want_tiles = {"sco_rate": pct(exp["sco_rate"]), "journeys_started": count(exp["journeys_started"]),
                  "journeys_completed": count(exp["journeys_completed"]),
                  "journeys_abandoned": count(exp["journeys_abandoned"])}
    shown = {k: page_tiles.get(k) for k in want_tiles}
    check("Experience view's SCO rate and journeys equal GetExperience", shown == want_tiles,
          f"page {shown}, GetExperience {want_tiles}")
    d.get(f"{svc.base}/#/mot/bag-drop?window={WINDOW}")
    t = now_ms()
    wait_for(lambda: rendered_after(d, t), 10)
    got = cli(binary, svc.grpc_port, "mot", "get", "bag-drop", "--window", WINDOW)["windows"][0]
    mt = tiles(d)
    want = {"smoto_rate": pct(got["smoto_rate"]), "error_budget_remaining": pct(got["error_budget_remaining"], 1),
            "burn_rate": f"{got['burn_rate']:.2f}\u00d7", "amount": f"{count(got['successes'])} / {count(got['failures'])}"}
    shown = {k: mt.get(k) for k in want}
    check("MOT view equals GetMot (SMOTO rate, budget left, burn rate, magic / misery)", shown == want,
          f"page {shown}, GetMot {want}")


def incident(b, svc, brokers, topic):
    d = b.driver
    t = now_ms()
    d.get(f"{svc.base}/#/experience/{EXP}?window=5m")
    wait_for(lambda: rendered_after(d, t), 10)
    before = {r["mot"]: r for r in table_rows(d)}
    check("bag-drop's row is not red before the incident", before.get("bag-drop", {}).get("state") != "red",
          str(before.get("bag-drop")))
    t = now_ms()
    events = []
    for i in range(200):
        fail = i % 5 < 3
        jid = f"j-incident-{i}"
        e = {"mot_id": "bag-drop", "journey_id": jid, "event_time_ms": t - 20_000 + i * 100,
             "outcome": "failure" if fail else "success", "channel": "kiosk"}
        if fail:
            e["failure_reason"] = "kiosk-printer-jam"
        events.append((jid, e))
    produce(brokers, topic, events)
    acked = time.monotonic()

    def red_and_firing():
        r = next((r for r in table_rows(d) if r["mot"] == "bag-drop"), None)
        return r if r and r["state"] == "red" and "alert firing" in r["label"] else None

    r = wait_for(red_and_firing, 10)
    took = time.monotonic() - acked
    check(f"incident: bag-drop at 60% failures turns red with its alert firing {took:.2f} s after the events were acknowledged (limit 3 s)",
          bool(r) and took <= 3.0, f"row {r}, after {took:.2f} s")
    d.get(f"{svc.base}/#/alerts?window=5m")
    firing = wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "tr[data-mot='bag-drop'][data-alert-state='firing']"), 5)
    check("Alerts view lists bag-drop's firing alert", bool(firing))


def hostile(b, svc, brokers, topic):
    d = b.driver
    produce(brokers, topic, [("j-hostile", {"mot_id": HOSTILE, "event_time_ms": now_ms(), "outcome": "failure",
                                             "failure_reason": "<script>alert(2)</script>", "channel": "<b>kiosk</b>"})])
    d.get(f"{svc.base}/#/unidentified?window=5m")
    cells = []

    def shown():
        # Read in one script: the rows are rebuilt every second, so element handles go stale.
        cells[:] = d.execute_script("return [...document.querySelectorAll('td.unid-id')].map(c => c.textContent)")
        return HOSTILE in cells

    wait_for(shown, 10)
    check("hostile MOT id shows as text in Unidentified MOTs", HOSTILE in cells, f"cells {cells}")
    imgs = d.execute_script("return document.querySelectorAll('img').length")
    try:
        d.switch_to.alert
        dialog = True
    except NoAlertPresentException:
        dialog = False
    snippet = d.execute_script("return [...document.querySelectorAll('pre.yaml')].map(p => p.textContent).join('\\n')")
    check("the hostile id made no element and ran no script", imgs == 0 and not dialog,
          f"img elements {imgs}, alert dialog {dialog}")
    check("the catalog snippet quotes the hostile id", json.dumps(HOSTILE) in snippet, snippet)


def tour(b, svc, shots):
    d = b.driver
    b.console_errors()
    views = [("enterprise", "#/enterprise"), ("experience", f"#/experience/{EXP}"), ("mot", "#/mot/bag-drop"),
             ("alerts", "#/alerts"), ("unidentified", "#/unidentified")]
    for name, route in views:
        t = now_ms()
        d.get(f"{svc.base}/{route}?window=5m")
        ok = wait_for(lambda: rendered_after(d, t), 10)
        title = d.find_elements(By.ID, "view-title")
        if name == "mot":
            # The chart draws once its series has arrived.
            wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "#chart canvas"), 5)
            time.sleep(0.3)
        errors = b.console_errors()
        check(f"view {name} renders live data without console errors", bool(ok) and bool(title) and not errors,
              f"rendered {ok}, title {bool(title)}, console {errors}")
        # The previous view was scrolled to its lower section; a new view opens at its top.
        top = d.execute_script("return window.scrollY")
        check(f"view {name} opens at its top", top == 0, f"scrollY {top}")
        path = os.path.join(shots, f"{name}.png")
        d.save_screenshot(path)
        # The sections below the fold get a screenshot of their own.
        for section in {"experience": ["funnel"], "mot": ["channels"]}.get(name, []):
            d.execute_script(f"document.getElementById('{section}').scrollIntoView()")
            time.sleep(0.2)
            d.save_screenshot(os.path.join(shots, f"{name}-{section}.png"))
    size = d.execute_script("return [innerWidth, innerHeight]")
    check("screenshots are 1280x800", size == [1280, 800], str(size))
    # Deep links survive a reload and the window selector changes the route.
    d.get(f"{svc.base}/#/experience/{EXP}?window=24h")
    wait_for(lambda: d.execute_script("return document.getElementById('window').value") == "24h", 5)
    wait_for(lambda: "10 min" in d.find_element(By.ID, "resolution").text, 5)
    res = d.find_element(By.ID, "resolution").text
    check("a deep link selects its window (24h) and shows its resolution (10 min)", "10 min" in res, res)


def token_refusal(binary, brokers, topic, logs):
    token = f"dash-{os.getpid()}-{time.time_ns()}"
    path = os.path.join(logs, "token")
    with open(path, "w") as f:
        f.write(token + "\n")
    svc = Motstream(binary, brokers, topic, "token", logs, ["--grpc-token-file", path])
    b = None
    try:
        svc.wait_ready()
        refused = []
        for p in ["/", "/api/catalog", "/api/status?window=5m", "/api/events?window=5m", f"/?token={token}x"]:
            try:
                urllib.request.urlopen(svc.base + p, timeout=5)
                refused.append((p, 200))
            except urllib.error.HTTPError as e:
                refused.append((p, e.code))
        check("with a token configured the page and its data are refused without it (401)",
              all(c == 401 for _, c in refused), str(refused))
        b = Browser()
        b.driver.get(svc.base + "/")
        body = b.driver.find_element(By.TAG_NAME, "body").text
        check("the browser without the token sees the refusal", "401" in body, body[:200])
        b.console_errors()
        t = now_ms()
        b.driver.get(f"{svc.base}/?token={token}#/enterprise")
        ok = wait_for(lambda: rendered_after(b.driver, t), 10)
        check("with ?token= the page loads, keeps the token for its data and live feed", bool(ok))
    finally:
        if b:
            b.quit()
        svc.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--shots", required=True)
    a = ap.parse_args()
    os.makedirs(a.shots, exist_ok=True)
    logs = tempfile.mkdtemp(prefix="motstream-dashboard-")
    topic = f"dashboard-{os.getpid()}-{time.time_ns()}"
    # The first event creates the topic, so that the service finds it at start.
    produce(a.brokers, topic, [("j-warm", {"mot_id": "warmup-probe", "event_time_ms": now_ms(), "outcome": "success"})])
    svc = Motstream(a.bin, a.brokers, topic, "plain", logs)
    b = None
    try:
        svc.wait_ready()
        with urllib.request.urlopen(svc.base + "/api/catalog", timeout=5) as r:
            catalog = json.load(r)
        events = baseline_events(catalog)
        produce(a.brokers, topic, events)
        total = wait_for(lambda: sum(m["amount"] for m in svc.status(WINDOW)["mots"]) == len(events), 20)
        check(f"the service applied the {len(events)} baseline events", bool(total))
        abandoned = wait_for(lambda: next(e for e in svc.status(WINDOW)["experiences"]
                                           if e["experience"] == EXP)["journeys_abandoned"] >= ABANDONED, 20)
        check(f"the service closed the {ABANDONED} idle journeys as abandoned", bool(abandoned))
        b = Browser()
        compare_numbers(b, svc, a.bin)
        compare_funnel(b, svc, a.bin, catalog)
        compare_channels(b, svc, a.bin, "bag-drop")
        incident(b, svc, a.brokers, topic)
        hostile(b, svc, a.brokers, topic)
        tour(b, svc, a.shots)
    except Exception as e:  # a crash of the test is a failure with the service's log
        check("dashboard test ran to the end", False, repr(e))
    finally:
        if b:
            b.quit()
        svc.stop()
    if failures:
        print("--- service log (tail)\n" + svc.tail())
    token_refusal(a.bin, a.brokers, topic, logs)
    print(f"screenshots in {a.shots}")
    if failures:
        print(f"{len(failures)} dashboard check(s) failed: {', '.join(failures)}")
        sys.exit(1)
    print("dashboard checks passed")


if __name__ == "__main__":
    main()
