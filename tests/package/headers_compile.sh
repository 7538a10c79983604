#!/usr/bin/env bash
# tests/package/headers_compile.sh GENERATED_INCLUDE_DIR — compiles every public
# header under include/divert/ alone (one translation unit each, -fsyntax-only), so
# a header that leans on an include it does not make itself is caught.
# GENERATED_INCLUDE_DIR holds divert/version.hpp, config.hpp and export.hpp (a build
# tree's include/ or an install's include/). CXX picks the compiler (default c++).
# Prints one line per header and a final "N passed, M failed"; exits non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
gen=${1:?usage: headers_compile.sh GENERATED_INCLUDE_DIR}
[[ -f $gen/divert/export.hpp && -f $gen/divert/version.hpp && -f $gen/divert/config.hpp ]] ||
  { echo "no divert/export.hpp, divert/version.hpp and divert/config.hpp under $gen"; exit 1; }
cxx=${CXX:-c++}
# The defines divert's package gives a consumer (cmake/FindAsio.cmake): with
# standalone Asio 1.22, Clang's C++20 coroutines; nothing for Boost.Asio.
asio_defs=""
if grep -q '^#define DIVERT_ASIO_BOOST 0' "$gen/divert/config.hpp" && [[ $($cxx --version) == *clang* ]]; then
  asio_defs="-DASIO_HAS_CO_AWAIT=1 -DASIO_HAS_STD_COROUTINE=1"
fi
out=$(mktemp -d /tmp/divert-headers.XXXXXX)
trap 'rm -rf "$out"' EXIT
export cxx gen out asio_defs
one() {  # header path; writes the compiler output to $out/<mangled>.log
  local log="$out/${1//\//_}.log"
  if "$cxx" -std=c++20 -fsyntax-only -Wall -Wextra -Wpedantic -Werror -I include -I "$gen" \
       $asio_defs -DDIVERT_WITH_TLS=1 \
       -x c++ - <<< "#include \"${1#include/}\"" > "$log" 2>&1; then
    echo "ok   $1"
  else
    echo "FAIL $1"
  fi
}
export -f one
results=$(find include/divert -name '*.hpp' | sort | xargs -P "${JOBS:-$(nproc)}" -I{} bash -c 'one {}')
echo "$results" | sort -k2
for f in $(echo "$results" | awk '$1 == "FAIL" {print $2}'); do
  echo "---- $f"; cat "$out/${f//\//_}.log"
done
pass=$(echo "$results" | grep -c '^ok ')
fail=$(echo "$results" | grep -c '^FAIL ')
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
