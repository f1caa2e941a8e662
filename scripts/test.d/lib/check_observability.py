#!/usr/bin/env python3
"""Consistency checks of motstream's Prometheus rules and Grafana dashboards.

Run from the repository root by scripts/test.d/10-prometheus-rules.sh:

    python3 scripts/test.d/lib/check_observability.py --promql-out FILE

Checks, all reported at once (exit 1 on any problem):
  * every dashboard JSON parses, has its expected uid, schemaVersion, unique panel ids, the
    datasource variable, and links only to motstream dashboards that exist;
  * every metric name used by the rules and the dashboards is in deploy/prometheus/METRICS.md
    (histograms also with _bucket/_sum/_count), a built-in (up, ALERTS, ALERTS_FOR_STATE), or a
    recording rule defined in deploy/prometheus/rules/recording.yml;
  * every Grafana variable a dashboard uses is defined in it.
With --promql-out it writes every dashboard query (Grafana variables replaced by sample values)
as a rule file, so that `promtool check rules` parses each of them.
"""

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

METRICS_MD = Path("deploy/prometheus/METRICS.md")
RULES_DIR = Path("deploy/prometheus/rules")
DASHBOARDS_DIR = Path("deploy/grafana/dashboards")
EXPECTED_UIDS = {
    "corporate-overview.json": "motstream-overview",
    "experience.json": "motstream-experience",
    "mot.json": "motstream-mot",
    "pipeline.json": "motstream-pipeline",
}
BUILTINS = {"up", "ALERTS", "ALERTS_FOR_STATE"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "atan2", "inf", "nan", "Inf", "NaN"}
WINDOWS = ["5m", "30m", "1h", "2h", "6h", "24h", "3d"]
# Grafana's built-in variables, replaced by a sample value for parsing.
GRAFANA_BUILTINS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "__range_s": "3600"}

problems = []


def problem(where, msg):
    problems.append(f"{where}: {msg}")


def contract_metrics():
    """Names from METRICS.md's table: {name: type}."""
    names = {}
    for line in METRICS_MD.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*([^|]+?)\s*\|", line)
        if m:
            names[m.group(1)] = m.group(2).split()[0]
    if not names:
        problem(METRICS_MD, "no metric table found")
    allowed = set(names)
    for n, t in names.items():
        if t == "histogram":
            allowed |= {n + "_bucket", n + "_sum", n + "_count"}
    return allowed


