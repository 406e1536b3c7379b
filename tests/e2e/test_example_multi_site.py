"""examples/multi-site.yaml as shipped, run for real: its listener and admin ports moved to
free ones and its server addresses pointed at demo backends, everything else untouched.
Each behaviour its comments promise is checked: sluice's own /healthz, the static site's
Cache-Control, the bare domain's 308 to https, the canary by header with the /api prefix
stripped, sticky storefront sessions, the rate-limited login, and the custom 404 page."""
import http.client
import os
import shutil

import pytest

from helpers import REPO, free_port, wait_for

yaml = pytest.importorskip("yaml")

EXAMPLE = os.path.join(REPO, "examples", "multi-site.yaml")


def request(port, method, host, path, headers=None, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers={"Host": host, **(headers or {})})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


@pytest.fixture
def site(sluice, demo, tmp_path):
    doc = yaml.safe_load(open(EXAMPLE))
    shutil.copytree(os.path.join(REPO, "examples", "errors"), tmp_path / "errors")
    port = free_port()
    doc["listeners"][0]["bind"] = f"127.0.0.1:{port}"
    doc["admin"]["bind"] = f"127.0.0.1:{free_port()}"
    doc["workers"] = 2
    names = {}
    for b in doc["backends"]:
        for i, srv in enumerate(b["servers"]):
            d = demo("http", name=f"{b['name']}{i}")
            names[d.address] = d.name
            srv["address"] = d.address
    path = tmp_path / "multi-site.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    s = sluice(path.read_text())
    # every server's first health probe has passed
    wait_for(lambda: request(port, "GET", "shop.example.com", "/api/x")[0].status == 200, 10,
             what="the api pool up")
    return port


def test_example_checks_as_shipped():
    import subprocess
    from helpers import BUILD
    r = subprocess.run([os.path.join(BUILD, "sluice"), "-t", "-c", EXAMPLE], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "configuration ok" in r.stdout + r.stderr


def test_example_behaves_as_its_comments_say(site):
    port = site
    r, body = request(port, "GET", "www.example.com", "/healthz")
    assert (r.status, body) == (200, b"ok\n")
    assert r.getheader("X-Served-By") is None  # answered by sluice itself

    r, body = request(port, "GET", "www.example.com", "/index.html")
    assert r.status == 200 and r.getheader("X-Served-By", "").startswith("static")
    assert r.getheader("Cache-Control") == "public, max-age=300"

    r, _ = request(port, "GET", "example.com", "/shop/cart?item=7")
    assert r.status == 308
    assert r.getheader("Location") == "https://www.example.com/shop/cart?item=7"

    r, body = request(port, "GET", "shop.example.com", "/api/v2/cart", {"X-Canary": "1"})
    assert r.status == 200 and r.getheader("X-Served-By") == "api-canary0"
    assert r.getheader("X-Canary") == "served"
    r, body = request(port, "GET", "shop.example.com", "/api/v2/cart")
    assert r.status == 200 and r.getheader("X-Served-By") in ("api0", "api1")
    assert r.getheader("X-Canary") is None

    # sticky sessions: the cookie of the first answer keeps later requests on its server
    r, _ = request(port, "GET", "shop.example.com", "/")
    cookie = r.getheader("Set-Cookie")
    assert cookie and cookie.startswith("SHOP_SERVER=") and "Max-Age=28800" in cookie
    first = r.getheader("X-Served-By")
    value = cookie.split(";")[0]
    for _ in range(6):
        r, _ = request(port, "GET", "shop.example.com", "/", {"Cookie": value})
        assert r.getheader("X-Served-By") == first

    # login: a burst of 10, then 429 with Retry-After
    statuses = [request(port, "POST", "shop.example.com", "/login", body=b"u=a")[0]
                for _ in range(14)]
    codes = [r.status for r in statuses]
    assert codes[:10] == [200] * 10 and 429 in codes[10:], codes
    assert any(r.getheader("Retry-After") for r in statuses if r.status == 429)

    # no route: the site's own 404 page
    r, body = request(port, "GET", "www.example.com.evil", "/")
    assert r.status == 404, r.status
    assert b"<h1>Nothing here</h1>" in body and r.getheader("Content-Type").startswith("text/html")
