#!/usr/bin/env bash
# The browser dashboard (crates/motstream-web) in Debian's headless Chromium, driven by
# Selenium: `motstream run` against the test broker with its own topic, events produced with
# kcat, then the checks in scripts/test.d/lib/dashboard_test.py (views load without console
# errors, the page's numbers equal GetMot/GetExperience and /status, an incident turns its row
# red with the alert firing within 3 s, a hostile MOT id stays text, the token is required).
# Screenshots of each view (1280x800) go to $MOTSTREAM_DASHBOARD_SHOTS or a fresh temp dir.
#
# Run from the repository root by scripts/test, with MOTSTREAM_TEST_BROKERS exported and the
# binary built. Installs chromium, chromium-driver and kcat from apt when missing, and Selenium
# into a venv under ~/.cache/motstream (nothing is fetched when they are present).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

: "${MOTSTREAM_TEST_BROKERS:?MOTSTREAM_TEST_BROKERS is not set: run scripts/test, or scripts/kafka up and export it}"
ms_apt_install chromium chromium-driver kcat python3-venv

venv=$MOTSTREAM_CACHE/dashboard-venv
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import selenium' 2>/dev/null; then
  ms_log "installing selenium into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'selenium>=4.20'
fi

bin=${CARGO_TARGET_DIR:-$HOME/.cache/motstream/target}/debug/motstream
[[ -x $bin ]] || ms_die "$bin is missing: cargo build -p motstream first (scripts/test does)"

shots=${MOTSTREAM_DASHBOARD_SHOTS:-$(mktemp -d -t motstream-dashboard-shots.XXXXXX)}
# Selenium Manager must not look for drivers online: the driver path is given explicitly.
export SE_AVOID_STATS=true
timeout 600 "$venv/bin/python" scripts/test.d/lib/dashboard_test.py \
  --bin "$bin" --brokers "$MOTSTREAM_TEST_BROKERS" --shots "$shots"
