#!/usr/bin/env bash
# tests/package/run.sh — builds and runs tests/package/consumer against divert
# taken the ways users take it, with as few library builds as possible (one
# existing build reused, one extra build):
#   1. static install from BUILD_DIR (an existing build is reused, not rebuilt
#      beyond the divert target) -> find_package(divert CONFIG)
#   2. ONE shared build configured exactly as ports/divert/portfile.cmake does
#      (plus BUILD_SHARED_LIBS=ON): install, the vcpkg layout
#      (ports/divert/check-layout.sh), SONAME, and find_package(divert CONFIG)
#      from a moved copy of that prefix (vcpkg relocates packages), running
#      against the shared library
#   3. pkg-config on the static install
#   4. add_subdirectory of this source tree
#   5. the Conan recipe and test_package/conanfile.py compile as Python, and
#      test_package's CMake project builds and runs against the static install
#   6. every public header compiles on its own (tests/package/headers_compile.sh)
#   7. the Asio flavour: a project using the other Asio is refused at configure
#      time with a clear message (tests/package/flavour_check)
# The consumers define nothing about Asio and use deprecated Asio API
# (io_context::work): the package leaves the host's Asio policy alone.
# BUILD_DIR may be a -DDIVERT_ASIO=boost build: then the steps that build
# divert again (2, 4) are left out, and the Boost.Asio host
# tests/package/boost_consumer is built and run against the static install.
# Environment: BUILD_DIR (default build), JOBS (default nproc), SHARED_BUILD_DIR
# (default: a fresh temporary directory; set it to keep the port-style shared
# build between runs, then it is rebuilt incrementally).
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
WORK=$(mktemp -d /tmp/divert-package.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
pass=0; fail=0
FLAVOUR=$(sed -n 's/^DIVERT_ASIO:STRING=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null)
FLAVOUR=${FLAVOUR:-standalone}
step() { echo "== package: $*"; }
ok() { echo "   PASS: $1"; pass=$((pass + 1)); }
bad() { echo "   FAIL: $1"; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed"; [[ $fail -eq 0 ]]; exit $?; }
run_logged() {  # log file, then a command; shows the log when the command fails
  local log=$1; shift
  if "$@" >> "$log" 2>&1; then return 0; fi
  echo "   \$ $*"; tail -n 60 "$log"; return 1
}

consumer() {  # name, source dir, executable name, then cmake args
  local name=$1 src=$2 exe=$3; shift 3
  local log="$WORK/c-$name.log"
  if run_logged "$log" cmake -S "$src" -B "$WORK/c-$name" -G Ninja "$@" &&
     run_logged "$log" cmake --build "$WORK/c-$name" -j "$JOBS" &&
     run_logged "$log" "$WORK/c-$name/$exe"; then
    ok "$name"
  else
    bad "$name"
  fi
}

# ---- 1. static install from the existing build
step "static install from $BUILD_DIR"
static_ok=1
if [[ ! -f $BUILD_DIR/build.ninja ]]; then
  run_logged "$WORK/static.log" cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DDIVERT_BUILD_TESTS=OFF -DDIVERT_BUILD_EXAMPLES=OFF || static_ok=0
fi
if grep -q '^BUILD_SHARED_LIBS:BOOL=ON' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null; then
  echo "   $BUILD_DIR is a shared build; this step needs a static one"; static_ok=0
fi
if [[ $static_ok == 1 ]] &&
   run_logged "$WORK/static.log" cmake --build "$BUILD_DIR" -j "$JOBS" --target divert &&
   run_logged "$WORK/static.log" cmake --install "$BUILD_DIR" --prefix "$WORK/static" &&
   compgen -G "$WORK/static/lib*/libdivert.a" > /dev/null; then
  ok "static install"
  consumer find_package-static tests/package/consumer consumer -DCMAKE_PREFIX_PATH="$WORK/static"
else
  bad "static install"
  static_ok=0
fi

# ---- 2. the shared build, configured as the vcpkg port does
step "shared build with the vcpkg port's options (ports/divert/portfile.cmake)"
if [[ $FLAVOUR == boost ]]; then
  echo "   skipped: $BUILD_DIR is a DIVERT_ASIO=boost build (the standalone run covers the port's build)"
else
PORT_OPTIONS=(-DDIVERT_WITH_TLS=ON -DDIVERT_WITH_IDN=ON -DDIVERT_BUILD_TESTS=OFF
              -DDIVERT_BUILD_EXAMPLES=OFF -DDIVERT_BUILD_BENCHMARKS=OFF -DDIVERT_FUZZ=OFF
              -DDIVERT_CMAKE_DIR=share/divert)
# Keep PORT_OPTIONS equal to the portfile's OPTIONS (the tls and idn features,
# the first two, are default features).
for opt in "${PORT_OPTIONS[@]:2}"; do
  grep -qF -- "$opt" ports/divert/portfile.cmake || bad "portfile.cmake lacks $opt (keep in sync)"
done
slog="$WORK/shared.log"
SHARED_BUILD_DIR=${SHARED_BUILD_DIR:-$WORK/shared-build}
if run_logged "$slog" cmake -S . -B "$SHARED_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
     -DBUILD_SHARED_LIBS=ON "${PORT_OPTIONS[@]}" &&
   run_logged "$slog" cmake --build "$SHARED_BUILD_DIR" -j "$JOBS" &&
   run_logged "$slog" cmake --install "$SHARED_BUILD_DIR" --prefix "$WORK/vcpkg-stage"; then
  ok "shared build and install"
  if bash ports/divert/check-layout.sh "$WORK/vcpkg-stage"; then ok "vcpkg port layout"; else bad "vcpkg port layout"; fi
  so=$(compgen -G "$WORK/vcpkg-stage/lib*/libdivert.so" | head -n 1)
  version=$(sed -n 's/^  VERSION \([0-9.]*\)$/\1/p' CMakeLists.txt)  # project(divert VERSION x.y.z)
  soname=$([[ -n $so ]] && readelf -d "$so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
  if [[ -n $soname && $soname == "libdivert.so.${version%%.*}" ]]; then
    ok "SONAME libdivert.so.${version%%.*}"
  else
    bad "SONAME libdivert.so.${version%%.*}"
  fi
  if [[ -n $so && -n $version ]] && [[ $(readlink -f "$so") == */libdivert.so.$version ]]; then
    ok "libdivert.so -> libdivert.so.$version"
  else
    bad "libdivert.so -> libdivert.so.$version"
  fi
  # Hidden by default: the shared library exports fewer divert:: code symbols than the
  # static archive defines (inline functions and internals such as src/-only helpers
  # stay hidden), and the API the consumer needs is there.
  static_a=$(compgen -G "$WORK/static/lib*/libdivert.a" | head -n 1)
  if [[ -n $so && -n $static_a ]]; then
    dyn=$(nm -DC --defined-only "$so")
    arc=$(nm -C --defined-only "$static_a" 2>/dev/null)
    n_dyn=$(grep -c ' [TW] .*divert::' <<< "$dyn")
    n_arc=$(grep -c ' [TW] .*divert::' <<< "$arc")
    if grep -q ' T divert::ppv2::parse(' <<< "$dyn" && (( n_dyn > 0 && n_dyn < n_arc )); then
      ok "visibility: $n_dyn of $n_arc divert:: code symbols exported"
    else
      bad "visibility: $n_dyn of $n_arc divert:: code symbols exported"
    fi
  else
    bad "visibility (no libdivert.so or libdivert.a)"
  fi
  mv "$WORK/vcpkg-stage" "$WORK/vcpkg"  # relocate, as vcpkg does
  libdir=$(compgen -G "$WORK/vcpkg/lib*" | head -n 1)
  consumer find_package-shared tests/package/consumer consumer \
    -DCMAKE_PREFIX_PATH="$WORK/vcpkg" -DCMAKE_BUILD_RPATH="$libdir"
  # ldd's output is captured first: `ldd | grep -q` under pipefail fails
  # whenever grep exits before ldd has written everything (SIGPIPE).
  deps=$(ldd "$WORK/c-find_package-shared/consumer" 2>&1 || true)
  if grep -qF "$WORK/vcpkg/" <<< "$deps"; then
    ok "consumer runs against the shared library"
  else
    bad "consumer runs against the shared library"
    echo "$deps" | sed 's/^/     /'
  fi
else
  bad "shared build and install"
fi
fi

# ---- 3. pkg-config
step "pkg-config on the static install"
if [[ $static_ok == 1 ]]; then
  PKG_CONFIG_PATH=$(compgen -G "$WORK/static/lib*/pkgconfig" | head -n 1) \
    consumer pkg-config tests/package/consumer consumer -DDIVERT_CONSUME=pkg-config
else
  bad "pkg-config (no static install)"
fi

# ---- 4. add_subdirectory
step "add_subdirectory"
if [[ $FLAVOUR == boost ]]; then
  echo "   skipped: $BUILD_DIR is a DIVERT_ASIO=boost build (the standalone run covers add_subdirectory)"
else
  consumer add_subdirectory tests/package/consumer consumer \
    -DDIVERT_CONSUME=add_subdirectory -DDIVERT_SOURCE_DIR="$ROOT"
fi

# ---- 5. Conan
step "Conan recipe"
if python3 -m py_compile conanfile.py test_package/conanfile.py; then
  ok "conanfile.py and test_package/conanfile.py compile"
else
  bad "conanfile.py and test_package/conanfile.py compile"
fi
if [[ $static_ok == 1 ]]; then
  consumer conan-test_package test_package test_package -DCMAKE_PREFIX_PATH="$WORK/static"
else
  bad "conan-test_package (no static install)"
fi

# ---- 6. headers alone
step "every public header compiles on its own"
if [[ $static_ok == 1 ]] && bash tests/package/headers_compile.sh "$WORK/static/include"; then
  ok "headers compile alone"
else
  bad "headers compile alone"
fi

# ---- 7. the Asio flavour
step "Asio flavour ($FLAVOUR install): the other Asio is refused at configure time"
flavour_refused() {  # name, then cmake args: configuring must fail with the mismatch message
  local name=$1 log="$WORK/f-$1.log"; shift
  if cmake -S tests/package/flavour_check -B "$WORK/f-$name" -DCMAKE_PREFIX_PATH="$WORK/static" "$@" > "$log" 2>&1; then
    echo "   configured, expected a refusal:"; tail -n 20 "$log"; return 1
  fi
  grep -q "Asio flavour mismatch" "$log" && return 0
  echo "   failed without the mismatch message:"; tail -n 30 "$log"; return 1
}
refused() {  # label, then name and cmake args for flavour_refused
  local label=$1; shift
  if flavour_refused "$@"; then ok "$label"; else bad "$label"; fi
}
if [[ $static_ok != 1 ]]; then
  bad "Asio flavour (no static install)"
elif [[ $FLAVOUR == boost ]]; then
  refused "DIVERT_ASIO_REQUIRED=standalone refused by a Boost.Asio divert" \
    required-standalone -DDIVERT_ASIO_REQUIRED=standalone
  refused "a project that found standalone Asio (asio::asio) refused by a Boost.Asio divert" \
    found-standalone -DUSE_STANDALONE_ASIO=ON
  consumer boost_consumer tests/package/boost_consumer boost_consumer -DCMAKE_PREFIX_PATH="$WORK/static"
else
  refused "DIVERT_ASIO_REQUIRED=boost refused by a standalone Asio divert" \
    required-boost -DDIVERT_ASIO_REQUIRED=boost
  refused "a project that found Boost.Asio (Boost::asio) refused by a standalone Asio divert" \
    found-boost -DUSE_BOOST_ASIO=ON
  if run_logged "$WORK/f-required-standalone.log" cmake -S tests/package/flavour_check \
       -B "$WORK/f-required-standalone" -DCMAKE_PREFIX_PATH="$WORK/static" -DDIVERT_ASIO_REQUIRED=standalone; then
    ok "DIVERT_ASIO_REQUIRED=standalone accepted by a standalone Asio divert"
  else bad "DIVERT_ASIO_REQUIRED=standalone accepted by a standalone Asio divert"; fi
fi

finish
