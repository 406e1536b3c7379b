#!/usr/bin/env bash
# bench/h2.sh: HTTP/2 to clients (issue 13). sluice (`https` listener, h2 chosen by ALPN),
# HAProxy (mode http, `bind ... ssl crt ... alpn h2,http/1.1`) and nginx (`listen ... ssl
# http2`, the 1.22 syntax) terminate TLS with the same ECDSA P-256 certificate and TLS
# settings as bench/https.sh (lib.sh) and forward each stream as HTTP/1.1 over keep-alive
# connections to the same origin (nginx serving static files; HAProxy `http-reuse always`,
# nginx an upstream keepalive pool, sluice its pool). One worker/thread per proxy pinned to
# one CPU; h2load and the origin share the other. Every round measures every proxy in an
# order that rotates from round to round; the table gives median values and the median of
# the per-round ratios to HAProxy:
#   h2 64 / h2 16k    requests per second with h2load, H2_CONNS connections x H2_STREAMS
#                     concurrent streams each (default 10 x 100), 64 B / 16 KiB bodies,
#                     SECONDS_PER_RUN each after a 2 s warm-up; the proxy's CPU time (user +
#                     system, all its processes) per request done in the run. A run in
#                     which h2load reports a failed or errored request, a timeout, or a
#                     status that is not 2xx is invalid: "invalid" in results.tsv, left out
#                     of the medians, listed under the table
#   idle              RSS growth per idle HTTP/2 connection (IDLE_CONNS TLS connections, h2
#                     by ALPN, each after its preface, SETTINGS and one GET stream, then
#                     held open with nothing in flight by a Python h2 client), measured in
#                     a freshly started proxy
# Before measuring (first round), each proxy must negotiate h2 and answer 200 with full
# bodies for /64 and /16k (a short h2load run; its TLS version, cipher and ALPN are logged).
#
# Usage: bench/h2.sh          (about 7 minutes with the defaults)
# Knobs (environment): PROXIES="sluice haproxy nginx"  ROUNDS=3  SECONDS_PER_RUN=10
#   H2_CONNS=10  H2_STREAMS=100  POOL_SIZE=H2_CONNS*H2_STREAMS  IDLE_CONNS=500  BASE_PORT=28500  SLUICE_BUILD=build
#   OUT=bench/out-h2  H2_PYTHON=/usr/bin/python3 (a Python with the h2 library)
#   H2_TLS13_CIPHERS=TLS_AES_256_GCM_SHA384 (the one TLS 1.3 suite h2load offers)
#   PROXY_CPUS / LOAD_CPUS (taskset lists; CPU 0 / CPU 1 on 2 CPUs)
# Results: $OUT/results.md, $OUT/results.tsv; configs, certificates and logs in $OUT/run/.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-$REPO/bench/out-h2}
RUN=$OUT/run
proxy_knobs
WORKERS=1
PROXIES=${PROXIES:-"sluice haproxy nginx"}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
H2_CONNS=${H2_CONNS:-10}
H2_STREAMS=${H2_STREAMS:-100}
IDLE_CONNS=${IDLE_CONNS:-500}
BASE_PORT=${BASE_PORT:-28500}
H2_PYTHON=${H2_PYTHON:-/usr/bin/python3}
# h2load offers TLS_AES_128_GCM_SHA256 first; sluice and HAProxy choose by their own order
# (TLS_AES_256_GCM_SHA384), nginx by the client's: one suite offered, the same work for all
H2_TLS13_CIPHERS=${H2_TLS13_CIPHERS:-TLS_AES_256_GCM_SHA384}
pick_cpus
for t in h2load python3 openssl taskset ss pgrep; do
    command -v "$t" >/dev/null || die "$t is missing: scripts/install-deps.sh bench"
done
"$H2_PYTHON" -c 'import h2' 2>/dev/null ||
    die "$H2_PYTHON lacks the h2 library (python3-h2: scripts/install-deps.sh bench)"
