#!/usr/bin/env bash
# Checks motstream's observability deployables: Prometheus config, recording and alerting rules
# and their promtool unit tests, the Alertmanager config (statically and in a real, short-lived
# Alertmanager), the Grafana dashboards, and the compose and Kubernetes manifests.
#
# Run from the repository root (scripts/test does). Installs the Debian packages prometheus,
# prometheus-alertmanager and python3-yaml when missing (ms_apt_install: no apt-get at all when
# they are present). Every check runs; each failure is reported with what to fix, and the script
# exits 1 if any failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

ms_apt_install prometheus prometheus-alertmanager python3-yaml

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failed=()
# check NAME HINT CMD...: runs CMD quietly; on failure prints its output and the hint.
check() {
  local name=$1 hint=$2
  shift 2
  if "$@" >"$tmp/out" 2>&1; then
    printf 'ok   %s\n' "$name"
  else
    printf 'FAIL %s\n' "$name"
    sed 's/^/     | /' "$tmp/out"
    printf '     -> %s\n' "$hint"
    failed+=("$name")
  fi
}

check "promtool check config deploy/prometheus/prometheus.yml" \
  "fix deploy/prometheus/prometheus.yml or the rule files it names" \
  promtool check config deploy/prometheus/prometheus.yml

# The compose variant expects the rules next to it, as they are mounted in the container.
mkdir -p "$tmp/compose"
cp deploy/compose/prometheus.yml "$tmp/compose/prometheus.yml"
ln -s "$PWD/deploy/prometheus/rules" "$tmp/compose/rules"
check "promtool check config deploy/compose/prometheus.yml" \
  "fix deploy/compose/prometheus.yml" \
  promtool check config "$tmp/compose/prometheus.yml"

check "promtool check rules deploy/prometheus/rules/*.yml" \
  "fix the rule syntax in deploy/prometheus/rules/" \
  promtool check rules deploy/prometheus/rules/*.yml

check "promtool test rules deploy/prometheus/tests/*.yml" \
  "a rule no longer behaves as its unit test expects: fix the rule or, if the change is intended, the test" \
  promtool test rules deploy/prometheus/tests/*.yml

check "amtool check-config deploy/alertmanager/alertmanager.yml" \
  "fix deploy/alertmanager/alertmanager.yml" \
  amtool check-config deploy/alertmanager/alertmanager.yml

# Every team owning a MOT in a catalog gets its own receiver, for pages and for tickets;
# pipeline alerts go to motstream-platform.
routes_ok() {
  local team sev
  mapfile -t teams < <(python3 scripts/test.d/lib/check_deploy.py --teams)
  ((${#teams[@]})) || { echo "no teams found in deploy/catalog/*.yaml"; return 1; }
  for team in "${teams[@]}" motstream-platform; do
    for sev in page ticket; do
      amtool config routes test --config.file=deploy/alertmanager/alertmanager.yml \
        --verify.receivers="$team" team="$team" severity="$sev" experience=e mot=m alertname=a ||
        { echo "team=$team severity=$sev does not route to receiver $team"; return 1; }
    done
  done
}
check "alertmanager routes every catalog team to its receiver" \
  "add a route and a receiver for the team to deploy/alertmanager/alertmanager.yml" \
  routes_ok

check "alertmanager delivers a page to its team and inhibits the same MOT's ticket" \
  "see deploy/alertmanager/alertmanager.yml's routes and inhibit_rules" \
  python3 scripts/test.d/lib/alertmanager_smoke.py

dashboards_parse() {
  local f
  for f in deploy/grafana/dashboards/*.json; do
    python3 -m json.tool "$f" >/dev/null || { echo "$f: invalid JSON"; return 1; }
  done
}
check "dashboard JSON parses" "fix the JSON (better: deploy/grafana/generate.py)" dashboards_parse

check "dashboards are generated from deploy/grafana/generate.py" \
  "run python3 deploy/grafana/generate.py (edit the generator, not the JSON)" \
  python3 deploy/grafana/generate.py --check

check "rules and dashboards use only METRICS.md metrics and defined recording rules" \
  "use names from deploy/prometheus/METRICS.md or define the motstream:* rule in recording.yml" \
  python3 scripts/test.d/lib/check_observability.py --promql-out "$tmp/dashboard-queries.yml"

# Every dashboard query, with sample variable values, must parse as PromQL.
dashboard_promql() {
  promtool check rules "$tmp/dashboard-queries.yml" ||
    { echo "rule names map to panels as follows:"; cat "$tmp/dashboard-queries.index"; return 1; }
}
check "dashboard queries parse as PromQL" "fix the query in deploy/grafana/generate.py" dashboard_promql

check "compose and k8s manifests parse and agree" \
  "fix deploy/compose or deploy/k8s as the message says" \
  python3 scripts/test.d/lib/check_deploy.py

if ((${#failed[@]})); then
  printf '\n%d observability check(s) failed:\n' "${#failed[@]}" >&2
  printf '  - %s\n' "${failed[@]}" >&2
  exit 1
fi
printf 'all observability checks passed\n'
