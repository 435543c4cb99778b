#!/usr/bin/env bash
# Switchyard's end-to-end benchmark (`make bench`).
#
# Builds the release binaries, starts a zero-latency Ollama simulator and, one after the other,
# each target in front of it — the simulator itself (direct baseline), a proxy with no logic
# (`switchyard-loadgen passthrough`: what any HTTP proxy costs on this machine), `switchyard serve`,
# `switchyard router` + `switchyard gateway` (split mode, gRPC between them), `serve` behind the
# no-logic proxy (what any second process in the path costs) and the LiteLLM proxy — on ephemeral
# loopback ports, runs the same load matrix against each with `switchyard-loadgen`, saves the raw
# JSON under bench/results/RUN_ID/ and writes BENCHMARKS.md.
# Every process it starts is stopped on exit, whatever happens.
#
# The chat matrix is followed, on every target but LiteLLM, by the other endpoints: the Responses
# API, legacy text completions, Ollama's /api/chat and Anthropic's /v1/messages (each streamed and
# not) and embeddings, each at one
# connection and (except split) 8 connections paced at --open8-rate, against the simulator's own
# route (`/api/chat`, `/api/generate`, `/api/embed`) sent the exact body Switchyard sends it.
#
# Usage: bench/run.sh [--quick] [--duration S] [--warmup S] [--connections "1 8 64"]
#                     [--prompts "small 2k"] [--endpoints "responses completions embeddings"]
#                     [--endpoint-duration S] [--endpoint-warmup S]
#                     [--targets "direct passthrough serve split proxied litellm"] [--open-rate R]
#                     [--open8-rate R] [--no-litellm]
#                     [--tok-sizes "2k 8k 32k 100k"] [--tok-duration S] [--tok-warmup S] [--no-tokenizers]
#                     [--cap-systems L] [--cap-duration S] [--cap-spill-after D]
#                     [--no-build] [--no-report]
#   --targets L    targets in order (default "direct passthrough serve split proxied litellm capacity");
#                  `proxied` is `serve` behind the no-logic proxy (the floor under split's CPU ratio);
#                  `capacity` is the capacity scenario (below). `--targets capacity` runs only it
#                  and rewrites only its section of BENCHMARKS.md
#   --cap-systems L  systems of the capacity scenario (default "switchyard-capacity
#                  switchyard-capacity-spill switchyard-ordered litellm-least-busy litellm-usage-based")
#   --cap-duration S seconds of arrivals per system (default 90)
#   --cap-spill-after D  `spill_after` of switchyard-capacity-spill (default 2s)
#   --prompts L    chat prompt sizes of the closed-loop matrix (default "small 2k")
#   --endpoints L  the other endpoints measured (default "responses completions embeddings ollama-chat messages";
#                  "" skips them)
#   --endpoint-duration S, --endpoint-warmup S   their measured and warm-up seconds (default 4, 1)
#   --quick        smoke run: ~1.5 s per scenario, about two minutes in all
#   --duration S   measured seconds per scenario (default 8)
#   --warmup S     warm-up seconds per scenario (default 2)
#   --open-rate R  also run one open-loop scenario at R req/s (default 200; 0 disables)
#   --open8-rate R also run 8 connections paced at R req/s, below saturation, streaming and not
#                  (default 2000; 0 disables; LiteLLM is not run at this rate, it cannot keep up)
#   --no-litellm   skip LiteLLM (no install, no start)
#   --tok-sizes L  prompt sizes of the exact-tokenizer scenarios (default "2k 8k 32k 100k"; "" skips
#                  them). Each size is run with the heuristic counter, the Llama 3 vocabulary and
#                  SmolLM2's as the deployments' tokenizer (.cache/tokenizer-ref, `make tokenizer-ref`),
#                  unstreamed and streamed, as a first turn and as a 10th turn that resends its history,
#                  at one connection, against `serve` and the simulator directly (about 3 minutes)
#   --tok-duration S, --tok-warmup S   their measured and warm-up seconds (default 2, 0.5)
#   --no-tokenizers  skip the exact-tokenizer scenarios
#   --no-build     use the binaries already in target/release (or in $BENCH_BIN_DIR when set)
#   --no-report    keep BENCHMARKS.md as it is (results are still saved)
set -euo pipefail

ARGS="$*"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=8
WARMUP=2
CONNS="1 8 64"
TARGETS="direct passthrough serve split proxied litellm capacity"
CAP_SYSTEMS="switchyard-capacity switchyard-capacity-spill switchyard-ordered litellm-least-busy litellm-usage-based"
CAP_DURATION=90
CAP_SPILL_AFTER=2s
PROMPTS="small 2k"
EP_LIST="responses completions embeddings ollama-chat messages"
EP_DURATION=4
EP_WARMUP=1
OPEN_RATE=200
OPEN8_RATE=2000
TOK_SIZES="2k 8k 32k 100k"
TOK_DURATION=2
TOK_WARMUP=0.5
MODE=full
BUILD=1
REPORT=1
LITELLM=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) MODE=quick; DURATION=1.5; WARMUP=0.5; EP_DURATION=1.5; EP_WARMUP=0.5; TOK_DURATION=1; TOK_WARMUP=0.3; shift ;;
        --prompts) PROMPTS=$2; shift 2 ;;
        --endpoints) EP_LIST=$2; shift 2 ;;
        --endpoint-duration) EP_DURATION=$2; shift 2 ;;
        --endpoint-warmup) EP_WARMUP=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --connections) CONNS=$2; shift 2 ;;
        --targets) TARGETS=$2; shift 2 ;;
        --open-rate) OPEN_RATE=$2; shift 2 ;;
        --open8-rate) OPEN8_RATE=$2; shift 2 ;;
        --no-litellm) LITELLM=0; shift ;;
        --tok-sizes) TOK_SIZES=$2; shift 2 ;;
        --tok-duration) TOK_DURATION=$2; shift 2 ;;
        --tok-warmup) TOK_WARMUP=$2; shift 2 ;;
        --no-tokenizers) TOK_SIZES=""; shift ;;
        --cap-systems) CAP_SYSTEMS=$2; shift 2 ;;
        --cap-duration) CAP_DURATION=$2; shift 2 ;;
        --cap-spill-after) CAP_SPILL_AFTER=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --no-report) REPORT=0; shift ;;
        -h|--help) sed -n '2,46p' "$0"; exit 0 ;;
        *) echo "bench/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS="bench/results/$RUN_ID"
