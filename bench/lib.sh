# Helpers shared by bench/run.sh and bench/ab.sh (sourced, not run).

# listening_addr OUT_FILE PID [TIMEOUT_S]: prints ADDR from the first {"listening":"ADDR"} line the
# process wrote to OUT_FILE. Fails when the process exits first, or after TIMEOUT_S (default 60).
listening_addr() {
    local out=$1 pid=$2 deadline=$((SECONDS + ${3:-60})) addr
    while (( SECONDS <= deadline )); do
        addr=$(grep -o '"listening":"[^"]*"' "$out" 2>/dev/null | head -n1 | cut -d'"' -f4 || true)
        [[ -n $addr ]] && { echo "$addr"; return 0; }
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
