#!/usr/bin/env bash
# tools/check_format.sh — fails when a C++ file is not formatted as .clang-format
# says: clang-format --dry-run -Werror over every tracked *.cpp / *.hpp / *.h
# (git ls-files), or over the files given. CI runs it (.ci/run).
#
# Usage: tools/check_format.sh [FILE...]
# Environment: CLANG_FORMAT  the formatter (default clang-format-14, Debian 12's:
#              other versions format some constructs differently).
# Exit status: 0 all formatted, 1 some file is not, 2 no formatter / no files.
# To fix a file: clang-format-14 -i FILE
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLANG_FORMAT=${CLANG_FORMAT:-clang-format-14}
if ! command -v "$CLANG_FORMAT" >/dev/null; then
  echo "check_format: $CLANG_FORMAT not found (apt-get install clang-format-14; tests/deps.sh installs it)" >&2
  exit 2
fi

files=()
if (($#)); then
  files=("$@")
elif git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  while IFS= read -r -d '' f; do files+=("$root/$f"); done \
    < <(git -C "$root" ls-files -z -- '*.cpp' '*.hpp' '*.h')
else  # a source tarball: the C++ folders
  while IFS= read -r -d '' f; do files+=("$f"); done \
    < <(find "$root"/{include,src,tests,examples,bench,fuzz,test_package} -type f \
          \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \) -print0 2>/dev/null)
fi
if ((${#files[@]} == 0)); then
  echo "check_format: no C++ files to check" >&2
  exit 2
fi

# .clang-format is found from each file's folder upwards (the repository's own).
if out=$("$CLANG_FORMAT" --dry-run -Werror "${files[@]}" 2>&1); then
  echo "check_format: ${#files[@]} files formatted as .clang-format says ($("$CLANG_FORMAT" --version | head -1))"
  exit 0
fi
# The first lines of clang-format's report, then every file that needs formatting.
sed -n '1,60p' <<<"$out" >&2
bad=$(sed -n 's/^\(.*\):[0-9]*:[0-9]*: \(warning\|error\): .*/\1/p' <<<"$out" | sort -u)
n=$(grep -c . <<<"$bad" || true)
echo "check_format: $n of ${#files[@]} files are not formatted as .clang-format says:" >&2
sed 's/^/  /' <<<"$bad" >&2
echo "check_format: fix with $CLANG_FORMAT -i FILE..." >&2
exit 1
