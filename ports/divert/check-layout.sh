#!/usr/bin/env bash
# ports/divert/check-layout.sh WORKDIR — does what portfile.cmake does without
# vcpkg (which cannot be fetched here): configure with the port's options,
# build, install, and check the layout vcpkg expects (config in share/divert,
# usage and copyright beside it) and that the installed config works.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$1
mkdir -p "$work"
cmake -S . -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DDIVERT_WITH_TLS=ON -DDIVERT_BUILD_TESTS=OFF -DDIVERT_BUILD_EXAMPLES=OFF \
  -DDIVERT_BUILD_BENCHMARKS=OFF -DDIVERT_FUZZ=OFF -DDIVERT_CMAKE_DIR=share/divert > /dev/null
cmake --build "$work/build" -j "${JOBS:-$(nproc)}" > /dev/null
cmake --install "$work/build" --prefix "$work/pkg" > /dev/null
install -D -m 644 ports/divert/usage "$work/pkg/share/divert/usage"
install -D -m 644 LICENSE "$work/pkg/share/divert/copyright"
for f in share/divert/divertConfig.cmake share/divert/divertConfigVersion.cmake \
         share/divert/divertTargets.cmake share/divert/FindAsio.cmake share/divert/usage \
         share/divert/copyright include/divert/divert.hpp include/divert/version.hpp \
         include/divert/export.hpp; do
  [[ -f $work/pkg/$f ]] || { echo "missing $f"; exit 1; }
done
ls "$work"/pkg/lib*/libdivert.a > /dev/null
ls "$work"/pkg/lib*/pkgconfig/divert.pc > /dev/null
cmake -S tests/package/consumer -B "$work/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$work/pkg" > /dev/null
cmake --build "$work/consumer" > /dev/null
"$work/consumer/consumer"