WORK="$RESULTS/work"
mkdir -p "$WORK"
VENV=".cache/bench-venv"
# BENCH_BIN_DIR: run binaries copied elsewhere (safe from other builds of the same target dir).
BIN=${BENCH_BIN_DIR:-target/release}
LOADGEN="$BIN/switchyard-loadgen"
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
STARTED=$(date +%s)

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- process bookkeeping
PIDS=()      # every process we started
GROUPS_=()   # process groups we started with setsid (LiteLLM and its workers)

stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

stop_group() {
    local pgid=$1
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 -- "-$pgid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL -- "-$pgid" 2>/dev/null || true
}

cleanup() {
    local pid pgid
    for pgid in "${GROUPS_[@]}"; do stop_group "$pgid"; done
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_bg NAME CMD... : starts CMD with stdout/stderr in $WORK/NAME.{out,err}; sets $LAST_PID.
start_bg() {
    local name=$1; shift
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# wait_listening NAME PID : waits for NAME.out's {"listening":"ADDR"} line; sets $ADDR.
wait_listening() {
    local name=$1 pid=$2
    ADDR=$(listening_addr "$WORK/$name.out" "$pid" 60) && return 0
    if kill -0 "$pid" 2>/dev/null; then
        log "$name did not announce its address in 60 s"
    else
        log "$name exited before listening:"; tail -n 20 "$WORK/$name.err" >&2
    fi
    return 1
}

# ---------------------------------------------------------------- build
if [[ $BUILD == 1 ]]; then
    log "building release binaries (switchyard, switchyard-sim, switchyard-loadgen)"
    cargo build --release -p switchyard -p switchyard-sim -p switchyard-bench >&2
fi
for b in switchyard switchyard-sim switchyard-loadgen; do
    [[ -x "$BIN/$b" ]] || { log "missing $BIN/$b (run without --no-build)"; exit 1; }
done

# ---------------------------------------------------------------- configs and bodies
cp "$ROOT/bench/sim.yaml" "$WORK/sim.yaml"   # kept with the results

for s in 0 1; do
    flag=(); [[ $s == 1 ]] && flag=(--stream)
    "$LOADGEN" body --model local-small --prompt-tokens 10 "${flag[@]}" --out "$WORK/openai-small-s$s.json"
    "$LOADGEN" body --model local-small --prompt-tokens 2000 "${flag[@]}" --out "$WORK/openai-2k-s$s.json"
done

start_sim() { # sets SIM_URL, SIM_PID
    start_bg "sim-$1" "$BIN/switchyard-sim" --config "$WORK/sim.yaml" --listen 127.0.0.1:0
    SIM_PID=$LAST_PID
    wait_listening "sim-$1" "$SIM_PID"
    SIM_URL="http://$ADDR"
}

switchyard_config() { # $1 = sim url, $2 = output file: the seed config pointed at the simulator
    # plus one embedding group (`embed`) for the embeddings scenarios.
    sed "s#http://ollama-vm:11434#$1#g" fixtures/seed-config.yaml | awk -v url="$1" '
        /^router_settings:/ {
            print "  - model_name: embed"
            print "    litellm_params:"
            print "      model: ollama/nomic-embed-text"
            print "      api_base: " url
            print "      num_ctx: 8192"
            print "    model_info:"
            print "      mode: embedding"
        }
        { print }' >"$2"
}

start_serve() { # $1 = name [$2 = binary]; sets GW_URL, TARGET_PIDS
    switchyard_config "$SIM_URL" "$WORK/$1.yaml"
    start_bg "$1" "${2:-$BIN/switchyard}" serve --config "$WORK/$1.yaml" --listen 127.0.0.1:0
    local pid=$LAST_PID
    wait_listening "$1" "$pid"
    GW_URL="http://$ADDR"
    TARGET_PIDS=("$pid")
}

start_split() { # $1 = name [$2 = binary]; sets GW_URL, TARGET_PIDS
    local name=$1 bin=${2:-$BIN/switchyard}
    switchyard_config "$SIM_URL" "$WORK/$name.yaml"
    start_bg "$name-router" "$bin" router --config "$WORK/$name.yaml" --listen 127.0.0.1:0
    local rpid=$LAST_PID
    wait_listening "$name-router" "$rpid"
    start_bg "$name-gateway" "$bin" gateway --config "$WORK/$name.yaml" --listen 127.0.0.1:0 --router "http://$ADDR"
    local gpid=$LAST_PID
    wait_listening "$name-gateway" "$gpid"
    GW_URL="http://$ADDR"
    TARGET_PIDS=("$rpid" "$gpid")
}

# ---------------------------------------------------------------- LiteLLM
LITELLM_STATUS="ok"
# The version scripts/python-env.sh pins for the client tests, with the proxy's extras.
LITELLM_VERSION=$(sed -n 's/.*"litellm==\([^"]*\)".*/\1/p' scripts/python-env.sh | head -n1)
LITELLM_VERSION=${LITELLM_VERSION:-1.110.2}
# The proxy's dependencies. `litellm[proxy]` pulls in `litellm-proxy==VERSION`, which the package
# index does not have for every release (1.110.2: none), so they are listed here instead, as
# litellm's `proxy` extra constrains them (the ones its CLI imports at start-up).
LITELLM_PROXY_DEPS=("backoff>=2.2.1,<3.0" "fastapi>=0.136.3,<1.0" "starlette>=1.0.1,<2.0" "uvicorn>=0.33.0,<1.0"
    "uvloop>=0.22.1,<1.0" "orjson>=3.11.6,<4.0" "apscheduler>=3.11.2,<4.0" "pyyaml>=6.0.3,<7.0"
    "python-multipart>=0.0.27,<1.0" "cryptography>=49.0.0,<51.0" "pyjwt>=2.13.0,<3.0" "fastapi-sso>=0.19.0,<1.0"
    "rq>=2.7.0,<3.0" "websockets>=15.0.1,<16.0" "gunicorn>=23.0.0,<24.0" "pynacl>=1.6.2,<2.0" "rich>=13.9.4,<14.0"
    "semver>=3.0.4,<4" "expression>=5.6.0,<6.0" "backports-zstd>=1.0.0,<2.0" "tomlkit>=0.13.3,<1.0"
    "hiredis>=3.0.0,<4.0" "pydantic>=2.12.0,<3" "mcp>=2.3.0,<3" "soundfile>=0.12.1,<1.0")
ensure_litellm() {
    if [[ $LITELLM == 0 ]]; then LITELLM_STATUS="skipped (--no-litellm)"; return 1; fi
    if [[ ! -x "$VENV/bin/litellm" ]]; then
        log "installing litellm[proxy] into $VENV (once; reused by later runs)"
        if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q --upgrade pip \
                && "$VENV/bin/pip" install -q "litellm==$LITELLM_VERSION" "${LITELLM_PROXY_DEPS[@]}"; } >"$WORK/litellm-install.log" 2>&1; then
            LITELLM_STATUS="could not be installed (see $WORK/litellm-install.log: $(tail -n1 "$WORK/litellm-install.log"))"
            return 1
        fi
    fi
    return 0
}

litellm_config() { # $1 = sim url, $2 = output file: the seed config in LiteLLM's accepted form
    cat >"$2" <<EOF
# The seed config, as LiteLLM accepts it: ollama_chat/ (native /api/chat), list-of-maps fallbacks.
model_list:
  - model_name: local-small
    litellm_params: {model: "ollama_chat/llama3.2:1b", api_base: "$1", max_tokens: 2048}
  - model_name: local-medium
    litellm_params: {model: "ollama_chat/llama3.1:8b", api_base: "$1", max_tokens: 8192}
  - model_name: local-large
    litellm_params: {model: "ollama_chat/mistral:7b", api_base: "$1", max_tokens: 32768}
router_settings:
  routing_strategy: usage-based-routing
  num_retries: 2
  enable_pre_call_checks: true
  fallbacks:
    - {local-small: [local-medium, local-large]}
    - {local-medium: [local-large]}
litellm_settings:
  telemetry: false
EOF
}

start_litellm() { # [$1 = config] sets GW_URL, TARGET_PIDS; returns 1 (with LITELLM_STATUS) on failure
    local cfg=${1:-$WORK/litellm.yaml} name
    [[ -n ${1:-} ]] || litellm_config "$SIM_URL" "$cfg"
    name=$(basename "$cfg" .yaml)
    # Its own process group, so its uvicorn workers are stopped with it.
    # No master key: Switchyard has no auth yet either, so neither side pays for it. LiteLLM
    # refuses that without the explicit opt-in below.
    LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY=true \
    LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR LITELLM_TELEMETRY=False \
        setsid "$VENV/bin/litellm" --config "$cfg" --host 127.0.0.1 --port 0 \
        --num_workers "${LITELLM_WORKERS:-1}" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    local pid=$!
    PIDS+=("$pid"); GROUPS_+=("$pid")
    # With LITELLM_LOG=ERROR uvicorn does not print its port: read it from /proc.
    local port
    if ! port=$("$LOADGEN" listen-port --pid "$pid" --timeout 240); then
        LITELLM_STATUS="did not start listening (see $WORK/$name.err: $(tail -n1 "$WORK/$name.err"))"; return 1
    fi
    GW_URL="http://127.0.0.1:$port"
    if ! "$LOADGEN" wait-http --url "$GW_URL/health/liveliness" --timeout 120; then
        LITELLM_STATUS="never became healthy"; return 1
    fi
    TARGET_PIDS=("$pid")
}

restart_litellm() { # after a crash: stop what is left of its process group, start it again
    stop_group "${TARGET_PIDS[0]}"
    start_litellm
}

# ---------------------------------------------------------------- the matrix
# A target that died during a scenario (LiteLLM has crashed here under streaming load) is
# restarted before the next one when $RESTART names a function that does it; the restart is
# logged and listed in $RESULTS/restarts-TARGET.txt, so later scenarios still measure something.
RESTART=""
alive() { local p; for p in "${TARGET_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || return 1; done; }

# run_matrix TARGET URL EXPECT_NONSTREAM EXPECT_STREAM BODY_PREFIX
run_matrix() {
    local target=$1 url=$2 exp0=$3 exp1=$4 prefix=$5
    local pidargs=() p prompt s c scen body exp path
    for p in "${TARGET_PIDS[@]}"; do pidargs+=(--pid "$p"); done
    for prompt in $PROMPTS; do
        for s in 0 1; do
            for c in $CONNS; do
                if [[ $s == 1 ]]; then scen="stream-$prompt-c$c"; exp=$exp1; else scen="nonstream-$prompt-c$c"; exp=$exp0; fi
                if ! alive; then
                    log "$target is not running any more (before $scen)"
                    if [[ -n $RESTART ]]; then
                        path=${url#"$GW_URL"}
                        if $RESTART; then
                            log "$target restarted"; echo "$scen" >>"$RESULTS/restarts-$target.txt"
                            url="$GW_URL$path"; pidargs=()
                            for p in "${TARGET_PIDS[@]}"; do pidargs+=(--pid "$p"); done
                        else
                            log "$target could not be restarted: ${LITELLM_STATUS:-?}"
                        fi
                    fi
                fi
                body="$WORK/$prefix-$prompt-s$s.json"
                local sflag=(); [[ $s == 1 ]] && sflag=(--stream)
                "$LOADGEN" run --url "$url" --body-file "$body" --expect "$exp" -c "$c" \
                    --duration "$DURATION" --warmup "$WARMUP" "${pidargs[@]}" --clk-tck "$CLK_TCK" \
                    --target "$target" --scenario "$scen" --prompt "$prompt" "${sflag[@]}" \
                    --out "$RESULTS/run-$target-$scen.json" \
                    || log "run $target $scen failed (continuing)"
            done
        done
    done
    if [[ "$OPEN_RATE" != 0 ]]; then
        scen="open${OPEN_RATE}-nonstream-small-c64"
        "$LOADGEN" run --url "$url" --body-file "$WORK/$prefix-small-s0.json" --expect "$exp0" -c 64 \
            --rate "$OPEN_RATE" --timeout 10 --duration "$DURATION" --warmup "$WARMUP" "${pidargs[@]}" \
            --clk-tck "$CLK_TCK" --target "$target" --scenario "$scen" --prompt small \
            --out "$RESULTS/run-$target-$scen.json" || log "run $target $scen failed (continuing)"
    fi
    # The 8-connection targets again, paced below saturation: a closed loop on two shared cores
    # measures queueing behind every process's CPU work as much as the time a request spends in
    # the target.
    if [[ "$OPEN8_RATE" != 0 && $target != litellm ]]; then
        for s in 0 1; do
            local sflag=(); exp=$exp0; scen="open${OPEN8_RATE}-nonstream-small-c8"
            [[ $s == 1 ]] && { sflag=(--stream); exp=$exp1; scen="open${OPEN8_RATE}-stream-small-c8"; }
            "$LOADGEN" run --url "$url" --body-file "$WORK/$prefix-small-s$s.json" --expect "$exp" -c 8 \
                --rate "$OPEN8_RATE" --timeout 10 --duration "$DURATION" --warmup "$WARMUP" "${pidargs[@]}" \
                --clk-tck "$CLK_TCK" --target "$target" --scenario "$scen" --prompt small "${sflag[@]}" \
                --out "$RESULTS/run-$target-$scen.json" || log "run $target $scen failed (continuing)"
        done
    fi
}

# ---------------------------------------------------------------- the other endpoints
ep_backend_path() { case $1 in responses|ollama-chat|messages) echo /api/chat ;; completions) echo /api/generate ;; embeddings) echo /api/embed ;; esac; }
# ep_gw_path ENDPOINT: the endpoint's path on Switchyard.
ep_gw_path() { case $1 in ollama-chat) echo /api/chat ;; messages) echo /v1/messages ;; *) echo "/v1/$1" ;; esac; }
ep_streams() { if [[ $1 == embeddings ]]; then echo 0; else echo "0 1"; fi; }
ep_model() { if [[ $1 == embeddings ]]; then echo embed; else echo local-small; fi; }
# ep_expect ENDPOINT STREAM SIDE: the loadgen flags that recognise a complete answer. SIDE is gw
# (Switchyard's OpenAI answers) or direct (the simulator's Ollama answers).
ep_expect() {
    case "$3:$1:$2" in
        gw:responses:0|gw:completions:0) echo "--expect json --content-key text" ;;
        gw:responses:1) echo "--expect sse --content-key delta --end-marker response.completed" ;;
        gw:completions:1) echo "--expect sse --content-key text" ;;
        gw:embeddings:0) echo "--expect json --content-key embedding" ;;
        gw:ollama-chat:0) echo "--expect json" ;;
        gw:ollama-chat:1) echo "--expect ndjson" ;;
        gw:messages:0) echo "--expect json --content-key text" ;;
        gw:messages:1) echo "--expect sse --content-key text --end-marker message_stop" ;;
        direct:ollama-chat:*|direct:messages:*) echo "--expect ndjson" ;;
        direct:responses:*) echo "--expect ndjson" ;;
        direct:completions:*) echo "--expect ndjson --content-key response" ;;
        direct:embeddings:0) echo "--expect json --content-key embeddings" ;;
    esac
}

