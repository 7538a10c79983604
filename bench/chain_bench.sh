#!/usr/bin/env bash
# bench/chain_bench.sh — divert-port-forward against HAProxy 2.6
# (send-proxy-v2) doing the same job, on loopback, alternating A/B in one run:
#
#   wrk / divert_bench_chainload -> [A: divert-port-forward | B: haproxy send-proxy-v2]
#       -> haproxy "accept-proxy" (the shared next hop) -> nginx
#
# Figures per side and the ratio divert/HAProxy (of the medians, and the
# median of each run's own ratio, "per-run": the figure to trust on a busy
# machine):
#   (a) new connections per second: wrk, tiny response, "Connection: close"
#   (b) throughput of 1 MiB responses over keep-alive (wrk)
#   (c) p99 latency of requests started at a fixed rate, each on a new
#       connection (divert_bench_chainload rate: open loop); both sides run
#       side by side, each first gets 0.5 s of requests that are not counted
#       (start-up: first allocations, page faults), then they take turns in
#       1-second slices (--c-duration S per side, default 10: a p99 needs
#       thousands of samples to be steadier than this machine), and the p99 is
#       over all of a side's requests in the run (slow drift in the machine's
#       load then hits both alike)
#   (d) RSS per idle connection: VmRSS of the side's process before and after
#       10,000 keep-alive connections are opened through it and left idle
#   (e) CPU per connection of the side's process during (a): the growth of
#       the run time of all its threads (/proc/PID/task/*/schedstat, user and
#       kernel) divided by the requests wrk completed, in us
# HAProxy runs in one or both of two profiles (--haproxy-profile), each with
# its own table (divert measured anew against the same next hop):
#   default  the configuration a user starts from: side B's server line has
#            send-proxy-v2 and nothing else is tuned
#   best     what HAProxy 2.6's configuration.txt recommends for this job:
#            side B: "option tcp-smart-connect" (the handshake's last ACK on
#            the request), "option tcp-smart-accept" (no ACK of its own for
#            the client's request: the client speaks first), "option
#            splice-auto" (kernel splicing where it pays), "tfo" on the
#            server line, and "tune.pipesize" (the one tune.* the manual ties
#            to throughput: larger pipes, fewer splice() calls), "maxpipes"
#            256 (the default, maxconn/4, would need more descriptors than
#            the limit allows); the shared next hop: "tfo" on its bind,
#            splice-auto and tcp-smart-connect (it serves both sides alike). Not set: tune.bufsize (the manual
#            advises against changing it), tune.maxpollevents (bandwidth for
#            latency), tune.rcvbuf/sndbuf ("should normally never be set"),
#            retry-on (HTTP mode only). Fast Open needs net.ipv4.tcp_fastopen
#            with bit 1 (server) set: the script sets it to 3 for the run when
#            it may (root) and puts the old value back on exit. divert uses
#            the next hop's Fast Open only when told to (--divert-set
#            tcp_fast_open=true).
# First both sides single-threaded, then divert --threads 2 against HAProxy
# nbthread 2 (next hop and nginx get 2 threads/workers too). Each figure is the
# median of --runs runs; in each run A and B are measured back to back, in
# alternating order (A first in odd runs, B first in even ones), each side
# started afresh for every measurement. (a) and (b) are measured twice a run,
# in mirrored order (A B B A, or B A A B), and a side's figure for the run is
# the mean of its two: on this machine the slot in the sequence moved a
# figure by up to 10 %, the same way for both sides. Before every measurement
# the next hop and nginx are given time to let go of the previous one's
# connections.
#
# Usage: bench/chain_bench.sh [--build DIR] [--duration S] [--runs N]
#          [--rate R] [--c-duration S] [--idle-conns N] [--threads "1 2"]
#          [--only abcde] [--haproxy-profile default|best|both]
#          [--haproxy-backend LINE] [--divert-set KEY=VALUE]
# Defaults: build-perf (or $DIVERT_BUILD_DIR; configured and built when
# missing), 5 s for (a) and (b), 3 runs, 500 req/s for 10 s per side for (c),
# 10000 idle connections, threads "1 2", all five figures ((e) comes with
# (a)), both HAProxy profiles. --haproxy-backend (repeatable) adds a line to
# side B's backend section in every profile, e.g. "option tcp-smart-connect"
# (what divert's delay_handshake_ack, on by default, does). --divert-set
# (repeatable) passes "--set KEY=VALUE" to divert-port-forward, e.g.
# tcp_fast_open=true.
# Installs wrk, haproxy and nginx-light when missing (as tests/deps.sh does).
# Everything runs as the current user in a temp dir and is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${DIVERT_BUILD_DIR:-$ROOT/build-perf}
DURATION=5
C_DURATION=10
RUNS=3
RATE=500
IDLE_CONNS=10000
THREAD_SETS="1 2"
ONLY=abcde
PROFILES="default best"
B_BACKEND=""
A_SET=()
while (($#)); do
  if [[ $1 = --* && $1 != --help && $# -lt 2 ]]; then
    echo "chain_bench: $1 needs a value (try --help)" >&2; exit 2
  fi
  case $1 in
    --build) BUILD=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --c-duration) C_DURATION=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --idle-conns) IDLE_CONNS=$2; shift 2 ;;
    --threads) THREAD_SETS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --haproxy-backend) B_BACKEND+=${B_BACKEND:+$'\n  '}$2; shift 2 ;;
    --haproxy-profile)
      case $2 in
        default|best) PROFILES=$2 ;;
        both) PROFILES="default best" ;;
        *) echo "chain_bench: --haproxy-profile takes default, best or both, not $2" >&2; exit 2 ;;
      esac
      shift 2 ;;
    --divert-set) A_SET+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set -e/{/^#/p}' "$0"; exit 0 ;;
    *) echo "chain_bench: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
