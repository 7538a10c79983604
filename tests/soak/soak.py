#!/usr/bin/env python3
"""tests/soak/soak.py — bounded soak of the example programs on loopback.

    client threads -> divert-forward-proxy -> divert-next-proxy -> nginx origin

Mixed traffic through all three connector interfaces, with failures:
  * CONNECT tunnel (tcp_connect), then an HTTP request inside it;
  * plain GET http://... (http_forward), small answers and a 1 MiB file;
  * GET https://127.0.0.1... sent in plain to the proxy (https_forward: TLS
    between the forward proxy and nginx, verified against a CA made here);
  * failures: the forward proxy's next-proxy list holds a dead address as well
    (refused: failover to the live one, ejection), http forward to an
    unreachable upstream (502 expected), https forward to an nginx server
    whose certificate names another host (502 expected).
Upstreams are IP literals: no DNS lookup (a flaky resolver would measure the
resolver, not divert).
Every answer is checked (status and body). RSS and descriptors (sockets,
pipes, other) of both proxies are sampled every --interval seconds and printed.
Verdict: STABLE when no request had an unexpected result, the RSS growth of
each proxy over the last 80 % of the run stays under --rss-bound MiB, and once
the traffic stops each proxy is back to its starting sockets, pipes (the
relay's pipe pool is empty once no relay is left) and other descriptors.
Exit 0 if STABLE.

Used by tests/soak/soak.sh, which builds the programs first.
"""
import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time



def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"soak: nothing listens on port {port}")


def wait_log(path, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path) and "listening" in open(path, errors="replace").read():
            return
        time.sleep(0.05)
    sys.exit(f"soak: {path} never said it was listening")


def fds(pid):
    n = {"sockets": 0, "pipes": 0, "other": 0}
    d = f"/proc/{pid}/fd"
    for e in os.listdir(d):
        try:
            t = os.readlink(os.path.join(d, e))
        except OSError:
            continue
        n["sockets" if t.startswith("socket:") else "pipes" if t.startswith("pipe:") else "other"] += 1
    return n


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def read_all(s):
    out = bytearray()
    while True:
        b = s.recv(65536)
        if not b:
            return bytes(out)
        out += b