# run_endpoints TARGET BASE_URL SIDE: every endpoint of $EP_LIST at 1 connection, then (not for
# split, to keep the run short) 8 connections paced at $OPEN8_RATE.
run_endpoints() {
    local target=$1 base=$2 side=$3 ep s p url body name scen load
    local pidargs=() exp=() sflag=() lflags=() loads=()
    for p in "${TARGET_PIDS[@]}"; do pidargs+=(--pid "$p"); done
    for ep in $EP_LIST; do
        for s in $(ep_streams "$ep"); do
            if [[ $side == gw ]]; then
                url="$base$(ep_gw_path "$ep")"; body="$WORK/ep-$ep-s$s.json"
            else
                url="$base$(ep_backend_path "$ep")"; body="$WORK/direct-ep-$ep-s$s.json"
            fi
            read -r -a exp <<<"$(ep_expect "$ep" "$s" "$side")"
            sflag=(); name=$ep
            [[ $s == 1 ]] && { sflag=(--stream); name="$ep-stream"; }
            loads=(c1)
            [[ $OPEN8_RATE != 0 && $target != split ]] && loads+=(paced)
            for load in "${loads[@]}"; do
                if [[ $load == c1 ]]; then
                    scen="$name-small-c1"; lflags=(-c 1)
                else
                    scen="open${OPEN8_RATE}-$name-small-c8"; lflags=(-c 8 --rate "$OPEN8_RATE" --timeout 10)
                fi
                "$LOADGEN" run --url "$url" --body-file "$body" "${exp[@]}" "${lflags[@]}" \
                    --duration "$EP_DURATION" --warmup "$EP_WARMUP" "${pidargs[@]}" --clk-tck "$CLK_TCK" \
                    --target "$target" --scenario "$scen" --endpoint "$ep" --prompt small "${sflag[@]}" \
                    --out "$RESULTS/run-$target-$scen.json" || log "run $target $scen failed (continuing)"
            done
        done
    done
}

