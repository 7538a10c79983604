#!/usr/bin/env bash
# tests/run.sh — the whole test suite: installs missing Debian packages,
# configures, builds with ninja and runs ctest. Exits non-zero on any failure.
#
# Environment:
#   BUILD_DIR        build directory          (default: build)
#   DIVERT_SANITIZE  e.g. address,undefined   (default: none)
#   CXX              compiler                 (default: the system's c++)
#   JOBS             parallel build jobs      (default: nproc)
#   CTEST_ARGS       extra arguments to ctest (e.g. "-L live" or "-LE slow")
#   DIVERT_BENCHMARKS  build the benchmark programs too (default ON)
#   DIVERT_EXAMPLES  build the example programs (default ON)
#   BUILD_TYPE       CMake build type         (default RelWithDebInfo)
#   DIVERT_ASIO      standalone or boost      (default standalone): the Asio
#                    divert, the tests and the examples are built with
#   BUILD_TARGETS    build only these targets (default: all), e.g. for a
#                    sanitizer run of a few tests together with CTEST_ARGS
#   DIVERT_TEST_PCH  ON (default): the tests share one precompiled header
#                    (tests/support/pch.hpp); OFF: each compiles its includes
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/deps.sh

BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
  -DDIVERT_BUILD_TESTS=ON -DDIVERT_BUILD_EXAMPLES="${DIVERT_EXAMPLES:-ON}" -DDIVERT_BUILD_BENCHMARKS="${DIVERT_BENCHMARKS:-ON}" \
  -DDIVERT_SANITIZE="${DIVERT_SANITIZE:-}" -DDIVERT_ASIO="${DIVERT_ASIO:-standalone}" \
  -DDIVERT_TEST_PCH="${DIVERT_TEST_PCH:-ON}"
# shellcheck disable=SC2086
cmake --build "$BUILD_DIR" -j "$JOBS" ${BUILD_TARGETS:+--target $BUILD_TARGETS}
# shellcheck disable=SC2086
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" ${CTEST_ARGS:-}
