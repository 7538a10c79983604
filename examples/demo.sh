#!/usr/bin/env bash
# examples/demo.sh — divert end to end on loopback:
#   curl -> divert-forward-proxy -> (PROXY v2 header) -> divert-next-proxy -> nginx origin
# for the three interfaces: http forward, a CONNECT tunnel (tcp connect) and
# https forward (TLS on the forward proxy's side, against a CA made here); then
# one client connection kept alive across two origins, and a 3 MB upload
# checked by its SHA-256 at the origin (a small python3 origin).
# Installs missing Debian packages, builds, starts everything, prints what the
# next proxy received, and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

bash tests/deps.sh
BUILD_DIR=${BUILD_DIR:-build-demo}
if [[ ! -x $BUILD_DIR/examples/divert-forward-proxy ]] || [[ -n ${DEMO_REBUILD:-} ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDIVERT_BUILD_TESTS=OFF -DDIVERT_BUILD_EXAMPLES=ON >/dev/null
fi
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target divert-forward-proxy divert-next-proxy
BIN=$ROOT/$BUILD_DIR/examples

WORK=$(mktemp -d /tmp/divert-demo.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_log() {  # our programs say "listening on" once bound (a port probe would show up in the JSON)
  for _ in $(seq 100); do
    if grep -q "listening on" "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "demo: $1 never said it was listening:" >&2; cat "$1" >&2; exit 1
}
wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "demo: nothing listens on port $1" >&2; exit 1
}

echo "== making a CA and a certificate for localhost / 127.0.0.1 / ::1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=divert demo CA" -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
  -keyout "$WORK/origin.key" -out "$WORK/origin.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n' > "$WORK/san.cnf"
openssl x509 -req -in "$WORK/origin.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial \
  -days 2 -extfile "$WORK/san.cnf" -out "$WORK/origin.crt" 2>/dev/null

HTTP_PORT=$(free_port); HTTPS_PORT=$(free_port); NP_PORT=$(free_port); FP_PORT=$(free_port)
PY_PORT=$(free_port)
cat > "$WORK/origin.py" <<'PY'
# A second origin: answers with the request line and the body's size and SHA-256.
import hashlib, http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and 100 Continue to Expect
    def answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        text = "python origin got %s %s: %d bytes, sha256 %s\n" % (
            self.command, self.path, len(body), hashlib.sha256(body).hexdigest())
        self.send_response(200)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text.encode())
    do_GET = do_POST = answer
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
PY
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx.conf" <<NGINX
daemon off; master_process off; worker_processes 1;
pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx; uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  server { listen 127.0.0.1:$HTTP_PORT; location / { return 200 "origin (http) got \$request_uri\n"; } }
  server {
    listen 127.0.0.1:$HTTPS_PORT ssl;
    ssl_certificate $WORK/origin.crt; ssl_certificate_key $WORK/origin.key;
    location / { return 200 "origin (https) got \$request_uri over \$ssl_protocol\n"; }
  }
}
NGINX
echo "== starting nginx origin (http :$HTTP_PORT, https :$HTTPS_PORT)"
nginx -p "$WORK/nginx" -c "$WORK/nginx.conf" & PIDS+=($!)
echo "== starting the python origin on :$PY_PORT"
python3 "$WORK/origin.py" "$PY_PORT" & PIDS+=($!)
echo "== starting divert-next-proxy on :$NP_PORT"
"$BIN/divert-next-proxy" --listen "127.0.0.1:$NP_PORT" \
  --allow-upstream 127.0.0.0/8 --allow-upstream ::1 > "$WORK/next-proxy.jsonl" 2> "$WORK/next-proxy.err" & PIDS+=($!)
echo "== starting divert-forward-proxy on :$FP_PORT (next proxy 127.0.0.1:$NP_PORT, user alice)"
"$BIN/divert-forward-proxy" --listen "127.0.0.1:$FP_PORT" --next-proxy "127.0.0.1:$NP_PORT" \
  --user alice:wonderland --ca-file "$WORK/ca.crt" --allow 127.0.0.0/8 --allow ::1/128 \
  2> "$WORK/forward-proxy.err" & PIDS+=($!)
for p in $HTTP_PORT $HTTPS_PORT $PY_PORT; do wait_port "$p"; done
wait_log "$WORK/next-proxy.err"; wait_log "$WORK/forward-proxy.err"

PROXY=http://alice:wonderland@127.0.0.1:$FP_PORT
echo
echo "== 1. http forward:   curl -x $PROXY http://127.0.0.1:$HTTP_PORT/hello"
curl -sS --max-time 10 -x "$PROXY" "http://127.0.0.1:$HTTP_PORT/hello"
echo "== 2. CONNECT tunnel: curl -p -x $PROXY --cacert ca.crt https://localhost:$HTTPS_PORT/tunnel"
curl -sS --max-time 10 -p -x "$PROXY" --cacert "$WORK/ca.crt" "https://localhost:$HTTPS_PORT/tunnel"
echo "== 3. https forward:  GET https://localhost:$HTTPS_PORT/forward sent to the proxy in absolute form"
curl -sS --max-time 10 -u alice:wonderland --request-target "https://localhost:$HTTPS_PORT/forward" \
  -H "Proxy-Authorization: Basic $(printf alice:wonderland | base64)" "http://127.0.0.1:$FP_PORT/"
echo "== 4. wrong password: curl answers with the proxy's status"
curl -sS --max-time 10 -o /dev/null -w "HTTP %{http_code}\n" -x "http://alice:nope@127.0.0.1:$FP_PORT" "http://127.0.0.1:$HTTP_PORT/"
echo "== 5. keep-alive: one client connection, two origins, each request routed on its own"
curl -sS --max-time 10 -x "$PROXY" -w "   (new connections to the proxy for this request: %{num_connects})\n" \
  "http://127.0.0.1:$HTTP_PORT/first" "http://127.0.0.1:$PY_PORT/second"
echo "== 6. upload: 3 MB POST streamed through (curl sends Expect: 100-continue)"
head -c 3000000 /dev/urandom > "$WORK/upload.bin"
echo "   sha256 here: $(sha256sum < "$WORK/upload.bin" | cut -d' ' -f1)"
curl -sS --max-time 20 -x "$PROXY" --data-binary "@$WORK/upload.bin" "http://127.0.0.1:$PY_PORT/upload"
sleep 0.3
echo
echo "== what the next proxy received (one JSON line per connection: the PROXY v2 TLVs and bytes relayed)"
cat "$WORK/next-proxy.jsonl"
lines=$(wc -l < "$WORK/next-proxy.jsonl")
if [[ $lines -ne 6 ]]; then echo "demo: expected 6 diverted connections, saw $lines" >&2; exit 1; fi
echo
echo "demo: OK — 6 connections diverted through the next proxy; stopping everything"