[ -x "$HAPROXY" ] || die "haproxy is missing: scripts/install-deps.sh bench"
[ -x "$NGINX" ] || die "nginx is missing: scripts/install-deps.sh bench"
[ -x "$SLUICE" ] || die "missing $SLUICE (run make)"
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -gt $((IDLE_CONNS + 100)) ] ||
    ulimit -n $((IDLE_CONNS + 1000)) 2>/dev/null || die "ulimit -n is below IDLE_CONNS + 100"
rm -rf "$RUN"
mkdir -p "$RUN/certs"
C=$RUN/certs

ORIGIN_PORT=$BASE_PORT
declare -A FRONT=([sluice]=$((BASE_PORT + 1)) [haproxy]=$((BASE_PORT + 2)) [nginx]=$((BASE_PORT + 3)))
for port in "$ORIGIN_PORT" "${FRONT[@]}"; do
    port_listening "$port" && die "port $port is in use (set BASE_PORT)"
done

make_bench_ec_cert "$C"
start_http_origin "$RUN/origin" "$ORIGIN_PORT"

# ---------------------------------------------------------------------------------------
# The proxies: https.sh's configurations (lib.sh) with h2 offered first by ALPN. HTTP/2
# limits are each proxy's defaults: concurrent streams sluice 100, HAProxy 100, nginx 128;
# initial stream window sluice 64 KiB, HAProxy 65,535 B, nginx 64 KiB (preread).
# Idle pools to the origin as large as the streams in flight (H2_CONNS x H2_STREAMS) for
# sluice (keepalive.max_idle) and nginx (keepalive): HAProxy's pool is unbounded by
# default, and with 1,000 streams a pool of 256 would close and reopen an origin
# connection for three requests in four.
POOL_SIZE=${POOL_SIZE:-$((H2_CONNS * H2_STREAMS))}
export POOL_SIZE
sluice_http_conf "${FRONT[sluice]}" "$ORIGIN_PORT" https "$(sluice_tls_block "$C" h2,http/1.1)" \
    >"$RUN/sluice.yaml"
"$SLUICE" -t -c "$RUN/sluice.yaml" >"$RUN/sluice-check.log" 2>&1 ||
    die "sluice rejected $RUN/sluice.yaml: $(head -n 3 "$RUN/sluice-check.log")"
haproxy_http_conf "${FRONT[haproxy]}" "$ORIGIN_PORT" "$(haproxy_tls_bind "$C" h2,http/1.1)" \
    "$(haproxy_tls_global)" >"$RUN/haproxy.cfg"
mkdir -p "$RUN/nginx/logs"
nginx_http_proxy_conf "$RUN/nginx" "${FRONT[nginx]}" "$ORIGIN_PORT" "ssl http2" \
    "$(nginx_tls_server "$C")" >"$RUN/nginx/nginx.conf"

# Starts proxy P; sets LAST_PID.
start_contender() {
    case $1 in
    sluice) start_proxy "$RUN/sluice.log" "$SLUICE" -c "$RUN/sluice.yaml" ;;
    haproxy) run_haproxy haproxy "$RUN/haproxy.cfg" ;;
    nginx) run_nginx nginx "$RUN/nginx" ;;
    *) die "unknown proxy $1" ;;
    esac
    wait_port "${FRONT[$1]}" "$LAST_PID" "$1"
}

# Prints what is wrong in h2load's output LOGFILE (failed, errored or timed-out requests,
# non-2xx statuses, no summary), nothing when all is well. Usage: h2load_errors LOGFILE
h2load_errors() {
    python3 - "$1" <<'EOF'
import re, sys
text = open(sys.argv[1], errors="replace").read()
req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
st = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
if not req or not st:
    print("no h2load summary")
    sys.exit()
total, started, done, ok, failed, errored, timeout = map(int, req.groups())
s2, s3, s4, s5 = map(int, st.groups())
bad = []
for name, v in (("failed", failed), ("errored", errored), ("timeout", timeout),
                ("3xx", s3), ("4xx", s4), ("5xx", s5)):
    if v:
        bad.append(f"{v} {name}")
# with -D, h2load also counts the status of responses still in flight when time is up
if s2 < ok:
    bad.append(f"{s2} 2xx of {ok} succeeded")
if done == 0:
    bad.append("no request done")
print(", ".join(bad))
EOF
}

