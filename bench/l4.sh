#!/usr/bin/env bash
# bench/l4.sh: Layer 4 proxy benchmark. sluice, HAProxy (mode tcp, with and without
# option splice-auto) and nginx's stream proxy in one run, against the same backends,
# with the same worker count and the same CPU pinning. Prints a markdown table:
#   throughput   iperf3 through the proxy (Gbit/s)
#   conn/s       new short connections per second (connect, 1 byte each way, close)
#   idle memory  RSS growth per idle proxied connection, holding IDLE_CONNS of them
# each with its ratio to HAProxy (plain `mode tcp`, no splice), plus the proxy's CPU time
# per short connection. Medians over ROUNDS interleaved rounds. See docs/benchmarks.md.
#
# Usage: bench/l4.sh            (or `make bench`)
# Knobs (environment): PROXIES="sluice haproxy haproxy-splice nginx"  WORKERS=2
#   PROXY_CPUS / LOAD_CPUS (taskset lists; default: half the CPUs each, 0 / 1 on 2 CPUs)
#   IPERF_SECONDS=10 IPERF_STREAMS=1 RATE_SECONDS=10 RATE_CONC=64 IDLE_CONNS=10000 ROUNDS=3
#   BASE_PORT=27000 SLUICE_BUILD=build OUT=bench/out
#   PROXY_CPU_QUOTA=0 (percent of one CPU each proxy may use, as in bench/tls.sh; 0 runs
#   uncapped. With a cap the connection rate measures the proxy rather than the load
#   generator, which on 2 CPUs shares the second CPU with the backends.)
# Results: $OUT/results.md (table), $OUT/results.tsv, logs and configs in $OUT/run/.
# Every process the script starts is stopped on exit, also on error or Ctrl-C.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-$REPO/bench/out}
RUN=$OUT/run
proxy_knobs
PROXIES=${PROXIES:-"sluice haproxy haproxy-splice nginx"}
IPERF_SECONDS=${IPERF_SECONDS:-10}
IPERF_STREAMS=${IPERF_STREAMS:-1}
RATE_SECONDS=${RATE_SECONDS:-10}
RATE_CONC=${RATE_CONC:-64}
IDLE_CONNS=${IDLE_CONNS:-10000}
ROUNDS=${ROUNDS:-3}
BASE_PORT=${BASE_PORT:-27000}

pick_cpus
PROXY_CPU_QUOTA=${PROXY_CPU_QUOTA:-0}
proxy_cpu_quota "$PROXY_CPU_QUOTA"

# Sum of VmRSS (KiB) over a pid and its children.
# shellcheck disable=SC2016 # an awk program
rss_kib() { sum_proc_tree "$1" status '/^VmRSS:/ {print $2}'; }

# ---------------------------------------------------------------------------------------
# Preflight
for t in taskset iperf3 ss pgrep gcc python3; do
    command -v "$t" >/dev/null || die "missing $t (scripts/install-deps.sh bench)"
