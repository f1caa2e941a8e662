#!/usr/bin/env bash
# The gRPC query service as standard gRPC tooling sees it: `motstream run` against the test
# broker, then Python's grpcio (with grpcio-reflection and grpcio-health-checking, the
# reference implementations; Debian has no grpcurl) lists the services through reflection,
# describes MotQuery from the descriptors reflection returns, calls GetMot and ListMots
# through a dynamically built stub, and checks grpc.health.v1. Then the same service with TLS
# (a throwaway CA and server certificate made with openssl) and a bearer token: grpcio over
# TLS with and without the token, and the `motstream` CLI client with --ca-cert/--token-file.
#
# Run from the repository root by scripts/test, with MOTSTREAM_TEST_BROKERS exported and the
# binary built. The Python packages go into a venv under ~/.cache/motstream (pip does nothing
# when they are present). Exits 1 with the reason on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

: "${MOTSTREAM_TEST_BROKERS:?MOTSTREAM_TEST_BROKERS is not set: run scripts/test, or scripts/kafka up and export it}"
ms_apt_install python3-venv openssl

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
stop_service() {
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=''
  fi
}
cleanup() {
  stop_service
  rm -rf "$tmp"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
suffix="$$-$(date +%s%N)"
topic="grpc-tooling-$suffix"
# Produce first: the producer creates the topic, and the service has data to answer with.
"$bin" loadgen --brokers "$MOTSTREAM_TEST_BROKERS" --topic "$topic" \
  --count 2000 --rate 2000 >"$tmp/loadgen.log" 2>&1 || { cat "$tmp/loadgen.log"; exit 1; }

# serve NAME ARGS...: starts `motstream run` on fresh ports, its own consumer group.
serve() {
  local name=$1
  shift
  grpc_port=$(port)
  "$bin" run --brokers "$MOTSTREAM_TEST_BROKERS" --topics "$topic" --dlq-topic "$topic.dlq" \
    --group-id "$topic-$name" --grpc-listen "127.0.0.1:$grpc_port" \
    --metrics-listen "127.0.0.1:$(port)" "$@" >"$tmp/$name.log" 2>&1 &
  pid=$!
}
fail_with_log() {
  echo "--- service log (tail)"
  tail -n 30 "$tmp/$1.log"
  exit 1
}

serve plain
"$venv/bin/python" scripts/test.d/lib/grpc_tooling.py "127.0.0.1:$grpc_port" || fail_with_log plain
stop_service

# A throwaway CA and a server certificate for 127.0.0.1 and localhost.
(
  cd "$tmp"
  ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj /CN=motstream-test-ca
  openssl req "${ec[@]}" -keyout server.key -out server.csr -subj /CN=localhost
  printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
    'extendedKeyUsage=serverAuth' >server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
    -days 2 -extfile server.ext
) >"$tmp/openssl.log" 2>&1 || { cat "$tmp/openssl.log"; exit 1; }
printf 'tooling-%s\n' "$suffix" >"$tmp/token"

serve tls --grpc-tls-cert "$tmp/server.pem" --grpc-tls-key "$tmp/server.key" \
  --grpc-token-file "$tmp/token"
"$venv/bin/python" scripts/test.d/lib/grpc_tooling.py "127.0.0.1:$grpc_port" \
  --ca "$tmp/ca.pem" --token "$tmp/token" || fail_with_log tls
client=("$bin" unidentified --server "https://127.0.0.1:$grpc_port" --ca-cert "$tmp/ca.pem")
"${client[@]}" --token-file "$tmp/token" --output json >"$tmp/cli.out" 2>&1 ||
  { echo "FAIL motstream unidentified over TLS with the token:"; cat "$tmp/cli.out"; fail_with_log tls; }
grep -q '"mots"' "$tmp/cli.out" || { echo "FAIL the CLI printed no JSON:"; cat "$tmp/cli.out"; exit 1; }
echo "ok   motstream CLI over TLS with --ca-cert and --token-file"
if "${client[@]}" >"$tmp/cli.out" 2>&1 || ! grep -q Unauthenticated "$tmp/cli.out"; then
  echo "FAIL the CLI without the token should be refused (Unauthenticated):"
  cat "$tmp/cli.out"
  exit 1
fi
echo "ok   motstream CLI over TLS without the token: refused, Unauthenticated"
echo "gRPC TLS and token checks passed"
