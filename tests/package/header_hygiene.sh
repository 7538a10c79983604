#!/usr/bin/env bash
# tests/package/header_hygiene.sh GENERATED_INCLUDE_DIR — what the API headers
# pull into a host's translation unit: divert/connector.hpp and
# divert/net/connect.hpp must not include all of <asio.hpp> nor Asio's
# experimental headers (awaitable_operators and friends define operators a
# host did not ask for). EXEMPT (a regex, default none) names headers whose
# own includes are not counted, e.g. EXEMPT='divert/relay\.hpp' while the
# relay's header still includes <asio.hpp>. CXX picks the compiler (default c++).
# Prints one line per header and "N passed, M failed"; exits non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
gen=${1:?usage: header_hygiene.sh GENERATED_INCLUDE_DIR}
cxx=${CXX:-c++}
pass=0; fail=0
for h in divert/connector.hpp divert/net/connect.hpp; do
  # -H prints every header opened, one per line, depth as leading dots.
  tree=$("$cxx" -std=c++20 -fsyntax-only -H -I include -I "$gen" \
           -DASIO_STANDALONE -DASIO_HAS_CO_AWAIT=1 -DASIO_HAS_STD_COROUTINE=1 -DDIVERT_WITH_TLS=1 \
           -x c++ - <<< "#include \"$h\"" 2>&1 >/dev/null) || { echo "FAIL $h (does not compile)"; fail=$((fail + 1)); continue; }
  bad=$(awk -v exempt="${EXEMPT:-}" '
    /^\.+ / {
      depth = index($0, " ") - 1; path = $2
      if (skip && depth > skip) next
      skip = 0
      if (exempt != "" && path ~ exempt) { skip = depth; next }
      if ((path ~ /\/asio\.hpp$/ && path !~ /divert\/asio\.hpp$/) || path ~ /\/asio\/experimental\//) print path
    }' <<< "$tree" | sort -u)
  if [[ -z $bad ]]; then
    echo "ok   $h"; pass=$((pass + 1))
  else
    echo "FAIL $h pulls:"; echo "$bad" | sed 's/^/       /'; fail=$((fail + 1))
  fi
done
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
