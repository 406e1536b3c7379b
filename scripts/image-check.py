#!/usr/bin/python3
"""Checks the OCI image (shared/spec/packaging.md, "OCI image"): its config (entrypoint,
cmd, numeric non-root user, stop signal, labels), its uncompressed size (at most 150 MB),
then loads it into podman and runs it with a mounted /etc/sluice: it forwards TCP,
answers /readyz 200, and exits 0 on `podman stop` (SIGTERM).
Usage: image-check.py build/image/sluice_<version>_<arch>.oci.tar   (as root)"""
import json
import os
import resource
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request

archive = sys.argv[1]
failures = []


def check(name, ok, detail=""):
    print(("  ok   " if ok else "  FAIL ") + name + ("" if ok else f": {detail}"))
    if not ok:
        failures.append(name)


with tarfile.open(archive) as t:
    def blob(digest):
        return t.extractfile("./blobs/sha256/" + digest.split(":", 1)[1]).read()
    index = json.loads(t.extractfile("./index.json").read())
    ref = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    config = json.loads(blob(manifest["config"]["digest"]))
    version = ref.split(":", 1)[1]
    layer_bytes = 0
    import gzip
    import io
    for layer in manifest["layers"]:
        data = blob(layer["digest"])
        if layer["mediaType"].endswith("gzip"):
            data = gzip.decompress(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as lt:
            layer_bytes += sum(m.size for m in lt.getmembers())
c = config["config"]
check("tag sluice:<version>", ref == f"sluice:{version}", ref)
check("Entrypoint", c.get("Entrypoint") == ["/usr/sbin/sluice"], c.get("Entrypoint"))
check("Cmd", c.get("Cmd") == ["-c", "/etc/sluice/sluice.yaml"], c.get("Cmd"))
uid, _, gid = c.get("User", "").partition(":")
check("User numeric, non-zero", uid.isdigit() and gid.isdigit() and int(uid) > 0 and int(gid) > 0,
      c.get("User"))
check("StopSignal SIGTERM", c.get("StopSignal") == "SIGTERM", c.get("StopSignal"))
labels = c.get("Labels", {})
check("labels", labels.get("org.opencontainers.image.title") == "sluice" and
      labels.get("org.opencontainers.image.version") == version and
      labels.get("org.opencontainers.image.licenses") == "Apache-2.0" and
      "org.opencontainers.image.source" in labels, labels)
check(f"size {layer_bytes / 1e6:.1f} MB <= 150 MB", layer_bytes <= 150e6)

podman = ["podman", "--runtime", "runc"]
r = subprocess.run(podman + ["load", "-i", archive], capture_output=True, text=True)
check("podman load", r.returncode == 0, r.stderr[-500:])
image = f"localhost/sluice:{version}"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(4)


def echo():
    while True:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        conn.sendall(conn.recv(1024))
        conn.close()


threading.Thread(target=echo, daemon=True).start()
port, aport = free_port(), free_port()
conf = tempfile.mkdtemp()
with open(os.path.join(conf, "sluice.yaml"), "w") as f:
    f.write(f"""workers: 1
shutdown_delay: 1s
admin: {{bind: 127.0.0.1:{aport}}}
listeners: [{{name: front, bind: "127.0.0.1:{port}", backend: b}}]
backends: [{{name: b, servers: ["127.0.0.1:{srv.getsockname()[1]}"]}}]
""")
os.chmod(conf, 0o755)
os.chmod(os.path.join(conf, "sluice.yaml"), 0o644)
name = f"sluice-image-check-{os.getpid()}"


def hard(which):
    h = resource.getrlimit(which)[1]
    return 1 << 20 if h == resource.RLIM_INFINITY else h


r = subprocess.run(podman + ["run", "-d", "--name", name, "--network", "host",
                             # modest limits, within what conmon/runc may set on this host
                             # (podman's defaults may exceed them: "setting rlimit ...
                             # operation not permitted")
                             "--ulimit", "nofile={0}:{0}".format(min(4096, hard(resource.RLIMIT_NOFILE))),
                             "--ulimit", "nproc={0}:{0}".format(min(4096, hard(resource.RLIMIT_NPROC))),
                             "-v", f"{conf}:/etc/sluice:ro", image], capture_output=True, text=True)
check("podman run", r.returncode == 0, r.stderr[-800:])
try:
    ready = None
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{aport}/readyz", timeout=1) as resp:
                ready = (resp.status, resp.read())
                break
        except OSError:
            time.sleep(0.1)
    check("/readyz 200 ready", ready == (200, b"ready\n"), ready)
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"through the image")
        got = s.recv(1024)
        s.close()
    except OSError as e:
        got = str(e)
    check("TCP forwarded", got == b"through the image", got)
    r = subprocess.run(podman + ["stop", "-t", "20", name], capture_output=True, text=True)
    code = subprocess.run(podman + ["inspect", "--format", "{{.State.ExitCode}}", name],
                          capture_output=True, text=True).stdout.strip()
    logs = subprocess.run(podman + ["logs", name], capture_output=True, text=True).stderr
    check("exit 0 on podman stop (SIGTERM)", ready is not None and r.returncode == 0 and code == "0",
          (code, logs[-800:]))
    check("drain delay logged", "shutdown: not ready, listeners close in 1s (shutdown_delay)" in logs,
          logs[-800:])
finally:
    subprocess.run(podman + ["rm", "-f", name], capture_output=True)
    srv.close()
sys.exit(1 if failures else 0)
