"""Checks a /metrics scrape with a real Prometheus parser (issue 20).

Usage: /usr/bin/python3 check_prometheus.py METRICS_FILE NEXT_PROXY...
       /usr/bin/python3 check_prometheus.py METRICS_FILE --receiver

Run with Debian's /usr/bin/python3 (python3-prometheus-client): the python3
first on PATH may be another interpreter without Debian's modules.
Parses the file with prometheus_client.parser.text_string_to_metric_families
and checks:
  * every family is typed (counter, gauge or histogram; none "unknown") and
    the text has "# HELP" and "# TYPE" lines for it;
  * the connect-latency histogram is consistent: le bounds increasing and
    ending in +Inf, bucket counts cumulative (never decreasing), the +Inf
    bucket equal to _count, a non-negative _sum, and at least one sample
    (connections were made);
  * every per-proxy family has a series for each NEXT_PROXY given (label
    next_proxy), and the attempt counters add up to at least one per proxy.
With --receiver (divert-next-proxy's /metrics): every family typed, and
divert_receiver_connection counts at least one connected connection.
Prints each problem and exits 1, or prints a summary and exits 0.
"""

import math
import sys

from prometheus_client.parser import text_string_to_metric_families

HISTOGRAM = "divert_escaper_tcp_connect_duration_seconds"
PER_PROXY = [
    "divert_escaper_next_proxy_attempt",  # counters: the parser drops "_total"
    "divert_escaper_next_proxy_establish",
    "divert_escaper_next_proxy_error",
    "divert_escaper_next_proxy_timeout",
    "divert_escaper_next_proxy_up",
    "divert_escaper_next_proxy_ejected",
    "divert_escaper_next_proxy_connects_in_flight",
]
GAUGES = ["divert_escaper_relays_open", "divert_escaper_connects_in_flight"]


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    text = open(argv[1], encoding="utf-8").read()
    proxies = argv[2:]
    problems = []
    families = {f.name: f for f in text_string_to_metric_families(text)}
    if not families:
        problems.append("no metric family parsed")

    for name, fam in families.items():
        if fam.type not in ("counter", "gauge", "histogram"):
            problems.append(f"{name}: type {fam.type!r}")
        exposed = name + "_total" if fam.type == "counter" else name
        for kind in ("HELP", "TYPE"):
            if f"\n# {kind} {exposed} " not in "\n" + text:
                problems.append(f"{name}: no # {kind} line for {exposed}")

    if proxies == ["--receiver"]:
        fam = families.get("divert_receiver_connection")
        connected = [s.value for s in (fam.samples if fam else [])
                     if s.labels.get("outcome") == "connected"]
        if not connected or connected[0] < 1:
            problems.append(f"divert_receiver_connection{{outcome=connected}}: {connected}")
        for p in problems:
            print("problem:", p)
        return 1 if problems else 0

    hist = families.get(HISTOGRAM)
    if hist is None or hist.type != "histogram":
        problems.append(f"{HISTOGRAM}: missing or not a histogram")
    else:
        buckets = [(float(s.labels["le"]), s.value) for s in hist.samples
                   if s.name == HISTOGRAM + "_bucket"]
        counts = [s.value for s in hist.samples if s.name == HISTOGRAM + "_count"]
        sums = [s.value for s in hist.samples if s.name == HISTOGRAM + "_sum"]
        bounds = [b for b, _ in buckets]
        if not buckets or not math.isinf(bounds[-1]):
            problems.append("histogram: no +Inf bucket last")
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            problems.append(f"histogram: le bounds not increasing: {bounds}")
        values = [v for _, v in buckets]
        if any(b < a for a, b in zip(values, values[1:])):
            problems.append(f"histogram: buckets not cumulative: {values}")
        if len(counts) != 1 or len(sums) != 1:
            problems.append("histogram: want exactly one _count and one _sum")
        elif buckets:
            if values[-1] != counts[0]:
                problems.append(f"histogram: +Inf bucket {values[-1]} != _count {counts[0]}")
            if counts[0] < 1:
                problems.append("histogram: no connect recorded")
            if sums[0] < 0:
                problems.append(f"histogram: negative _sum {sums[0]}")

    for name in GAUGES:
        fam = families.get(name)
        if fam is None or fam.type != "gauge" or len(fam.samples) != 1:
            problems.append(f"{name}: missing, not a gauge, or not one series")

    for name in PER_PROXY:
        fam = families.get(name)
        if fam is None:
            problems.append(f"{name}: missing (no per-next-proxy series)")
            continue
        seen = {s.labels.get("next_proxy"): s.value for s in fam.samples}
        for p in proxies:
            if p not in seen:
                problems.append(f"{name}: no series with next_proxy={p!r} (have {sorted(seen)})")
            elif name.endswith("_attempt") and seen[p] < 1:
                problems.append(f"{name}{{next_proxy={p!r}}} is {seen[p]}, want >= 1")

    for p in problems:
        print("problem:", p)
    if problems:
        return 1
    print(f"ok: {len(families)} families, histogram count "
          f"{counts[0]:g}, next proxies {proxies}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
