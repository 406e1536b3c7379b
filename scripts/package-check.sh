#!/usr/bin/env bash
# make package-check: the packaging contract (shared/spec/packaging.md) checked on this
# tree: install layout, compiler flags, missing-dependency message, man pages (lint,
# sections, key coverage), unit exposure, Kubernetes manifests. Each sub-check prints
# PASS, FAIL (with the reason) or SKIP (only when its tool is not installed).
# Usage: scripts/package-check.sh BUILD_DIR      (run from the top of the tree)
set -uo pipefail
BUILD=${1:-build}
SLUICE=$BUILD/sluice
WORK=$(mktemp -d /tmp/sluice-package-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
passed=0 failed=0 skipped=0

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
skip() { echo "SKIP $1: $2"; skipped=$((skipped + 1)); }
have() { command -v "$1" >/dev/null 2>&1; }

# --- install layout --------------------------------------------------------------------
check_install() {
  local d=$WORK/usr-root log=$WORK/install.log
  if ! make -s install PREFIX=/usr DESTDIR="$d" BUILD="$BUILD" >"$log" 2>&1; then
    fail install "make install PREFIX=/usr DESTDIR=... failed: $(tail -3 "$log")"
    return
  fi
  local unitdir
  unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null)
  unitdir=${unitdir:-/lib/systemd/system}
  local want=(
    "755 usr/sbin/sluice" "644 usr/share/man/man8/sluice.8" "644 usr/share/man/man5/sluice.yaml.5"
    "644 ${unitdir#/}/sluice.service" "640 etc/sluice/sluice.yaml"
    "644 usr/share/doc/sluice/README.md" "644 usr/share/doc/sluice/configuration.md"
    "644 usr/share/doc/sluice/operations.md" "644 usr/share/doc/sluice/tls.md"
    "644 usr/share/doc/sluice/packaging.md" "644 usr/share/doc/sluice/scale-out.md")
  for ex in examples/*.yaml; do want+=("644 usr/share/doc/sluice/examples/${ex#examples/}"); done
  local got
  got=$(cd "$d" && find . -type f -printf '%m %P\n' | sort)
  local expected
  expected=$(printf '%s\n' "${want[@]}" | sort)
  if [ "$got" != "$expected" ]; then
    fail install-layout "$(diff <(echo "$expected") <(echo "$got") | grep '^[<>]' | tr '\n' ' ')"
  else
    pass "install-layout (PREFIX=/usr: $(echo "$got" | wc -l) files, modes as in the contract)"
  fi
  if grep -qx "ExecStart=/usr/sbin/sluice -c /etc/sluice/sluice.yaml" "$d/${unitdir#/}/sluice.service" &&
     ! grep -q '@[A-Z]*@' "$d/${unitdir#/}/sluice.service"; then
    pass "install-unit-paths (PREFIX=/usr)"
  else
    fail install-unit-paths "ExecStart of the PREFIX=/usr unit is not /usr/sbin/sluice -c /etc/sluice/sluice.yaml"
  fi
  if out=$("$d/usr/sbin/sluice" -t -c "$d/etc/sluice/sluice.yaml" 2>&1); then
    pass "installed-config ($out)"
  else
    fail installed-config "$out"
  fi
  # the commented starting point, with one "# " removed from each line, is valid too
  awk 'f && /^(listeners|backends): \[\]$/ {next} /^listeners: \[\]$/ {f=1; next}
       f && /^# / {sub(/^# /, "")} f && /^#$/ {$0=""} {print}' packaging/sluice.yaml >"$WORK/example.yaml"
  if out=$("$SLUICE" -t -c "$WORK/example.yaml" 2>&1) && grep -q "listener(s)" <<<"$out" &&
     ! grep -q "(0 listener" <<<"$out"; then
    pass "default-config-example ($out)"
  else
    fail default-config-example "$out"
  fi
  # default prefix: /usr/local paths in the unit, and uninstall keeps only the config
  local l=$WORK/local-root
  if make -s install DESTDIR="$l" BUILD="$BUILD" >"$log" 2>&1 &&
     grep -qx "ExecStart=/usr/local/sbin/sluice -c /usr/local/etc/sluice/sluice.yaml" \
       "$l/usr/local/lib/systemd/system/sluice.service" &&
     grep -qx "ExecStartPre=/usr/local/sbin/sluice -t -c /usr/local/etc/sluice/sluice.yaml" \
       "$l/usr/local/lib/systemd/system/sluice.service"; then
    pass "install-default-prefix (/usr/local paths in the unit)"
  else
    fail install-default-prefix "$(tail -3 "$log")"
  fi
  make -s uninstall DESTDIR="$l" BUILD="$BUILD" >"$log" 2>&1
  left=$(cd "$l" && find . -type f -printf '%P\n')
  if [ "$left" = "usr/local/etc/sluice/sluice.yaml" ]; then
    pass "uninstall (only the configuration is left)"
  else
    fail uninstall "left behind: $left"
  fi
}

# --- flags and dependencies ------------------------------------------------------------
check_flags() {
  local out
  out=$(make -n -B BUILD="$WORK/flags" CFLAGS="-fcaller-cflag" CPPFLAGS="-DCALLER_CPPFLAG" \
        LDFLAGS="-Wl,-z,caller" "$WORK/flags/sluice" 2>&1)
  local cc ld
  cc=$(grep -- " -c src/main.c" <<<"$out")
  ld=$(grep -- "-o $WORK/flags/sluice " <<<"$out")
  if grep -q -- "-DCALLER_CPPFLAG -fcaller-cflag -std=c11 .*-Werror" <<<"$cc" &&
     grep -q -- "-Wl,-z,caller .*-pthread" <<<"$ld"; then
    pass "caller-flags (caller's CPPFLAGS/CFLAGS/LDFLAGS first, the project's appended)"
  else
    fail caller-flags "compile: $cc / link: $ld"
  fi
  mkdir -p "$WORK/nopc"
  out=$(PKG_CONFIG_LIBDIR="$WORK/nopc" make -s check-build-deps 2>&1)
  local rc=$?
  if [ $rc -ne 0 ] && grep -q "^sluice: missing build dependencies (Debian packages): libssl-dev libyaml-dev libc-ares-dev libnghttp2-dev libsystemd-dev libjansson-dev; install them with 'make deps'" <<<"$out"; then
    pass "missing-deps-message"
  else
    fail missing-deps-message "exit $rc: $out"
  fi
}

# --- man pages ------------------------------------------------------------------------
check_man() {
  if ! have scdoc; then skip man "scdoc is not installed (apt-get install scdoc)"; return; fi
  if ! make -s man BUILD="$BUILD" >"$WORK/man.log" 2>&1; then
    fail man "make man: $(cat "$WORK/man.log")"; return
  fi
  local p8=$BUILD/man/sluice.8 p5=$BUILD/man/sluice.yaml.5
  if have groff; then
    local w
    w=$(groff -man -ww -z "$p8" 2>&1; groff -man -ww -z "$p5" 2>&1)
    [ -z "$w" ] && pass "man-groff (groff -man -ww -z silent on both)" || fail man-groff "$w"
  else
    skip man-groff "groff is not installed"
  fi
  if have man; then
    local w
    w=$(MANWIDTH=80 man --warnings -l "$p8" 2>&1 >/dev/null; MANWIDTH=80 man --warnings -l "$p5" 2>&1 >/dev/null)
    [ -z "$w" ] && pass "man-render (man -l: no warning)" || fail man-render "$w"
  else
    skip man-render "man-db is not installed"
  fi
  local missing="" s
  for s in NAME SYNOPSIS DESCRIPTION OPTIONS SIGNALS "EXIT STATUS" ENVIRONMENT FILES "ADMIN API" "SEE ALSO"; do
    grep -qx "\.SH $s" "$p8" || missing="$missing sluice.8:$s"
  done
  for s in NAME SYNOPSIS DESCRIPTION "TOP LEVEL" LISTENERS ROUTES BACKENDS "HOT RELOAD" EXAMPLES FILES "SEE ALSO"; do
    grep -qx "\.SH $s" "$p5" || missing="$missing sluice.yaml.5:$s"
  done
  for s in -c -t --version --help SIGHUP SIGTERM NOTIFY_SOCKET /healthz /readyz /metrics /api/v1/status /api/v1/reload; do
    grep -qF -- "$s" <(MANWIDTH=200 man -l "$p8" 2>/dev/null) || missing="$missing sluice.8:'$s'"
  done
  [ -z "$missing" ] && pass "man-sections" || fail man-sections "missing:$missing"
  local keys
  keys=$(python3 scripts/config-keys.py docs/configuration.md) || { fail man-keys "cannot list the keys"; return; }
  local text
  text=$(MANWIDTH=200 man -l "$p5" 2>/dev/null)
  missing=""
  for k in $keys shutdown_delay; do
    grep -qE "(^|[^a-z_])$k([^a-z_]|$)" <<<"$text" || missing="$missing $k"
  done
  [ -z "$missing" ] && pass "man-keys ($(wc -w <<<"$keys") keys of configuration.md in sluice.yaml(5))" ||
    fail man-keys "not in sluice.yaml(5):$missing"
}

# --- unit exposure ----------------------------------------------------------------------
check_unit() {
  if ! have systemd-analyze; then skip unit-exposure "systemd-analyze is not installed (apt-get install systemd)"; return; fi
  local unit=$WORK/usr-root/lib/systemd/system/sluice.service
  [ -f "$unit" ] || unit=$(find "$WORK/usr-root" -name sluice.service | head -1)
  # systemd 252 reads the threshold as an integer on a 0-100 scale: 20 = an exposure of 2.0
  local out
  out=$(systemd-analyze security --offline=true --threshold=20 "$unit" 2>&1)
  local rc=$? level
  level=$(grep -o "Overall exposure level for sluice.service: [0-9.]*" <<<"$out" | awk '{print $NF}')
  if [ $rc -eq 0 ] && [ -n "$level" ] && awk -v l="$level" 'BEGIN{exit !(l <= 2.0)}'; then
    pass "unit-exposure ($level, at most 2.0)"
  else
    fail unit-exposure "exit $rc, level '${level}'"
  fi
}

# --- Kubernetes manifests ---------------------------------------------------------------
check_manifests() {
  if [ ! -d packaging/kubernetes ]; then skip manifests "no packaging/kubernetes"; return; fi
  if ! /usr/bin/python3 -c 'import kubernetes, yaml' 2>/dev/null; then
    skip manifests "python3-kubernetes is not installed (apt-get install python3-kubernetes)"; return
  fi
  local out
  if out=$(/usr/bin/python3 scripts/validate-manifests.py --sluice "$SLUICE" packaging/kubernetes 2>&1); then
    pass "manifests ($out)"
  else
    fail manifests "$out"
  fi
  # the same validation rejects broken manifests: each edit below must be refused
  local edits=(
    "deployment.yaml|s/^  replicas: 2/  replica: 2/|spec.replica: unknown field"
    "deployment.yaml|s/periodSeconds: 2$/periodSeconds: \"2\"/|expected int, got str"
    "deployment.yaml|s/^        - name: sluice$/        - image2: x/|must not be \`None\`"
    "service.yaml|s/externalTrafficPolicy: Local/externalTrafficPolicy: Cluster/|externalTrafficPolicy Local"
    "configmap.yaml|s/balance: consistent_hash/balance: consistent_hsh/|fails sluice -t"
    "configmap.yaml|s/shutdown_timeout: 30s/shutdown_timeout: 50s/|terminationGracePeriodSeconds must exceed"
    "deployment.yaml|s/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/|readOnlyRootFilesystem must be True")
  local e file expr want bad=""
  for e in "${edits[@]}"; do
    IFS='|' read -r file expr want <<<"$e"
    rm -rf "$WORK/k8s" && mkdir -p "$WORK/k8s" && cp packaging/kubernetes/*.yaml "$WORK/k8s/"
    sed -i "$expr" "$WORK/k8s/$file"
    if cmp -s "$WORK/k8s/$file" "packaging/kubernetes/$file"; then bad="$bad [edit '$expr' changed nothing]"; continue; fi
    out=$(/usr/bin/python3 scripts/validate-manifests.py --sluice "$SLUICE" "$WORK/k8s" 2>&1) &&
      { bad="$bad [accepted: $expr]"; continue; }
    grep -qF -- "$want" <<<"$out" || bad="$bad [$expr: no '$want' in: $out]"
  done
  [ -z "$bad" ] && pass "manifests-negative (${#edits[@]} broken variants refused)" || fail manifests-negative "$bad"
}

check_install
check_flags
check_man
check_unit
check_manifests
echo "package-check: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
