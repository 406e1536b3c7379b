#!/usr/bin/env bash
# `make run`: starts the demo backends and sluice with examples/quickstart.yaml in the
# foreground. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$BUILD/sluice-demo" --listen 127.0.0.1:9001 --mode http --name web-1 >/dev/null &
pids+=($!)
"$BUILD/sluice-demo" --listen 127.0.0.1:9002 --mode http --name web-2 >/dev/null &
pids+=($!)
"$BUILD/sluice-demo" --listen 127.0.0.1:9003 --mode websocket --name ws-1 >/dev/null &
pids+=($!)
"$BUILD/sluice-demo" --listen 127.0.0.1:9101 --mode echo --name echo-1 >/dev/null &
pids+=($!)

cat <<'TXT'
sluice quickstart
  curl http://127.0.0.1:8080/                 # HTTP, balanced over web-1 and web-2 (weight 2);
                                              # the reply shows the X-Forwarded-For sluice added
  curl http://127.0.0.1:8080/api/users        # the /api route: web-2 only
  python3 -m websockets ws://127.0.0.1:8080/ws # WebSocket echo through sluice: type lines
  echo hello | socat - TCP:127.0.0.1:7000     # echo service
  curl http://127.0.0.1:9900/metrics          # Prometheus metrics
  open http://127.0.0.1:9900/                 # live dashboard
  kill -HUP <pid>                             # reload examples/quickstart.yaml
Ctrl-C stops everything.
TXT
"$BUILD/sluice" -c examples/quickstart.yaml &
pids+=($!)
wait "${pids[-1]}"
