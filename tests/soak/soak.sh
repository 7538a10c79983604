#!/usr/bin/env bash
# tests/soak/soak.sh [SECONDS] [soak.py options] — bounded soak (default 300 s)
# of divert-forward-proxy -> divert-next-proxy -> nginx on loopback with mixed
# traffic through all three interfaces and some failures; samples RSS and
# descriptors of both proxies and prints a verdict (exit 0 when STABLE).
# See tests/soak/soak.py for what runs and what "stable" means.
#
# Environment: BUILD_DIR (default build), JOBS (default nproc).
set -euo pipefail
cd "$(dirname "$0")/../.."

bash tests/deps.sh
BUILD_DIR=${BUILD_DIR:-build}
if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDIVERT_BUILD_TESTS=OFF -DDIVERT_BUILD_EXAMPLES=ON >/dev/null
fi
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target divert-forward-proxy divert-next-proxy >/dev/null
exec python3 tests/soak/soak.py --bin "$BUILD_DIR/examples" "$@"
