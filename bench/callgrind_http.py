#!/usr/bin/env python3
"""Instructions per proxied HTTP/1.1 request, measured with callgrind: sluice (1 worker)
runs an http listener in front of the recording backend (tests/e2e/httpbackend.py); one
keep-alive client sends N GET requests. Run with N1 and N2 requests; the difference
divided by N2 - N1 is the cost per request (start-up and shutdown cancel out).
Usage: bench/callgrind_http.py BUILD_DIR [single|routes10]   (needs valgrind)
  single:   one route (path_prefix /), no actions
  routes10: ten routes, the request takes the last, which has request and response
            header actions with variables and a prefix rewrite"""
import os, re, signal, socket, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from httpbackend import HttpBackend  # noqa: E402
build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
kind = sys.argv[2] if len(sys.argv) > 2 else "single"
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def routes():
    if kind == "single":
        return "  routes:\n  - {match: {path_prefix: /}, backend: b}\n"
    r = "  routes:\n"
    for i in range(9):
        r += f"  - {{match: {{path_prefix: /r{i}, headers: {{X-R: \"{i}\"}}}}, backend: b}}\n"
    r += ("  - match: {path_prefix: /api}\n    backend: b\n    rewrite: {strip_prefix: /api}\n"
          "    request_headers: {set: {X-Client: \"{client_ip}\", X-Id: \"{request_id}\"}, remove: [Cookie]}\n"
          "    response_headers: {set: {X-Served-By: \"sluice {server}\"}, add: {X-S: \"{status}\"}}\n")
    return r
def run(n, be):
    d = tempfile.mkdtemp()
    lp = free_port()
    cfg = f"{d}/s.yaml"
    open(cfg, "w").write(f"workers: 1\nlog: {{access: off}}\nlisteners:\n- name: e\n  bind: 127.0.0.1:{lp}\n"
                         f"  protocol: http\n{routes()}backends:\n- name: b\n  protocol: http\n"
                         f"  servers: [{be.address}]\n")
    out = f"{d}/cg.out"
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", f"{build}/sluice", "-c", cfg],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(600):
        if p.poll() is not None:
            sys.exit("sluice exited: " + p.stderr.read().decode())
        try:
            socket.create_connection(("127.0.0.1", lp), timeout=1).close(); break
        except OSError: time.sleep(0.1)
    c = socket.create_connection(("127.0.0.1", lp), timeout=60)
    req = b"GET /api/v1/items?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\nCookie: a=1\r\n\r\n"
    for i in range(n):
        c.sendall(req)
        buf = b""
        while not re.search(rb"\r\n\r\n.*body=0\n", buf, re.S):
            d2 = c.recv(65536)
            assert d2, buf
            buf += d2
    c.close()
    p.send_signal(signal.SIGTERM); p.wait(120)
    txt = subprocess.run(["callgrind_annotate", out], capture_output=True, text=True).stdout
    m = re.search(r"([\d,]+)\s+\(100.0%\)\s+PROGRAM TOTALS", txt) or re.search(r"([\d,]+)\s+PROGRAM TOTALS", txt)
    return int(m.group(1).replace(",", ""))
be = HttpBackend()
n1, n2 = 100, 900  # under the default keepalive_requests (1000)
a, b = run(n1, be), run(n2, be)
be.close()
print(f"{kind}: {(b - a) / (n2 - n1):.0f} instructions per request ({build})")
