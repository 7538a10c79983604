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
n=0
for src in fuzz/fuzz_*.cpp; do
  name=$(basename "$src" .cpp)
  corpus_name=${name#fuzz_}
  work=$(mktemp -d)
  if [[ -d fuzz/corpus/$corpus_name ]]; then cp -r "fuzz/corpus/$corpus_name/." "$work/"; fi
  echo "== fuzzing $name for ${secs}s"
  "$BUILD_DIR/fuzz/divert_$name" -max_total_time="$secs" -print_final_stats=1 "$work"
  rm -rf "$work"
  n=$((n + 1))
done
echo "fuzz: $n target(s) ran ${secs}s each without a crash"
