#!/usr/bin/env python3
"""Static checks of the compose and Kubernetes manifests, which cannot be run here.

    python3 scripts/test.d/lib/check_deploy.py            # check; exit 1 on any problem
    python3 scripts/test.d/lib/check_deploy.py --teams    # print the catalogs' owning teams

Checks that every YAML file under deploy/compose and deploy/k8s parses and that the pieces agree
with each other and with the rest of deploy/: mounted files exist, ports and probe paths match
the exporter's, selectors match pod labels, the scrape job is `motstream`, and the k8s catalog
ConfigMap is a verbatim copy of deploy/catalog/airline.yaml.
"""

import sys
from pathlib import Path

import yaml

COMPOSE_DIR = Path("deploy/compose")
K8S_DIR = Path("deploy/k8s")
CATALOG_DIR = Path("deploy/catalog")
METRICS_PORT = 9464

problems = []


def problem(where, msg):
    problems.append(f"{where}: {msg}")


def load_all(path):
    try:
        return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    except yaml.YAMLError as e:
        problem(path, f"invalid YAML: {e}")
        return []


def catalog_teams():
    """Teams owning MOTs (the alert recipients) across deploy/catalog/*.yaml."""
    teams = set()
    for path in sorted(CATALOG_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        default = ((doc.get("defaults") or {}).get("owner") or {}).get("team")
        for e in doc.get("experiences", []):
            for m in e.get("mots", []):
                team = (m.get("owner") or {}).get("team") or default
                if team:
                    teams.add(team)
                else:
                    problem(path, f"MOT {m.get('id')} has no owner team")
    return sorted(teams)


def check_compose():
    path = COMPOSE_DIR / "docker-compose.yml"
    docs = load_all(path)
    if not docs:
        problem(path, "missing or empty")
        return
    services = docs[0].get("services", {})
    for name in ("kafka", "motstream", "prometheus", "alertmanager", "grafana"):
        if name not in services:
            problem(path, f"no service {name}")
    for name, svc in services.items():
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith(".") and not (COMPOSE_DIR / src).exists():
                problem(path, f"service {name} mounts {src}, which does not exist")
        for dep in svc.get("depends_on", {}) or {}:
            if dep not in services:
                problem(path, f"service {name} depends on unknown service {dep}")
    env = services.get("motstream", {}).get("environment", {})
    if not str(env.get("MOTSTREAM_METRICS_LISTEN", "")).endswith(f":{METRICS_PORT}"):
        problem(path, f"motstream must listen for metrics on :{METRICS_PORT} (MOTSTREAM_METRICS_LISTEN)")
    if not env.get("MOTSTREAM_BROKERS"):
        problem(path, "motstream has no MOTSTREAM_BROKERS (it would start the embedded broker)")
    prom = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {j["job_name"]: j for j in prom.get("scrape_configs", [])}
    targets = [t for sc in jobs.get("motstream", {}).get("static_configs", []) for t in sc.get("targets", [])]
    if targets != [f"motstream:{METRICS_PORT}"]:
        problem(COMPOSE_DIR / "prometheus.yml", f"job motstream should scrape motstream:{METRICS_PORT}, scrapes {targets}")
    provider = yaml.safe_load(Path("deploy/grafana/provisioning/dashboards/motstream.yml").read_text(encoding="utf-8"))
    dash_path = provider["providers"][0]["options"]["path"]
    mounts = [v.split(":")[1] for v in services.get("grafana", {}).get("volumes", []) if v.startswith("../grafana/dashboards")]
    if mounts != [dash_path]:
        problem(path, f"grafana should mount ../grafana/dashboards at {dash_path} (the provider's path), mounts {mounts}")
    if "PROMETHEUS_URL" not in services.get("grafana", {}).get("environment", {}):
        problem(path, "grafana needs PROMETHEUS_URL (used by provisioning/datasources/prometheus.yml)")


def check_k8s():
    kust = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text(encoding="utf-8"))
    objs = {}
    for res in kust.get("resources", []):
        p = K8S_DIR / res
        if not p.exists():
            problem(K8S_DIR / "kustomization.yaml", f"resource {res} does not exist")
            continue
        for d in load_all(p):
            for key in ("apiVersion", "kind", "metadata"):
                if key not in d:
                    problem(p, f"a document has no {key}")
            objs[(d.get("kind"), d.get("metadata", {}).get("name"))] = (p, d)
    for p in sorted(K8S_DIR.glob("*.yaml")):
        if p.name != "kustomization.yaml" and p.name not in kust.get("resources", []):
            problem(p, "not listed in kustomization.yaml")

    cm = objs.get(("ConfigMap", "motstream-catalog"))
    airline = (CATALOG_DIR / "airline.yaml").read_text(encoding="utf-8")
    if not cm:
        problem(K8S_DIR, "no ConfigMap motstream-catalog")
    elif cm[1].get("data", {}).get("catalog.yaml") != airline:
        problem(cm[0], "data.catalog.yaml differs from deploy/catalog/airline.yaml; copy it again")

    dep = objs.get(("Deployment", "motstream"))
    if not dep:
        problem(K8S_DIR, "no Deployment motstream")
        return
    p, d = dep
    spec = d["spec"]
    pod_labels = spec["template"]["metadata"].get("labels", {})
    if any(pod_labels.get(k) != v for k, v in spec["selector"]["matchLabels"].items()):
        problem(p, "selector does not match the pod template's labels")
    c = spec["template"]["spec"]["containers"][0]
    ports = {pt["name"]: pt["containerPort"] for pt in c.get("ports", [])}
    if ports.get("metrics") != METRICS_PORT:
        problem(p, f"container port `metrics` should be {METRICS_PORT}")
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    if env.get("MOTSTREAM_METRICS_LISTEN") != f"0.0.0.0:{METRICS_PORT}":
        problem(p, f"MOTSTREAM_METRICS_LISTEN should be 0.0.0.0:{METRICS_PORT} (probes and scrapes come from outside the pod)")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = c.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") not in ("metrics", METRICS_PORT):
            problem(p, f"{probe} should GET {path} on the metrics port, has {get}")
    mount = next((m for m in c.get("volumeMounts", []) if m["name"] == "catalog"), None)
    vol = next((v for v in spec["template"]["spec"].get("volumes", []) if v["name"] == "catalog"), None)
    if not mount or not vol or vol.get("configMap", {}).get("name") != "motstream-catalog":
        problem(p, "the catalog ConfigMap is not mounted")
    elif env.get("MOTSTREAM_CATALOG") != mount["mountPath"].rstrip("/") + "/catalog.yaml":
        problem(p, "MOTSTREAM_CATALOG does not point at the mounted catalog")
    ann = spec["template"]["metadata"].get("annotations", {})
    if ann.get("prometheus.io/port") != str(METRICS_PORT):
        problem(p, "prometheus.io/port annotation does not match the metrics port")

    svc = objs.get(("Service", "motstream"))
    if not svc:
        problem(K8S_DIR, "no Service motstream")
    elif any(pod_labels.get(k) != v for k, v in svc[1]["spec"]["selector"].items()):
        problem(svc[0], "selector does not match the Deployment's pods")
    else:
        for sp in svc[1]["spec"]["ports"]:
            if sp["targetPort"] not in ports:
                problem(svc[0], f"targetPort {sp['targetPort']} is not a container port")

    pm = objs.get(("PodMonitor", "motstream"))
    if pm:
        s = pm[1]["spec"]
        if any(pod_labels.get(k) != v for k, v in s["selector"]["matchLabels"].items()):
            problem(pm[0], "selector does not match the Deployment's pods")
        if pod_labels.get(s.get("jobLabel")) != "motstream":
            problem(pm[0], "jobLabel must name a pod label whose value is `motstream` (rules select job=\"motstream\")")
        if any(e.get("port") not in ports for e in s["podMetricsEndpoints"]):
            problem(pm[0], "podMetricsEndpoints name a port the container does not have")


def main():
    if "--teams" in sys.argv[1:]:
        print("\n".join(catalog_teams()))
        return 1 if problems else 0
    check_compose()
    check_k8s()
    catalog_teams()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"{len(problems)} problem(s) in deploy/compose or deploy/k8s", file=sys.stderr)
        return 1
    print("ok: compose and k8s manifests parse and agree with each other and deploy/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
