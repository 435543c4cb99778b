#!/usr/bin/env bash
# Side-by-side A/B of two `switchyard` binaries (`make bench-ab A=old B=new`): each gets its own
# zero-latency simulator, and the same load alternates between them (A B A B ...) so machine
# noise falls on both. Prints requests/s, p50/p99 latency and server CPU per 1000 requests per
# round and the median of each, plus B's ratios to A.
#
# Usage: bench/ab.sh A_BINARY B_BINARY [--rounds N] [--duration S] [-c CONNS] [--stream]
#                    [--prompt-tokens N] [--mode serve|split] [--rate R]
# --rate paces the load (open loop, R requests/s in all) instead of a closed loop.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
A=$(realpath "$1"); B=$(realpath "$2"); shift 2
ROUNDS=4; DURATION=4; CONNS=8; STREAM=0; TOKENS=10; MODE=serve; RATE=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        -c) CONNS=$2; shift 2 ;;
        --stream) STREAM=1; shift ;;
        --prompt-tokens) TOKENS=$2; shift 2 ;;
        --mode) MODE=$2; shift 2 ;;
        --rate) RATE=(--rate "$2"); shift 2 ;;
        *) echo "bench/ab.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
LOADGEN="$ROOT/target/release/switchyard-loadgen"
SIM="$ROOT/target/release/switchyard-sim"
[[ -x $LOADGEN && -x $SIM ]] || (cd "$ROOT" && cargo build --release -p switchyard-sim -p switchyard-bench >&2)
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

sflag=(); expect=json
[[ $STREAM == 1 ]] && { sflag=(--stream); expect=sse; }
"$LOADGEN" body --model local-small --prompt-tokens "$TOKENS" "${sflag[@]}" --out "$WORK/body.json"

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

start() { # $1 = label, $2 = binary; sets URL_<label>, PIDS_<label>
    local l=$1 bin=$2 sim_addr addr
    # Each side in its own directory: the usage ledger and its spool live beside the config file.
    mkdir -p "$WORK/$l.d"; cd "$WORK/$l.d"
    "$SIM" --config "$ROOT/bench/sim.yaml" --listen 127.0.0.1:0 >"$WORK/sim-$l.out" 2>/dev/null &
    PIDS+=($!); sim_addr=$(listening_addr "$WORK/sim-$l.out" $!)
    sed "s#http://ollama-vm:11434#http://$sim_addr#g" "$ROOT/fixtures/seed-config.yaml" >"$WORK/$l.d/sy.yaml"
    if [[ $MODE == split ]]; then
        "$bin" router --config "$WORK/$l.d/sy.yaml" --listen 127.0.0.1:0 >"$WORK/$l-r.out" 2>/dev/null &
        local rp=$!; PIDS+=($rp); addr=$(listening_addr "$WORK/$l-r.out" $rp)
        "$bin" gateway --config "$WORK/$l.d/sy.yaml" --listen 127.0.0.1:0 --router "http://$addr" >"$WORK/$l.out" 2>/dev/null &
        local gp=$!; PIDS+=($gp); addr=$(listening_addr "$WORK/$l.out" $gp)
        eval "PIDS_$l='--pid $rp --pid $gp'"
    else
        "$bin" serve --config "$WORK/$l.d/sy.yaml" --listen 127.0.0.1:0 >"$WORK/$l.out" 2>/dev/null &
        local sp=$!; PIDS+=($sp); addr=$(listening_addr "$WORK/$l.out" $sp)
        eval "PIDS_$l='--pid $sp'"
    fi
    eval "URL_$l=http://$addr/v1/chat/completions"
    cd "$ROOT"
}
start A "$A"; start B "$B"
echo "A = $A"; echo "B = $B"
echo "mode $MODE, c=$CONNS, ${RATE[*]:-closed loop}, stream=$STREAM, prompt $TOKENS tokens, $ROUNDS rounds x ${DURATION}s each"
for r in $(seq 1 "$ROUNDS"); do
    for l in A B; do
        url_var="URL_$l"; pid_var="PIDS_$l"
        # shellcheck disable=SC2086
        "$LOADGEN" run --url "${!url_var}" --body-file "$WORK/body.json" --expect "$expect" -c "$CONNS" \
            --duration "$DURATION" --warmup 1 "${RATE[@]}" ${!pid_var} --target "$l" --scenario "round$r" \
            --out "$WORK/r$r-$l.json" >/dev/null
    done
done
python3 - "$WORK" "$ROUNDS" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
rows = {"A": [], "B": []}
for r in range(1, rounds + 1):
    for l in "AB":
        d = json.load(open(f"{work}/r{r}-{l}.json"))
        lat = d["latency"]; cpu = d["server"].get("cpu_s_per_1000") if d.get("server") else None
        rows[l].append((d["rps"], lat["p50_us"], lat["p99_us"], cpu))
        print(f"round {r} {l}: {d['rps']:8.0f} req/s  p50 {lat['p50_us']:7.0f} µs  p99 {lat['p99_us']:7.0f} µs  cpu/1k {cpu if cpu is None else round(cpu, 4)} s")
med = {l: [statistics.median(x[i] for x in rows[l] if x[i] is not None) if any(x[i] is not None for x in rows[l]) else float('nan') for i in range(4)] for l in "AB"}
for l in "AB":
    m = med[l]; print(f"median {l}: {m[0]:8.0f} req/s  p50 {m[1]:7.0f} µs  p99 {m[2]:7.0f} µs  cpu/1k {m[3]:.4f} s")
a, b = med["A"], med["B"]
print(f"B/A: req/s x{b[0]/a[0]:.3f}  p50 x{b[1]/a[1]:.3f}  p99 x{b[2]/a[2]:.3f}  cpu/1k x{b[3]/a[3]:.3f}")
PY
