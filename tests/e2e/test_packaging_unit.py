"""The hardened systemd unit (packaging/sluice.service.in): its exposure score, and proof
that the daemon never makes a system call that its SystemCallFilter=~@resources denies."""
import os
import re
import shutil
import signal
import subprocess

import pytest

from helpers import (REPO, SLUICE_BIN, Sluice, connect, echo_roundtrip, free_port, l4_config,
                     scaled, wait_for)
from test_gaps_logs import logged

UNIT_IN = os.path.join(REPO, "packaging", "sluice.service.in")


def unit_text():
    with open(UNIT_IN) as f:
        return (f.read().replace("@SBINDIR@", "/usr/sbin").replace("@SYSCONFDIR@", "/etc"))


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_unit_exposure_at_most_2(tmp_path):
    """`systemd-analyze security --offline=true` rates the unit at most 2.0 and names the
    hardening of the contract; removing the sandboxing makes the same check fail."""
    unit = tmp_path / "sluice.service"
    unit.write_text(unit_text())
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=20",
                        str(unit)], capture_output=True, text=True)
    level = float(re.search(r"Overall exposure level for sluice.service: ([0-9.]+)",
                            r.stdout).group(1))
    assert r.returncode == 0 and level <= 2.0, (level, r.stdout[-2000:])
    for line in ("UMask=0077", "ProcSubset=pid", "PrivateMounts=yes", "DevicePolicy=closed",
                 "SystemCallFilter=~@resources", "Type=notify",
                 "Documentation=man:sluice(8) man:sluice.yaml(5)",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "ProtectSystem=strict",
                 "ExecStartPre=/usr/sbin/sluice -t -c /etc/sluice/sluice.yaml",
                 "ExecReload=/bin/kill -HUP $MAINPID", "User=sluice"):
        assert line in unit.read_text().splitlines(), line
    # TimeoutStopSec stays above shutdown_delay + shutdown_timeout of the default config
    stop = int(re.search(r"^TimeoutStopSec=(\d+)s$", unit.read_text(), re.M).group(1))
    assert stop > 0 + 30
    # the check can fail: a unit without the sandboxing is rated far above 2.0
    weak = "\n".join(x for x in unit.read_text().splitlines()
                     if not x.startswith(("Protect", "Private", "SystemCall", "Restrict",
                                          "CapabilityBoundingSet", "User=", "Group=")))
    unit.write_text(weak)
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=20",
                        str(unit)], capture_output=True, text=True)
    assert r.returncode != 0


def resources_syscalls():
    out = subprocess.run(["systemd-analyze", "syscall-filter", "@resources"],
                         capture_output=True, text=True, check=True).stdout
    return [x.strip() for x in out.splitlines()[2:] if x.strip() and not x.strip().startswith("#")]


@pytest.mark.skipif(not (shutil.which("strace") and shutil.which("systemd-analyze")),
                    reason="strace or systemd-analyze not installed")
def test_daemon_never_uses_resources_syscalls(tmp_path, demo):
    """A whole run under strace -f (start with two workers, proxied traffic, a reload, the
    admin API, a graceful stop) makes none of the @resources system calls that the unit
    denies, so SystemCallFilter=~@resources cannot break the daemon."""
    calls = resources_syscalls()
    assert "setrlimit" in calls and "sched_setaffinity" in calls, calls
    b = demo("echo")
    port, aport = free_port(), free_port()
    text = l4_config([{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
                     [{"name": "pool", "servers": [{"address": b.address}],
                       "health": {"interval": "100ms"}}],
                     admin={"bind": f"127.0.0.1:{aport}"})
    trace = tmp_path / "strace.out"
    # strace runs sluice: "-c FILE" is appended by Sluice after args
    s = Sluice(tmp_path, text, name="traced", wait=False, args=())
    s.kill()  # replaced below by the traced process, same files
    s.proc = subprocess.Popen(
        ["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=" + ",".join(calls),
         SLUICE_BIN, "-c", s.config_path],
        stdout=open(s.out_path, "w"), stderr=open(s.err_path, "w"), cwd=str(tmp_path),
        start_new_session=True,
        # LeakSanitizer cannot run under ptrace; leaks are the other tests' concern
        env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    def sluice_pid():
        with open(f"/proc/{s.proc.pid}/task/{s.proc.pid}/children") as f:
            return int(f.read().split()[0])

    try:
        s.wait_listening([port, aport], timeout=scaled(20))
        # a probed server serves once its first probe passed (slow under strace + ASan)
        wait_for(lambda: f"server {b.address} of backend pool is UP" in s.stderr(),
                 scaled(20), what="the server UP")
        pid = sluice_pid()  # signals go to sluice, not to strace
        s.signal = lambda sig: os.kill(pid, sig)
        for _ in range(5):
            echo_roundtrip(connect(port))
        s.reload()
        logged(s, "info", f"configuration reloaded from {s.config_path} (generation 2)",
               timeout=scaled(10))
        echo_roundtrip(connect(port))
        s.signal(signal.SIGTERM)
        wait_for(lambda: s.proc.poll() is not None, scaled(20), what="traced sluice exit")
        assert s.proc.returncode == 0, s.stderr()
    finally:
        if s.proc.poll() is None:
            os.killpg(s.proc.pid, signal.SIGKILL)
            s.proc.wait()
    used = [x for x in trace.read_text().splitlines() if x.strip()
            and not x.split(None, 1)[-1].startswith(("+++", "---"))]
    assert used == [], used
