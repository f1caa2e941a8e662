#!/usr/bin/env bash
# The gRPC query service as standard gRPC tooling sees it: `motstream run` against the test
# broker, then Python's grpcio (with grpcio-reflection and grpcio-health-checking, the
# reference implementations; Debian has no grpcurl) lists the services through reflection,
# describes MotQuery from the descriptors reflection returns, calls GetMot and ListMots
# through a dynamically built stub, and checks grpc.health.v1.
#
# Run from the repository root by scripts/test, with MOTSTREAM_TEST_BROKERS exported and the
# binary built. The Python packages go into a venv under ~/.cache/motstream (pip does nothing
# when they are present). Exits 1 with the reason on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

: "${MOTSTREAM_TEST_BROKERS:?MOTSTREAM_TEST_BROKERS is not set: run scripts/test, or scripts/kafka up and export it}"
ms_apt_install python3-venv

venv=$MOTSTREAM_CACHE/grpc-venv
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import grpc, grpc_reflection, grpc_health, google.protobuf' 2>/dev/null; then
  ms_log "installing grpcio, grpcio-reflection, grpcio-health-checking into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    'grpcio>=1.60' 'grpcio-reflection>=1.60' 'grpcio-health-checking>=1.60'
fi

bin=${CARGO_TARGET_DIR:-$HOME/.cache/motstream/target}/debug/motstream
[[ -x $bin ]] || ms_die "$bin is missing: cargo build -p motstream first (scripts/test does)"

tmp=$(mktemp -d)
pid=''
cleanup() {
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
grpc_port=$(port)
http_port=$(port)
suffix="$$-$(date +%s%N)"
# Produce first: the producer creates the topic, and the service has data to answer with.
"$bin" loadgen --brokers "$MOTSTREAM_TEST_BROKERS" --topic "grpc-tooling-$suffix" \
  --count 2000 --rate 2000 >"$tmp/loadgen.log" 2>&1 || { cat "$tmp/loadgen.log"; exit 1; }
"$bin" run --brokers "$MOTSTREAM_TEST_BROKERS" --topics "grpc-tooling-$suffix" \
  --dlq-topic "grpc-tooling-$suffix.dlq" --group-id "grpc-tooling-$suffix" \
  --grpc-listen "127.0.0.1:$grpc_port" --metrics-listen "127.0.0.1:$http_port" \
  >"$tmp/service.log" 2>&1 &
pid=$!

if ! "$venv/bin/python" scripts/test.d/lib/grpc_tooling.py "127.0.0.1:$grpc_port"; then
  echo "--- service log (tail)"
  tail -n 30 "$tmp/service.log"
  exit 1
fi
