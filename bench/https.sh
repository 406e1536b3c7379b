#!/usr/bin/env bash
# bench/https.sh: HTTPS (HTTP/1.1 over TLS) reverse proxy benchmark. sluice (`https`
# listener), HAProxy (mode http, `bind ... ssl crt`) and nginx (`listen ... ssl`,
# proxy_pass with upstream keepalive) terminate TLS with the same ECDSA P-256 certificate
# and the same TLS settings (TLS 1.2 minimum, TLS 1.3 negotiated, Mozilla intermediate
# TLS 1.2 ciphers, OpenSSL's TLS 1.3 suites, each proxy's default session resumption) and
# talk clear HTTP/1.1 with keep-alive to the same origin (nginx serving static files). One
# worker/thread per proxy pinned to one CPU; wrk and the origin share the other. Every
# round measures every proxy in an order that rotates from round to round; the table
# gives median rates and the median of the per-round ratios to HAProxy:
#   ka64 / ka16k      keep-alive HTTPS requests per second, 64 B / 16 KiB bodies (wrk, CONNS
#                     connections), and the proxy's CPU time per request in each
#   conn (resumed)    requests per second with "Connection: close": one request per TLS
#                     connection. wrk keeps its SSL session across reconnects, so every
#                     connection but the first of each slot RESUMES the previous one's
#                     session (a TLS 1.3 PSK + ECDHE handshake, no certificate signature);
#                     the proxy's CPU time per connection
#   conn (full)       the same with a full handshake on every connection (ECDHE + ECDSA
#                     signature): wrk with an LD_PRELOAD shim that drops the SSL session
#                     before each reconnect; the proxy's CPU time per connection. The
#                     client does as much crypto per full handshake as the proxy, so on 2
#                     CPUs this rate is bounded by wrk's CPU; the CPU per connection is the
#                     proxy's own cost
#   idle              RSS growth per idle HTTPS keep-alive client connection (IDLE_CONNS
#                     TLS connections, each after its handshake and one request, held open
#                     from a Python client; measured in a fresh proxy process)
# Before measuring, each proxy must answer 200 over TLS (curl --cacert, /64 and /16k) and
# a Python client checks the TLS version, cipher and ALPN and whether it resumes a session.
# A wrk run that reports errors (non-2xx responses, socket errors) is invalid: its value is
# "invalid", left out of the medians, and listed under the table.
#
# Usage: bench/https.sh
# Knobs (environment): PROXIES="sluice haproxy nginx"  ROUNDS=3  SECONDS_PER_RUN=8
#   CONNS=64 (wrk connections)  IDLE_CONNS=1000  BASE_PORT=28400  SLUICE_BUILD=build
#   OUT=bench/out-https  PROXY_CPUS / LOAD_CPUS (taskset lists; CPU 0 / CPU 1 on 2 CPUs)
# Results: $OUT/results.md, $OUT/results.tsv; configs, certificates and logs in $OUT/run/.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-$REPO/bench/out-https}
RUN=$OUT/run
proxy_knobs
WORKERS=1
PROXIES=${PROXIES:-"sluice haproxy nginx"}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
CONNS=${CONNS:-64}
IDLE_CONNS=${IDLE_CONNS:-1000}
BASE_PORT=${BASE_PORT:-28400}
pick_cpus
for t in wrk curl python3 openssl cc taskset ss pgrep; do
    command -v "$t" >/dev/null || die "$t is missing: scripts/install-deps.sh bench"
done
[ -x "$HAPROXY" ] || die "haproxy is missing: scripts/install-deps.sh bench"
[ -x "$NGINX" ] || die "nginx is missing: scripts/install-deps.sh bench"
[ -x "$SLUICE" ] || die "missing $SLUICE (run make)"
rm -rf "$RUN"
mkdir -p "$RUN/certs"
C=$RUN/certs

ORIGIN_PORT=$BASE_PORT
declare -A FRONT=([sluice]=$((BASE_PORT + 1)) [haproxy]=$((BASE_PORT + 2)) [nginx]=$((BASE_PORT + 3)))
for port in "$ORIGIN_PORT" "${FRONT[@]}"; do
    port_listening "$port" && die "port $port is in use (set BASE_PORT)"
done

# ---------------------------------------------------------------------------------------
# One CA and an ECDSA P-256 leaf for bench.local and 127.0.0.1, used by every proxy.
make_bench_ec_cert "$C"