[[ $C_DURATION =~ ^[1-9][0-9]*$ ]] || { echo "chain_bench: --c-duration takes whole seconds, not $C_DURATION" >&2; exit 2; }
if [[ $ONLY = *[ae]* ]]; then ONLY+=ae; fi  # (e) is measured during (a): each brings the other

# ---- packages and programs
need=()
for p in wrk haproxy nginx-light python3 iproute2; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  echo "chain_bench: installing ${need[*]}" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need[@]}"
fi
DIVERT=$BUILD/examples/divert-port-forward
LOADGEN=$BUILD/bench/divert_bench_chainload
# Configure (RelWithDebInfo, benchmarks on) when the build directory is new,
# then bring the two programs up to date.
if [[ ! -f $BUILD/build.ninja ]]; then
  bash "$ROOT/tests/deps.sh"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDIVERT_BUILD_BENCHMARKS=ON -DDIVERT_BUILD_EXAMPLES=ON >&2
fi
ninja -C "$BUILD" divert-port-forward divert_bench_chainload >&2
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# (d) needs two descriptors per idle connection in the side under test and
# the next hop: raise the limit as far as allowed (a container may cap it).
ulimit -Hn 200000 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# HAProxy also counts two per pipe (the best profile splices; MAXPIPES is its
# "maxpipes", as many as divert's per-thread pipe pool keeps at most).
MAXPIPES=256
if (($(ulimit -n) < 2 * IDLE_CONNS + 2 * MAXPIPES + 300)); then
  IDLE_CONNS=$((($(ulimit -n) - 2 * MAXPIPES - 300) / 2))
  echo "chain_bench: open-file limit $(ulimit -n): (d) uses $IDLE_CONNS connections" >&2
fi

