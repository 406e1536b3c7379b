# shellcheck shell=bash
# bench/lib.sh: helpers shared by the benchmark scripts (l4.sh, tls.sh, testssl.sh, http.sh,
# https.sh, h2.sh, http_routes.sh), which
# source it first thing: `. "$(dirname "$0")/lib.sh"`. Sourcing it sets PIDS=(), CLK_TCK and
# the EXIT / INT / TERM traps; everything else is a function. Not meant to be run.
#
# Logging goes to stderr tagged with the calling script's name ("[l4.sh] ..."). die exits
# with BENCH_DIE_STATUS (1; a script that wants another status sets it after sourcing).

BENCH_NAME=${0##*/}
BENCH_DIE_STATUS=1

log() { printf '[%s] %s\n' "$BENCH_NAME" "$*" >&2; }
die() {
    log "error: $*"
    exit "$BENCH_DIE_STATUS"
}

# Sets ncpu, and PROXY_CPUS / LOAD_CPUS (taskset lists) where the environment left them
# empty: halves of the CPUs on 4 or more, CPU 0 / CPU 1 on 2 or 3, CPU 0 for both on 1.
pick_cpus() {
    ncpu=$(nproc)
    if [ -z "${PROXY_CPUS:-}" ] || [ -z "${LOAD_CPUS:-}" ]; then
        if [ "$ncpu" -ge 4 ]; then
            local half=$((ncpu / 2))
            PROXY_CPUS=${PROXY_CPUS:-0-$((half - 1))}
            LOAD_CPUS=${LOAD_CPUS:-$half-$((ncpu - 1))}
        elif [ "$ncpu" -ge 2 ]; then
            PROXY_CPUS=${PROXY_CPUS:-0}
            LOAD_CPUS=${LOAD_CPUS:-1}
        else
            PROXY_CPUS=${PROXY_CPUS:-0}
            LOAD_CPUS=${LOAD_CPUS:-0}
        fi
    fi
}

# Sets the knobs the proxy benchmarks share, from the environment or their defaults:
# SLUICE_BUILD ($REPO/build; REPO must be set), SLUICE and DEMO in it, HAPROXY, NGINX,
# NGINX_STREAM (nginx's stream module) and WORKERS (2, per proxy).
# shellcheck disable=SC2034 # read by the calling script
proxy_knobs() {
    SLUICE_BUILD=${SLUICE_BUILD:-$REPO/build}
    SLUICE=$SLUICE_BUILD/sluice
    DEMO=$SLUICE_BUILD/sluice-demo
    HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
    NGINX=${NGINX:-/usr/sbin/nginx}
    NGINX_STREAM=${NGINX_STREAM:-/usr/lib/nginx/modules/ngx_stream_module.so}
    WORKERS=${WORKERS:-2}
}

# ---------------------------------------------------------------------------------------
# Process bookkeeping: every pid we start goes in PIDS; cleanup stops them (and their
# children, e.g. nginx workers) by pid, never by name, newest first.
PIDS=()

# Stops PID: TERM, up to 5 s for it to exit, then KILL for it and the children it had.
stop_pid() {
    local pid=$1 kids i k
    kill -0 "$pid" 2>/dev/null || return 0
    kids=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
    PIDS=()
    if [ -n "${PROXY_CGROUP:-}" ]; then rmdir "$PROXY_CGROUP" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs a command pinned to CPUS in the background, output to LOGFILE; sets LAST_PID.
# Usage: start_bg CPUS LOGFILE COMMAND [ARGS...]
start_bg() {
    local cpus=$1 logfile=$2
    shift 2
    taskset -c "$cpus" "$@" >"$logfile" 2>&1 &
    # shellcheck disable=SC2034 # read by the calling script
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# ---------------------------------------------------------------------------------------
# A CPU quota for the proxies. On a small machine the clients are the bottleneck: each
# s_time client does as much crypto per handshake as the proxy, so every proxy shows the
# clients' rate. Capping every proxy at the same share of one CPU (a cgroup) makes the
# proxy the bottleneck and its rate a measure of its own cost.

# Creates a cgroup that allows QUOTA percent of one CPU (cgroup v2 cpu.max, else v1
# cpu.cfs_quota_us) and sets PROXY_CGROUP to its directory; with QUOTA 0, or when no
# writable cgroup with a cpu controller exists (not root, a container), leaves it empty
# and says so. The EXIT trap removes the group. Usage: proxy_cpu_quota QUOTA
proxy_cpu_quota() {
    local pct=$1 period=20000 dir
    PROXY_CGROUP=
    [ "$pct" -gt 0 ] 2>/dev/null || return 0
    local quota=$((period * pct / 100))
    if grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
        dir=/sys/fs/cgroup/sluice-bench-$$
        if mkdir "$dir" 2>/dev/null && echo "$quota $period" >"$dir/cpu.max" 2>/dev/null; then
            PROXY_CGROUP=$dir
        fi
    elif [ -d /sys/fs/cgroup/cpu ]; then
        dir=/sys/fs/cgroup/cpu/sluice-bench-$$
        if mkdir "$dir" 2>/dev/null && echo "$period" >"$dir/cpu.cfs_period_us" 2>/dev/null &&
            echo "$quota" >"$dir/cpu.cfs_quota_us" 2>/dev/null; then
            PROXY_CGROUP=$dir
        fi
    fi
    if [ -z "$PROXY_CGROUP" ]; then
        rmdir "$dir" 2>/dev/null || true
        log "warning: cannot create a cgroup with a CPU quota; proxies run uncapped"
    fi
}

# Like start_bg on PROXY_CPUS, inside PROXY_CGROUP when there is one (the process joins
# the group before exec, so all its threads and children are capped from the start).
# Usage: start_proxy LOGFILE COMMAND [ARGS...]
start_proxy() {
    local logfile=$1
    shift
    if [ -n "${PROXY_CGROUP:-}" ]; then
        # shellcheck disable=SC2016 # expanded by the inner shell
        start_bg "$PROXY_CPUS" "$logfile" sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' \
            "$PROXY_CGROUP" "$@"
    else
        start_bg "$PROXY_CPUS" "$logfile" "$@"
    fi
}

# Checks HAProxy configuration CFG, then runs HAProxy on it in the foreground on PROXY_CPUS,
# output to $RUN/P.log; sets LAST_PID. Usage: run_haproxy P CFG
run_haproxy() {
    "$HAPROXY" -c -q -f "$2" || die "haproxy rejected $2"
    start_proxy "$RUN/$1.log" "$HAPROXY" -db -f "$2"
}

# Prints the top of an nginx.conf for a proxy run from DIR: the stream module, WORKERS
# worker processes, foreground, pid and error log in DIR. Usage: nginx_conf_head DIR
nginx_conf_head() {
    printf 'load_module %s;\nworker_processes %s;\ndaemon off;\npid %s/nginx.pid;\n' \
        "$NGINX_STREAM" "$WORKERS" "$1"
    printf 'error_log %s/logs/error.log warn;\n' "$1"
}

# Checks DIR/nginx.conf (prefix DIR, error log DIR/logs/error.log), then runs nginx on it
# (daemon off in the file) on PROXY_CPUS, output to $RUN/P.log; sets LAST_PID.
# Usage: run_nginx P DIR
run_nginx() {
    local p=$1 dir=$2
    "$NGINX" -t -q -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" ||
        die "nginx rejected $dir/nginx.conf"
    start_proxy "$RUN/$p.log" "$NGINX" -p "$dir" -e "$dir/logs/error.log" \
        -c "$dir/nginx.conf"
}

# True when something listens on TCP port $1.
port_listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# Waits up to 10 s for PORT to listen; dies if PID (named WHAT) exits first or time runs out.
wait_port() {
    local port=$1 pid=$2 what=$3 i
    for i in $(seq 200); do
        port_listening "$port" && return 0
        kill -0 "$pid" 2>/dev/null || die "$what exited at start (see $RUN)"
        sleep 0.05
    done
    die "$what is not listening on $port after 10s"
}

# Prints the sum of AWK_PROG's output over /proc/<p>/FILE for PID and its children
# (a missing or empty value counts 0).
sum_proc_tree() {
    local pid=$1 file=$2 prog=$3 total=0 p v
    for p in $pid $(pgrep -P "$pid" 2>/dev/null || true); do
        v=$(awk "$prog" "/proc/$p/$file" 2>/dev/null || echo 0)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# CPU time (clock ticks, user + system) of a pid and its children.
# shellcheck disable=SC2034 # read by the calling script
CLK_TCK=$(getconf CLK_TCK)
# shellcheck disable=SC2016 # an awk program
cpu_ticks() { sum_proc_tree "$1" stat '{print $14 + $15}'; }

# ---------------------------------------------------------------------------------------
# Certificates

# TLS 1.2 cipher list of the TLS benchmarks (Mozilla "intermediate", sluice's default),
# given to HAProxy and nginx; TLS 1.3 suites stay OpenSSL's defaults everywhere.
# shellcheck disable=SC2034 # read by the calling script
TLS12_CIPHERS="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"

# Runs openssl quietly; on failure runs it again with its output shown, then dies.
ossl() { openssl "$@" >/dev/null 2>&1 || { openssl "$@"; die "openssl $1 failed"; }; }

# Makes a self-signed ECDSA P-256 CA, DIR/ca.key and DIR/ca.pem, valid 400 days.
# Usage: make_ca DIR SUBJECT KEY_USAGE (e.g. "keyCertSign" or "keyCertSign,cRLSign")
make_ca() {
    ossl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/ca.key" \
        -out "$1/ca.pem" -days 400 -subj "$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,$3"
}

# Makes leaf key DIR/KIND.key (KIND rsa: RSA-2048, else ECDSA P-256) and DIR/KIND.pem signed
# by DIR/ca.pem for 365 days, with the extensions in DIR/KIND.ext (written by the caller).
# Usage: make_leaf DIR KIND SUBJECT
make_leaf() {
    local dir=$1 kind=$2 subj=$3
    if [ "$kind" = rsa ]; then
        ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/$kind.key"
    else
        ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$kind.key"
    fi
    ossl req -new -key "$dir/$kind.key" -subj "$subj" -out "$dir/$kind.csr"
    ossl x509 -req -in "$dir/$kind.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 365 -sha256 -extfile "$dir/$kind.ext" -out "$dir/$kind.pem"
}

# The certificate of the HTTPS benchmarks (https.sh, h2.sh): a throwaway CA (DIR/ca.pem) and
# an ECDSA P-256 leaf for bench.local and 127.0.0.1 (DIR/ec.pem, DIR/ec.key), plus
# DIR/ec.bundle (cert + key, HAProxy's crt). Usage: make_bench_ec_cert DIR
make_bench_ec_cert() {
    make_ca "$1" "/CN=sluice bench CA" keyCertSign
    printf 'basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:bench.local,IP:127.0.0.1\n' >"$1/ec.ext"
    make_leaf "$1" ec "/CN=bench.local"
    cat "$1/ec.pem" "$1/ec.key" >"$1/ec.bundle"
}

# The TLS settings of the HTTPS benchmarks, the same for every proxy: the certificate of
# make_bench_ec_cert DIR, TLS 1.2 minimum, TLS12_CIPHERS for TLS 1.2 (sluice's default),
# OpenSSL's TLS 1.3 suites, ALPN as given (comma-separated, server's order).
# Prints the tls block of a sluice listener (sluice_http_conf's LISTENER_EXTRA).
# Usage: sluice_tls_block DIR ALPN
sluice_tls_block() {
    local alpn=${2//,/, }
    printf '    tls:\n      certificates: [{cert: %s/ec.pem, key: %s/ec.key}]\n' "$1" "$1"
    printf '      min_version: "1.2"\n      alpn: [%s]\n' "$alpn"
}
# Prints HAProxy's bind options (haproxy_http_conf's BIND_EXTRA). Usage: haproxy_tls_bind DIR ALPN
haproxy_tls_bind() { printf 'ssl crt %s/ec.bundle alpn %s' "$1" "$2"; }
# Prints HAProxy's global TLS lines (haproxy_http_conf's GLOBAL_EXTRA).
haproxy_tls_global() {
    printf '    ssl-default-bind-ciphers %s\n    ssl-default-bind-options ssl-min-ver TLSv1.2\n' \
        "$TLS12_CIPHERS"
}
# Prints nginx's server lines (nginx_http_proxy_conf's SERVER_EXTRA). nginx 1.22's default
# ssl_protocols lack TLSv1.3: both are named. Usage: nginx_tls_server DIR
nginx_tls_server() {
    printf '        ssl_certificate %s/ec.pem;\n        ssl_certificate_key %s/ec.key;\n' "$1" "$1"
    printf '        ssl_protocols TLSv1.2 TLSv1.3;\n        ssl_ciphers %s;\n' "$TLS12_CIPHERS"
}

# Starts the HTTP origin of the HTTP benchmarks on LOAD_CPUS: nginx (one worker, keep-alive,
# sendfile) serving /64, /16k and /1m (bodies of that many bytes) from DIR on 127.0.0.1:PORT.
# Usage: start_http_origin DIR PORT
start_http_origin() {
    local dir=$1 port=$2
    mkdir -p "$dir/logs" "$dir/www"
    head -c 64 /dev/zero | tr '\0' 'a' >"$dir/www/64"
    head -c 16384 /dev/zero | tr '\0' 'b' >"$dir/www/16k"
    head -c 1048576 /dev/zero | tr '\0' 'c' >"$dir/www/1m"
    cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    sendfile on;
    server {
        listen 127.0.0.1:$port reuseport backlog=4096;
        root $dir/www;
        default_type text/plain;
    }
}
EOF
    "$NGINX" -t -q -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" ||
        die "nginx rejected the origin configuration"
    start_bg "$LOAD_CPUS" "$dir.log" "$NGINX" -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf"
    wait_port "$port" "$LAST_PID" origin
}

# ---------------------------------------------------------------------------------------
# HTTP proxy benchmarks (http.sh, https.sh): configurations, wrk runs, idle memory, tables.
# They use RUN, LOAD_CPUS, SECONDS_PER_RUN and CONNS of the calling script.

# Prints a sluice configuration: one worker, access log off, listener "front" on
# 127.0.0.1:PORT of PROTOCOL (http or https; keep-alive idle 300s) to backend "origin"
# (127.0.0.1:ORIGIN_PORT, keep-alive pool of POOL_SIZE, default 256). LISTENER_EXTRA (indented lines, e.g.
# a tls block) is appended to the listener. Usage: sluice_http_conf PORT ORIGIN_PORT
# [PROTOCOL [LISTENER_EXTRA]]
sluice_http_conf() {
    cat <<EOF
workers: 1
max_connections: 100000
log: {access: off, level: warn}
listeners:
  - name: front
    bind: 127.0.0.1:$1
    protocol: ${3:-http}
    idle_timeout: 300s
    backend: origin
${4:-}
backends:
  - name: origin
    protocol: http
    servers: [127.0.0.1:$2]
    keepalive: {max_idle: ${POOL_SIZE:-256}, idle_timeout: 300s}
EOF
}

# Prints a HAProxy configuration: one thread, mode http, keep-alive both sides (300s),
# http-reuse always, frontend on 127.0.0.1:PORT (BIND_EXTRA appended to the bind line,
# e.g. "ssl crt ..."), GLOBAL_EXTRA (indented lines) in the global section.
# Usage: haproxy_http_conf PORT ORIGIN_PORT [BIND_EXTRA [GLOBAL_EXTRA]]
haproxy_http_conf() {
    cat <<EOF
global
    nbthread 1
    maxconn 9000
${4:-}
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    option http-keep-alive
    http-reuse always
frontend front
    bind 127.0.0.1:$1 ${3:-}
    default_backend origin
backend origin
    server o1 127.0.0.1:$2
EOF
}

# Prints an nginx.conf for a proxy run from DIR: one worker, keep-alive to the client
# (300s) and an upstream keepalive pool of POOL_SIZE (default 256), proxy_pass of everything; LISTEN_EXTRA is
# appended to the listen directive (e.g. "ssl"), SERVER_EXTRA (lines) to the server block.
# Usage: nginx_http_proxy_conf DIR PORT ORIGIN_PORT [LISTEN_EXTRA [SERVER_EXTRA]]
nginx_http_proxy_conf() {
    cat <<EOF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
worker_rlimit_nofile 19000;
events { worker_connections 9000; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    upstream origin { server 127.0.0.1:$3; keepalive ${POOL_SIZE:-256}; }
    server {
        listen 127.0.0.1:$2 backlog=4096 ${4:-};
${5:-}
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }
    }
}
EOF
}

# Sets ORDER to ITEMS rotated so that round R (from 1) starts with item R.
# Usage: rotate_order R ITEMS...
rotate_order() {
    local r=$1 i
    shift
    ORDER=()
    for i in $(seq 0 $(($# - 1))); do
        local k=$(((i + r - 1) % $# + 1))
        ORDER+=("${!k}")
    done
}

# Prints the errors wrk reported in LOGFILE ("non-2xx N", "socket: connect A, read B, ..."),
# nothing when there were none. Usage: wrk_errors LOGFILE
wrk_errors() {
    sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/non-2xx \1;/p; s/.*Socket errors: \(.*\)/socket errors: \1;/p' \
        "$1" | tr '\n' ' ' | sed 's/ *$//'
}

# Runs wrk (one thread, SECONDS_PER_RUN unless ARGS say otherwise) on LOAD_CPUS, output
# to LOGFILE, with LD_PRELOAD=$WRK_PRELOAD when that is set; logs wrk's errors; prints its
# requests per second (empty if none). Usage: wrk_rate LOGFILE URL [WRK ARGS...]
wrk_rate() {
    local logfile=$1 url=$2 errors pre=()
    shift 2
    [ -z "${WRK_PRELOAD:-}" ] || pre=(env LD_PRELOAD="$WRK_PRELOAD")
    taskset -c "$LOAD_CPUS" "${pre[@]}" wrk -t1 -d"${SECONDS_PER_RUN}s" "$@" "$url" >"$logfile" 2>&1 || true
    errors=$(wrk_errors "$logfile")
    [ -z "$errors" ] || log "$(basename "$logfile"): errors: $errors"
    sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$logfile" | head -n 1
}

# Prints the proxy's CPU time (microseconds) per operation from two cpu_ticks readings,
# for RATE operations per second over SECONDS_PER_RUN; NA without a rate.
# Usage: cpu_us_per TICKS_BEFORE TICKS_AFTER RATE
cpu_us_per() {
    python3 -c "import sys; t0, t1, r = sys.argv[1:]
print(round((float(t1) - float(t0)) * 1e6 / $CLK_TCK / (float(r) * $SECONDS_PER_RUN), 2) if r else 'NA')" \
        "$1" "$2" "${3:-}"
}

# Prints the RSS growth per idle keep-alive client connection (bytes) of process PID and
# its children: N connections to 127.0.0.1:PORT each make one request (GET /64, Host:
# bench) and stay open; RSS (sum of VmRSS) before them (after one warm-up connection) and
# 1 s after. With "tls", each connection is TLS (handshake, any certificate accepted,
# ALPN http/1.1). With "h2", each is TLS with ALPN h2 (which must be chosen) and HTTP/2:
# the client preface and SETTINGS, one GET /64 stream to its end (200, 64 bytes), then
# nothing; this needs the Python h2 library (python3-h2), so it runs with H2_PYTHON
# (default /usr/bin/python3, Debian's, which has it). Usage: idle_conn_bytes PID PORT N [tls|h2]
idle_conn_bytes() {
    local py=python3
    [ "${4:-}" != h2 ] || py=${H2_PYTHON:-/usr/bin/python3}
    "$py" - "$@" <<'EOF'
import os, socket, ssl, sys, time
pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
mode = sys.argv[4] if len(sys.argv) > 4 else ""
ctx = None
if mode in ("tls", "h2"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"] if mode == "h2" else ["http/1.1"])
def tree(p):
    out = [p]
    for t in os.listdir(f"/proc/{p}/task"):
        try:
            kids = open(f"/proc/{p}/task/{t}/children").read().split()
        except OSError:
            kids = []
        for k in kids:
            out += tree(int(k))
    return out
def rss():
    total = 0
    for p in tree(pid):
        for line in open(f"/proc/{p}/status"):
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total
def connect_h2(s):
    import h2.config, h2.connection, h2.events
    if s.selected_alpn_protocol() != "h2":
        raise SystemExit(f"ALPN chose {s.selected_alpn_protocol()}, not h2")
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    c.send_headers(1, [(":method", "GET"), (":scheme", "https"), (":authority", "bench.local"),
                       (":path", "/64")], end_stream=True)
    s.sendall(c.data_to_send())
    status, body, ended = None, 0, False
    while not ended:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("connection closed")
        for ev in c.receive_data(chunk):
            if isinstance(ev, h2.events.ResponseReceived):
                status = dict(ev.headers).get(b":status")
            elif isinstance(ev, h2.events.DataReceived):
                body += len(ev.data)
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                ended = True
            elif isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                raise SystemExit(f"h2: {ev}")
        out = c.data_to_send()
        if out:
            s.sendall(out)
    if status != b"200" or body != 64:
        raise SystemExit(f"h2: status {status}, {body} body bytes")
    return (s, c)
def connect():
    s = socket.create_connection(("127.0.0.1", port))
    if ctx:
        s = ctx.wrap_socket(s, server_hostname="bench.local")
    if mode == "h2":
        return connect_h2(s)
    s.sendall(b"GET /64 HTTP/1.1\r\nHost: bench\r\n\r\n")
    got = b""
    while not (b"\r\n\r\n" in got and got.endswith(b"a" * 64)):
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("connection closed")
        got += chunk
    return s
held = [connect()]
time.sleep(0.5)
before = rss()
for _ in range(n):
    held.append(connect())
time.sleep(1)
print(round((rss() - before) / n))
EOF
}

# Writes and prints the markdown table of an HTTP benchmark from RESULTS (TSV: round,
# contender, one column per measurement; a value that is not a number is left out of the
# medians: "pending" when sluice cannot run the configuration, "invalid" when wrk reported
# errors). Per column: the median over the rounds and the median of the per-round ratios
# to haproxy. COLUMN is KEY:DECIMALS:LABEL (decimals shown of the median); NAMES
# is "contender=name|contender=name...". Usage: median_table RESULTS MD META NAMES COLUMN...
median_table() {
    python3 - "$@" <<'EOF'
import csv, statistics, sys
tsv, md, meta, names = sys.argv[1:5]
cols = [c.split(":", 2) for c in sys.argv[5:]]
names = dict(kv.split("=", 1) for kv in names.split("|") if kv)
rows = list(csv.DictReader(open(tsv), delimiter="\t"))
def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None
by_round, order = {}, []
for r in rows:
    by_round.setdefault(r["round"], {})[r["contender"]] = r
    if r["contender"] not in order:
        order.append(r["contender"])
def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
def value(p, k):
    raw = [rr[p][k] for rr in by_round.values() if p in rr]
    vals = [num(v) for v in raw]
    if all(v is None for v in vals) and "pending" in raw:
        return "pending"
    m = med(vals)
    bad = raw.count("invalid")
    return m, bad
def ratio(p, k):
    rs = []
    for rr in by_round.values():
        a, b = num(rr.get(p, {}).get(k)), num(rr.get("haproxy", {}).get(k))
        if a is not None and b:
            rs.append(a / b)
    m = med(rs)
    return "n/a" if m is None else f"{m:.2f}x"
head = ["| contender | " + " | ".join(f"{label} | vs HAProxy" for _, _, label in cols) + " |",
        "|---|" + "---:|" * (2 * len(cols))]
for p in order:
    cells = [names.get(p, p)]
    for k, fmt, _ in cols:
        v = value(p, k)
        if isinstance(v, str):
            cells += [v, v]
            continue
        m, bad = v
        text = "n/a" if m is None else f"{m:.{int(fmt)}f}"
        if bad:
            text += f" ({bad} invalid)"
        cells += [text, ratio(p, k)]
    head.append("| " + " | ".join(cells) + " |")
text = "\n".join(head) + "\n\n" + meta + "\n"
open(md, "w").write(text)
print(text)
EOF
}

# Checks that URL answers 200 with a body of SIZE bytes (curl, extra CURL ARGS such as
# --cacert); dies otherwise. Prints curl's "http_version tls_version" details to the log.
# Usage: check_200 WHAT URL SIZE [CURL ARGS...]
check_200() {
    local what=$1 url=$2 size=$3 got
    shift 3
    got=$(curl -sS -o /dev/null --max-time 5 -w '%{http_code} %{size_download}' "$@" "$url" 2>&1) ||
        die "$what: $url failed: $got"
    [ "$got" = "200 $size" ] || die "$what: $url answered '$got', expected '200 $size'"
}