# wrk keeps its SSL session when it reconnects (SSL_shutdown, then SSL_clear, which keeps
# a cleanly shut down session), so its next handshake resumes. This shim drops the
# session in SSL_clear: every reconnection is then a full handshake.
cat >"$RUN/wrk_fullhs.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/ssl.h>
int SSL_clear(SSL *s)
{
    static int (*real)(SSL *);
    if (!real)
        real = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
    SSL_set_session(s, NULL);
    return real(s);
}
EOF
cc -shared -fPIC -O2 -o "$RUN/wrk_fullhs.so" "$RUN/wrk_fullhs.c" -ldl ||
    die "cannot build the wrk full-handshake shim (needs libssl-dev)"

# ---------------------------------------------------------------------------------------
# The origin: nginx serving /64, /16k, /1m with keep-alive, on the load CPU.
start_http_origin "$RUN/origin" "$ORIGIN_PORT"

# ---------------------------------------------------------------------------------------
# The proxies: http.sh's configurations (lib.sh) with TLS on the listener.
sluice_http_conf "${FRONT[sluice]}" "$ORIGIN_PORT" https "$(sluice_tls_block "$C" http/1.1)" \
    >"$RUN/sluice.yaml"
"$SLUICE" -t -c "$RUN/sluice.yaml" >"$RUN/sluice-check.log" 2>&1 ||
    die "sluice rejected $RUN/sluice.yaml: $(head -n 3 "$RUN/sluice-check.log")"
haproxy_http_conf "${FRONT[haproxy]}" "$ORIGIN_PORT" "$(haproxy_tls_bind "$C" http/1.1)" \
    "$(haproxy_tls_global)" >"$RUN/haproxy.cfg"
mkdir -p "$RUN/nginx/logs"
nginx_http_proxy_conf "$RUN/nginx" "${FRONT[nginx]}" "$ORIGIN_PORT" ssl "$(nginx_tls_server "$C")" \
    >"$RUN/nginx/nginx.conf"

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

# Checks that proxy P serves 200s over TLS (curl with the CA, /64 and /16k); logs the TLS
# version, cipher, ALPN and whether a second connection resumes the first one's session.
check_tls() {
    local p=$1 port=${FRONT[$1]} info
    check_200 "$p" "https://127.0.0.1:$port/64" 64 --cacert "$C/ca.pem"
    check_200 "$p" "https://127.0.0.1:$port/16k" 16384 --cacert "$C/ca.pem"
    info=$(python3 - "$port" "$C/ca.pem" <<'EOF'
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
ctx.minimum_version = ssl.TLSVersion.TLSv1_2
ctx.set_alpn_protocols(["http/1.1"])
def get(session=None):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1",
                        session=session)
    s.sendall(b"GET /64 HTTP/1.1\r\nHost: bench\r\n\r\n")
    got = b""
    while not (b"\r\n\r\n" in got and got.endswith(b"a" * 64)):
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("connection closed before the response")
        got += chunk
    if not got.startswith(b"HTTP/1.1 200"):
        sys.exit("status: " + got.split(b"\r\n")[0].decode())
    return s
a = get()
b = get(a.session)
print(f"{a.version()} {a.cipher()[0]} alpn={a.selected_alpn_protocol()} "
      f"resumption={'yes' if b.session_reused else 'no'}")
EOF
    ) || die "$p: TLS check failed"
    log "$p: 200 over TLS; $info"
    echo "$p $info" >>"$RUN/tls-check.txt"
}

# Runs wrk (wrk_rate) and prints its rate, or "invalid" (noted in $RUN/invalid.txt) when
# wrk reported errors. Usage: checked_rate P WHAT ROUND URL [WRK ARGS...]
checked_rate() {
    local p=$1 what=$2 round=$3 url=$4 logfile rate errors
    shift 4
    logfile=$RUN/$p-$what-$round.log
    rate=$(wrk_rate "$logfile" "$url" "$@")
    errors=$(wrk_errors "$logfile")
    if [ -n "$errors" ]; then
        echo "round $round, $p, $what: $errors (of $(grep -o '[0-9]* requests in' "$logfile" || echo '?'))" \
            >>"$RUN/invalid.txt"
        log "INVALID: round $round, $p, $what: $errors"
        echo invalid
    else
        echo "${rate:-NA}"
    fi
}
num_or_empty() { case $1 in invalid | NA) echo "" ;; *) echo "$1" ;; esac; }

