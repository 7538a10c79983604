#!/usr/bin/env bash
# tests/package/run.sh — builds and runs tests/package/consumer against divert
# taken the ways users take it:
#   1. find_package(divert CONFIG) on a static install (from BUILD_DIR, default build)
#   2. find_package(divert CONFIG) on a shared install (BUILD_SHARED_LIBS=ON)
#   3. pkg-config on the static install
#   4. add_subdirectory of this source tree
#   5. the vcpkg overlay port's configure options and install layout (ports/divert)
# and checks the Conan recipe compiles as Python. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
WORK=$(mktemp -d /tmp/divert-package.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
pass=0; fail=0
step() { echo "== package: $*"; }
ok() { echo "   PASS: $1"; pass=$((pass + 1)); }
bad() { echo "   FAIL: $1"; fail=$((fail + 1)); }

consumer() {  # name, then cmake args
  local name=$1; shift
  if cmake -S tests/package/consumer -B "$WORK/c-$name" -G Ninja "$@" > "$WORK/c-$name.log" 2>&1 &&
     cmake --build "$WORK/c-$name" -j "$JOBS" >> "$WORK/c-$name.log" 2>&1 &&
     "$WORK/c-$name/consumer"; then
    ok "$name"
  else
    cat "$WORK/c-$name.log"; bad "$name"
  fi
}

step "static install from $BUILD_DIR"
[[ -f $BUILD_DIR/build.ninja ]] || cmake -S . -B "$BUILD_DIR" -G Ninja -DDIVERT_BUILD_TESTS=OFF -DDIVERT_BUILD_EXAMPLES=OFF
cmake --build "$BUILD_DIR" -j "$JOBS" --target divert
cmake --install "$BUILD_DIR" --prefix "$WORK/static" > /dev/null
consumer find_package-static -DCMAKE_PREFIX_PATH="$WORK/static"

step "shared build and install"
cmake -S . -B "$WORK/shared-build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DDIVERT_BUILD_TESTS=OFF -DDIVERT_BUILD_EXAMPLES=OFF > /dev/null
cmake --build "$WORK/shared-build" -j "$JOBS"
cmake --install "$WORK/shared-build" --prefix "$WORK/shared" > /dev/null
if readelf -d "$WORK"/shared/lib*/libdivert.so | grep -q "SONAME.*libdivert.so.0"; then ok "SONAME libdivert.so.0"; else bad "SONAME"; fi
consumer find_package-shared -DCMAKE_PREFIX_PATH="$WORK/shared" -DCMAKE_BUILD_RPATH="$(echo "$WORK"/shared/lib*)"
if ldd "$WORK/c-find_package-shared/consumer" | grep -q "$WORK/shared"; then ok "consumer uses the shared library"; else bad "consumer uses the shared library"; fi

step "pkg-config"
PKG_CONFIG_PATH=$(echo "$WORK"/static/lib*/pkgconfig) consumer pkg-config -DDIVERT_CONSUME=pkg-config

step "add_subdirectory"
consumer add_subdirectory -DDIVERT_CONSUME=add_subdirectory -DDIVERT_SOURCE_DIR="$ROOT"

step "vcpkg overlay port layout (what ports/divert/portfile.cmake does)"
if bash ports/divert/check-layout.sh "$WORK/vcpkg"; then ok "vcpkg port layout"; else bad "vcpkg port layout"; fi

step "Conan recipe"
if python3 -m py_compile conanfile.py test_package/conanfile.py; then ok "conanfile.py compiles"; else bad "conanfile.py"; fi
if cmake -S test_package -B "$WORK/conan-tp" -G Ninja -DCMAKE_PREFIX_PATH="$WORK/static" > "$WORK/tp.log" 2>&1 &&
   cmake --build "$WORK/conan-tp" >> "$WORK/tp.log" 2>&1 && "$WORK/conan-tp/test_package"; then
  ok "Conan test_package source against the install tree"
else
  cat "$WORK/tp.log"; bad "Conan test_package"
fi
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
