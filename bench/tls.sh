#!/usr/bin/env bash
# bench/tls.sh: TLS termination benchmark. sluice (`tls` listener), HAProxy 2.6 (`bind ...
# ssl crt`, mode tcp) and nginx 1.22 (stream module, `listen ... ssl`) terminate TLS with
# the same certificates and hand the clear stream to the same backends, with the same
# worker count and the same CPU pinning, in one run. Prints a markdown table:
#   full hs/s     new TLS 1.3 connections per second, ECDSA P-256 and RSA-2048 certificates
#                 (openssl s_time -new -www /: handshake plus one HTTP/1.0 request answered
#                 by the backend through the proxy; CONC clients at once, HS_SECONDS each)
#   resumed hs/s  TLS 1.2 handshakes resuming a session ticket (openssl s_time -reuse;
#                 s_time cannot resume TLS 1.3: it never reads the post-handshake ticket)
#   upload MB/s   one TLS 1.3 connection (TLS_AES_256_GCM_SHA384) pushing BULK_MIB MiB
#                 through the proxy to a sink backend (the proxy decrypts)
#   download MB/s one TLS 1.3 connection reading BULK_MIB MiB that the backend sends
#                 through the proxy (the proxy encrypts)
#   CPU           proxy CPU time per full ECDSA and per full RSA handshake, and per GiB of
#                 bulk data (both bulk directions together)
# with the ratio to HAProxy for each. Medians over ROUNDS interleaved rounds.
#
# Every proxy runs capped at PROXY_CPU_QUOTA percent of one CPU (a cgroup, the same cap for
# each), so that the rates measure the proxy: uncapped on a small machine, the clients
# (which do as much crypto per handshake as the server) are the bottleneck and every proxy
# shows their rate. PROXY_CPU_QUOTA=0 runs uncapped.
#
# Usage: bench/tls.sh
#        MODE=paired bench/tls.sh: CPU per full handshake only, every proxy measured in
#        each round in rotating order, uncapped by default; medians of per-round ratios
# Knobs: PROXIES="sluice haproxy nginx" WORKERS=2 PROXY_CPU_QUOTA=30 PROXY_CPUS/LOAD_CPUS
#   (taskset lists; default 0 / 1 on 2 CPUs, halves on more) HS_SECONDS=5 CONC=4
#   BULK_MIB=1024 ROUNDS=3 BASE_PORT=28000 SLUICE_BUILD=build OUT=bench/out/tls
# Results: $OUT/results.md, $OUT/results.tsv; configs and logs in $OUT/run/.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-$REPO/bench/out/tls}
RUN=$OUT/run
proxy_knobs
PROXIES=${PROXIES:-"sluice haproxy nginx"}
HS_SECONDS=${HS_SECONDS:-5}
CONC=${CONC:-4}
BULK_MIB=${BULK_MIB:-1024}
ROUNDS=${ROUNDS:-3}
BASE_PORT=${BASE_PORT:-28000}
CIPHERS=$TLS12_CIPHERS

pick_cpus
MODE=${MODE:-rounds}
case $MODE in
rounds) PROXY_CPU_QUOTA=${PROXY_CPU_QUOTA:-30} ;;
paired) PROXY_CPU_QUOTA=${PROXY_CPU_QUOTA:-0} ;;
*) die "MODE must be rounds or paired" ;;
esac
proxy_cpu_quota "$PROXY_CPU_QUOTA"
CAP_TEXT="no CPU cap"
[ -z "$PROXY_CGROUP" ] || CAP_TEXT="capped at $PROXY_CPU_QUOTA% of one CPU"

# ---------------------------------------------------------------------------------------
for t in taskset ss pgrep python3 openssl; do
    command -v "$t" >/dev/null || die "missing $t"