RESULTS=$OUT/results.tsv
printf 'round\tcontender\tka64\tka16k\tcpu_ka64\tcpu_ka16k\tconn_resumed\tcpu_conn_resumed\tconn_full\tcpu_conn_full\tidle_bytes\n' >"$RESULTS"
: >"$RUN/invalid.txt"
: >"$RUN/tls-check.txt"
read -r -a CONTENDERS <<<"$PROXIES"
for round in $(seq "$ROUNDS"); do
    rotate_order "$round" "${CONTENDERS[@]}"
    for p in "${ORDER[@]}"; do
        log "round $round/$ROUNDS: $p"
        start_contender "$p"
        pid=$LAST_PID
        [ "$round" -gt 1 ] || check_tls "$p"
        url=https://127.0.0.1:${FRONT[$p]}
        wrk_rate "$RUN/$p-warm-$round.log" "$url/64" -c"$CONNS" -d2s >/dev/null
        t0=$(cpu_ticks "$pid")
        ka64=$(checked_rate "$p" ka64 "$round" "$url/64" -c"$CONNS")
        t1=$(cpu_ticks "$pid")
        ka16k=$(checked_rate "$p" ka16k "$round" "$url/16k" -c"$CONNS")
        t2=$(cpu_ticks "$pid")
        res=$(checked_rate "$p" conn-resumed "$round" "$url/64" -c"$CONNS" -H "Connection: close")
        t3=$(cpu_ticks "$pid")
        full=$(WRK_PRELOAD=$RUN/wrk_fullhs.so checked_rate "$p" conn-full "$round" "$url/64" \
            -c"$CONNS" -H "Connection: close")
        t4=$(cpu_ticks "$pid")
        cpu64=$(cpu_us_per "$t0" "$t1" "$(num_or_empty "$ka64")")
        cpu16k=$(cpu_us_per "$t1" "$t2" "$(num_or_empty "$ka16k")")
        cpures=$(cpu_us_per "$t2" "$t3" "$(num_or_empty "$res")")
        cpufull=$(cpu_us_per "$t3" "$t4" "$(num_or_empty "$full")")
        # idle memory in a fresh process: memory freed by the runs above would be reused
        stop_pid "$pid"
        start_contender "$p"
        pid=$LAST_PID
        idle=$(idle_conn_bytes "$pid" "${FRONT[$p]}" "$IDLE_CONNS" tls || echo NA)
        stop_pid "$pid"
        log "$p: ka64 $ka64/s ($cpu64 us/req), ka16k $ka16k/s ($cpu16k us/req), resumed conn $res/s ($cpures us/conn), full conn $full/s ($cpufull us/conn), $idle B/idle TLS conn"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$p" "$ka64" "$ka16k" "$cpu64" \
            "$cpu16k" "$res" "$cpures" "$full" "$cpufull" "$idle" >>"$RESULTS"
        sleep 1
    done
done

cleanup

META="HTTPS, HTTP/1.1 over TLS: $(awk '{ $1 = $1 ":"; print }' "$RUN/tls-check.txt" | paste -sd ';' | sed 's/;/; /g'). \
ECDSA P-256 certificate, TLS 1.2 minimum; session resumption as each proxy does by default \
(tickets: sluice 1 per TLS 1.3 handshake; HAProxy and nginx OpenSSL's 2; no nginx session \
cache). One worker/thread per proxy pinned to CPU $PROXY_CPUS; wrk (1 thread, $CONNS \
connections) and the origin (nginx, 1 worker, static files, clear HTTP/1.1 keep-alive) on \
CPU $LOAD_CPUS ($ncpu CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)). \
$ROUNDS round(s) of ${SECONDS_PER_RUN}s runs, contenders in rotating order; ratios are \
medians of per-round ratios (CPU and memory: lower is better). conn (resumed): wrk with \
Connection: close, each connection resuming the previous one's TLS 1.3 session; conn \
(full): the same with a full handshake each (LD_PRELOAD shim), bounded by wrk's own CPU. \
Idle: $IDLE_CONNS TLS keep-alive connections. Kernel $(uname -r); $("$HAPROXY" -v | head -n1 | cut -d' ' -f1-3); \
$("$NGINX" -v 2>&1 | cut -d' ' -f3); $(openssl version | cut -d' ' -f1-2); sluice $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')."
median_table "$RESULTS" "$OUT/results.md" "$META" \
    "sluice=sluice (https listener)|haproxy=HAProxy 2.6 (mode http, ssl)|nginx=nginx (listen ssl, upstream keepalive)" \
    "ka64:0:ka64 req/s" "cpu_ka64:2:CPU/req ka64 (us)" \
    "ka16k:0:ka16k req/s" "cpu_ka16k:2:CPU/req ka16k (us)" \
    "conn_resumed:0:conn/s resumed" "cpu_conn_resumed:0:CPU/conn resumed (us)" \
    "conn_full:0:conn/s full hs" "cpu_conn_full:0:CPU/conn full hs (us)" \
    "idle_bytes:0:RSS/idle TLS conn (B)"
if [ -s "$RUN/invalid.txt" ]; then
    {
        echo "Invalid runs (wrk reported errors; left out of the medians):"
        sed 's/^/- /' "$RUN/invalid.txt"
    } | tee -a "$OUT/results.md"
fi
log "results: $OUT/results.md, $RESULTS, logs in $RUN"
