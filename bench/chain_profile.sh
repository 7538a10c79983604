#!/usr/bin/env bash
# bench/chain_profile.sh — where each side's CPU goes during chain_bench's (a)
# (new connections): runs `bench/chain_bench.sh --only a --runs 1 --threads 1`
# and attaches `perf record -g` to each side's process (divert-port-forward,
# then HAProxy's side B, twice each) for 4 s from its start, then prints per
# profile the share of samples by object (kernel, libc, the program) and the
# top symbols. Needs perf (linux-perf) and root (or perf_event_paranoid <= 0).
#
# Usage: bench/chain_profile.sh [--haproxy-profile default|best] [--build DIR] [--out DIR]
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROFILE=best
BUILD=${DIVERT_BUILD_DIR:-$ROOT/build-perf}
OUT=$(mktemp -d /tmp/divert-chain-profile.XXXXXX)
while (($#)); do
  case $1 in
    --haproxy-profile) PROFILE=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --out) OUT=$2; mkdir -p "$OUT"; shift 2 ;;
    *) echo "usage: $0 [--haproxy-profile default|best] [--build DIR] [--out DIR]" >&2; exit 2 ;;
  esac
done
command -v perf > /dev/null || { echo "chain_profile: perf not found (apt-get install linux-perf)" >&2; exit 1; }

"$ROOT/bench/chain_bench.sh" --only a --runs 1 --threads 1 --haproxy-profile "$PROFILE" \
  --build "$BUILD" > "$OUT/bench.txt" 2> "$OUT/bench.err" &
bench=$!
seen=" "
n=0
deadline=$((SECONDS + 300))  # bounded: chain_bench's (a) takes about a minute
while kill -0 "$bench" 2> /dev/null && ((n < 4 && SECONDS < deadline)); do
  for pid in $(pgrep -x divert-port-for) $(pgrep -f 'haproxy -db -f .*/side\.cfg'); do
    [[ $seen == *" $pid "* ]] && continue
    seen+="$pid "
    n=$((n + 1))
    name=$(< "/proc/$pid/comm") || continue
    perf record -q -F 1999 -g -p "$pid" -o "$OUT/$n-$name.data" -- sleep 4 > /dev/null 2>&1 &
  done
  sleep 0.1
done
wait
for f in "$OUT"/*.data; do
  echo "== $(basename "$f" .data): share of samples by object, then the top symbols"
  perf report -i "$f" --no-children --sort dso --stdio 2> /dev/null | grep -E '^ +[0-9.]+%' | head -4
  perf report -i "$f" --no-children --sort sym --stdio 2> /dev/null | grep -E '^ +[0-9.]+%' | head -8
done
grep -A3 '(a)' "$OUT/bench.txt"
echo "chain_profile: profiles in $OUT"
