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
cat >"$RUN/sluice.yaml" <<EOF
workers: 1
max_connections: 100000
log: {access: off, level: warn}
listeners:
  - name: front
    bind: 127.0.0.1:${FRONT[sluice]}
    protocol: http
    idle_timeout: 300s
    backend: origin
backends:
  - name: origin
    protocol: http
    servers: [127.0.0.1:$ORIGIN_PORT]
    keepalive: {max_idle: 256, idle_timeout: 300s}
EOF
cat >"$RUN/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 9000
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    option http-keep-alive
    http-reuse always
frontend front
    bind 127.0.0.1:${FRONT[haproxy]}
    default_backend origin
backend origin
    server o1 127.0.0.1:$ORIGIN_PORT
EOF
mkdir -p "$RUN/nginx/logs"
cat >"$RUN/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/logs/error.log warn;
worker_rlimit_nofile 19000;
events { worker_connections 9000; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 256; }
    server {
        listen 127.0.0.1:${FRONT[nginx]} backlog=4096;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }
    }
}
EOF

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

# Prints wrk's requests per second for URL with extra wrk args; the whole output goes to
# LOGFILE. Usage: wrk_rate LOGFILE URL [WRK ARGS...]
wrk_rate() {
    local logfile=$1 url=$2
    shift 2
    taskset -c "$LOAD_CPUS" wrk -t1 -d"${SECONDS_PER_RUN}s" "$@" "$url" >"$logfile" 2>&1 || true
    local errors
    errors=$(sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p; s/.*Socket errors: \(.*\)/\1/p' "$logfile" | tr '\n' ' ')
    [ -z "$errors" ] || log "$(basename "$logfile"): errors: $errors"
    sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$logfile" | head -n 1
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

# Prints the RSS growth per idle keep-alive client connection (bytes) of process PID
# while IDLE_CONNS connections to PORT each made one request and stay open.
idle_bytes() {
    local pid=$1 port=$2
    python3 - "$pid" "$port" "$IDLE_CONNS" <<'EOF'
import socket, sys, time
pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
def request(s):
    s.sendall(b"GET /64 HTTP/1.1\r\nHost: bench\r\n\r\n")
    got = b""
    while not (b"\r\n\r\n" in got and got.endswith(b"a" * 64)):
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("connection closed")
        got += chunk
held = []
warm = socket.create_connection(("127.0.0.1", port)); request(warm)
time.sleep(0.5)
before = rss()
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port)); request(s); held.append(s)
time.sleep(1)
print(round((rss() - before) / n))
EOF
}

RESULTS=$OUT/results.tsv
printf 'round\tcontender\tka64\tka16k\tka1m\tclose\tcpu_us_per_req\tidle_bytes\tp99_us\n' >"$RESULTS"
CONTENDERS=($PROXIES direct)
for round in $(seq "$ROUNDS"); do
    # rotate the order: round r starts with contender r
    n=${#CONTENDERS[@]}
    order=()
    for i in $(seq 0 $((n - 1))); do order+=("${CONTENDERS[$(((i + round - 1) % n))]}"); done
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
        if [ -n "$pid" ] && [ -n "$ka64" ]; then
            t1=$(cpu_ticks "$pid")
            cpu=$(python3 -c "print(round(($t1 - $t0) * 1e6 / $CLK_TCK / ($ka64 * $SECONDS_PER_RUN), 2))")
        fi
        ka16k=$(wrk_rate "$RUN/$p-ka16k-$round.log" "$url/16k" -c"$CONNS")
        ka1m=$(wrk_rate "$RUN/$p-ka1m-$round.log" "$url/1m" -c8)
        close=$(wrk_rate "$RUN/$p-close-$round.log" "$url/64" -c"$CONNS" -H "Connection: close")
        idle=NA
        if [ -n "$pid" ]; then
            # in a fresh process: memory freed by the runs above would otherwise be reused
            stop_pid "$pid"
            start_contender "$p"
            pid=$LAST_PID
            idle=$(idle_bytes "$pid" "${FRONT[$p]}" || echo NA)
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
python3 - "$RESULTS" "$OUT/results.md" "$META" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
KEYS = ("ka64", "ka16k", "ka1m", "close", "cpu_us_per_req", "idle_bytes", "p99_us")
def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None
by_round = {}
for r in rows:
    by_round.setdefault(r["round"], {})[r["contender"]] = r
order = []
for r in rows:
    if r["contender"] not in order:
        order.append(r["contender"])
def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
def value(p, k):
    vals = [num(rr[p][k]) for rr in by_round.values() if p in rr]
    if all(v is None for v in vals) and any(rr.get(p, {}).get(k) == "pending" for rr in by_round.values()):
        return "pending"
    return med(vals)
def ratio(p, k):
    rs = []
    for rr in by_round.values():
        a, b = num(rr.get(p, {}).get(k)), num(rr.get("haproxy", {}).get(k))
        if a is not None and b:
            rs.append(a / b)
    m = med(rs)
    return "n/a" if m is None else f"{m:.2f}x"
def show(v, fmt):
    return v if isinstance(v, str) else ("n/a" if v is None else fmt.format(v))
names = {"sluice": "sluice", "haproxy": "HAProxy 2.6 (mode http)", "nginx": "nginx (upstream keepalive)",
         "direct": "origin directly (reference)"}
head = ["| contender | ka64 req/s | vs HAProxy | ka16k req/s | vs HAProxy | ka1m req/s | vs HAProxy "
        "| close req/s | vs HAProxy | CPU/req (us) | vs HAProxy | RSS/idle conn (B) | vs HAProxy "
        "| p99 at 50% (us) | vs HAProxy |",
        "|---|" + "---:|" * 14]
for p in order:
    cells = [names.get(p, p)]
    for k, fmt in (("ka64", "{:.0f}"), ("ka16k", "{:.0f}"), ("ka1m", "{:.0f}"), ("close", "{:.0f}"),
                   ("cpu_us_per_req", "{:.2f}"), ("idle_bytes", "{:.0f}"), ("p99_us", "{:.0f}")):
        v = value(p, k)
        cells += [show(v, fmt), ratio(p, k) if not isinstance(v, str) else v]
    head.append("| " + " | ".join(cells) + " |")
text = "\n".join(head) + "\n\n" + sys.argv[3] + "\n"
open(sys.argv[2], "w").write(text)
print(text)
EOF
log "results: $OUT/results.md, $RESULTS, logs in $RUN"
