#!/usr/bin/env bash
# Builds the sluice OCI image offline from the .deb: mmdebstrap (minbase bookworm, slim
# path excludes, the .deb and ca-certificates) makes the root file system, umoci wraps it
# into an OCI image layout, written as build/image/sluice_<version>_<arch>.oci.tar (what
# `podman load -i` and `skopeo copy oci-archive:` read). No registry, no Dockerfile, no
# daemon. SOURCE_DATE_EPOCH comes from debian/changelog.
# Usage: packaging/container/build-image.sh path/to/sluice_<version>_<arch>.deb [OUT_DIR]
set -euo pipefail
deb=$(realpath "$1")
out=$(realpath -m "${2:-build/image}")
for tool in mmdebstrap:mmdebstrap umoci:umoci dpkg-parsechangelog:dpkg-dev; do
  command -v "${tool%%:*}" >/dev/null || {
    echo "make image: ${tool%%:*} is missing: apt-get install ${tool#*:} (or scripts/install-deps.sh package)" >&2
    exit 1
  }
done
version=$(dpkg-deb -f "$deb" Version)
arch=$(dpkg-deb -f "$deb" Architecture)
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(dpkg-parsechangelog -STimestamp)}
export SOURCE_DATE_EPOCH
work=$(mktemp -d /tmp/sluice-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
name=$(basename "$deb")
# where the source lives: SLUICE_SOURCE_URL, else the git remote "origin"
source=${SLUICE_SOURCE_URL:-$(git remote get-url origin 2>/dev/null || echo unknown)}

# 1. the root file system. systemd-standalone-sysusers satisfies the package's sysusers
# dependency without pulling in all of systemd.
mmdebstrap --variant=minbase --architectures="$arch" \
  --include=ca-certificates,systemd-standalone-sysusers \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --customize-hook="copy-in $deb /tmp" \
  --customize-hook="chroot \"\$1\" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends /tmp/$name" \
  --customize-hook="rm -f \"\$1\"/tmp/$name" \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/* "$1"/etc/machine-id' \
  --customize-hook="chroot \"\$1\" id -u sluice > $work/uid" \
  --customize-hook="chroot \"\$1\" id -g sluice > $work/gid" \
  bookworm "$work/rootfs.tar"
uid=$(cat "$work/uid") gid=$(cat "$work/gid")
[ "$uid" -gt 0 ] && [ "$gid" -gt 0 ] || { echo "build-image: the sluice user has uid $uid gid $gid" >&2; exit 1; }

# 2. the OCI layout
tag=$version
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
umoci init --layout "$work/oci"
umoci new --image "$work/oci:$tag"
umoci unpack --image "$work/oci:$tag" "$work/bundle" >/dev/null
tar -C "$work/bundle/rootfs" --numeric-owner -xpf "$work/rootfs.tar"
umoci repack --history.created_by "mmdebstrap minbase bookworm + sluice .deb" --history.created "$created" --image "$work/oci:$tag" "$work/bundle"
umoci config --image "$work/oci:$tag" --no-history \
  --os linux --architecture "$arch" --created "$created" \
  --config.entrypoint /usr/sbin/sluice \
  --config.cmd -c --config.cmd /etc/sluice/sluice.yaml \
  --config.user "$uid:$gid" \
  --config.stopsignal SIGTERM \
  --config.workingdir / \
  --config.label org.opencontainers.image.title=sluice \
  --config.label "org.opencontainers.image.version=$version" \
  --config.label "org.opencontainers.image.source=$source" \
  --config.label org.opencontainers.image.licenses=Apache-2.0 \
  --manifest.annotation org.opencontainers.image.title=sluice \
  --manifest.annotation "org.opencontainers.image.version=$version"
umoci gc --layout "$work/oci"
# the reference podman and skopeo name the image by: sluice:<version>
python3 - "$work/oci/index.json" "sluice:$version" <<'PY'
import json, sys
path, ref = sys.argv[1], sys.argv[2]
idx = json.load(open(path))
for m in idx["manifests"]:
    m.setdefault("annotations", {})["org.opencontainers.image.ref.name"] = ref
json.dump(idx, open(path, "w"))
PY
mkdir -p "$out"
tarball="$out/sluice_${version}_${arch}.oci.tar"
tar -C "$work/oci" --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
  -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
size=$(tar -tvf "$work/rootfs.tar" | awk '{s += $3} END {printf "%.1f", s / 1e6}')
echo "$tarball: sluice:$version, user $uid:$gid, root file system $size MB uncompressed"