done
mkdir -p "$OUT" "$RUN"
rm -rf "${RUN:?}"/*

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
# A proxy holds two descriptors per proxied connection, plus its own (HAProxy with splice
# also counts 2 per pipe: maxpipes is set to 100 below, which is plenty for a few streams).
MAXCONN=$(((NOFILE - 400) / 2))
if [ "$IDLE_CONNS" -gt $((MAXCONN - 50)) ]; then
    log "open file limit $NOFILE allows $((MAXCONN - 50)) idle proxied connections, not $IDLE_CONNS"
    IDLE_CONNS=$((MAXCONN - 50))
fi

CONNRATE=$OUT/connrate
gcc -O2 -std=c11 -Wall -Wextra -D_GNU_SOURCE -pthread bench/connrate.c -o "$CONNRATE"

if [ ! -x "$DEMO" ]; then
    log "$DEMO not built; compiling demo/demo_backend.c into $OUT"
    gcc -O2 -std=c11 -D_GNU_SOURCE demo/demo_backend.c -o "$OUT/sluice-demo"
    DEMO=$OUT/sluice-demo
fi

# Ports: iperf3 server BASE, one echo backend port per proxy BASE+10+i, proxy listeners
# BASE+20+2i (to the echo backend) and BASE+21+2i (to iperf3).
IPERF_PORT=$BASE_PORT
idx=0
declare -A ECHO_PORT FRONT_ECHO FRONT_IPERF
demo_args=()
for p in $PROXIES direct; do
    ECHO_PORT[$p]=$((BASE_PORT + 10 + idx))
    FRONT_ECHO[$p]=$((BASE_PORT + 20 + 2 * idx))
    FRONT_IPERF[$p]=$((BASE_PORT + 21 + 2 * idx))
    demo_args+=(--listen "127.0.0.1:${ECHO_PORT[$p]}")
    for port in "${ECHO_PORT[$p]}" "${FRONT_ECHO[$p]}" "${FRONT_IPERF[$p]}"; do
        port_listening "$port" && die "port $port is in use (set BASE_PORT)"
    done
    idx=$((idx + 1))
done
FRONT_ECHO[direct]=${ECHO_PORT[direct]}
FRONT_IPERF[direct]=$IPERF_PORT

log "CPUs: $ncpu; proxies on $PROXY_CPUS, load generators and backends on $LOAD_CPUS"
log "workers per proxy: $WORKERS; idle connections: $IDLE_CONNS; fd limit $NOFILE"

start_bg "$LOAD_CPUS" "$RUN/backend-echo.log" "$DEMO" --mode echo --name bench "${demo_args[@]}"
DEMO_PID=$LAST_PID
wait_port "${ECHO_PORT[direct]}" "$DEMO_PID" sluice-demo
start_bg "$LOAD_CPUS" "$RUN/backend-iperf3.log" iperf3 -s -p "$IPERF_PORT"
IPERF_PID=$LAST_PID
wait_port "$IPERF_PORT" "$IPERF_PID" "iperf3 -s"

# ---------------------------------------------------------------------------------------
# Proxy configurations and start-up. Each listens on FRONT_ECHO (-> its echo port) and
# FRONT_IPERF (-> iperf3); no access log, generous timeouts.

start_sluice() {
    local p=$1 cfg=$RUN/sluice.yaml
    cat >"$cfg" <<EOF
workers: $WORKERS
max_connections: $MAXCONN
log: {access: "off", level: warn}
listeners:
  - {name: echo, bind: "127.0.0.1:${FRONT_ECHO[$p]}", protocol: tcp, backend: echo, idle_timeout: 10m}
  - {name: iperf, bind: "127.0.0.1:${FRONT_IPERF[$p]}", protocol: tcp, backend: iperf, idle_timeout: 10m}
backends:
  - {name: echo, servers: [{address: "127.0.0.1:${ECHO_PORT[$p]}"}], timeout: 10m}
  - {name: iperf, servers: [{address: "127.0.0.1:$IPERF_PORT"}], timeout: 10m}
EOF
    "$SLUICE" -t -c "$cfg" >"$RUN/sluice-check.log" 2>&1 || die "sluice rejected $cfg: $(cat "$RUN/sluice-check.log")"
    start_proxy "$RUN/$p.log" "$SLUICE" -c "$cfg"
}

start_haproxy() {
    local p=$1
    local cfg=$RUN/$p.cfg splice=""
    local pipes=""
    if [ "$p" = haproxy-splice ]; then
        splice="    option splice-auto"
        pipes="    maxpipes 100"
    fi
    cat >"$cfg" <<EOF
global
    nbthread $WORKERS
    maxconn $MAXCONN
$pipes
defaults
    mode tcp
$splice
    maxconn $MAXCONN
    timeout connect 5s
    timeout client 10m
    timeout server 10m
frontend echo
    bind 127.0.0.1:${FRONT_ECHO[$p]}
    default_backend echo
frontend iperf
    bind 127.0.0.1:${FRONT_IPERF[$p]}
    default_backend iperf
backend echo
    server s1 127.0.0.1:${ECHO_PORT[$p]}
backend iperf
    server s1 127.0.0.1:$IPERF_PORT
EOF
    run_haproxy "$p" "$cfg"
}

start_nginx() {
    local p=$1 dir=$RUN/nginx
    mkdir -p "$dir/logs"
    nginx_conf_head "$dir" >"$dir/nginx.conf"
    cat >>"$dir/nginx.conf" <<EOF
worker_rlimit_nofile $NOFILE;
events {
    worker_connections $((NOFILE - 100));
}
stream {
    proxy_connect_timeout 5s;
    proxy_timeout 10m;
    server {
        listen 127.0.0.1:${FRONT_ECHO[$p]} reuseport;
        proxy_pass 127.0.0.1:${ECHO_PORT[$p]};
    }
    server {
        listen 127.0.0.1:${FRONT_IPERF[$p]} reuseport;
        proxy_pass 127.0.0.1:$IPERF_PORT;
    }
}
EOF
    run_nginx "$p" "$dir"
}

# ---------------------------------------------------------------------------------------
# Measurements

# Idle memory: warm up, then RSS before / while holding IDLE_CONNS idle connections.
# Sets IDLE_BEFORE, IDLE_AFTER (KiB) and IDLE_PER (bytes per connection).
measure_idle() {
    local p=$1 pid=$2 port=${FRONT_ECHO[$1]} before after hold i
    taskset -c "$LOAD_CPUS" "$CONNRATE" hold -a "127.0.0.1:$port" -n 200 -c 50 \
        >"$RUN/$p-warm.log" 2>&1 &
    hold=$!
    PIDS+=("$hold")
    for i in $(seq 300); do grep -q '^held' "$RUN/$p-warm.log" && break; sleep 0.1; done
    stop_pid "$hold"
    sleep 1
    before=$(rss_kib "$pid")
    taskset -c "$LOAD_CPUS" "$CONNRATE" hold -a "127.0.0.1:$port" -n "$IDLE_CONNS" -c 200 -s 50 \
        >"$RUN/$p-hold.log" 2>&1 &
    hold=$!
    PIDS+=("$hold")
    for i in $(seq 1200); do
        grep -q '^held' "$RUN/$p-hold.log" && break
        kill -0 "$hold" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^held' "$RUN/$p-hold.log"; then
        log "$p: could not hold $IDLE_CONNS connections: $(tail -n 2 "$RUN/$p-hold.log")"
        stop_pid "$hold"
        IDLE_BEFORE=$before IDLE_AFTER=NA IDLE_PER=NA
        return
    fi
    sleep 2
    after=$(rss_kib "$pid")
    stop_pid "$hold"
    IDLE_BEFORE=$before IDLE_AFTER=$after
    IDLE_PER=$(((after - before) * 1024 / IDLE_CONNS))
}

# Sets GBPS: iperf3 receiver throughput through the proxy.
measure_iperf() {
    local p=$1 json=$RUN/$1-iperf3.json
    GBPS=NA
    if taskset -c "$LOAD_CPUS" iperf3 -c 127.0.0.1 -p "${FRONT_IPERF[$p]}" -t "$IPERF_SECONDS" \
        -P "$IPERF_STREAMS" -J >"$json" 2>"$RUN/$p-iperf3.err"; then
        GBPS=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' "$json")
    else
        log "$p: iperf3 failed: $(tail -n 3 "$RUN/$p-iperf3.err" "$json" 2>/dev/null | tr '\n' ' ')"
    fi
}

# Sets CPS (complete short connections per second) and CONN_ERRORS.
measure_rate() {
    local p=$1 line
    line=$(taskset -c "$LOAD_CPUS" "$CONNRATE" rate -a "127.0.0.1:${FRONT_ECHO[$p]}" \
        -c "$RATE_CONC" -t "$RATE_SECONDS" -w 1 -s 50 2>"$RUN/$p-rate.err" | tee "$RUN/$p-rate.log")
    CPS=$(sed -n 's/.*connections_per_second=\([0-9]*\).*/\1/p' <<<"$line")
    CONN_ERRORS=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$line")
    CPS=${CPS:-NA} CONN_ERRORS=${CONN_ERRORS:-NA}
    if [ "$CONN_ERRORS" != 0 ]; then log "$p: $CONN_ERRORS failed connections in the rate test"; fi
}

