#!/bin/sh
# Checks that the build dependencies are there before anything is compiled, and otherwise
# stops with one line naming the missing Debian packages and how to install them.
# Usage: scripts/check-build-deps.sh [CC]   (exit 0: all there; 1: something missing)
cc=${1:-cc}
missing=""
command -v "$cc" >/dev/null 2>&1 || missing="$missing build-essential"
if ! command -v pkg-config >/dev/null 2>&1; then
  missing="$missing pkgconf"
  # without pkg-config nothing else can be checked: name every library package
  missing="$missing libssl-dev libyaml-dev libc-ares-dev libnghttp2-dev libsystemd-dev libjansson-dev"
else
  # pkg-config module -> Debian package
  for pair in openssl:libssl-dev yaml-0.1:libyaml-dev libcares:libc-ares-dev \
              libnghttp2:libnghttp2-dev libsystemd:libsystemd-dev jansson:libjansson-dev; do
    pkg-config --exists "${pair%%:*}" || missing="$missing ${pair#*:}"
  done
fi
[ -z "$missing" ] && exit 0
echo "sluice: missing build dependencies (Debian packages):$missing; install them with 'make deps' (as root) or 'apt-get install$missing'" >&2
exit 1