target_done() { # $1 = target: record backend stats, stop the target and its simulator
    "$LOADGEN" target-info --target "$1" --sim "$SIM_URL" --out "$RESULTS/target-$1-stats.json" || true
    local p
    for p in "${TARGET_PIDS[@]}"; do
        if [[ " ${GROUPS_[*]} " == *" $p "* ]]; then stop_group "$p"; else stop_pid "$p"; fi
    done
    stop_pid "$SIM_PID"
}

"$LOADGEN" meta --date "$(date -u '+%Y-%m-%d %H:%M UTC')" --mode "$MODE" --duration "$DURATION" \
    --warmup "$WARMUP" --command "bench/run.sh $ARGS" \
    --note "load generator, simulator and target share the same $(nproc) cores; other work on the machine adds noise" \
    --out "$RESULTS/meta.json"

# ---------------------------------------------------------------- the capacity scenario
# A fleet of three simulated Ollama models with limited slots (bench/sim-capacity.yaml: small 2
# slots and fast, medium 2, large 1 and slow, each with OLLAMA_MAX_QUEUE 4), a bursty mixed
# open-loop workload (`switchyard-loadgen capacity`), the same for every system, each system with
# a fresh simulator. Switchyard: the seed's chain local-small → local-medium → local-large, with
# capacity routing (`max_parallel_requests` = the slots; `spill_after` never, or
# $CAP_SPILL_AFTER) and without (`ordered`, no capacity keys). LiteLLM: one group of the three
# deployments (so its strategy has a choice), `max_input_tokens` and pre-call checks so a long
# prompt is not sent to the small model, `least-busy` or `usage-based-routing`, `num_retries: 2`.
CAP_FLEET=(--fleet "small=llama3.2:1b" --fleet "medium=llama3.1:8b" --fleet "large=mistral:7b")
CAP_DEPLOYMENTS=("local-small llama3.2:1b 2048 2" "local-medium llama3.1:8b 8192 2" "local-large mistral:7b 32768 1")

