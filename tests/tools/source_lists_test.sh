#!/usr/bin/env bash
# The CMake lists are explicit (CONTRIBUTING.md): every source file must be in
# its folder's list, or it is silently left out of the build (a library file
# then shows up as an undefined reference, a test folder or an example not at
# all). Fails naming each file or folder that is missing from its list.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
missing=0
need() {  # need FILE_WITH_LIST WORD: WORD must appear as a word in the list file
  if ! grep -qE "(^|[[:space:](/\"])$2([[:space:])\"]|$)" "$1"; then
    echo "missing from $1: $2"
    missing=1
  fi
}
while IFS= read -r f; do need src/CMakeLists.txt "${f#src/}"; done \
  < <(find src -name '*.cpp' | sort)
while IFS= read -r d; do need tests/CMakeLists.txt "$(basename "$d")"; done \
  < <(find tests -mindepth 2 -maxdepth 2 -name CMakeLists.txt -printf '%h\n' | sort)
while IFS= read -r f; do need examples/CMakeLists.txt "$(basename "$f" .cpp)"; done \
  < <(find examples -maxdepth 1 -name '*.cpp' | sort)
while IFS= read -r f; do need bench/CMakeLists.txt "$(basename "$f" .cpp)"; done \
  < <(find bench -maxdepth 1 -name 'bench_*.cpp' | sort)
if ((missing)); then
  echo "add each to its CMakeLists.txt (one line per file)"
  exit 1
fi
echo "every source file, test folder, example and benchmark is in its CMake list"
