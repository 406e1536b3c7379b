#!/usr/bin/env bash
# The Debian package, checked end to end (shared/spec/packaging.md, "Debian package"):
#  1. builds it with dpkg-buildpackage -us -uc -b in a clean clone of HEAD;
#  2. lintian: no E: and no W: tag;
#  3. contents: conffiles, sysusers file, unit, man pages, copyright, shlibs Depends;
#  4. with ROOTFS=1 (needs mmdebstrap and the Debian mirror): installs it into a fresh
#     bookworm root and runs the daemon there as the unit would (user sluice,
#     NOTIFY_SOCKET): READY=1, TCP forwarded, SIGHUP survived, exit 0 on SIGTERM; then
#     purge removes /etc/sluice and keeps the user.
# Usage: scripts/deb-check.sh [OUT_DIR]   (default /tmp/sluice-deb-check); prints
# PASS/FAIL lines and "N passed, N failed".
set -uo pipefail
OUT=${1:-/tmp/sluice-deb-check}
TOP=$(git rev-parse --show-toplevel)
passed=0 failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
finish() { echo "deb-check: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }

for tool in dpkg-buildpackage dh lintian; do
  command -v $tool >/dev/null || { echo "deb-check: $tool is missing: scripts/install-deps.sh package" >&2; exit 1; }
done
rm -rf "$OUT" && mkdir -p "$OUT"
git clone -q "$TOP" "$OUT/sluice" && git -C "$OUT/sluice" checkout -q "$(git -C "$TOP" rev-parse HEAD)"
if (cd "$OUT/sluice" && dpkg-buildpackage -us -uc -b -j2) >"$OUT/build.log" 2>&1; then
  pass "dpkg-buildpackage ($(cd "$OUT" && ls ./*.deb | tr '\n' ' '))"
else
  fail dpkg-buildpackage "$(tail -5 "$OUT/build.log")"; finish
fi
version=$("$OUT/sluice/build/sluice" --version | head -1 | cut -d' ' -f2)
deb=$(ls "$OUT"/sluice_"${version}"_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] && pass "version (.deb version = sluice --version = $version)" ||
  fail version "no sluice_${version}_*.deb (sluice --version says $version)"
[ -n "$deb" ] || finish

tags=$(lintian "$OUT"/sluice_*.changes 2>&1 | grep -v "running with root privileges")
bad=$(grep -E "^[EW]: " <<<"$tags")
[ -z "$bad" ] && pass "lintian (no E: or W:; $(grep -c . <<<"$tags") other line(s))" || fail lintian "$bad"

# the build's compile lines carry the hardening flags
if grep -- " -c src/main.c" "$OUT/build.log" | grep -q -- "-D_FORTIFY_SOURCE=2 .*-fstack-protector-strong .*-Werror"; then
  pass "hardening-flags (dpkg-buildflags reach the compile lines)"
else
  fail hardening-flags "$(grep -- ' -c src/main.c' "$OUT/build.log")"
fi

ctl=$OUT/control; mkdir -p "$ctl"; dpkg-deb -e "$deb" "$ctl"
list=$(dpkg-deb -c "$deb" | awk '{print $6}')
missing=""
for f in ./usr/sbin/sluice ./usr/share/man/man8/sluice.8.gz ./usr/share/man/man5/sluice.yaml.5.gz \
         ./lib/systemd/system/sluice.service ./etc/sluice/sluice.yaml ./etc/logrotate.d/sluice \
         ./usr/lib/sysusers.d/sluice.conf ./usr/share/doc/sluice/copyright; do
  grep -qx -- "$f" <<<"$list" || missing="$missing $f"
done
[ -z "$missing" ] && pass "contents" || fail contents "missing:$missing"
if [ "$(sort "$ctl/conffiles")" = "$(printf '/etc/logrotate.d/sluice\n/etc/sluice/sluice.yaml')" ]; then
  pass "conffiles"
else
  fail conffiles "$(cat "$ctl/conffiles")"
fi
depends=$(dpkg-deb -f "$deb" Depends)
if grep -q "libssl3" <<<"$depends" && grep -q "libyaml-0-2" <<<"$depends" &&
   grep -q "systemd-sysusers" <<<"$depends"; then
  pass "depends ($depends)"
else
  fail depends "$depends"
fi
if grep -q "deb-systemd-helper enable 'sluice.service'" "$ctl/postinst" &&
   grep -q "systemd-sysusers" "$ctl/postinst" && ! grep -qE "_dh_action=restart|invoke restart" "$ctl/postinst" &&
   grep -q "deb-systemd-invoke reload sluice.service" "$ctl/postinst" &&
   grep -q "rm -rf /etc/sluice /var/log/sluice" "$ctl/postrm"; then
  pass "maintainer-scripts (user, enable+start, reload on upgrade, purge)"
else
  fail maintainer-scripts "see $ctl/postinst and postrm"
fi

[ "${ROOTFS:-0}" = 1 ] || finish
command -v mmdebstrap >/dev/null || { fail rootfs "mmdebstrap is missing"; finish; }
root=$OUT/root
# the .deb is copied in and installed by apt inside the root (so its dependencies come
# from the mirror and its maintainer scripts run there)
name=$(basename "$deb")
if ! mmdebstrap --variant=minbase --include=ca-certificates \
     --customize-hook="copy-in $deb /tmp" \
     --customize-hook="chroot \"\$1\" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q /tmp/$name" \
     --customize-hook="rm -f \"\$1\"/tmp/$name" \
     bookworm "$root" >"$OUT/mmdebstrap.log" 2>&1; then
  fail rootfs "$(tail -5 "$OUT/mmdebstrap.log")"; finish
fi
pass "rootfs (fresh bookworm root with the package)"
python3 "$TOP/scripts/deb-rootfs-check.py" "$root" && pass "rootfs-run" || fail rootfs-run "see above"
finish
