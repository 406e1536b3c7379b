#!/usr/bin/env bash
# bench/http.sh: HTTP/1.1 reverse proxy benchmark. sluice, HAProxy (mode http, keep-alive
# both sides) and nginx (proxy_pass with upstream keepalive) in one run, against the same
# origin (nginx serving static files), plus the origin directly. Each proxy runs one worker
# pinned to one CPU; wrk and the origin share the other CPU. Per round, every contender is
# measured in turn, in an order that rotates from round to round, so that background noise
# does not favour one of them; the table reports the median over the rounds of each
# per-round ratio to HAProxy, beside the median rates:
#   ka64 / ka16k / ka1m  keep-alive requests per second for a 64 B / 16 KiB / 1 MiB body
#   close               requests per second with "Connection: close" (a connection each)
#   cpu/req             the proxy's CPU time per request in the ka64 run (microseconds)
#   idle                RSS growth per idle keep-alive client connection (bytes)
#   p99                 99th percentile latency at half of HAProxy's ka64 rate of the round
#
# Usage: bench/http.sh
# Knobs (environment): PROXIES="sluice haproxy nginx"  ROUNDS=3  SECONDS_PER_RUN=8
#   CONNS=64 (wrk connections)  IDLE_CONNS=2000  BASE_PORT=28000  SLUICE_BUILD=build
#   OUT=bench/out-http  PROXY_CPUS / LOAD_CPUS (taskset lists; CPU 0 / CPU 1 on 2 CPUs)
# Results: $OUT/results.md, $OUT/results.tsv; configs and logs in $OUT/run/.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-$REPO/bench/out-http}
RUN=$OUT/run
proxy_knobs
WORKERS=1
PROXIES=${PROXIES:-"sluice haproxy nginx"}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
CONNS=${CONNS:-64}
IDLE_CONNS=${IDLE_CONNS:-2000}
BASE_PORT=${BASE_PORT:-28000}
pick_cpus
command -v wrk >/dev/null || die "wrk is missing: scripts/install-deps.sh bench"
[ -x "$HAPROXY" ] || die "haproxy is missing: scripts/install-deps.sh bench"
[ -x "$NGINX" ] || die "nginx is missing: scripts/install-deps.sh bench"
rm -rf "$RUN"
mkdir -p "$RUN"

ORIGIN_PORT=$BASE_PORT
declare -A FRONT=([direct]=$ORIGIN_PORT [sluice]=$((BASE_PORT + 1)) [haproxy]=$((BASE_PORT + 2))
    [nginx]=$((BASE_PORT + 3)))

# ---------------------------------------------------------------------------------------
# The origin: nginx serving /64, /16k, /1m with keep-alive, on the load CPU.
start_http_origin "$RUN/origin" "$ORIGIN_PORT"

# ---------------------------------------------------------------------------------------
# The proxies.
sluice_http_conf "${FRONT[sluice]}" "$ORIGIN_PORT" >"$RUN/sluice.yaml"
haproxy_http_conf "${FRONT[haproxy]}" "$ORIGIN_PORT" >"$RUN/haproxy.cfg"
mkdir -p "$RUN/nginx/logs"
nginx_http_proxy_conf "$RUN/nginx" "${FRONT[nginx]}" "$ORIGIN_PORT" >"$RUN/nginx/nginx.conf"

SLUICE_OK=1
if [ ! -x "$SLUICE" ] || ! "$SLUICE" -t -c "$RUN/sluice.yaml" >"$RUN/sluice-check.log" 2>&1; then
    log "sluice: cannot serve this configuration yet ($(head -n 1 "$RUN/sluice-check.log" 2>/dev/null)); rows marked pending"
    SLUICE_OK=0
fi

# Starts proxy P; sets LAST_PID (empty for direct).
start_contender() {
    case $1 in
    direct) LAST_PID= ;;
    sluice) start_proxy "$RUN/sluice.log" "$SLUICE" -c "$RUN/sluice.yaml" ;;
    haproxy) run_haproxy haproxy "$RUN/haproxy.cfg" ;;
    nginx) run_nginx nginx "$RUN/nginx" ;;
    *) die "unknown proxy $1" ;;
    esac
    if [ -n "$LAST_PID" ]; then wait_port "${FRONT[$1]}" "$LAST_PID" "$1"; fi
}

# Prints the p99 latency in microseconds at RATE requests/s over CONNS connections (each
# connection waits CONNS/RATE seconds between its requests, minus nothing: wrk's delay()).
wrk_p99_at() {
    local logfile=$1 url=$2 rate=$3 delay_ms
    delay_ms=$(python3 -c "print(max(1, round($CONNS * 1000 / $rate)))")
    printf 'function delay() return %s end\n' "$delay_ms" >"$RUN/delay.lua"
    taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNS" -d"${SECONDS_PER_RUN}s" --latency -s "$RUN/delay.lua" \
        "$url" >"$logfile" 2>&1 || true
    python3 - "$logfile" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
if not m:
    print("NA")
else:
    v, unit = float(m.group(1)), m.group(2)
    print(round(v * {"us": 1, "ms": 1e3, "s": 1e6}[unit]))
EOF
}

