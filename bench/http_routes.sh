#!/usr/bin/env bash
# bench/http_routes.sh: the cost of route policy on sluice's HTTP data path. One sluice
# worker pinned to one CPU, wrk and the origin (bench/lib.sh start_http_origin) on the
# other; keep-alive 64 B responses. Variants, measured in rotating order each round:
#   single     one listener, one backend, no routes
#   routes10   ten routes; the request matches the tenth (host + path_prefix + method +
#              header conditions on the nine before it fail), which sets two request
#              headers from variables, removes one, and adds a response header
#   ratelimit  routes10 plus a rate_limit on the tenth route (keyed by client address,
#              a budget far above the rate, so nothing is refused: the check's cost only)
# Reports medians of per-round req/s and CPU per request, and ratios to `single`.
# Usage: bench/http_routes.sh   Knobs: ROUNDS=5 SECONDS_PER_RUN=6 CONNS=64 BASE_PORT=28100
#   VARIANTS="single routes10 ratelimit" SLUICE_BUILD=build OUT=bench/out-http-routes
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-$REPO/bench/out-http-routes}
RUN=$OUT/run
proxy_knobs
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-6}
CONNS=${CONNS:-64}
BASE_PORT=${BASE_PORT:-28100}
VARIANTS=${VARIANTS:-"single routes10 ratelimit"}
pick_cpus
command -v wrk >/dev/null || die "wrk is missing: scripts/install-deps.sh bench"
rm -rf "$RUN"
mkdir -p "$RUN"
ORIGIN_PORT=$BASE_PORT
FRONT=$((BASE_PORT + 1))
start_http_origin "$RUN/origin" "$ORIGIN_PORT"

config_head() {
    cat <<EOF
workers: 1
max_connections: 100000
log: {access: off, level: warn}
backends:
  - name: origin
    protocol: http
    servers: [127.0.0.1:$ORIGIN_PORT]
    keepalive: {max_idle: 256, idle_timeout: 300s}
  - name: other
    protocol: http
    servers: [127.0.0.1:$ORIGIN_PORT]
listeners:
  - name: front
    bind: 127.0.0.1:$FRONT
    protocol: http
    idle_timeout: 300s
EOF
}

# ten routes, the request (GET /64, Host: bench) matches the last
routes10() {
    local limit=$1
    echo "    routes:"
    for i in 1 2 3 4 5 6 7 8 9; do
        cat <<EOF
      - match: {host: "site$i.example", path_prefix: /app$i, methods: [GET, POST], headers: {X-Tenant: "t$i"}}
        backend: other
EOF
    done
    cat <<EOF
      - match: {host: bench, path_prefix: /, methods: [GET]}
        backend: origin
        request_headers: {set: {X-Client: "{client_ip}", X-Req: "{request_id}"}, remove: [Cookie]}
        response_headers: {add: {Via: "sluice"}}
EOF
    [ "$limit" = 0 ] || echo "        rate_limit: {requests: 10000000, per: 1s, burst: 1000000, key: client_ip}"
}

{ config_head; echo "    backend: origin"; } >"$RUN/single.yaml"
{ config_head; routes10 0; } >"$RUN/routes10.yaml"
{ config_head; routes10 1; } >"$RUN/ratelimit.yaml"
for v in $VARIANTS; do
    "$SLUICE" -t -c "$RUN/$v.yaml" >"$RUN/$v-check.log" 2>&1 ||
        die "sluice refused $v.yaml: $(head -n 3 "$RUN/$v-check.log")"
done

RESULTS=$OUT/results.tsv
printf 'round\tvariant\treq_per_s\tcpu_us_per_req\n' >"$RESULTS"
read -r -a LIST <<<"$VARIANTS"
for round in $(seq "$ROUNDS"); do
    n=${#LIST[@]}
    for i in $(seq 0 $((n - 1))); do
        v=${LIST[$(((i + round - 1) % n))]}
        start_proxy "$RUN/$v.log" "$SLUICE" -c "$RUN/$v.yaml"
        pid=$LAST_PID
        wait_port "$FRONT" "$pid" "sluice $v"
        taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNS" -d2s -H "Host: bench" "http://127.0.0.1:$FRONT/64" >/dev/null 2>&1 || true
        t0=$(cpu_ticks "$pid")
        taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNS" -d"${SECONDS_PER_RUN}s" -H "Host: bench" \
            "http://127.0.0.1:$FRONT/64" >"$RUN/$v-$round.log" 2>&1 || true
        t1=$(cpu_ticks "$pid")
        stop_pid "$pid"
        grep -q "Non-2xx" "$RUN/$v-$round.log" && die "$v: non-2xx responses (see $RUN/$v-$round.log)"
        rate=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$RUN/$v-$round.log")
        cpu=$(python3 -c "print(round(($t1 - $t0) * 1e6 / $CLK_TCK / ($rate * $SECONDS_PER_RUN), 2))")
        log "round $round: $v $rate req/s, $cpu us CPU/req"
        printf '%s\t%s\t%s\t%s\n' "$round" "$v" "$rate" "$cpu" >>"$RESULTS"
        sleep 1
    done
done
cleanup
python3 - "$RESULTS" "$OUT/results.md" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
rounds = {}
for r in rows:
    rounds.setdefault(r["round"], {})[r["variant"]] = r
variants = list(dict.fromkeys(r["variant"] for r in rows))
out = ["| variant | req/s (median) | vs single | CPU/req us (median) | vs single |", "|---|---:|---:|---:|---:|"]
for v in variants:
    rate = statistics.median(float(rr[v]["req_per_s"]) for rr in rounds.values())
    cpu = statistics.median(float(rr[v]["cpu_us_per_req"]) for rr in rounds.values())
    rr_rate = statistics.median(float(rr[v]["req_per_s"]) / float(rr["single"]["req_per_s"]) for rr in rounds.values())
    rr_cpu = statistics.median(float(rr[v]["cpu_us_per_req"]) / float(rr["single"]["cpu_us_per_req"]) for rr in rounds.values())
    out.append(f"| {v} | {rate:.0f} | {rr_rate:.3f}x | {cpu:.2f} | {rr_cpu:.3f}x |")
text = "\n".join(out) + f"\n\n{len(rounds)} rounds, rotating order; ratios are medians of per-round ratios.\n"
open(sys.argv[2], "w").write(text)
print(text)
EOF
log "results: $OUT/results.md"