RESULTS=$OUT/results.tsv
printf 'round\tproxy\tgbps\tconn_per_s\tconn_errors\tcpu_us_per_conn\trss_before_kib\trss_after_kib\tbytes_per_idle_conn\n' \
    >"$RESULTS"

# Rounds interleave the proxies, so a burst of background load does not favour one of
# them; the table reports the median of the rounds.
for round in $(seq "$ROUNDS"); do
    for p in $PROXIES; do
        case $p in
        sluice)
            if [ ! -x "$SLUICE" ]; then
                log "sluice: $SLUICE not built, row marked pending"
                printf '%s\tsluice\tpending\tpending\tNA\tNA\tNA\tNA\tpending\n' "$round" >>"$RESULTS"
                continue
            fi
            start_sluice "$p" ;;
        haproxy | haproxy-splice) start_haproxy "$p" ;;
        nginx) start_nginx "$p" ;;
        *) die "unknown proxy $p" ;;
        esac
        pid=$LAST_PID
        wait_port "${FRONT_ECHO[$p]}" "$pid" "$p"
        wait_port "${FRONT_IPERF[$p]}" "$pid" "$p"
        sleep 0.5
        log "round $round/$ROUNDS, $p: idle memory ($IDLE_CONNS connections)"
        measure_idle "$p" "$pid"
        log "round $round/$ROUNDS, $p: throughput (iperf3, ${IPERF_SECONDS}s, $IPERF_STREAMS stream(s))"
        measure_iperf "$p"
        log "round $round/$ROUNDS, $p: connection rate (${RATE_SECONDS}s, $RATE_CONC clients)"
        t0=$(cpu_ticks "$pid")
        measure_rate "$p"
        t1=$(cpu_ticks "$pid")
        cpu_us=NA
        if [ "$CPS" != NA ] && [ "$CPS" -gt 0 ]; then
            # ticks -> microseconds, over every connection of the run (warmup included)
            cpu_us=$(python3 -c "print(round(($t1 - $t0) * 1e6 / $CLK_TCK / ($CPS * ($RATE_SECONDS + 1))))")
        fi
        log "$p: $GBPS Gbit/s, $CPS conn/s ($cpu_us us CPU/conn), $IDLE_PER B/idle conn" \
            "(RSS $IDLE_BEFORE -> $IDLE_AFTER KiB)"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$p" "$GBPS" "$CPS" "$CONN_ERRORS" \
            "$cpu_us" "$IDLE_BEFORE" "$IDLE_AFTER" "$IDLE_PER" >>"$RESULTS"
        stop_pid "$pid"
        sleep 2 # let the last connections' TIME_WAIT age a little
    done
    log "round $round/$ROUNDS, direct (no proxy): throughput and connection rate"
    measure_iperf direct
    measure_rate direct
    printf '%s\tdirect\t%s\t%s\t%s\tNA\tNA\tNA\tNA\n' "$round" "$GBPS" "$CPS" "$CONN_ERRORS" \
        >>"$RESULTS"
