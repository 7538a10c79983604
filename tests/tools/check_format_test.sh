#!/usr/bin/env bash
# tools/check_format.sh must pass a file formatted as .clang-format says and fail
# (exit 1, naming the file) on one that is not. Exit 77 (skipped) without
# clang-format-14.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
command -v "${CLANG_FORMAT:-clang-format-14}" >/dev/null || {
  echo "skipped: clang-format-14 not installed (tests/deps.sh installs it)"
  exit 77
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$root/.clang-format" "$tmp/"
printf '#include <cstdio>\n\nint main() {\n  std::puts("ok");\n  return 0;\n}\n' >"$tmp/good.cpp"
printf '#include <cstdio>\nint main(){std::puts("ok");   return 0;}\n' >"$tmp/bad.cpp"
# A line over the 100-column limit (the kind of violation the tree had).
{
  printf 'int f(int aaaaaaaaaaaaaaaaaaaa, int bbbbbbbbbbbbbbbbbbbbbb, int cccccccccccccccccccccc, '
  printf 'int dddddddddddddd);\n'
} >"$tmp/long.hpp"

bash "$root/tools/check_format.sh" "$tmp/good.cpp"
for f in bad.cpp long.hpp; do
  set +e
  out=$(bash "$root/tools/check_format.sh" "$tmp/good.cpp" "$tmp/$f" 2>&1)
  rc=$?
  set -e
  if [[ $rc -ne 1 ]]; then
    echo "FAIL: check_format.sh exited $rc on $f (want 1)"; echo "$out"; exit 1
  fi
  if ! grep -q "^  $tmp/$f\$" <<<"$out" || grep -q "^  $tmp/good.cpp\$" <<<"$out"; then
    echo "FAIL: the report does not name exactly $f:"; echo "$out"; exit 1
  fi
done
echo "check_format.sh passes a formatted file and fails on misformatted ones"