RESULTS=$OUT/results.tsv
printf 'round\tcontender\tka64\tka16k\tka1m\tclose\tcpu_us_per_req\tidle_bytes\tp99_us\n' >"$RESULTS"
read -r -a CONTENDERS <<<"$PROXIES direct"
for round in $(seq "$ROUNDS"); do
    # rotate the order: round r starts with contender r
    rotate_order "$round" "${CONTENDERS[@]}"
    order=("${ORDER[@]}")
    declare -A KA64=()
    declare -A ROW=()
    for p in "${order[@]}"; do
        if [ "$p" = sluice ] && [ "$SLUICE_OK" = 0 ]; then
            ROW[$p]="pending\tpending\tpending\tpending\tpending\tpending"
            continue
        fi
        log "round $round/$ROUNDS: $p"
        start_contender "$p"
        pid=$LAST_PID
        url=http://127.0.0.1:${FRONT[$p]}
        wrk_rate "$RUN/$p-warm.log" "$url/64" -c"$CONNS" -d2s >/dev/null
        t0=0
        [ -z "$pid" ] || t0=$(cpu_ticks "$pid")
        ka64=$(wrk_rate "$RUN/$p-ka64-$round.log" "$url/64" -c"$CONNS")
        cpu=NA
        if [ -n "$pid" ]; then cpu=$(cpu_us_per "$t0" "$(cpu_ticks "$pid")" "$ka64"); fi
        ka16k=$(wrk_rate "$RUN/$p-ka16k-$round.log" "$url/16k" -c"$CONNS")
        ka1m=$(wrk_rate "$RUN/$p-ka1m-$round.log" "$url/1m" -c8)
        close=$(wrk_rate "$RUN/$p-close-$round.log" "$url/64" -c"$CONNS" -H "Connection: close")
        idle=NA
        if [ -n "$pid" ]; then
            # in a fresh process: memory freed by the runs above would otherwise be reused
            stop_pid "$pid"
            start_contender "$p"
            pid=$LAST_PID
            idle=$(idle_conn_bytes "$pid" "${FRONT[$p]}" "$IDLE_CONNS" || echo NA)
        fi
        KA64[$p]=${ka64:-NA}
        ROW[$p]="${ka64:-NA}\t${ka16k:-NA}\t${ka1m:-NA}\t${close:-NA}\t$cpu\t$idle"
        log "$p: ka64 ${ka64:-NA}/s, ka16k ${ka16k:-NA}/s, ka1m ${ka1m:-NA}/s, close ${close:-NA}/s, $cpu us CPU/req, $idle B/idle conn"
        [ -z "$pid" ] || stop_pid "$pid"
        sleep 1
    done
    # latency at half of HAProxy's saturated rate, same offered load for everyone
    target=${KA64[haproxy]:-NA}
    for p in "${order[@]}"; do
        p99=NA
        if [ "$target" != NA ] && { [ "$p" != sluice ] || [ "$SLUICE_OK" = 1 ]; }; then
            start_contender "$p"
            pid=$LAST_PID
            rate=$(python3 -c "print($target / 2)")
            p99=$(wrk_p99_at "$RUN/$p-p99-$round.log" "http://127.0.0.1:${FRONT[$p]}/64" "$rate")
            [ -z "$pid" ] || stop_pid "$pid"
            sleep 1
        fi
        [ "$p" = sluice ] && [ "$SLUICE_OK" = 0 ] && p99=pending
        printf '%s\t%s\t%b\t%s\n' "$round" "$p" "${ROW[$p]}" "$p99" >>"$RESULTS"
    done
done

cleanup

META="One worker/thread per proxy pinned to CPU $PROXY_CPUS; wrk (1 thread, $CONNS connections; \
8 for 1 MiB) and the origin (nginx, 1 worker, static files) on CPU $LOAD_CPUS ($ncpu CPUs: \
$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)). $ROUNDS round(s) of ${SECONDS_PER_RUN}s \
runs, contenders in rotating order; ratios are medians of per-round ratios. Idle: $IDLE_CONNS \
keep-alive connections. p99 at half of HAProxy's keep-alive 64 B rate of each round. \
Kernel $(uname -r); $("$HAPROXY" -v | head -n1 | cut -d' ' -f1-3); $("$NGINX" -v 2>&1 | cut -d' ' -f3)."
median_table "$RESULTS" "$OUT/results.md" "$META" \
    "sluice=sluice|haproxy=HAProxy 2.6 (mode http)|nginx=nginx (upstream keepalive)|direct=origin directly (reference)" \
    "ka64:0:ka64 req/s" "ka16k:0:ka16k req/s" "ka1m:0:ka1m req/s" "close:0:close req/s" \
    "cpu_us_per_req:2:CPU/req (us)" "idle_bytes:0:RSS/idle conn (B)" "p99_us:0:p99 at 50% (us)"
log "results: $OUT/results.md, $RESULTS, logs in $RUN"