cap_switchyard_config() { # $1 = sim url, $2 = output file, $3 = ordered | never | spill
    local d group model ctx slots
    {
        echo "# capacity scenario of bench/run.sh: $3"
        echo "model_list:"
        for d in "${CAP_DEPLOYMENTS[@]}"; do
            read -r group model ctx slots <<<"$d"
            echo "  - model_name: $group"
            if [[ $3 == ordered ]]; then
                echo "    litellm_params: {model: \"ollama/$model\", api_base: \"$1\", max_tokens: $ctx}"
            else
                echo "    litellm_params: {model: \"ollama/$model\", api_base: \"$1\", max_tokens: $ctx, max_parallel_requests: $slots}"
            fi
        done
        echo "router_settings:"
        echo "  num_retries: 2"
        echo "  fallbacks: [local-small, local-medium, local-large]"
        if [[ $3 == spill ]]; then
            echo "groups:"
            for d in "${CAP_DEPLOYMENTS[@]}"; do
                read -r group model ctx slots <<<"$d"
                echo "  $group: {spill_after: $CAP_SPILL_AFTER}"
            done
        fi
    } >"$2"
}

cap_litellm_config() { # $1 = sim url, $2 = output file, $3 = routing strategy
    local d group model ctx slots
    {
        echo "# capacity scenario of bench/run.sh: LiteLLM $3 over one group of the three models"
        echo "model_list:"
        for d in "${CAP_DEPLOYMENTS[@]}"; do
            read -r group model ctx slots <<<"$d"
            echo "  - model_name: local"
            echo "    litellm_params: {model: \"ollama_chat/$model\", api_base: \"$1\", num_ctx: $ctx}"
            echo "    model_info: {max_input_tokens: $ctx}"
        done
        echo "router_settings:"
        echo "  routing_strategy: $3"
        echo "  num_retries: 2"
        echo "  enable_pre_call_checks: true"
        echo "litellm_settings:"
        echo "  telemetry: false"
    } >"$2"
}

run_capacity() {
    local sys sim_pid url model what strategy
    for sys in $CAP_SYSTEMS; do
        log "capacity scenario: $sys"
        start_bg "sim-$sys" "$BIN/switchyard-sim" --config "$ROOT/bench/sim-capacity.yaml" --listen 127.0.0.1:0
        sim_pid=$LAST_PID; SIM_PID=$sim_pid
        wait_listening "sim-$sys" "$sim_pid" || continue
        SIM_URL="http://$ADDR"
        case $sys in
            switchyard-ordered|switchyard-capacity|switchyard-capacity-spill)
                case $sys in
                    switchyard-ordered) mode=ordered; what="\`switchyard serve\`, seed chain, \`ordered\`, no capacity keys" ;;
                    switchyard-capacity) mode=never; what="\`switchyard serve\`, seed chain, \`max_parallel_requests\` = the slots, \`spill_after: never\`" ;;
                    *) mode=spill; what="\`switchyard serve\`, seed chain, \`max_parallel_requests\` = the slots, \`spill_after: $CAP_SPILL_AFTER\`" ;;
                esac
                cap_switchyard_config "$SIM_URL" "$WORK/$sys.yaml" "$mode"
                start_bg "$sys" "$BIN/switchyard" serve --config "$WORK/$sys.yaml" --listen 127.0.0.1:0
                TARGET_PIDS=("$LAST_PID")
                if ! wait_listening "$sys" "$LAST_PID"; then stop_pid "$LAST_PID"; stop_pid "$sim_pid"; continue; fi
                url="http://$ADDR/v1/chat/completions"; model=local-small
                ;;
            litellm-least-busy|litellm-usage-based)
                strategy=least-busy; [[ $sys == litellm-usage-based ]] && strategy=usage-based-routing
                if ! ensure_litellm; then log "$sys not measured: $LITELLM_STATUS"; stop_pid "$sim_pid"; continue; fi
                cap_litellm_config "$SIM_URL" "$WORK/$sys.yaml" "$strategy"
                if ! start_litellm "$WORK/$sys.yaml"; then
                    log "$sys not measured: $LITELLM_STATUS"; stop_group "${TARGET_PIDS[0]:-0}"; stop_pid "$sim_pid"; continue
                fi
                version=$("$VENV/bin/pip" show litellm 2>/dev/null | sed -n 's/^Version: //p')
                what="LiteLLM proxy ${version:-?}, one group of the three models, \`$strategy\`, pre-call checks with \`max_input_tokens\`, \`num_retries: 2\`"
                url="$GW_URL/v1/chat/completions"; model=local
                ;;
            *) log "unknown capacity system $sys (skipped)"; stop_pid "$sim_pid"; continue ;;
        esac
        # One request first (LiteLLM imports lazily on its first call); the stats are read as a
        # difference, so it does not count.
        "$LOADGEN" body --model "$model" --prompt-tokens 10 --out "$WORK/cap-warm-$model.json"
        "$LOADGEN" probe --url "$url" --body-file "$WORK/cap-warm-$model.json" --sim "$SIM_URL" \
            --out "$WORK/cap-warm-$sys-backend.json" >/dev/null 2>&1 || log "$sys: warm-up request failed"
        "$LOADGEN" --threads 2 capacity --url "$url" --sim "$SIM_URL" --system "$sys" --description "$what" \
            --model "$model" --duration "$CAP_DURATION" "${CAP_FLEET[@]}" \
            --out "$RESULTS/capacity-$sys.json" || log "capacity run $sys failed (continuing)"
        for p in "${TARGET_PIDS[@]}"; do
            if [[ " ${GROUPS_[*]} " == *" $p "* ]]; then stop_group "$p"; else stop_pid "$p"; fi
        done
        stop_pid "$sim_pid"
    done
}

