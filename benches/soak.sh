#!/usr/bin/env bash
# Soak of the embedded default: runs `motstream` (no arguments: the in-process broker and the
# simulator at its default rate) for MINUTES minutes and prints, per INTERVAL-minute interval,
# the process's CPU seconds and those of librdkafka's mock-broker thread, and each interval
# against the first. The embedded default must stay light with age (issue 18).
#
#   cargo build --release -p motstream
#   benches/soak.sh [MINUTES=60] [INTERVAL=10] [BINARY=$CARGO_TARGET_DIR/release/motstream]
set -euo pipefail

minutes=${1:-60}
interval=${2:-10}
target=${CARGO_TARGET_DIR:-$HOME/.cache/motstream/target}
bin=${3:-$target/release/motstream}
[[ -x $bin ]] || { echo "soak: $bin missing: cargo build --release -p motstream" >&2; exit 2; }

tck=$(getconf CLK_TCK)
log=$(mktemp -t motstream-soak.XXXXXX.log)
# Ports of its own, so that a running demo does not collide.
"$bin" --metrics-listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
sleep 5
kill -0 "$pid" 2>/dev/null || { echo "soak: motstream exited; log: $log" >&2; cat "$log" >&2; exit 1; }

# utime + stime of the process, and of its threads whose name contains "mock", in ticks.
proc_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
mock_ticks() {
  local sum=0 t
  for t in /proc/"$pid"/task/*; do
    if grep -qi mock "$t/comm" 2>/dev/null; then
      sum=$((sum + $(awk '{print $14 + $15}' "$t/stat")))
    fi
  done
  echo "$sum"
}

echo "soak: pid $pid, $minutes min in $interval-min intervals, $(nproc) cores, log $log"
echo "interval,end_min,process_cpu_s,mock_broker_cpu_s,vs_first"
first=""
p0=$(proc_ticks); m0=$(mock_ticks)
for ((i = 1; i <= minutes / interval; i++)); do
  for ((s = 0; s < interval * 60; s += 60)); do
    sleep 60
    kill -0 "$pid" 2>/dev/null || { echo "soak: motstream exited; log: $log" >&2; exit 1; }
    echo "soak: $(( (i - 1) * interval + s / 60 + 1 )) of $minutes min" >&2
  done
  p1=$(proc_ticks); m1=$(mock_ticks)
  cpu=$(awk -v a="$p0" -v b="$p1" -v t="$tck" 'BEGIN{printf "%.1f", (b - a) / t}')
  mock=$(awk -v a="$m0" -v b="$m1" -v t="$tck" 'BEGIN{printf "%.1f", (b - a) / t}')
  [[ -n $first ]] || first=$cpu
  rel=$(awk -v c="$cpu" -v f="$first" 'BEGIN{printf "%+.0f%%", (c / f - 1) * 100}')
  echo "$i,$((i * interval)),$cpu,$mock,$rel"
  p0=$p1; m0=$m1
done
