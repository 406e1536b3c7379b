#!/usr/bin/python3
"""Checks the installed package inside a fresh bookworm root (made by scripts/deb-check.sh
with mmdebstrap): the system user, ownership and modes, the enabled unit, `sluice -t` on
the packaged configuration, then runs the daemon the way the unit does (as user sluice,
with NOTIFY_SOCKET) and checks READY=1, a forwarded TCP round trip, a SIGHUP reload
(READY=1 again), exit 0 on SIGTERM, and finally that purge removes /etc/sluice and keeps
the user. Usage: deb-rootfs-check.py ROOT   (as root; exit 0 when every check passed)"""
import os
import socket
import stat
import subprocess
import sys
import threading
import time

ROOT = sys.argv[1]
failures = []


def check(name, ok, detail=""):
    print(("  ok   " if ok else "  FAIL ") + name + ("" if ok else f": {detail}"))
    if not ok:
        failures.append(name)


def chroot(*argv, **kw):
    return subprocess.run(["chroot", ROOT, *argv], capture_output=True, text=True, **kw)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def echo_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            data = c.recv(1024)
            c.sendall(data)
            c.close()
    threading.Thread(target=serve, daemon=True).start()
    return srv


def wait(pred, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return None


# --- static state after install -------------------------------------------------------
passwd = {l.split(":")[0]: l.split(":") for l in open(f"{ROOT}/etc/passwd").read().splitlines()}
u = passwd.get("sluice")
check("user sluice (system uid, /nonexistent, nologin)",
      u is not None and 0 < int(u[2]) < 1000 and u[5] == "/nonexistent" and u[6].endswith("nologin"),
      u)
gid = {l.split(":")[0]: int(l.split(":")[2]) for l in open(f"{ROOT}/etc/group").read().splitlines()}.get("sluice")
for path, mode in (("/etc/sluice", 0o750), ("/etc/sluice/sluice.yaml", 0o640)):
    st = os.stat(ROOT + path)
    check(f"{path} root:sluice {mode:o}", st.st_uid == 0 and st.st_gid == gid and
          stat.S_IMODE(st.st_mode) == mode, (st.st_uid, st.st_gid, oct(st.st_mode)))
check("unit enabled for multi-user.target",
      os.path.islink(f"{ROOT}/etc/systemd/system/multi-user.target.wants/sluice.service"))
r = chroot("/usr/sbin/sluice", "-t", "-c", "/etc/sluice/sluice.yaml")
check("sluice -t on the packaged configuration", r.returncode == 0, r.stderr)

# --- the daemon as the unit runs it ---------------------------------------------------
backend = echo_server()
port, aport = free_port(), free_port()
with open(f"{ROOT}/etc/sluice/test.yaml", "w") as f:
    f.write(f"""workers: 2
admin: {{bind: 127.0.0.1:{aport}}}
listeners:
  - {{name: front, bind: "127.0.0.1:{port}", backend: b}}
backends:
  - {{name: b, servers: ["127.0.0.1:{backend.getsockname()[1]}"]}}
""")
os.chown(f"{ROOT}/etc/sluice/test.yaml", 0, gid)
os.chmod(f"{ROOT}/etc/sluice/test.yaml", 0o640)
os.makedirs(f"{ROOT}/run", exist_ok=True)
notify_path = f"{ROOT}/run/sluice-notify.sock"
if os.path.exists(notify_path):
    os.unlink(notify_path)
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
os.chmod(notify_path, 0o777)
notify.settimeout(10)
proc = subprocess.Popen(
    ["chroot", ROOT, "setpriv", "--reuid=sluice", "--regid=sluice", "--init-groups",
     "--inh-caps=-all", "env", "NOTIFY_SOCKET=/run/sluice-notify.sock",
     "/usr/sbin/sluice", "-c", "/etc/sluice/test.yaml"],
    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
try:
    msg = notify.recv(4096).decode()
    check("READY=1 on NOTIFY_SOCKET", "READY=1" in msg, msg)
    ok = False
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(b"through the package")
        ok = c.recv(1024) == b"through the package"
        c.close()
    except OSError as e:
        ok = str(e)
    check("TCP forwarded", ok is True, ok)
    ps = subprocess.run(["ps", "-o", "user=", "-p", str(proc.pid)], capture_output=True, text=True)
    children = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
    pid = int(children[0]) if children else proc.pid
    owner = os.stat(f"/proc/{pid}").st_uid
    check("runs as user sluice", owner == int(u[2]), (owner, ps.stdout))
    os.kill(pid, 1)
    msg = notify.recv(4096).decode()
    check("SIGHUP: reloaded, READY=1 again", "READY=1" in msg and proc.poll() is None, msg)
    os.kill(pid, 15)
    rc = proc.wait(timeout=15)
    err = proc.stderr.read()
    check("exit 0 on SIGTERM", rc == 0, (rc, err[-500:]))
    check("reload logged", "configuration reloaded" in err, err[-500:])
finally:
    if proc.poll() is None:
        proc.kill()
    backend.close()
    os.unlink(f"{ROOT}/etc/sluice/test.yaml")

# --- purge ------------------------------------------------------------------------------
r = chroot("dpkg", "--purge", "sluice")
check("dpkg --purge", r.returncode == 0, r.stderr)
check("purge removed /etc/sluice", not os.path.exists(f"{ROOT}/etc/sluice"))
check("purge kept the user", "sluice:" in open(f"{ROOT}/etc/passwd").read())
sys.exit(1 if failures else 0)