# Only the capacity scenario: no probes, no tokenizer scenarios, only its section of the report.
ONLY_CAP=0
[[ $(echo $TARGETS) == capacity ]] && { ONLY_CAP=1; TOK_SIZES=""; }
if [[ $ONLY_CAP == 0 ]]; then
    # Probe: what does Switchyard send the backend for each prompt? The direct baseline sends exactly that.
    log "probing the backend requests Switchyard sends"
    start_sim probe
    start_serve probe-serve
    # Streamed and unstreamed requests differ at the backend too (Ollama is asked for one JSON answer
    # when the caller does not stream), so each gets its own probe.
    for prompt in small 2k; do
        for s in 0 1; do
            "$LOADGEN" probe --url "$GW_URL/v1/chat/completions" --body-file "$WORK/openai-$prompt-s$s.json" \
                --sim "$SIM_URL" --out "$WORK/direct-$prompt-s$s.json"
        done
    done
    # The other endpoints: their bodies, and what Switchyard sends the backend for each. An endpoint
    # whose probe fails is left out of the run (and said so).
    eps=""
    for ep in $EP_LIST; do
        ok=1
        for s in $(ep_streams "$ep"); do
            flag=(); [[ $s == 1 ]] && flag=(--stream)
            "$LOADGEN" body --endpoint "$ep" --model "$(ep_model "$ep")" --prompt-tokens 10 "${flag[@]}" \
                --out "$WORK/ep-$ep-s$s.json"
            "$LOADGEN" probe --url "$GW_URL$(ep_gw_path "$ep")" --body-file "$WORK/ep-$ep-s$s.json" --sim "$SIM_URL" \
                --backend-path "$(ep_backend_path "$ep")" --out "$WORK/direct-ep-$ep-s$s.json" || ok=0
        done
        if [[ $ok == 1 ]]; then eps="$eps $ep"; else log "endpoint $ep left out: its probe failed"; fi
    done
    EP_LIST=${eps# }
    stop_pid "${TARGET_PIDS[0]}"; stop_pid "$SIM_PID"
fi

for target in $TARGETS; do
    log "target $target"
    case "$target" in
        direct)
            start_sim direct
            TARGET_PIDS=("$SIM_PID")
            "$LOADGEN" target-info --target direct --idle --pid "$SIM_PID" \
                --description "the simulator's Ollama /api/chat, sent the exact body Switchyard sends it (one JSON answer, or an NDJSON stream when the caller streams)" \
                --out "$RESULTS/target-direct.json"
            run_matrix direct "$SIM_URL/api/chat" ndjson ndjson direct
            run_endpoints direct "$SIM_URL" direct
            target_done direct
            ;;
        passthrough)
            start_sim passthrough
            start_bg passthrough "$LOADGEN" --threads "$(nproc)" passthrough --upstream "$SIM_URL"
            TARGET_PIDS=("$LAST_PID")
            wait_listening passthrough "$LAST_PID"
            "$LOADGEN" target-info --target passthrough --idle --pid "${TARGET_PIDS[@]}" \
                --description "a proxy with no logic (hyper server + hyper-util pooled client, $(nproc) threads) forwarding the direct body unchanged to the simulator: the floor any gateway pays here" \
                --out "$RESULTS/target-passthrough.json"
            run_matrix passthrough "http://$ADDR/api/chat" ndjson ndjson direct
            run_endpoints passthrough "http://$ADDR" direct
            target_done passthrough
            ;;
        serve)
            bin="$BIN/switchyard"; what="\`switchyard serve\`: gateway and router in one process, seed config"
            start_sim "$target"
            start_serve "$target" "$bin"
            "$LOADGEN" probe --url "$GW_URL/v1/chat/completions" --body-file "$WORK/openai-small-s0.json" \
                --sim "$SIM_URL" --out "$WORK/$target-warm.json" >/dev/null 2>&1 || true
            "$LOADGEN" target-info --target "$target" --idle --pid "${TARGET_PIDS[@]}" \
                --description "$what" --out "$RESULTS/target-$target.json"
            run_matrix "$target" "$GW_URL/v1/chat/completions" json sse openai
            run_endpoints "$target" "$GW_URL" gw
            target_done "$target"
            ;;
        split)
            bin="$BIN/switchyard"; what="\`switchyard router\` + \`switchyard gateway\` processes, gRPC over loopback between them (CPU and RSS summed)"
            start_sim "$target"
            start_split "$target" "$bin"
            "$LOADGEN" probe --url "$GW_URL/v1/chat/completions" --body-file "$WORK/openai-small-s0.json" \
                --sim "$SIM_URL" --out "$WORK/$target-warm.json" >/dev/null 2>&1 || true
            pidargs=(); for p in "${TARGET_PIDS[@]}"; do pidargs+=(--pid "$p"); done
            "$LOADGEN" target-info --target "$target" --idle "${pidargs[@]}" \
                --description "$what" --out "$RESULTS/target-$target.json"
            run_matrix "$target" "$GW_URL/v1/chat/completions" json sse openai
            run_endpoints "$target" "$GW_URL" gw
            target_done "$target"
            ;;
        proxied)
            # The no-logic proxy in front of `serve`: what any second process in a request's
            # path costs here, whatever it does (the floor under split mode's CPU ratio).
            start_sim proxied
            start_serve proxied-serve "$BIN/switchyard"
            serve_pid=${TARGET_PIDS[0]}
            start_bg proxied "$LOADGEN" --threads "$(nproc)" passthrough --upstream "$GW_URL"
            TARGET_PIDS=("$serve_pid" "$LAST_PID")
            wait_listening proxied "$LAST_PID"
            pidargs=(); for p in "${TARGET_PIDS[@]}"; do pidargs+=(--pid "$p"); done
            "$LOADGEN" target-info --target proxied --idle "${pidargs[@]}" \
                --description "\`switchyard serve\` behind the no-logic proxy ($(nproc) threads), CPU and RSS summed: the cost of a second process in the path, the floor under split mode's" \
                --out "$RESULTS/target-proxied.json"
            run_matrix proxied "http://$ADDR/v1/chat/completions" json sse openai
            target_done proxied
            ;;
        litellm)
            if ensure_litellm; then
                start_sim litellm
                if start_litellm; then
                    "$LOADGEN" probe --url "$GW_URL/v1/chat/completions" --body-file "$WORK/openai-small-s0.json" \
                        --sim "$SIM_URL" --out "$WORK/litellm-backend-small.json" || log "LiteLLM probe failed"
                    version=$("$VENV/bin/pip" show litellm 2>/dev/null | sed -n 's/^Version: //p')
                    "$LOADGEN" target-info --target litellm --idle --pid "${TARGET_PIDS[@]}" \
                        --description "LiteLLM proxy ${version:-?} (\`litellm --config\`, ${LITELLM_WORKERS:-1} worker, LITELLM_LOG=ERROR), seed config with ollama_chat/ models" \
                        --out "$RESULTS/target-litellm.json"
                    RESTART=restart_litellm
                    run_matrix litellm "$GW_URL/v1/chat/completions" json sse openai
                    RESTART=""
                    target_done litellm
                    continue
                fi
                stop_pid "$SIM_PID"
            fi
            log "LiteLLM not measured: $LITELLM_STATUS"
            "$LOADGEN" target-info --target litellm --status "$LITELLM_STATUS" \
                --description "LiteLLM proxy" --out "$RESULTS/target-litellm.json"
            ;;
        capacity) run_capacity ;;
        *) log "unknown target $target (skipped)" ;;
    esac
