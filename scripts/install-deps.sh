#!/usr/bin/env bash
# Installs the Debian packages sluice needs to build, test or benchmark.
# Usage: scripts/install-deps.sh [build|run|test|package|bench|all]   (default: test)
# run: what `make run` and the README's quick-start commands use (curl, socat, websockets).
#   test: what `make test` needs (make package-check included)
#   package: what `make deb` and `make image` need (debhelper, lintian, mmdebstrap, umoci,
#   podman with runc)
# Does nothing for packages already present; needs root only when something is missing.
set -euo pipefail

build_pkgs=(build-essential pkg-config libssl-dev libyaml-dev libc-ares-dev
            libnghttp2-dev libsystemd-dev libjansson-dev openssl)
run_pkgs=(curl socat python3-websockets)
test_pkgs=(libcmocka-dev python3-pytest python3-yaml python3-h2 python3-hyperframe python3-hpack
           python3-websockets curl socat
           clang libclang-rt-14-dev chromium testssl.sh wrk
           scdoc groff man-db systemd strace python3-kubernetes)
package_pkgs=(scdoc debhelper lintian fakeroot dpkg-dev mmdebstrap umoci podman runc uidmap
              python3-kubernetes)
bench_pkgs=(haproxy nginx libnginx-mod-stream iperf3 nghttp2-client python3-h2 procps wrk)

want=("${build_pkgs[@]}")
case "${1:-test}" in
  build) ;;
  run) want+=("${run_pkgs[@]}") ;;
  test) want+=("${test_pkgs[@]}") ;;
  package) want+=("${package_pkgs[@]}") ;;
  bench) want+=("${bench_pkgs[@]}") ;;
  all) want+=("${test_pkgs[@]}" "${package_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 [build|run|test|package|bench|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "run as root: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
