#!/usr/bin/env bash
# Tracing cost per request, side by side: no subscriber, logs only (traces off: the default),
# traces exported by OTLP to a collector on loopback. Modes are interleaved, three rounds each,
# so machine noise hits all of them alike. Output: one JSON line per run, then a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-2000}"
cargo build --release -q -p switchyard --example tracing_overhead
bin="${CARGO_TARGET_DIR:-target}/release/examples/tracing_overhead"
out="$(mktemp)"
for round in 1 2 3; do
  for mode in none off otlp; do
    RUST_LOG=warn "$bin" "$mode" "$n" | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["mode"], []).append(r)
base = st.median(r["us_per_request"] for r in by["none"])
print("\n| mode | allocations/request | bytes/request | µs/request (median of 3) | time vs none |")
print("|---|---|---|---|---|")
for m in ["none", "off", "otlp"]:
    rs = by[m]
    us = st.median(r["us_per_request"] for r in rs)
    print(f"| {m} | {st.median(r['allocs_per_request'] for r in rs):.1f} | "
          f"{st.median(r['bytes_per_request'] for r in rs):.0f} | {us:.1f} | {us/base:.2f}x |")
PY
rm -f "$out"