def exchange(port, data, timeout=10.0, then=read_all):
    """Connects to the forward proxy, sends `data`, then reads until close (or then(socket))."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        return then(s)


def split_response(r):
    head, _, body = r.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.") else 0
    return status, body


class Traffic:
    def __init__(self, fp_port, http_port, https_port, https_other_port, dead_port, big):
        self.fp, self.http, self.https, self.https_other = fp_port, http_port, https_port, https_other_port
        self.dead, self.big = dead_port, big
        self.lock = threading.Lock()
        self.counts = {}
        self.slowest = {}
        self.slow = []  # (kind, started at, took) of requests over 1 s
        self.mix = Traffic.MIX
        self.t0 = time.time()
        self.unexpected = []
        self.stop = threading.Event()

    def count(self, kind, ok, detail, took):
        with self.lock:
            c = self.counts.setdefault(kind, [0, 0])
            c[0 if ok else 1] += 1
            self.slowest[kind] = max(self.slowest.get(kind, 0.0), took)
            if took > 1.0 and len(self.slow) < 20:
                self.slow.append(f"{kind} {detail!r} started at {time.time() - took - self.t0:.2f} s took {took:.2f} s")
            if not ok and len(self.unexpected) < 20:
                self.unexpected.append(f"{kind}: {detail}")

    def connect_tunnel(self, n):
        req = f"CONNECT 127.0.0.1:{self.http} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()

        def inside(s):
            head = b""
            while b"\r\n\r\n" not in head:
                b = s.recv(1)
                if not b:
                    return b""
                head += b
            if not head.startswith(b"HTTP/1.1 200"):
                return head
            s.sendall(f"GET /t{n} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return read_all(s)

        r = exchange(self.fp, req, then=inside)
        st, body = split_response(r)
        return st == 200 and body == f"http /t{n}\n".encode(), r[:80]

    def get(self, target, want_status, want_body=None):
        """One GET in absolute form to the forward proxy: (as expected?, detail).
        Connection: close, as the answer is read up to the close (the proxy keeps
        client connections alive otherwise)."""
        r = exchange(self.fp, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        st, body = split_response(r)
        ok = st == want_status and (want_body is None or body == want_body)
        return ok, f"status {st}, {len(body)} body bytes: {r[:60]!r}"

    def http_forward(self, n):
        return self.get(f"http://127.0.0.1:{self.http}/h{n}", 200, f"http /h{n}\n".encode())

    def http_forward_big(self, n):
        return self.get(f"http://127.0.0.1:{self.http}/big.bin", 200, self.big)

    def https_forward(self, n):
        return self.get(f"https://127.0.0.1:{self.https}/s{n}", 200, f"https /s{n}\n".encode())

    def unreachable_upstream(self, n):
        return self.get(f"http://127.0.0.1:{self.dead}/u", 502)

    def tls_wrong_name(self, n):
        return self.get(f"https://127.0.0.1:{self.https_other}/w", 502)

    MIX = [("connect", 30), ("http_forward", 30), ("https_forward", 20), ("http_forward_big", 5),
           ("unreachable_upstream", 10), ("tls_wrong_name", 5)]

    def worker(self, seed):
        rnd = random.Random(seed)
        kinds = [k for k, w in self.mix for _ in range(w)]
        n = 0
        while not self.stop.is_set():
            kind = rnd.choice(kinds)
            n += 1
            fn = self.connect_tunnel if kind == "connect" else getattr(self, kind)
            started = time.time()
            try:
                ok, detail = fn(f"{seed}x{n}")
            except OSError as e:
                ok, detail = False, repr(e)
            self.count(kind, ok, detail, time.time() - started)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("seconds", nargs="?", type=float, default=300, help="traffic duration (default 300)")
    ap.add_argument("--bin", required=True, help="folder with divert-forward-proxy and divert-next-proxy")
    ap.add_argument("--workers", type=int, default=12, help="client threads (default 12)")
    ap.add_argument("--interval", type=float, default=5, help="sampling interval in seconds (default 5)")
    ap.add_argument("--only", help="one kind of request instead of the mix (for debugging)")
    ap.add_argument("--rss-bound", type=float, default=4.0,
                    help="largest RSS growth per proxy over the last 80%% of the run, MiB (default 4)")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="divert-soak.")
    procs = []
    try:
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-subj", "/CN=divert soak CA", "-keyout", f"{work}/ca.key", "-out", f"{work}/ca.crt")
        for name, san in (("origin", "IP:127.0.0.1"), ("other", "DNS:other.test")):
            openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
                    f"/CN={name}", "-keyout", f"{work}/{name}.key", "-out", f"{work}/{name}.csr")
            with open(f"{work}/{name}.ext", "w") as f:
                f.write(f"subjectAltName={san}\n")
            openssl("x509", "-req", "-in", f"{work}/{name}.csr", "-CA", f"{work}/ca.crt", "-CAkey",
                    f"{work}/ca.key", "-CAcreateserial", "-days", "2", "-extfile", f"{work}/{name}.ext",
                    "-out", f"{work}/{name}.crt")
        big = random.Random(7).randbytes(1 << 20)
        os.makedirs(f"{work}/www")
        with open(f"{work}/www/big.bin", "wb") as f:
            f.write(big)
        http, https, https_other, np_port, fp_port, dead_np, dead_up = (free_port() for _ in range(7))
        with open(f"{work}/nginx.conf", "w") as f:
            f.write(f"""daemon off; master_process off; worker_processes 1; pid {work}/nginx.pid;