# Prints a field of h2load's output LOGFILE: rate (req/s), done (requests done).
h2load_field() {
    case $2 in
    rate) sed -n 's/^finished in [0-9.]*m\?s, \([0-9.]*\) req\/s.*/\1/p' "$1" | head -n 1 ;;
    "done") sed -n 's/^requests: .* \([0-9]*\) done,.*/\1/p' "$1" | head -n 1 ;;
    esac
}

# Runs h2load on LOAD_CPUS (one thread, H2_CONNS x H2_STREAMS) with extra ARGS, output to
# LOGFILE. Usage: run_h2load LOGFILE URL [H2LOAD ARGS...]
run_h2load() {
    local logfile=$1 url=$2
    shift 2
    taskset -c "$LOAD_CPUS" h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" \
        --tls13-ciphers="$H2_TLS13_CIPHERS" "$@" "$url" \
        >"$logfile" 2>&1 || true
}

# Checks that proxy P negotiates h2 and serves /64 and /16k in full (h2load, 200 requests
# each); logs the TLS version, cipher and ALPN.
check_h2() {
    local p=$1 port=${FRONT[$1]} size path log errors data info
    for size in 64 16384; do
        path=/64
        [ "$size" = 64 ] || path=/16k
        log=$RUN/$p-check-${path#/}.log
        taskset -c "$LOAD_CPUS" h2load -t1 -c2 -m10 -n200 --tls13-ciphers="$H2_TLS13_CIPHERS" \
            "https://127.0.0.1:$port$path" \
            >"$log" 2>&1 || true
        errors=$(h2load_errors "$log")
        [ -z "$errors" ] || die "$p: h2 check of $path: $errors (see $log)"
        grep -q '^Application protocol: h2$' "$log" || die "$p: h2 not negotiated (see $log)"
        data=$(sed -n 's/^traffic: .*(\([0-9]*\)) data.*/\1/p' "$log")
        [ "$data" = $((200 * size)) ] || die "$p: $path: $data body bytes for 200 requests"
    done
    info=$(sed -n 's/^TLS Protocol: //p; s/^Cipher: //p; s/^Application protocol: /alpn=/p' "$log" |
        paste -sd ' ')
    log "$p: h2 200s; $info"
    echo "$p $info" >>"$RUN/tls-check.txt"
}

# Runs a measured h2load and prints "RATE DONE", or "invalid" (noted in $RUN/invalid.txt)
# when h2load reported errors. Usage: checked_h2load P WHAT ROUND URL
checked_h2load() {
    local p=$1 what=$2 round=$3 url=$4 logfile errors
    logfile=$RUN/$p-$what-$round.log
    run_h2load "$logfile" "$url" -D"$SECONDS_PER_RUN"
    errors=$(h2load_errors "$logfile")
    if [ -n "$errors" ]; then
        echo "round $round, $p, $what: $errors ($(grep '^requests:' "$logfile" || echo 'no summary'))" \
            >>"$RUN/invalid.txt"
        log "INVALID: round $round, $p, $what: $errors"
        echo invalid
    else
        echo "$(h2load_field "$logfile" rate) $(h2load_field "$logfile" "done")"
    fi
}
# CPU microseconds per request from two cpu_ticks readings and the requests done.
cpu_us_per_req() {
    python3 -c "import sys; t0, t1, n = sys.argv[1:]
print(round((float(t1) - float(t0)) * 1e6 / $CLK_TCK / float(n), 2) if n not in ('', '0') else 'NA')" \
        "$1" "$2" "${3:-}"
}

RESULTS=$OUT/results.tsv
printf 'round\tcontender\th2_64\tcpu_h2_64\th2_16k\tcpu_h2_16k\tidle_bytes\n' >"$RESULTS"
: >"$RUN/invalid.txt"
: >"$RUN/tls-check.txt"
read -r -a CONTENDERS <<<"$PROXIES"
for round in $(seq "$ROUNDS"); do
    rotate_order "$round" "${CONTENDERS[@]}"
    for p in "${ORDER[@]}"; do
        log "round $round/$ROUNDS: $p"
        start_contender "$p"
        pid=$LAST_PID
        [ "$round" -gt 1 ] || check_h2 "$p"
        url=https://127.0.0.1:${FRONT[$p]}
        run_h2load "$RUN/$p-warm-$round.log" "$url/64" -D2
        declare -A V=()
        t0=$(cpu_ticks "$pid")
        for what in h2_64 h2_16k; do
            path=/64
            [ "$what" = h2_64 ] || path=/16k
            r=$(checked_h2load "$p" "$what" "$round" "$url$path")
            t1=$(cpu_ticks "$pid")
            if [ "$r" = invalid ]; then
                V[$what]=invalid V[cpu_$what]=invalid
            else
                V[$what]=${r% *}
                V[cpu_$what]=$(cpu_us_per_req "$t0" "$t1" "${r#* }")
            fi
            t0=$t1
        done
        # idle memory in a fresh process: memory freed by the runs above would be reused
        stop_pid "$pid"
        start_contender "$p"
        pid=$LAST_PID
        idle=$(idle_conn_bytes "$pid" "${FRONT[$p]}" "$IDLE_CONNS" h2 2>"$RUN/$p-idle-$round.log" ||
            echo NA)
        [ "$idle" != NA ] || log "$p: idle measurement failed: $(tail -n 1 "$RUN/$p-idle-$round.log")"
        stop_pid "$pid"
        log "$p: h2 64 B ${V[h2_64]}/s (${V[cpu_h2_64]} us/req), h2 16 KiB ${V[h2_16k]}/s (${V[cpu_h2_16k]} us/req), $idle B/idle h2 conn"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$p" "${V[h2_64]}" "${V[cpu_h2_64]}" \
            "${V[h2_16k]}" "${V[cpu_h2_16k]}" "$idle" >>"$RESULTS"
        sleep 1
    done
done

cleanup

META="HTTP/2 over TLS to the proxy, HTTP/1.1 keep-alive behind it: $(awk '{ $1 = $1 ":"; print }' "$RUN/tls-check.txt" | paste -sd ';' | sed 's/;/; /g'). \
ECDSA P-256 certificate, TLS 1.2 minimum, ALPN h2,http/1.1, h2load offering only \
$H2_TLS13_CIPHERS; each proxy's default HTTP/2 settings. One worker/thread per proxy pinned to CPU $PROXY_CPUS; h2load (1 thread, \
$H2_CONNS connections x $H2_STREAMS concurrent streams) and the origin (nginx, 1 worker, \
static files) on CPU $LOAD_CPUS ($ncpu CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)). \
$ROUNDS round(s) of ${SECONDS_PER_RUN}s runs, contenders in rotating order; ratios are \
medians of per-round ratios (CPU and memory: lower is better). CPU/req: the proxy's user + \
system time over the requests h2load completed. Idle: $IDLE_CONNS HTTP/2 connections, one \
request each, then idle. Kernel $(uname -r); $("$HAPROXY" -v | head -n1 | cut -d' ' -f1-3); \
$("$NGINX" -v 2>&1 | cut -d' ' -f3); $(openssl version | cut -d' ' -f1-2); \
$(h2load --version | head -n1); sluice $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')."
median_table "$RESULTS" "$OUT/results.md" "$META" \
    "sluice=sluice (https listener, h2)|haproxy=HAProxy 2.6 (mode http, ssl alpn h2)|nginx=nginx (listen ssl http2, upstream keepalive)" \
    "h2_64:0:h2 64 B req/s" "cpu_h2_64:2:CPU/req 64 B (us)" \
    "h2_16k:0:h2 16 KiB req/s" "cpu_h2_16k:2:CPU/req 16 KiB (us)" \
    "idle_bytes:0:RSS/idle h2 conn (B)"
if [ -s "$RUN/invalid.txt" ]; then
    {
        echo "Invalid runs (h2load reported failed/errored requests, timeouts or non-2xx; left out of the medians):"
        sed 's/^/- /' "$RUN/invalid.txt"
    } | tee -a "$OUT/results.md"
fi
log "results: $OUT/results.md, $RESULTS, logs in $RUN"