TMP=$(mktemp -d /tmp/divert-chain-bench.XXXXXX)
PIDS=()
TFO_SYSCTL=/proc/sys/net/ipv4/tcp_fastopen
TFO_RESTORE=""  # the value to put back on exit, when this script changed it
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -z $TFO_RESTORE ]] || echo "$TFO_RESTORE" > "$TFO_SYSCTL" || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_listen() {  # port
  local i
  for i in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "chain_bench: nothing listens on $1; logs:" >&2
  tail -n 5 "$TMP"/*.log >&2
  exit 1
}
stop_pid() {  # pid [signal]: stops one process this script started
  kill -"${2:-TERM}" "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]}"; do [[ $p = "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

P_NGINX=$(free_port); P_NEXT=$(free_port); P_A=$(free_port); P_B=$(free_port)
mkdir -p "$TMP/www" "$TMP/nginx-tmp"
head -c 1048576 /dev/zero > "$TMP/www/1m"
MAXCONN=$((IDLE_CONNS + 50))  # HAProxy needs 2 fds per connection + a few

# The profile's lines for the HAProxy configurations (see the header).
PROFILE=default
profile_lines() {  # side|next  global|defaults|frontend|backend|bind|server
  [[ $PROFILE = best ]] || return 0
  case $1-$2 in
    side-global) echo "tune.pipesize 262144"$'\n'"  maxpipes $MAXPIPES" ;;
    next-global) echo "maxpipes $MAXPIPES" ;;
    *-defaults) echo "option splice-auto" ;;
    side-frontend) echo "option tcp-smart-accept" ;;
    *-backend) echo "option tcp-smart-connect" ;;
    side-server | next-bind) echo " tfo" ;;
  esac
}
# Fast Open's server side (the next hop's "tfo") needs bit 1 of the sysctl.
tfo_server_enable() {
  local v
  v=$(cat "$TFO_SYSCTL" 2>/dev/null || echo 0)
  ((v & 2)) && return 0
  if echo $((v | 3)) 2>/dev/null > "$TFO_SYSCTL"; then
    TFO_RESTORE=$v
    echo "chain_bench: net.ipv4.tcp_fastopen $v -> $((v | 3)) for this run" >&2
  else
    echo "chain_bench: net.ipv4.tcp_fastopen is $v (no server bit) and cannot be changed: \"tfo\" has no effect" >&2
  fi
}

start_backend() {  # threads: nginx and the next hop
  local t=$1 user_line=""
  [[ $(id -u) -eq 0 ]] && user_line="user $(id -un);"
  cat > "$TMP/nginx.conf" <<EOF
$user_line
worker_processes $t;
worker_rlimit_nofile $(ulimit -n);
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections $MAXCONN; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx-tmp;
  proxy_temp_path $TMP/nginx-tmp;
  keepalive_timeout 300s;
  keepalive_requests 100000000;
  sendfile on;
  tcp_nopush on;
  server {
    listen 127.0.0.1:$P_NGINX backlog=4096 reuseport;
    location = /tiny { return 200 "ok\n"; }
    location = /1m { root $TMP/www; }
  }
}
EOF
  "$NGINX" -p "$TMP" -c "$TMP/nginx.conf" 2>>"$TMP/nginx-error.log" &
  PIDS+=($!); NGINX_PID=$!
  haproxy_conf next "$t" "bind 127.0.0.1:$P_NEXT accept-proxy backlog 4096$(profile_lines next bind)" \
    "server nginx 127.0.0.1:$P_NGINX"
  "$HAPROXY" -db -f "$TMP/next.cfg" 2>>"$TMP/next.log" &
  PIDS+=($!); NEXT_PID=$!
  wait_listen "$P_NGINX"; wait_listen "$P_NEXT"
}
stop_backend() { stop_pid "$NEXT_PID"; stop_pid "$NGINX_PID"; }

haproxy_conf() {  # name(side|next) threads bind-line server-line; adds the profile's lines
  cat > "$TMP/$1.cfg" <<EOF
global
  nbthread $2
  maxconn $MAXCONN
  pidfile $TMP/$1.pid
  $(profile_lines "$1" global)
defaults
  mode tcp
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  maxconn $MAXCONN
  $(profile_lines "$1" defaults)
frontend fe
  $3
  $(profile_lines "$1" frontend)
  default_backend be
backend be
  $4
  $(profile_lines "$1" backend)
EOF
}

SIDE_PID=""
start_side() {  # A|B threads
  if [[ $1 = A ]]; then
    "$DIVERT" --listen "127.0.0.1:$P_A" --upstream "127.0.0.1:$P_NGINX" \
      --next-proxy "127.0.0.1:$P_NEXT" --threads "$2" "${A_SET[@]}" 2>>"$TMP/divert.log" &
    SIDE_PID=$!; PIDS+=($!); wait_listen "$P_A"
  else
    haproxy_conf side "$2" "bind 127.0.0.1:$P_B backlog 4096" \
      "server next 127.0.0.1:$P_NEXT send-proxy-v2$(profile_lines side server)${B_BACKEND:+
  $B_BACKEND}"
    "$HAPROXY" -db -f "$TMP/side.cfg" 2>>"$TMP/side.log" &
    SIDE_PID=$!; PIDS+=($!); wait_listen "$P_B"
  fi
}
side_port() { [[ $1 = A ]] && echo "$P_A" || echo "$P_B"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# CPU time of all the process's threads so far, ns (schedstat's first field)
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }

# wrk's "Transfer/sec: 1.95GB" -> MB/s (1e6 bytes)
to_mbps() {
  awk '{v=$1; u=$1; gsub(/[0-9.]/,"",u); sub(/[A-Za-z]+$/,"",v);
        m = u=="GB" ? 1073741824 : u=="MB" ? 1048576 : u=="KB" ? 1024 : 1;
        printf "%.0f", v*m/1e6}'
}

# Waits (at most 30 s) until fewer than $1 of the previous measurement's
# connections are left at the next hop and nginx (after (d), ten thousand).
settle() {
  for _ in $(seq 300); do
    (($(ss -Htn state established "( sport = :$P_NEXT or sport = :$P_NGINX )" | wc -l) < $1)) && break
    sleep 0.1
  done
}

RESULT=""
RESULT_CPU=""
measure() {  # test side threads -> RESULT, and RESULT_CPU with (a) (not a subshell: the trap must see every pid)
  local test=$1 side=$2 t=$3 port out cpu0 cpu1 n
  port=$(side_port "$side")
  settle 1
  start_side "$side" "$t"
  case $test in
    a)
      cpu0=$(cpu_ns "$SIDE_PID")
      out=$(wrk -t"$t" -c64 -d"${DURATION}s" -H "Connection: close" "http://127.0.0.1:$port/tiny")
      cpu1=$(cpu_ns "$SIDE_PID")
      RESULT=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
      n=$(awk '/ requests in / {print $1}' <<<"$out")
      RESULT_CPU=""  # (e): ns per request, "" when wrk completed none
      [[ -n $n && $n -gt 0 ]] && RESULT_CPU=$(((cpu1 - cpu0) / n)) ;;
    b)
      out=$(wrk -t"$t" -c8 -d"${DURATION}s" "http://127.0.0.1:$port/1m")
      RESULT=$(awk '/^Transfer\/sec:/ {print $2}' <<<"$out" | to_mbps) ;;
    d)
      # warm up (first allocations, thread start), then the baseline
      "$LOADGEN" rate "127.0.0.1:$port" /tiny 200 0.5 >/dev/null || true
      sleep 0.3
      local before after hold n
      # the previous side's connections must be gone from the next hop and
      # nginx first (their limits leave room for one side's idle set only)
      settle 200
      before=$(rss_kib "$SIDE_PID")
      "$LOADGEN" hold "127.0.0.1:$port" /tiny "$IDLE_CONNS" >"$TMP/hold.out" &
      hold=$!; PIDS+=($hold)
      for _ in $(seq 1200); do
        [[ -s $TMP/hold.out ]] && break
        kill -0 "$hold" 2>/dev/null || break
        sleep 0.1
      done
      sleep 0.5
      after=$(rss_kib "$SIDE_PID")
      n=$(awk -v want="$IDLE_CONNS" '/^ready/ && $2 >= 0.9 * want {print $2}' "$TMP/hold.out")
      stop_pid "$hold"
      if [[ -n $n ]]; then  # bytes per connection
        RESULT=$(awk -v b="$before" -v a="$after" -v n="$n" 'BEGIN {printf "%.0f", (a-b)*1024/n}')
      else  # left out of the median
        RESULT=""
        echo "chain_bench: (d) $side: fewer than 90% of the connections opened: $(cat "$TMP/hold.out")" >&2
      fi ;;
  esac
  stop_pid "$SIDE_PID" KILL  # no graceful drain needed
}

# (c) for both sides at once: RESULT_A, RESULT_B (p99 over the run's slices)
measure_latency() {  # threads order
  local t=$1 order=$2 pa pb side slice out
  settle 1
  start_side A "$t"; pa=$SIDE_PID
  start_side B "$t"; pb=$SIDE_PID
  rm -f "$TMP/lat-A" "$TMP/lat-B"
  for side in $order; do  # warm-up, not counted
    "$LOADGEN" rate "127.0.0.1:$(side_port "$side")" /tiny "$RATE" 0.5 >/dev/null || true
  done
  for ((slice = 1; slice <= C_DURATION; slice++)); do
    for side in $order; do
      out=$("$LOADGEN" rate "127.0.0.1:$(side_port "$side")" /tiny "$RATE" 1 "$TMP/lat-$side" || true)
      echo "$side $out" >>"$TMP/rate.log"
    done
  done
  stop_pid "$pa" KILL; stop_pid "$pb" KILL
  p99() { [[ -s $1 ]] && sort -n "$1" | awk '{v[NR]=$1} END {i=int(0.99*(NR-1)+0.5)+1; print v[i]}'; }
  RESULT_A=$(p99 "$TMP/lat-A"); RESULT_B=$(p99 "$TMP/lat-B")
}

median() { tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -g | awk '{v[NR]=$1} END {print NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

declare -A NAME=([a]="new connections/s (Connection: close)" [b]="1 MiB responses, keep-alive (MB/s)"
                 [c]="p99 latency at ${RATE} req/s, new conn (us)" [d]="RSS per idle connection (bytes)"
                 [e]="side CPU per connection during (a) (us)")
declare -A GOAL=([a]=">= 1.00" [b]=">= 1.00" [c]="<= 1.00" [d]="<= 1.00" [e]="<= 0.90 vs best")

echo "chain_bench: $(nproc) cores, $(uname -r), $(haproxy -v | head -1 | cut -d' ' -f1-3), nginx $("$NGINX" -v 2>&1 | cut -d/ -f2)"
echo "chain_bench: duration ${DURATION}s, runs $RUNS, (c) $RATE/s for ${C_DURATION}s per side, idle connections $IDLE_CONNS"
[[ -z $B_BACKEND ]] || echo "chain_bench: HAProxy side's backend also has: ${B_BACKEND//$'\n  '/; }"
((${#A_SET[@]} == 0)) || echo "chain_bench: divert-port-forward also has: ${A_SET[*]}"
echo "chain_bench: HAProxy profiles: $PROFILES"
for t in $THREAD_SETS; do
for PROFILE in $PROFILES; do
  [[ $PROFILE = best ]] && tfo_server_enable
  start_backend "$t"
  declare -A VALUES=()
  for ((r = 1; r <= RUNS; r++)); do
    order="A B"; ((r % 2)) || order="B A"
    for test in a b c d; do
      [[ $ONLY = *$test* ]] || continue
      if [[ $test = c ]]; then
        measure_latency "$t" "$order"
        VALUES[cA]+=" ${RESULT_A:--}"; VALUES[cB]+=" ${RESULT_B:--}"
        echo "  threads $t run $r (c) A: $RESULT_A B: $RESULT_B" >&2
        continue
      fi
      seq_="$order"
      [[ $test = [ab] ]] && seq_="$order ${order#* } ${order% *}"  # A B B A / B A A B
      declare -A SUM=([A]=0 [B]=0) CNT=([A]=0 [B]=0) SUM_E=([A]=0 [B]=0) CNT_E=([A]=0 [B]=0)
      for side in $seq_; do
        measure "$test" "$side" "$t"
        echo "  $PROFILE threads $t run $r ($test) $side: $RESULT${RESULT_CPU:+ (e) ${RESULT_CPU} ns}" >&2
        if [[ $test = a && -n $RESULT_CPU ]]; then
          SUM_E[$side]=$((SUM_E[$side] + RESULT_CPU)) CNT_E[$side]=$((CNT_E[$side] + 1))
        fi
        [[ -n $RESULT ]] || continue  # failed: left out
        SUM[$side]=$((SUM[$side] + RESULT)) CNT[$side]=$((CNT[$side] + 1))  # whole numbers
      done
      want=1; [[ $test = [ab] ]] && want=2
      for side in A B; do  # the run's figure: the mean of its measurements, "-" unless all worked
        v=-; ((CNT[$side] == want)) && v=$(awk -v s="${SUM[$side]}" -v n="${CNT[$side]}" 'BEGIN {printf "%.0f", s / n}')
        VALUES[$test$side]+=" $v"
        [[ $test = a ]] || continue
        v=-; ((CNT_E[$side] == want)) && v=$(awk -v s="${SUM_E[$side]}" -v n="${CNT_E[$side]}" 'BEGIN {printf "%.1f", s / n / 1000}')
        VALUES[e$side]+=" $v"  # us
      done
    done
  done
  stop_backend
  echo
  echo "threads $t (divert --threads $t | haproxy nbthread $t), HAProxy profile $PROFILE, medians of $RUNS alternating runs"
  printf '  %-44s %10s %10s %9s %9s %s\n' "figure" "divert" "haproxy" "ratio" "per-run" "goal"
  for test in a b c d e; do
    [[ $ONLY = *$test* ]] || continue
    ma=$(median <<<"${VALUES[${test}A]}"); mb=$(median <<<"${VALUES[${test}B]}")
    ratio=$(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
    # the median of each run's own ratio (A and B measured back to back)
    per_run=$(paste -d' ' <(tr ' ' '\n' <<<"${VALUES[${test}A]}" | grep -v '^$') \
                          <(tr ' ' '\n' <<<"${VALUES[${test}B]}" | grep -v '^$') |
              awk '$1 ~ /^[0-9.]+$/ && $2 ~ /^[0-9.]+$/ && $2 > 0 {print $1 / $2}' | median)
    printf '  (%s) %-40s %10s %10s %8sx %8.2fx %s\n' "$test" "${NAME[$test]}" "$ma" "$mb" "$ratio" \
      "${per_run:-0}" "${GOAL[$test]}"
    printf '      all runs: divert%s | haproxy%s\n' "${VALUES[${test}A]}" "${VALUES[${test}B]}"
  done
  unset VALUES
done
done