error_log {work}/nginx-error.log; events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};
  uwsgi_temp_path {work}; scgi_temp_path {work};
  server {{ listen 127.0.0.1:{http}; root {work}/www;
    location = /big.bin {{ }} location / {{ return 200 "http $request_uri\\n"; }} }}
  server {{ listen 127.0.0.1:{https} ssl; ssl_certificate {work}/origin.crt; ssl_certificate_key {work}/origin.key;
    location / {{ return 200 "https $request_uri\\n"; }} }}
  server {{ listen 127.0.0.1:{https_other} ssl; ssl_certificate {work}/other.crt; ssl_certificate_key {work}/other.key;
    location / {{ return 200 "other $request_uri\\n"; }} }}
}}
""")

        def start(argv, out, err):
            p = subprocess.Popen(argv, stdout=open(f"{work}/{out}", "w"), stderr=open(f"{work}/{err}", "w"))
            procs.append(p)
            return p

        start(["nginx", "-p", work, "-c", f"{work}/nginx.conf"], "nginx.out", "nginx.err")
        np = start([f"{a.bin}/divert-next-proxy", "--listen", f"127.0.0.1:{np_port}",
                    "--allow-upstream", "127.0.0.0/8", "--allow-upstream", "::1"], "np.jsonl", "np.err")
        fp = start([f"{a.bin}/divert-forward-proxy", "--listen", f"127.0.0.1:{fp_port}",
                    "--next-proxy", f"127.0.0.1:{np_port},3", "--next-proxy", f"127.0.0.1:{dead_np},1",
                    "--ca-file", f"{work}/ca.crt", "--set", "eject_duration=2s",
                    "--allow", "127.0.0.0/8", "--allow", "::1/128"], "fp.out", "fp.err")
        for p in (http, https, https_other):
            wait_port(p)
        wait_log(f"{work}/np.err")
        wait_log(f"{work}/fp.err")
        time.sleep(0.3)
        pids = {"forward proxy": fp.pid, "next proxy": np.pid}
        base = {k: fds(p) for k, p in pids.items()}
        print(f"soak: {a.seconds:.0f} s, {a.workers} client threads; forward proxy pid {fp.pid} "
              f"(next proxies :{np_port} weight 3 and dead :{dead_np} weight 1), next proxy pid {np.pid}, nginx; "
              f"work dir {work}", flush=True)
        print(f"{'t/s':>6} {'requests':>9} {'req/s':>7} {'bad':>4} | {'fp RSS MiB':>10} {'fp fds s/p/o':>13} | "
              f"{'np RSS MiB':>10} {'np fds s/p/o':>13}", flush=True)

        t = Traffic(fp_port, http, https, https_other, dead_up, big)
        if a.only:
            t.mix = [(a.only, 1)]
        threads = [threading.Thread(target=t.worker, args=(i,), daemon=True) for i in range(a.workers)]
        t0 = time.time()
        for th in threads:
            th.start()
        samples = []  # (t, {name: rss})
        last_total, last_t = 0, t0

        def sample():
            nonlocal last_total, last_t
            now = time.time()
            with t.lock:
                total = sum(ok + bad for ok, bad in t.counts.values())
                bad = len(t.unexpected)
            rss = {k: rss_kib(p) for k, p in pids.items()}
            fd = {k: fds(p) for k, p in pids.items()}
            samples.append((now - t0, rss))
            rate = (total - last_total) / max(now - last_t, 1e-9)
            last_total, last_t = total, now
            f = lambda n: f"{n['sockets']}/{n['pipes']}/{n['other']}"
            print(f"{now - t0:6.0f} {total:9d} {rate:7.0f} {bad:4d} | {rss['forward proxy'] / 1024:10.1f} "
                  f"{f(fd['forward proxy']):>13} | {rss['next proxy'] / 1024:10.1f} {f(fd['next proxy']):>13}", flush=True)

        sample()
        while time.time() - t0 < a.seconds:
            time.sleep(min(a.interval, max(0.0, a.seconds - (time.time() - t0))))
            sample()
        t.stop.set()
        for th in threads:
            th.join(30)
        duration = time.time() - t0

        # After the traffic: each proxy back to its starting descriptors.
        def back(name):
            end = time.time() + 10
            while True:
                n = fds(pids[name])
                b = base[name]
                ok = (n["sockets"] == b["sockets"] and n["other"] == b["other"]
                      and n["pipes"] == b["pipes"])
                if ok or time.time() > end:
                    return ok, n
                time.sleep(0.1)

        print("\nsoak: requests by kind (expected result / unexpected / slowest):")
        for k, (ok, bad) in sorted(t.counts.items()):
            print(f"  {k:22s} {ok:8d} {bad:6d} {t.slowest[k]:8.3f} s")
        total = sum(ok + bad for ok, bad in t.counts.values())
        print(f"  {'total':22s} {total:8d} in {duration:.0f} s ({total / duration:.0f}/s)")
        for u in t.unexpected:
            print(f"  unexpected: {u}")
        for u in t.slow:
            print(f"  slow: {u}")

        stable = not t.unexpected and all(k in t.counts for k, _ in t.mix)
        cut = samples[0][0] + 0.2 * (samples[-1][0] - samples[0][0])
        for name in pids:
            after = [s[1][name] for s in samples if s[0] >= cut]
            growth = (max(after) - after[0]) / 1024
            final = (after[-1] - after[0]) / 1024
            ok_rss = growth <= a.rss_bound
            ok_fd, n = back(name)
            stable = stable and ok_rss and ok_fd
            print(f"soak: {name}: RSS {samples[0][1][name] / 1024:.1f} MiB at start, {after[0] / 1024:.1f} MiB at 20 %, "
                  f"max {max(after) / 1024:.1f}, end {after[-1] / 1024:.1f} MiB: growth over the last 80 % "
                  f"{growth:+.2f} MiB max, {final:+.2f} MiB at the end (bound {a.rss_bound} MiB) "
                  f"{'ok' if ok_rss else 'TOO MUCH'}; fds s/p/o {base[name]['sockets']}/{base[name]['pipes']}/"
                  f"{base[name]['other']} at start, {n['sockets']}/{n['pipes']}/{n['other']} after "
                  f"{'ok' if ok_fd else 'NOT BACK'}")
        fp.terminate()
        fp.wait(10)
        metrics = [l.strip() for l in open(f"{work}/fp.err") if l.startswith("divert.escaper.") and
                   ".duration_us" not in l]
        print("soak: forward proxy metrics at exit: " +
              ", ".join(m.split("|")[0].removeprefix("divert.escaper.") for m in metrics))
        print(f"soak: verdict: {'STABLE' if stable else 'NOT STABLE'}")
        return 0 if stable else 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    sys.exit(main())
