#!/usr/bin/env python3
"""Instructions per short proxied connection, measured with callgrind: sluice (1 worker)
runs a tcp listener in front of the demo echo server; N connections each send one byte,
read the echo and close. Run with N1 and N2 connections; the difference divided by
N2 - N1 is the cost per connection (start-up and shutdown cancel out)."""
import os, socket, subprocess, sys, tempfile, time, re, signal
# Usage: bench/callgrind_conn.py BUILD_DIR   (needs valgrind; about a minute)
# Instruction counts are repeatable whatever else the machine does (unlike timings).
build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def run(n):
    d = tempfile.mkdtemp()
    bp, lp = free_port(), free_port()
    demo = subprocess.Popen([f"{build}/sluice-demo", "--listen", f"127.0.0.1:{bp}", "--mode", "echo"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg = f"{d}/s.yaml"
    open(cfg, "w").write(f"workers: 1\nlog: {{access: off}}\nlisteners:\n- name: e\n  bind: 127.0.0.1:{lp}\n  backend: b\nbackends:\n- name: b\n  servers: [127.0.0.1:{bp}]\n")
    out = f"{d}/cg.out"
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", f"{build}/sluice", "-c", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", lp), timeout=1).close(); break
        except OSError: time.sleep(0.1)
    for i in range(n):
        c = socket.create_connection(("127.0.0.1", lp), timeout=10)
        c.sendall(b"x"); assert c.recv(1) == b"x"; c.close()
    p.send_signal(signal.SIGTERM); p.wait(120); demo.terminate(); demo.wait()
    txt = subprocess.run(["callgrind_annotate", out], capture_output=True, text=True).stdout
    m = re.search(r"([\d,]+)\s+\(100.0%\)\s+PROGRAM TOTALS", txt) or re.search(r"([\d,]+)\s+PROGRAM TOTALS", txt)
    return int(m.group(1).replace(",", ""))
a, b = run(200), run(1200)
print(f"{build}: {(b - a) / 1000:.0f} instructions per connection (totals {a} / {b})")
