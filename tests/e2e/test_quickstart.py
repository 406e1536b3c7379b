"""The quickstart (`make run`): examples/quickstart.yaml as shipped, its ports moved to
free ones, behind the same demo servers scripts/quickstart.sh starts. What the README
promises: HTTP balanced over web-1 and web-2 with the X-Forwarded-For sluice added, the
/api route to web-2 only, the WebSocket echo at /ws (with the README's own command,
`python3 -m websockets`, from Debian's python3-websockets), the echo service, the metrics."""
import http.client
import os
import re
import subprocess

import yaml

from helpers import REPO, connect, echo_roundtrip, free_port, wait_for, scaled


def test_quickstart_config_serves_what_the_readme_shows(sluice, demo):
    doc = yaml.safe_load(open(os.path.join(REPO, "examples", "quickstart.yaml")))
    names = {"127.0.0.1:9001": ("http", "web-1"), "127.0.0.1:9002": ("http", "web-2"),
             "127.0.0.1:9003": ("websocket", "ws-1"), "127.0.0.1:9101": ("echo", "echo-1")}
    moved = {}
    for address, (mode, name) in names.items():
        moved[address] = demo(mode, name=name).address
    for b in doc["backends"]:
        for s in b["servers"]:
            s["address"] = moved[s["address"]]
    ports = {}
    for lst in doc["listeners"]:
        ports[lst["name"]] = free_port()
        lst["bind"] = f"127.0.0.1:{ports[lst['name']]}"
    admin_port = free_port()
    doc["admin"]["bind"] = f"127.0.0.1:{admin_port}"
    doc["workers"] = 2
    s = sluice(yaml.safe_dump(doc, sort_keys=False))
    s.wait_listening([admin_port])

    def get(path):
        c = http.client.HTTPConnection("127.0.0.1", ports["web"], timeout=scaled(5))
        c.request("GET", path)
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return r.status, body

    # web-1 answers once its first health probe passed; then both share the traffic
    wait_for(lambda: "web-1" in get("/")[1], scaled(10), what="web-1 in the rotation")
    seen = set()
    for _ in range(9):
        status, body = get("/")
        assert status == 200, body
        m = re.fullmatch(r"hello from (web-[12]) \(X-Forwarded-For: 127\.0\.0\.1\)\n", body)
        assert m, body
        seen.add(m.group(1))
    assert seen == {"web-1", "web-2"}
    for _ in range(4):
        assert get("/api/users") == (200, "hello from web-2 (X-Forwarded-For: 127.0.0.1)\n")
    # the README's WebSocket command: a line typed in comes back through sluice; stdin
    # stays open until it did (the tool closes at end of input)
    out_path = os.path.join(s.workdir, "ws-cli.out")
    url = f"ws://127.0.0.1:{ports['web']}/ws"
    with open(out_path, "w") as out:
        cli = subprocess.Popen(["/usr/bin/python3", "-m", "websockets", url],
                               stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
    try:
        cli.stdin.write(b"hello websocket\n")
        cli.stdin.flush()
        wait_for(lambda: "< hello websocket" in open(out_path).read(), scaled(10),
                 what="the line echoed back")
        cli.stdin.close()
        assert cli.wait(timeout=scaled(10)) == 0
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    text = open(out_path).read()
    assert f"Connected to {url}." in text and "Connection closed: 1000 (OK)." in text, text
    c = connect(ports["echo"])
    echo_roundtrip(c, b"hi\n")
    c.close()
    m = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=scaled(5))
    m.request("GET", "/metrics")
    text = m.getresponse().read().decode()
    assert re.search(r'sluice_requests_total\{listener="web",backend="api-pool",code="2xx"\} 4', text), \
        [ln for ln in text.splitlines() if "requests_total" in ln]
    assert re.search(r'sluice_requests_total\{listener="web",backend="ws-pool",code="1xx"\} 1', text), \
        [ln for ln in text.splitlines() if "requests_total" in ln]
    s.stop()
