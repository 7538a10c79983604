#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] — builds the libFuzzer targets with clang + ASan/UBSan
# and runs each for SECONDS (default 60) from its seed corpus in fuzz/corpus/.
# New inputs go to a scratch copy, so the repository's corpus is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
bash tests/deps.sh
BUILD_DIR=${BUILD_DIR:-build-fuzz}
CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDIVERT_FUZZ=ON -DDIVERT_BUILD_TESTS=OFF -DDIVERT_BUILD_EXAMPLES=OFF \
  -DDIVERT_SANITIZE=address,undefined
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}"
shopt -s nullglob
# The targets run side by side, JOBS at a time (each libFuzzer process is one
# thread): the same fuzzing time per target in a fraction of the wall time.
# Each target's output goes to a log, shown when the target fails.
jobs=${JOBS:-$(nproc)}
logs=$(mktemp -d)
fuzz_one() {  # name: runs it on a scratch copy of its corpus
  local name=$1 work
  work=$(mktemp -d)
  if [[ -d fuzz/corpus/${name#fuzz_} ]]; then cp -r "fuzz/corpus/${name#fuzz_}/." "$work/"; fi
  local rc=0
  "$BUILD_DIR/fuzz/divert_$name" -max_total_time="$secs" -print_final_stats=1 "$work" \
    > "$logs/$name.log" 2>&1 || rc=$?
  rm -rf "$work"
  return $rc
}
names=()
for src in fuzz/fuzz_*.cpp; do names+=("$(basename "$src" .cpp)"); done
failed=0
for ((i = 0; i < ${#names[@]}; i += jobs)); do
  pids=()
  for name in "${names[@]:i:jobs}"; do
    echo "== fuzzing $name for ${secs}s"
    fuzz_one "$name" &
    pids+=("$!")
  done
  k=0
  for name in "${names[@]:i:jobs}"; do
    if wait "${pids[k]}"; then
      grep -E '^stat::number_of_executed_units' "$logs/$name.log" | sed "s/^/   $name: /" || true
    else
      echo "== $name FAILED:"; cat "$logs/$name.log"; failed=1
    fi
    k=$((k + 1))
  done
done
rm -rf "$logs"
if ((failed)); then echo "fuzz: a target crashed (above)"; exit 1; fi
echo "fuzz: ${#names[@]} target(s) ran ${secs}s each without a crash, $jobs at a time"
