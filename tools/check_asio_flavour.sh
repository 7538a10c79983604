#!/usr/bin/env bash
# tools/check_asio_flavour.sh [--fix] — the library (include/divert, src) names
# Asio only through divert's flavour headers, so that the same sources build
# against standalone Asio and, with -DDIVERT_ASIO=boost, Boost.Asio:
#   #include <asio/X.hpp>   ->  #include "divert/asio/X.hpp"   (a shim picking
#   #include <asio.hpp>     ->  #include "divert/asio/all.hpp"  <asio/X.hpp> or
#                                                   <boost/asio/X.hpp>)
#   #include <boost/asio...> in the library: never (use the shim)
#   asio::experimental::as_tuple / deferred -> divert::detail::as_tuple / deferred
#     with #include "divert/asio/as_tuple.hpp" / "divert/asio/deferred.hpp"
#     (Asio 1.24 / Boost 1.80 moved them out of experimental; the old names are
#     deprecated aliases that a host's ASIO_NO_DEPRECATED removes)
#   ::asio:: (the global namespace): never; inside namespace divert write asio::
#     (divert/asio.hpp aliases it to ::asio or ::boost::asio)
# Every shim named by an include must exist under include/divert/asio/.
# --fix rewrites the include lines and writes the missing shims (review the
# diff).
#   std::error_code / std::system_error in a file that uses Asio's error enums
#     (asio::error::eof, asio::ssl::error::...): never; write error_code /
#     system_error (divert::, the Asio's own types: std:: or boost::system::,
#     divert/asio.hpp). A line that must stay std (the std::error_category API,
#     divert's own codes) says why in a comment starting `// std:`, on it or
#     just above.
# Exits non-zero when something is wrong (after --fix: when something is left).
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
[[ ${1:-} == --fix ]] && fix=1
bad=0
report() { echo "$1"; bad=1; }

mapfile -t files < <(find include/divert src -name '*.hpp' -o -name '*.cpp' -o -name '*.hpp.in' |
                       grep -v '^include/divert/asio/' | sort)

if ((fix)); then
  for f in "${files[@]}"; do
    sed -i -E 's@^#include <asio\.hpp>@#include "divert/asio/all.hpp"@;
               s@^#include <asio/experimental/(as_tuple|deferred)\.hpp>@#include "divert/asio/\1.hpp"@;
               s@^#include "divert/asio/experimental/(as_tuple|deferred)\.hpp"@#include "divert/asio/\1.hpp"@;
               s@([^:[:alnum:]_])(::)?asio::experimental::(as_tuple|deferred)@\1divert::detail::\3@g;
               s@^#include <asio/([^>]+)>@#include "divert/asio/\1"@' "$f"
  done
fi

write_shim() {  # X.hpp (path under asio/)
  local rel=$1 shim="include/divert/asio/$1" std boost
  if [[ $rel == all.hpp ]]; then std="asio.hpp"; boost="boost/asio.hpp"
  else std="asio/$rel"; boost="boost/asio/$rel"; fi
  mkdir -p "$(dirname "$shim")"
  cat > "$shim" <<SHIM
// divert/asio/$rel — from the Asio divert is built with:
//   <$std>
//   or <$boost>
// (written by tools/check_asio_flavour.sh). Inside namespace divert the names
// are asio::... either way (divert/asio.hpp).
#pragma once

#include "divert/config.hpp"

#if DIVERT_ASIO_BOOST
#include <$boost>
#else
#include <$std>
#endif

#include "divert/asio.hpp"
SHIM
}

for f in "${files[@]}"; do
  grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<(boost/)?asio[./]' "$f" |
    sed "s@^@$f:@; s@\$@   <- use \"divert/asio/...\" (tools/check_asio_flavour.sh --fix)@" | grep . && bad=1
  grep -nE 'asio::experimental::(as_tuple|deferred)|divert/asio/experimental/(as_tuple|deferred)' "$f" |
    sed "s@^@$f:@; s@\$@   <- divert::detail::as_tuple / deferred, \"divert/asio/as_tuple.hpp\" / deferred.hpp@" |
    grep . && bad=1
  grep -nE '(^|[^[:alnum:]_])::asio::' "$f" | sed "s@^@$f:@; s@\$@   <- ::asio names standalone Asio only; write asio:: inside namespace divert@" |
    grep . && bad=1
  # Asio's error enums (not comment lines, not get_*_category()) -> no std:: error types
  if grep -vE '^[[:space:]]*//' "$f" | grep -E 'asio::(ssl::)?error::' | grep -qvE 'error::get_'; then
    awk -v f="$f" '/std::(error_code|system_error)/ && !/^[[:space:]]*\/\// && !/\/\/ std:/ &&
                   prev !~ /\/\/ std:/ {
        print f ":" NR ":" $0 "   <- error_code / system_error (this file uses Asio error enums; `// std: why` to keep it)"
        found = 1 }
      { prev = $0 } END { exit !found }' "$f" && bad=1
  fi
  while read -r rel; do
    [[ -f include/divert/asio/$rel ]] && continue
    if ((fix)); then write_shim "$rel"; echo "wrote include/divert/asio/$rel"
    else report "$f: include/divert/asio/$rel does not exist (tools/check_asio_flavour.sh --fix writes it)"; fi
  done < <(sed -nE 's@^#include "divert/asio/([^"]+)"@\1@p' "$f")
done
if ((bad)); then echo "check_asio_flavour: violations above"; exit 1; fi
echo "check_asio_flavour: ok"