def load_rules():
    """Returns (recorded names, [(where, expr)])."""
    recorded, exprs = set(), []
    for path in sorted(RULES_DIR.glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for g in doc.get("groups", []):
            for r in g.get("rules", []):
                name = r.get("record") or r.get("alert")
                if "record" in r:
                    recorded.add(r["record"])
                exprs.append((f"{path} ({g['name']}: {name})", str(r["expr"])))
    return recorded, exprs


STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
TOKEN = re.compile(r"[A-Za-z0-9_:.]+")


def metric_names(expr):
    """The metric names an expression selects (a small PromQL tokenizer, enough for ours)."""
    s = STRING.sub(" ", expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = GROUPING.sub(" ", s)
    s = re.sub(r"\boffset\s+\S+", " ", s)
    names = set()
    for m in TOKEN.finditer(s):
        tok = m.group(0)
        if tok[0].isdigit() or tok[0] == "." or tok in KEYWORDS:
            continue
        if re.match(r"\s*\(", s[m.end():]):
            continue  # a function or an aggregation
        names.add(tok)
    return names


VAR = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")


def expand(expr, where, defined):
    """The expression with Grafana variables replaced: one variant per window if $window is used."""
    used = {a or b or c for a, b, c in VAR.findall(expr)}
    for v in used:
        if v not in defined and v not in GRAFANA_BUILTINS:
            problem(where, f"uses undefined variable ${v}")
    variants = WINDOWS if "window" in used else [None]
    out = []
    for w in variants:
        def sub(m):
            v = m.group(1) or m.group(2) or m.group(3)
            if v == "window":
                return w
            if v in GRAFANA_BUILTINS:
                return GRAFANA_BUILTINS[v]
            return "sample"
        out.append(VAR.sub(sub, expr))
    return out


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def dashboard_exprs(path, dash, uids):
    """[(where, expr with variables)] of one dashboard, after structural checks."""
    name = path.name
    if dash.get("uid") != EXPECTED_UIDS.get(name):
        problem(path, f"uid is {dash.get('uid')!r}, expected {EXPECTED_UIDS.get(name)!r}")
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
        problem(path, f"schemaVersion {dash.get('schemaVersion')!r} is older than 36")
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    if variables.get("datasource", {}).get("type") != "datasource":
        problem(path, "no `datasource` variable of type datasource")
    out = []
    for v in variables.values():
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", q or "")
            if not m:
                problem(path, f"variable {v['name']}: expected label_values(<selector>, <label>), got {q!r}")
                continue
            out.append((f"{path} variable {v['name']}", m.group(1)))
    ids = set()
    for p in walk_panels(dash.get("panels", [])):
        where = f"{path} panel {p.get('id')} {p.get('title')!r}"
        if p.get("id") in ids:
            problem(where, "duplicate panel id")
        ids.add(p.get("id"))
        if p.get("type") == "row":
            continue
        if p.get("datasource") != {"type": "prometheus", "uid": "${datasource}"}:
            problem(where, "datasource is not ${datasource}")
        if not p.get("targets"):
            problem(where, "no queries")
        for t in p.get("targets", []):
            out.append((f"{where} query {t.get('refId')}", t.get("expr", "")))
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append((f"{path} annotation {a.get('name')!r}", a["expr"]))
    # Links to other dashboards: dashboard links and data links.
    text = json.dumps(dash)
    for uid in re.findall(r"/d/([A-Za-z0-9_-]+)", text):
        if uid not in uids:
            problem(path, f"links to /d/{uid}, which is not a motstream dashboard")
    return out, set(variables)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--promql-out", type=Path)
    args = ap.parse_args()

    allowed = contract_metrics()
    recorded, rule_exprs = load_rules()

    def check_names(where, expr):
        for n in sorted(metric_names(expr)):
            if n in allowed or n in BUILTINS:
                continue
            if n.startswith("motstream:"):
                if n not in recorded:
                    problem(where, f"recording rule {n} is not defined in {RULES_DIR}/recording.yml")
                continue
            problem(where, f"metric {n} is not in {METRICS_MD}")

    for where, expr in rule_exprs:
        check_names(where, expr)

    dash_queries = []
    uids = set(EXPECTED_UIDS.values())
    paths = sorted(DASHBOARDS_DIR.glob("*.json"))
    for name in EXPECTED_UIDS:
        if not (DASHBOARDS_DIR / name).exists():
            problem(DASHBOARDS_DIR / name, "missing")
    for path in paths:
        try:
            dash = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            problem(path, f"invalid JSON: {e}")
            continue
        exprs, defined = dashboard_exprs(path, dash, uids)
        for where, expr in exprs:
            for variant in expand(expr, where, defined):
                check_names(where, variant)
                dash_queries.append((where, variant))

    if args.promql_out:
        rules = [{"record": f"dashboard:query_{i}", "expr": e} for i, (_, e) in enumerate(dash_queries)]
        args.promql_out.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, width=1000), encoding="utf-8")
        index = args.promql_out.with_suffix(".index")
        index.write_text("".join(f"dashboard:query_{i}\t{w}\n" for i, (w, _) in enumerate(dash_queries)), encoding="utf-8")

    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"{len(problems)} problem(s) in the Prometheus rules / Grafana dashboards", file=sys.stderr)
        return 1
    print(f"ok: {len(rule_exprs)} rule expressions and {len(dash_queries)} dashboard queries use only METRICS.md names and defined recording rules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
