#!/usr/bin/env bash
# Runs libFuzzer harnesses for a short time each; exits non-zero as soon as one finds a
# crash, a leak or a timeout (printing the end of its output and the crash input's path).
#
# Usage: scripts/fuzz-smoke.sh [--expect-crash] BUILD_DIR SECONDS HARNESS...
#   Each HARNESS is a built binary BUILD_DIR/NAME. Seeds come from tests/fuzz/corpus/NAME;
#   tests/fuzz/NAME.dict, when present, is passed as -dict; tests/fuzz/NAME.flags, when
#   present, holds extra libFuzzer flags (one line, e.g. -max_len=300000). The working
#   corpus grows in BUILD_DIR/corpus-NAME; crash files go to BUILD_DIR/crash-NAME-*.
#   --expect-crash inverts the verdict: the gate's self-test, which must see a failure.
set -uo pipefail

expect_crash=0
if [ "${1:-}" = "--expect-crash" ]; then
  expect_crash=1
  shift
fi
[ $# -ge 3 ] || { echo "usage: $0 [--expect-crash] BUILD_DIR SECONDS HARNESS..." >&2; exit 2; }
build=$1 seconds=$2
shift 2
here=$(cd "$(dirname "$0")/.." && pwd)

for bin in "$@"; do
  name=$(basename "$bin")
  corpus="$build/corpus-$name"
  mkdir -p "$corpus"
  args=(-max_total_time="$seconds" -print_final_stats=0 -artifact_prefix="$build/crash-$name-")
  [ -f "$here/tests/fuzz/$name.dict" ] && args+=(-dict="$here/tests/fuzz/$name.dict")
  if [ -f "$here/tests/fuzz/$name.flags" ]; then
    read -r -a extra < "$here/tests/fuzz/$name.flags"
    args+=("${extra[@]}")
  fi
  seeds=()
  [ -d "$here/tests/fuzz/corpus/$name" ] && seeds+=("$here/tests/fuzz/corpus/$name")
  echo "== fuzz $name (${seconds}s)"
  log="$build/fuzz-$name.log"
  "$bin" "${args[@]}" "$corpus" "${seeds[@]}" > "$log" 2>&1
  rc=$?
  if [ "$expect_crash" = 1 ]; then
    if [ $rc -eq 0 ]; then
      echo "fuzz gate self-test: $name did not fail, so the gate cannot catch a crash" >&2
      exit 1
    fi
    echo "fuzz gate self-test: a crashing harness fails the gate (exit $rc), as it must"
    continue
  fi
  if [ $rc -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "fuzz $name FAILED (exit $rc); crash input: $(ls "$build"/crash-"$name"-* 2>/dev/null | head -n 1)" >&2
    exit 1
  fi
  tail -n 2 "$log"
done