done
if [ ! -x "$SLUICE" ] || [ ! -x "$DEMO" ]; then die "missing $SLUICE or $DEMO (run make)"; fi
mkdir -p "$OUT" "$RUN/certs"
rm -rf "${RUN:?}"/*
mkdir -p "$RUN/certs"
C=$RUN/certs

# Certificates: one CA, an ECDSA P-256 and an RSA-2048 leaf for bench.local.
make_ca "$C" "/CN=sluice bench CA" keyCertSign
for kind in ec rsa; do
    printf 'basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:bench.local\n' >"$C/$kind.ext"
    make_leaf "$C" "$kind" "/CN=bench.local"
    cat "$C/$kind.pem" "$C/$kind.key" >"$C/$kind.bundle" # HAProxy's crt: cert + key
done

# Ports: echo backend BASE, sink backend BASE+1; per proxy i: ECDSA listener BASE+10+3i,
# RSA listener BASE+11+3i (both to echo), bulk listener BASE+12+3i (ECDSA, to the sink).
ECHO_PORT=$BASE_PORT
SINK_PORT=$((BASE_PORT + 1))
declare -A P_EC P_RSA P_BULK
idx=0
for p in $PROXIES; do
    P_EC[$p]=$((BASE_PORT + 10 + 3 * idx))
    P_RSA[$p]=$((BASE_PORT + 11 + 3 * idx))
    P_BULK[$p]=$((BASE_PORT + 12 + 3 * idx))
    for port in "${P_EC[$p]}" "${P_RSA[$p]}" "${P_BULK[$p]}"; do
        port_listening "$port" && die "port $port is in use (set BASE_PORT)"
    done
    idx=$((idx + 1))
done

log "CPUs: $ncpu; proxies on $PROXY_CPUS ($CAP_TEXT), clients and backends on $LOAD_CPUS; workers $WORKERS"
# Behind the handshake listeners: an HTTP server, so that each s_time connection makes
# one request through the proxy (`-www /`, HTTP/1.0: the server answers and closes). Every
# proxy then really connects to the backend; with a bare handshake a client that closes
# at once lets a proxy skip the backend connection (HAProxy does), which flatters it.
start_bg "$LOAD_CPUS" "$RUN/echo.log" "$DEMO" --listen "127.0.0.1:$ECHO_PORT" --mode http
wait_port "$ECHO_PORT" "$LAST_PID" sluice-demo
# The bulk backend: the client's first line says "up" (read and drop everything until
# EOF) or "down N" (send N MiB, then close).
cat >"$RUN/sink.py" <<'EOF'
import socket, sys, threading
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(64)
chunk = memoryview(b"\x5a" * (1 << 20))
def serve(s):
    f = s.makefile("rb")
    words = f.readline().split()
    if words and words[0] == b"down":
        for _ in range(int(words[1])):
            s.sendall(chunk)
    else:
        buf = bytearray(1 << 20)
        while f.readinto(buf):
            pass
    s.close()
while True:
    s, _ = l.accept()
    threading.Thread(target=serve, args=(s,), daemon=True).start()
EOF
start_bg "$LOAD_CPUS" "$RUN/sink.log" python3 "$RUN/sink.py" "$SINK_PORT"
wait_port "$SINK_PORT" "$LAST_PID" sink

# ---------------------------------------------------------------------------------------
# Proxies: the same certificates, TLS 1.2+, Mozilla intermediate ciphers, session tickets.

start_sluice() {
    local p=$1 cfg=$RUN/sluice.yaml
    cat >"$cfg" <<EOF
workers: $WORKERS
log: {access: "off", level: warn}
listeners:
  - {name: ec, bind: "127.0.0.1:${P_EC[$p]}", protocol: tls, backend: echo,
     tls: {certificates: [{cert: certs/ec.pem, key: certs/ec.key}]}}
  - {name: rsa, bind: "127.0.0.1:${P_RSA[$p]}", protocol: tls, backend: echo,
     tls: {certificates: [{cert: certs/rsa.pem, key: certs/rsa.key}]}}
  - {name: bulk, bind: "127.0.0.1:${P_BULK[$p]}", protocol: tls, backend: sink, idle_timeout: 10m,
     tls: {certificates: [{cert: certs/ec.pem, key: certs/ec.key}]}}
backends:
  - {name: echo, servers: [{address: "127.0.0.1:$ECHO_PORT"}]}
  - {name: sink, servers: [{address: "127.0.0.1:$SINK_PORT"}], timeout: 10m}
EOF
    "$SLUICE" -t -c "$cfg" >"$RUN/sluice-check.log" 2>&1 || die "sluice rejected $cfg"
    start_proxy "$RUN/$p.log" "$SLUICE" -c "$cfg"
}

start_haproxy() {
    local p=$1 cfg=$RUN/haproxy.cfg
    cat >"$cfg" <<EOF
global
    nbthread $WORKERS
    ssl-default-bind-ciphers $CIPHERS
    ssl-default-bind-options ssl-min-ver TLSv1.2
    tune.ssl.default-dh-param 2048
defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m
frontend ec
    bind 127.0.0.1:${P_EC[$p]} ssl crt $C/ec.bundle
    default_backend echo
frontend rsa
    bind 127.0.0.1:${P_RSA[$p]} ssl crt $C/rsa.bundle
    default_backend echo
frontend bulk
    bind 127.0.0.1:${P_BULK[$p]} ssl crt $C/ec.bundle
    default_backend sink
backend echo
    server s1 127.0.0.1:$ECHO_PORT
backend sink
    server s1 127.0.0.1:$SINK_PORT
EOF
    run_haproxy "$p" "$cfg"
}

start_nginx() {
    local p=$1 dir=$RUN/nginx
    mkdir -p "$dir/logs"
    nginx_conf_head "$dir" >"$dir/nginx.conf"
    cat >>"$dir/nginx.conf" <<EOF
events { worker_connections 8192; }
stream {
    proxy_connect_timeout 5s;
    proxy_timeout 10m;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers $CIPHERS;
    ssl_session_tickets on;
    ssl_session_cache shared:SSL:10m;
    server { listen 127.0.0.1:${P_EC[$p]} ssl reuseport; ssl_certificate $C/ec.pem;
             ssl_certificate_key $C/ec.key; proxy_pass 127.0.0.1:$ECHO_PORT; }
    server { listen 127.0.0.1:${P_RSA[$p]} ssl reuseport; ssl_certificate $C/rsa.pem;
             ssl_certificate_key $C/rsa.key; proxy_pass 127.0.0.1:$ECHO_PORT; }
    server { listen 127.0.0.1:${P_BULK[$p]} ssl reuseport; ssl_certificate $C/ec.pem;
             ssl_certificate_key $C/ec.key; proxy_pass 127.0.0.1:$SINK_PORT; }
}
EOF
    run_nginx "$p" "$dir"
}

# ---------------------------------------------------------------------------------------
# Measurements

# s_time with CONC clients at once on LOAD_CPUS; prints connections per second.
hs_rate() {
    local port=$1 mode=$2 i total=0 n
    shift 2
    local pids=()
    for i in $(seq "$CONC"); do
        taskset -c "$LOAD_CPUS" openssl s_time -connect "127.0.0.1:$port" "$mode" -www / \
            -time "$HS_SECONDS" "$@" >"$RUN/s_time.$i" 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    for i in $(seq "$CONC"); do
        # "N connections in S real seconds, ..." (the last such line is the timed run)
        n=$(grep -E '^[0-9]+ connections in [0-9]+ real seconds' "$RUN/s_time.$i" | tail -1 |
            awk '{print $1}')
        [ -n "$n" ] || { cat "$RUN/s_time.$i" >&2; die "s_time failed on port $port"; }
        total=$((total + n))
    done
    # s_time counts whole seconds of wall time; HS_SECONDS is what it ran
    echo "$total $HS_SECONDS" | awk '{printf "%.0f", $1 / $2}'
}

# Reused handshakes: s_time prints "r" for each resumed connection; fail if most were not.
check_reuse() {
    local r star
    r=$(cat "$RUN"/s_time.* | tr -cd 'r' | wc -c)
    star=$(cat "$RUN"/s_time.* | tr -cd '*' | wc -c)
    [ "$r" -gt "$star" ] || log "warning: only $r of $((r + star)) connections resumed"
}

cat >"$RUN/bulk.py" <<'EOF'
import socket, ssl, sys, time
port, mib = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
raw = socket.create_connection(("127.0.0.1", port))
t = ctx.wrap_socket(raw, server_hostname="bench.local")
start = time.monotonic()
if sys.argv[3] == "up":
    t.sendall(b"up\n")
    buf = memoryview(b"\x5a" * (1 << 20))
    for _ in range(mib):
        t.sendall(buf)
    t.shutdown(socket.SHUT_WR)  # after the last record: FIN; the sink closes, so does the proxy
    while t.recv(65536):
        pass
else:
    t.sendall(b"down %d\n" % mib)
    buf, got = bytearray(1 << 20), 0
    while True:
        n = t.recv_into(buf)
        if not n:
            break
        got += n
    if got != mib << 20:
        sys.exit(f"download: got {got} bytes of {mib << 20}")
print(f"{mib * 1048576 / (time.monotonic() - start) / 1e6:.0f}")
EOF

# Usage: bulk_rate PORT up|down -> MB/s
bulk_rate() {
    taskset -c "$LOAD_CPUS" python3 "$RUN/bulk.py" "$1" "$BULK_MIB" "$2" 2>"$RUN/bulk.err" ||
        { cat "$RUN/bulk.err" >&2; die "bulk client failed on port $1 ($2)"; }
}

# Proxy CPU time per handshake (us) between two cpu_ticks readings, for a rate measured
# over HS_SECONDS. Usage: cpu_per_hs TICKS_BEFORE TICKS_AFTER RATE
cpu_per_hs() {
    echo "$1 $2 $3 $HS_SECONDS $CLK_TCK" |
        awk '{n = $3 * $4; printf "%.0f", n ? ($2 - $1) / $5 * 1e6 / n : 0}'
}

declare -A R
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# MODE=paired: CPU per full handshake only, with every proxy running at once (idle when
# not measured) and measured in rotating order within each round, so that the machine's
# drift between rounds cancels out of the per-round ratios. Prints, per proxy, the mean CPU
# per ECDSA and per RSA handshake and the median of its per-round ratios to HAProxy.
paired_rounds() {
    local p r i k n order pid t0 t1 t2 ec rsa
    local -A PID
    for p in $PROXIES; do
        "start_$p" "$p"
        PID[$p]=$LAST_PID
        wait_port "${P_RSA[$p]}" "$LAST_PID" "$p"
    done
    read -r -a order <<<"$PROXIES"
    n=${#order[@]}
    : >"$OUT/paired.tsv"
    for r in $(seq "$ROUNDS"); do
        for i in $(seq 0 $((n - 1))); do
            p=${order[$(((i + r) % n))]}
            pid=${PID[$p]}
            t0=$(cpu_ticks "$pid")
            ec=$(hs_rate "${P_EC[$p]}" -new -tls1_3)
            t1=$(cpu_ticks "$pid")
            rsa=$(hs_rate "${P_RSA[$p]}" -new -tls1_3)
            t2=$(cpu_ticks "$pid")
            printf '%s\t%s\t%s\t%s\n' "$r" "$p" "$(cpu_per_hs "$t0" "$t1" "$ec")" \
                "$(cpu_per_hs "$t1" "$t2" "$rsa")" >>"$OUT/paired.tsv"
        done
        log "round $r done"
    done
    for p in $PROXIES; do stop_pid "${PID[$p]}"; done
    # shellcheck disable=SC2086 # one argument per proxy
    python3 - "$OUT/paired.tsv" "$ref" $PROXIES <<'PY'
import collections, statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
ref = sys.argv[2]
val = collections.defaultdict(dict)  # proxy -> round -> (ecdsa us, rsa us)
for r, p, ec, rsa in rows:
    val[p][r] = (float(ec), float(rsa))
print("| proxy | CPU us / ECDSA hs (mean) | per-round ratio (median) | CPU us / RSA hs (mean) | per-round ratio (median) |")
print("|---|---|---|---|---|")
for p in sys.argv[3:]:
    rounds = val[p]
    cells = []
    for k in (0, 1):
        mean = statistics.mean(v[k] for v in rounds.values())
        ratio = statistics.median(v[k] / val[ref][r][k] for r, v in rounds.items() if val[ref][r][k])
        cells += [f"{mean:.0f}", f"x{ratio:.2f}"]
    print(f"| {p} | " + " | ".join(cells) + " |")
PY
}

ref=haproxy
case " $PROXIES " in *" haproxy "*) ;; *) ref=$(echo "$PROXIES" | awk '{print $1}') ;; esac
if [ "$MODE" = paired ]; then
    paired_rounds >"$OUT/paired.md"
    echo
    echo "TLS CPU per handshake, paired: workers $WORKERS, proxies on CPU $PROXY_CPUS ($CAP_TEXT)," \
        "s_time x$CONC for ${HS_SECONDS}s per measurement, $ROUNDS rounds; ratios to $ref per round"
    cat "$OUT/paired.md"
    exit 0
fi

for round in $(seq "$ROUNDS"); do
    for p in $PROXIES; do
        log "round $round: $p"
        "start_$p" "$p"
        pid=$LAST_PID
        wait_port "${P_EC[$p]}" "$pid" "$p"
        wait_port "${P_BULK[$p]}" "$pid" "$p"
        t0=$(cpu_ticks "$pid")
        ec=$(hs_rate "${P_EC[$p]}" -new -tls1_3)
        t1=$(cpu_ticks "$pid")
        rsa=$(hs_rate "${P_RSA[$p]}" -new -tls1_3)
        t1r=$(cpu_ticks "$pid")
        res=$(hs_rate "${P_EC[$p]}" -reuse -tls1_2)
        check_reuse
        t2=$(cpu_ticks "$pid")
        bulk=$(bulk_rate "${P_BULK[$p]}" up)
        down=$(bulk_rate "${P_BULK[$p]}" down)
        t3=$(cpu_ticks "$pid")
        # CPU per full ECDSA handshake (us) and per GiB (ms)
        hs_us=$(cpu_per_hs "$t0" "$t1" "$ec")
        rsa_us=$(cpu_per_hs "$t1" "$t1r" "$rsa")
        gib_ms=$(echo "$t2 $t3 $BULK_MIB $CLK_TCK" |
            awk '{printf "%.0f", ($2 - $1) / $4 * 1000 / (2 * $3 / 1024)}')
        R[$p,ec]+="$ec "
        R[$p,rsa]+="$rsa "
        R[$p,res]+="$res "
        R[$p,bulk]+="$bulk "
        R[$p,down]+="$down "
        R[$p,hsus]+="$hs_us "
        R[$p,rsaus]+="$rsa_us "
        R[$p,gibms]+="$gib_ms "
        log "  ecdsa $ec/s rsa $rsa/s resumed $res/s up ${bulk} MB/s down ${down} MB/s; cpu ${hs_us} us/ECDSA hs ${rsa_us} us/RSA hs ${gib_ms} ms/GiB"
        stop_pid "$pid"
    done
done

# ---------------------------------------------------------------------------------------
{
    echo "| proxy | full hs/s ECDSA | full hs/s RSA | resumed hs/s (1.2 ticket) | upload MB/s | download MB/s | CPU us / ECDSA hs | CPU us / RSA hs | CPU ms / GiB |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for p in $PROXIES; do
        row="| $p"
        for k in ec rsa res bulk down hsus rsaus gibms; do
            # shellcheck disable=SC2086
            v=$(median ${R[$p,$k]})
            # shellcheck disable=SC2086
            r=$(median ${R[$ref,$k]})
            ratio=$(echo "$v $r" | awk '{printf "%.2f", $2 ? $1 / $2 : 0}')
            row+=" | $v (x$ratio)"
        done
        echo "$row |"
    done
} >"$OUT/results.md"
{
    printf 'proxy\tkey\tvalues\n'
    for p in $PROXIES; do
        for k in ec rsa res bulk down hsus rsaus gibms; do printf '%s\t%s\t%s\n' "$p" "$k" "${R[$p,$k]}"; done
    done
} >"$OUT/results.tsv"
echo
echo "TLS benchmark: workers $WORKERS, proxies on CPU $PROXY_CPUS" \
    "($CAP_TEXT), clients on CPU $LOAD_CPUS," \
    "s_time x$CONC for ${HS_SECONDS}s, bulk ${BULK_MIB} MiB, median of $ROUNDS rounds;" \
    "ratios to $ref (for CPU columns lower is better)"
cat "$OUT/results.md"