done

cleanup

# ---------------------------------------------------------------------------------------
# Table: medians over the rounds, ratios to HAProxy (plain mode tcp).
CAP_TEXT=""
[ -z "$PROXY_CGROUP" ] || CAP_TEXT=" (each capped at $PROXY_CPU_QUOTA% of one CPU)"
META="Workers per proxy: $WORKERS; proxies pinned to CPU(s) $PROXY_CPUS$CAP_TEXT, load generators \
and backends to CPU(s) $LOAD_CPUS ($ncpu CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)). \
Median of $ROUNDS round(s); iperf3 ${IPERF_SECONDS}s x $IPERF_STREAMS stream(s); connection \
rate: $RATE_CONC clients for ${RATE_SECONDS}s; idle memory: $IDLE_CONNS connections. \
Kernel $(uname -r); $("$HAPROXY" -v | head -n1 | cut -d' ' -f1-3); $("$NGINX" -v 2>&1 | cut -d' ' -f3); \
sluice $( ([ -x "$SLUICE" ] && "$SLUICE" --version 2>/dev/null | head -n1 | cut -d' ' -f2) || echo pending)."
python3 - "$RESULTS" "$OUT/results.md" "$META" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
order, by = [], {}
for r in rows:
    if r["proxy"] not in by:
        order.append(r["proxy"])
        by[r["proxy"]] = []
    by[r["proxy"]].append(r)
KEYS = ("gbps", "conn_per_s", "cpu_us_per_conn", "bytes_per_idle_conn")
def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None
med = {}
for p, rs in by.items():
    med[p] = {}
    for k in KEYS:
        vals = [num(r[k]) for r in rs if num(r[k]) is not None]
        pending = any(r[k] == "pending" for r in rs)
        med[p][k] = statistics.median(vals) if vals else ("pending" if pending else None)
names = {"sluice": "sluice", "haproxy": "HAProxy (mode tcp)",
         "haproxy-splice": "HAProxy (mode tcp, splice-auto)", "nginx": "nginx stream",
         "direct": "direct, no proxy (reference)"}
base = med.get("haproxy")
def show(v, fmt):
    return v if isinstance(v, str) else ("n/a" if v is None else fmt.format(v))
def ratio(p, k):
    v, b = med[p][k], base.get(k) if base else None
    if isinstance(v, str):
        return v
    return f"{v / b:.2f}x" if isinstance(v, float) and isinstance(b, float) and b else "n/a"
out = ["| proxy | throughput (Gbit/s) | vs HAProxy | new conn/s | vs HAProxy "
       "| RSS per idle conn (bytes) | vs HAProxy | proxy CPU per conn (us) |",
       "|---|---:|---:|---:|---:|---:|---:|---:|"]
for p in order:
    m = med[p]
    direct = p == "direct"
    out.append("| " + " | ".join([
        names.get(p, p), show(m["gbps"], "{:.2f}"), ratio(p, "gbps"),
        show(m["conn_per_s"], "{:.0f}"), ratio(p, "conn_per_s"),
        "" if direct else show(m["bytes_per_idle_conn"], "{:.0f}"),
        "" if direct else ratio(p, "bytes_per_idle_conn"),
        "" if direct else show(m["cpu_us_per_conn"], "{:.0f}")]) + " |")
text = "\n".join(out) + "\n\n" + sys.argv[3] + "\n"
open(sys.argv[2], "w").write(text)
print(text)
EOF
log "results: $OUT/results.md, $RESULTS, logs in $RUN"