done

# ---------------------------------------------------------------- exact tokenizers
# One `serve` with three fallback chains over the same simulator model, 4k → 16k → 64k → 256k
# windows each, so every prompt size lands well inside one window by any count (the heuristic's,
# the exact ones and the simulator's): `heuristic-*` with no tokenizer,
# `llama3-*` and `smollm2-*` with that vocabulary as `model_info.tokenizer`. Prompts of the
# README and ARCHITECTURE text, exactly N tokens by the Llama 3 vocabulary, as a first turn (one
# new user message) and as a 10th turn (18 resent messages and a new one of N/10 tokens). The
# new message differs on every request (`run --unique`), so a count cache only helps with the
# resent history, as in a real conversation.
TOK_DIR="$ROOT/.cache/tokenizer-ref"
TOKENIZERS="heuristic llama3 smollm2"
tok_file() { case $1 in llama3) echo "$TOK_DIR/llama3-vocab.gguf" ;; smollm2) echo "$TOK_DIR/smollm2.gguf" ;; esac; }
tok_tokens() { case $1 in *k) echo $(( ${1%k} * 1000 )) ;; *) echo "$1" ;; esac; }

tokenizer_config() { # $1 = sim url, $2 = output file
    local t w ctx file
    {
        echo "# exact-tokenizer scenarios of bench/run.sh"
        echo "model_list:"
        for t in $TOKENIZERS; do
            file=$(tok_file "$t")
            for w in 4k:4096 16k:16384 64k:65536 256k:262144; do
                ctx=${w#*:}
                echo "  - model_name: $t-${w%%:*}"
                echo "    litellm_params: {model: \"ollama/llama3.2:1b\", api_base: \"$1\", num_ctx: $ctx}"
                [[ -n $file ]] && echo "    model_info: {tokenizer: \"$file\"}"
            done
        done
        echo "router_settings:"
        echo "  num_retries: 0"
        echo "  fallbacks:"
        for t in $TOKENIZERS; do
            echo "    - {$t-4k: [$t-16k, $t-64k, $t-256k]}"
            echo "    - {$t-16k: [$t-64k, $t-256k]}"
            echo "    - {$t-64k: [$t-256k]}"
        done
    } >"$2"
}

run_tokenizers() {
    local f t size turn s body sflag exp scen sim_pid serve_pid direct_body
    for f in llama3-vocab.gguf smollm2.gguf; do
        if [[ ! -f $TOK_DIR/$f ]]; then
            log "exact-tokenizer scenarios left out: $TOK_DIR/$f is missing (make tokenizer-ref)"
            "$LOADGEN" target-info --target serve-llama3 --status "not run: $TOK_DIR/$f is missing (make tokenizer-ref)" \
                --description "exact-tokenizer scenarios" --out "$RESULTS/target-serve-llama3.json"
            return 0
        fi
    done
    log "exact-tokenizer scenarios: sizes $TOK_SIZES"
    for size in $TOK_SIZES; do
        for turn in 1 10; do
            "$LOADGEN" body --model heuristic-4k --prompt-tokens "$(tok_tokens "$size")" --turn "$turn" \
                --corpus README.md --corpus ARCHITECTURE.md --tokenizer "$TOK_DIR/llama3-vocab.gguf" \
                --out "$WORK/tok-base-$size-t$turn.json"
            for t in $TOKENIZERS; do
                for s in 0 1; do
                    local st=false; [[ $s == 1 ]] && st=true
                    sed -e "s/\"model\":\"heuristic-4k\"/\"model\":\"$t-4k\"/" -e "s/\"stream\":false/\"stream\":$st/" \
                        "$WORK/tok-base-$size-t$turn.json" >"$WORK/tok-$t-$size-t$turn-s$s.json"
                done
            done
        done
    done
    # A simulator and a `serve` per prompt size: the simulator keeps every request it is sent
    # (for probes), which for long prompts would outgrow the machine's memory over all sizes.
    start_tok() { # $1 = size; sets sim_pid, serve_pid, SIM_URL, GW_URL
        start_bg "sim-tok-$1" "$BIN/switchyard-sim" --config "$ROOT/bench/sim-tokenizer.yaml" --listen 127.0.0.1:0
        sim_pid=$LAST_PID; wait_listening "sim-tok-$1" "$sim_pid"; SIM_URL="http://$ADDR"; SIM_PID=$sim_pid
        tokenizer_config "$SIM_URL" "$WORK/serve-tok.yaml"
        start_bg "serve-tok-$1" "$BIN/switchyard" serve --config "$WORK/serve-tok.yaml" --listen 127.0.0.1:0
        serve_pid=$LAST_PID; wait_listening "serve-tok-$1" "$serve_pid"; GW_URL="http://$ADDR"
        TARGET_PIDS=("$serve_pid")
    }
    start_tok first
    for t in $TOKENIZERS; do
        local what="\`switchyard serve\`, exact-tokenizer scenarios: fallback chain of 4k/16k/64k/256k windows"
        case $t in
            heuristic) what="$what with no \`tokenizer:\` (the heuristic counter)" ;;
            *) what="$what with \`model_info.tokenizer: $(basename "$(tok_file "$t")")\`" ;;
        esac
        "$LOADGEN" target-info --target "serve-$t" --idle --pid "$serve_pid" --description "$what" \
            --out "$RESULTS/target-serve-$t.json"
    done
    stop_pid "$serve_pid"; stop_pid "$sim_pid"
    for size in $TOK_SIZES; do
        start_tok "$size"
        for turn in 1 10; do
            for s in 0 1; do
                sflag=(); exp=json; [[ $s == 1 ]] && { sflag=(--stream); exp=sse; }
                scen="tok-$([[ $s == 1 ]] && echo stream || echo nonstream)-$size-t$turn-c1"
                direct_body="$WORK/direct-tok-$size-t$turn-s$s.json"
                "$LOADGEN" probe --url "$GW_URL/v1/chat/completions" --body-file "$WORK/tok-heuristic-$size-t$turn-s$s.json" \
                    --sim "$SIM_URL" --out "$direct_body" || { log "probe $scen failed"; continue; }
                "$LOADGEN" run --url "$SIM_URL/api/chat" --body-file "$direct_body" --expect ndjson -c 1 \
                    --duration "$TOK_DURATION" --warmup "$TOK_WARMUP" --pid "$sim_pid" --clk-tck "$CLK_TCK" \
                    --target direct --scenario "$scen" --endpoint tokenizer --prompt "$size, turn $turn" "${sflag[@]}" \
                    --out "$RESULTS/run-direct-$scen.json" || log "run direct $scen failed (continuing)"
                for t in $TOKENIZERS; do
                    "$LOADGEN" run --url "$GW_URL/v1/chat/completions" --body-file "$WORK/tok-$t-$size-t$turn-s$s.json" \
                        --unique --expect "$exp" -c 1 --timeout 60 \
                        --duration "$TOK_DURATION" --warmup "$TOK_WARMUP" --pid "$serve_pid" --clk-tck "$CLK_TCK" \
                        --target "serve-$t" --scenario "$scen" --endpoint tokenizer --prompt "$size, turn $turn" "${sflag[@]}" \
                        --out "$RESULTS/run-serve-$t-$scen.json" || log "run serve-$t $scen failed (continuing)"
                done
            done
        done
        stop_pid "$serve_pid"; stop_pid "$sim_pid"
    done
}
[[ -n $TOK_SIZES ]] && run_tokenizers

