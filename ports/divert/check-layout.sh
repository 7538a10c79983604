#!/usr/bin/env bash
# ports/divert/check-layout.sh PREFIX — checks an install of divert made the way
# ports/divert/portfile.cmake makes it (vcpkg itself cannot be fetched here).
#
# The caller configures with exactly the portfile's options
#   -DDIVERT_BUILD_TESTS=OFF -DDIVERT_BUILD_EXAMPLES=OFF -DDIVERT_BUILD_BENCHMARKS=OFF
#   -DDIVERT_FUZZ=OFF -DDIVERT_CMAKE_DIR=share/divert  (+ DIVERT_WITH_TLS and
#   DIVERT_WITH_IDN, the tls and idn features)
# and runs `cmake --install` into PREFIX (tests/package/run.sh does). This script then
# does the portfile's own file steps (usage and copyright into share/divert) and checks
# the layout vcpkg expects: the CMake package in share/divert and nowhere else, the
# headers (generated ones included), the library (static or shared), divert.pc, and no
# absolute path of the build machine in the package files (vcpkg relocates packages).
# Prints one line per problem; exits non-zero when there is any.
set -uo pipefail
cd "$(dirname "$0")/../.."
prefix=${1:?usage: check-layout.sh PREFIX}
[[ -d $prefix ]] || { echo "no such prefix: $prefix"; exit 1; }
problems=0
problem() { echo "check-layout: $*"; problems=$((problems + 1)); }

# What the portfile does after vcpkg_cmake_install().
install -D -m 644 ports/divert/usage "$prefix/share/divert/usage"
install -D -m 644 LICENSE "$prefix/share/divert/copyright"

for f in share/divert/divertConfig.cmake share/divert/divertConfigVersion.cmake \
         share/divert/divertTargets.cmake share/divert/FindAsio.cmake \
         share/divert/FindxxHash.cmake share/divert/FindLibidn2.cmake \
         share/divert/usage share/divert/copyright \
         include/divert/divert.hpp include/divert/version.hpp include/divert/export.hpp \
         include/divert/config.hpp include/divert/asio/ip/tcp.hpp; do
  [[ -f $prefix/$f ]] || problem "missing $f"
done
compgen -G "$prefix/share/divert/divertTargets-*.cmake" > /dev/null ||
  problem "missing share/divert/divertTargets-<config>.cmake"
# vcpkg_cmake_config_fixup would have to move a second copy; there must be none.
for d in "$prefix"/lib*/cmake/divert "$prefix"/share/cmake/divert; do
  [[ -e $d ]] && problem "CMake package also under ${d#"$prefix"/}"
done
compgen -G "$prefix/lib*/libdivert.a" > /dev/null ||
  compgen -G "$prefix/lib*/libdivert.so" > /dev/null || problem "no libdivert.a or libdivert.so"
compgen -G "$prefix/lib*/pkgconfig/divert.pc" > /dev/null || problem "missing lib*/pkgconfig/divert.pc"
# Relocatable: no absolute path of this build in the package files.
src=$(pwd)
for f in "$prefix"/share/divert/*.cmake "$prefix"/lib*/pkgconfig/divert.pc; do
  [[ -f $f ]] || continue
  if grep -qF -e "$prefix" -e "$src" "$f"; then problem "absolute build path in ${f#"$prefix"/}"; fi
done
# The usage file's lines must be what works: the package and target names.
grep -q "find_package(divert CONFIG REQUIRED)" "$prefix/share/divert/usage" || problem "usage: no find_package line"
grep -q "divert::divert" "$prefix/share/divert/usage" || problem "usage: no divert::divert"
grep -q "add_library(divert::divert" "$prefix/share/divert/divertTargets.cmake" ||
  problem "divertTargets.cmake does not define divert::divert"

[[ $problems -eq 0 ]] && echo "check-layout: $prefix has the vcpkg port layout"
[[ $problems -eq 0 ]]
