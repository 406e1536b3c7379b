"""Reload under load (issue: "reload under wrk load with keep-alive clients: 0 failed
requests"): wrk keeps 32 keep-alive connections busy against an http listener while the
configuration is reloaded ten times, each reload changing the route table; no request
may fail (test_http_proxy.py shows that an open keep-alive connection takes the new
routes)."""
import re
import shutil
import signal
import subprocess

import pytest

from helpers import free_port, l4_config, scaled, wait_for


def config(port, servers, variant):
    routes = [{"match": {"path_prefix": f"/v{variant}"}, "backend": "pool"}]
    return l4_config(
        [{"name": "web", "bind": f"127.0.0.1:{port}", "protocol": "http", "backend": "pool",
          "routes": routes}],
        [{"name": "pool", "protocol": "http", "servers": [{"address": a} for a in servers]}],
        workers=2)


@pytest.mark.skipif(shutil.which("wrk") is None,
                    reason="wrk missing: reload under load NOT tested (scripts/install-deps.sh test)")
def test_reloads_under_wrk_fail_no_request(sluice, demo):
    servers = [demo("http", name="a").address, demo("http", name="b").address]
    port = free_port()
    s = sluice(config(port, servers, 0))
    wrk = subprocess.Popen(["wrk", "-t1", "-c32", f"-d{scaled(6):.0f}s", f"http://127.0.0.1:{port}/"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for i in range(1, 11):
            s.write_config(config(port, servers, i))
            before = s.stderr().count("configuration reloaded")
            s.signal(signal.SIGHUP)
            wait_for(lambda: s.stderr().count("configuration reloaded") > before, scaled(5),
                     what=f"reload {i}")
        out, _ = wrk.communicate(timeout=scaled(30))
    finally:
        if wrk.poll() is None:
            wrk.kill()
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    assert requests > 1000, out
    assert "Socket errors" not in out, out
    assert "Non-2xx or 3xx responses" not in out, out
    # no request failed on sluice's side either
    lines = s.access_lines()
    assert len(lines) >= requests - 64, (len(lines), requests)  # wrk counts only completed ones
    # wrk stops by closing its 32 connections, some with a response on the way: each may
    # end with one client_aborted exchange, its last; anything else is a failure
    aborted = [e for e in lines if e["termination"] == "client_aborted"]
    assert len(aborted) <= 32, aborted[:5]
    last_of_client = {}
    for e in lines:
        last_of_client[e["client"]] = e
    for e in aborted:
        assert last_of_client[e["client"]] is e, ("aborted before the end of its connection", e)
    aborted_ids = {id(e) for e in aborted}
    bad = [e for e in lines
           if id(e) not in aborted_ids and (e["termination"] != "complete" or e["status"] != 200)]
    assert bad == [], bad[:5]
