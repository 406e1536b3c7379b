#!/usr/bin/env bash
# bench/testssl.sh: scans a sluice `tls` listener on 127.0.0.1 with testssl.sh (Debian's
# /usr/bin/testssl) using the default TLS settings, and prints every finding rated MEDIUM
# or worse. Exit status: 0 none, 1 some, 2 the scan could not run.
#
# The scan stays on loopback: the target is an IP address given with --ip, --nodns none
# does no DNS lookups at all, and testssl contacts no other host without --phone-out
# (CRL/OCSP download), which is not given. The certificates are made here by a throwaway
# CA (RSA-2048 and ECDSA P-256 side by side, SAN IP:127.0.0.1, a CRL distribution point on
# loopback that is never fetched); the CA is passed with --add-ca so that the chain is
# trusted. The listener forwards to a sluice-demo in http mode, so the HTTP checks run too.
#
# Findings listed in ACCEPT (ids, space separated; default none) are printed as accepted
# and do not fail the run.
#
# Usage: bench/testssl.sh          Knobs: SLUICE_BUILD=build OUT=bench/out/testssl
#        PORT=(free port) TESTSSL=/usr/bin/testssl SEVERITY=MEDIUM EXTRA_TESTSSL_ARGS=
#        ACCEPT=""
# Results: $OUT/testssl.json (findings >= SEVERITY), $OUT/testssl.log (full text report).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
BENCH_DIE_STATUS=2

cd "$(dirname "$0")/.."
REPO=$PWD
SLUICE_BUILD=${SLUICE_BUILD:-$REPO/build}
OUT=${OUT:-$REPO/bench/out/testssl}
TESTSSL=${TESTSSL:-/usr/bin/testssl}
SEVERITY=${SEVERITY:-MEDIUM}
ACCEPT=${ACCEPT-}

[ -x "$SLUICE_BUILD/sluice" ] || die "missing $SLUICE_BUILD/sluice (run make)"
[ -x "$TESTSSL" ] || die "missing $TESTSSL (apt-get install testssl.sh)"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT=${PORT:-$(free_port)}
DEMO_PORT=$(free_port)

rm -rf "$OUT"
mkdir -p "$OUT/certs"
C=$OUT/certs

# ---- certificates
make_ca "$C" "/O=sluice testssl/CN=sluice testssl CA" keyCertSign,cRLSign
cat >"$C/leaf.ext" <<EOF
basicConstraints=critical,CA:FALSE
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
crlDistributionPoints=URI:http://127.0.0.1:9/ca.crl
EOF
for kind in rsa ec; do
    if [ $kind = rsa ]; then
        echo "keyUsage=critical,digitalSignature,keyEncipherment" >"$C/$kind.ext"
    else
        echo "keyUsage=critical,digitalSignature" >"$C/$kind.ext"
    fi
    cat "$C/leaf.ext" >>"$C/$kind.ext"
    make_leaf "$C" "$kind" "/O=sluice testssl/CN=localhost"
done

# ---- gateway and backend
cat >"$OUT/sluice.yaml" <<EOF
workers: 2
log: {access: off, level: warn}
listeners:
  - name: scan
    bind: 127.0.0.1:$PORT
    protocol: tls
    tls:
      certificates:
        - {cert: certs/ec.pem, key: certs/ec.key}
        - {cert: certs/rsa.pem, key: certs/rsa.key}
      alpn: [http/1.1]
    backend: web
backends:
  - name: web
    servers: [{address: 127.0.0.1:$DEMO_PORT}]
EOF
"$SLUICE_BUILD/sluice-demo" --listen "127.0.0.1:$DEMO_PORT" --mode http --name web \
    >"$OUT/demo.log" 2>&1 &
PIDS+=($!)
"$SLUICE_BUILD/sluice" -c "$OUT/sluice.yaml" >"$OUT/sluice.out" 2>"$OUT/sluice.err" &
PIDS+=($!)
for _ in $(seq 100); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$PORT),0.2)" \
        2>/dev/null; then break; fi
    sleep 0.1
done

# ---- scan
log "testssl $("$TESTSSL" --version 2>/dev/null | grep -o 'testssl *[0-9.]*' | head -1) against 127.0.0.1:$PORT"
set +e
# shellcheck disable=SC2086
"$TESTSSL" --quiet --color 0 --warnings off --nodns none --ip 127.0.0.1 \
    --add-ca "$C/ca.pem" --connect-timeout 5 --openssl-timeout 5 \
    --severity "$SEVERITY" --jsonfile "$OUT/testssl.json" ${EXTRA_TESTSSL_ARGS:-} \
    "127.0.0.1:$PORT" >"$OUT/testssl.log" 2>&1
rc=$?
set -e
[ -s "$OUT/testssl.json" ] || { tail -n 30 "$OUT/testssl.log" >&2; die "testssl failed ($rc)"; }

python3 - "$OUT/testssl.json" "$SEVERITY" "$ACCEPT" <<'EOF'
import json, sys
order = ["OK", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
floor = order.index(sys.argv[2])
accept = set(sys.argv[3].split())
entries = json.load(open(sys.argv[1]))
for f in entries:
    if f.get("id") == "scanProblem":
        print(f"scan problem: {f.get('finding')}")
findings = [f for f in entries
            if f.get("severity") in order and order.index(f["severity"]) >= floor]
failing = [f for f in findings if f["id"].split()[0] not in accept]
for f in findings:
    mark = "accepted" if f not in failing else "FINDING"
    print(f"{mark:8} {f['severity']:8} {f['id']:28} {f['finding']}")
print(f"testssl: {len(failing)} finding(s) rated {sys.argv[2]} or worse"
      f" ({len(findings) - len(failing)} accepted)")
sys.exit(1 if failing or any(f.get("id") == "scanProblem" for f in entries) else 0)
EOF