if [[ $REPORT == 1 ]]; then
    if [[ $ONLY_CAP == 0 ]]; then
        appendix=()
        for f in bench/methodology.md bench/notes.md; do [[ -f $f ]] && appendix+=(--appendix "$f"); done
        "$LOADGEN" report --results "$RESULTS" "${appendix[@]}" --out BENCHMARKS.md
        log "wrote BENCHMARKS.md"
    fi
    if compgen -G "$RESULTS/capacity-*.json" >/dev/null; then
        cap_notes=(); [[ -f bench/capacity-notes.md ]] && cap_notes=(--notes bench/capacity-notes.md)
        "$LOADGEN" capacity-report --results "$RESULTS" --out BENCHMARKS.md "${cap_notes[@]}" \
            --header "Run of $(date -u -d "@$STARTED" '+%Y-%m-%d %H:%M UTC') (${BENCH_BIN_DIR:+\`BENCH_BIN_DIR=$BENCH_BIN_DIR\` }\`bench/run.sh $ARGS\`), $(nproc) cores shared with the other work on the machine (load average at the start of each system below). The fleet is one simulator (\`bench/sim-capacity.yaml\`); see \"The capacity scenario\" in bench/methodology.md."
        log "wrote the capacity section of BENCHMARKS.md"
    fi
fi
log "results in $RESULTS ($(( $(date +%s) - STARTED )) s)"
