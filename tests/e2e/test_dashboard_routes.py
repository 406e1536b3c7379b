"""The dashboard's HTTP routes table in headless Chromium: one row per route of each http
listener with its match, its action and the requests that took it, the same numbers as
GET /api/v1/status."""
import socket

from helpers import free_port, l4_config, scaled, wait_for
from httpbackend import HttpBackend
from test_dashboard import browser, pytestmark  # noqa: F401
from test_dashboard_http import cell
from test_http_proxy import read_response


def test_dashboard_routes_table(sluice, browser):
    be = HttpBackend()
    port, aport = free_port(), free_port()
    routes = [
        {"match": {"path_prefix": "/api", "methods": ["GET"], "headers": {"X-A": {"regex": "^1"}}},
         "backend": "app", "rewrite": {"strip_prefix": "/api"}},
        {"match": {"path": "/ping"}, "respond": {"status": 200, "body": "pong"}},
        {"redirect": {"to": "https://{host}{request_uri}", "status": 308}},
    ]
    s = sluice(l4_config(
        [{"name": "site", "bind": f"127.0.0.1:{port}", "protocol": "http", "routes": routes}],
        [{"name": "app", "protocol": "http", "servers": [{"address": be.address}]}],
        workers=1, admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([port, aport])
    for req in [b"GET /api/x HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n",
                b"GET /ping HTTP/1.1\r\nHost: h\r\n\r\n", b"GET /ping HTTP/1.1\r\nHost: h\r\n\r\n",
                b"GET /else HTTP/1.1\r\nHost: h\r\n\r\n"]:
        c = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
        c.sendall(req)
        read_response(c)
        c.close()
    browser.navigate(f"http://127.0.0.1:{aport}/")

    def shown():
        return [(cell(browser, f'tr[data-route="site/{i}"]', "match"),
                 cell(browser, f'tr[data-route="site/{i}"]', "action"),
                 cell(browser, f'tr[data-route="site/{i}"]', "requests")) for i in range(3)]
    want = [("path_prefix /api \u00b7 GET \u00b7 headers X-A~^1", "\u2192 app (rewrite)", "1"),
            ("path /ping", "respond 200", "2"),
            ("*", "308 \u2192 https://{host}{request_uri}", "1")]
    wait_for(lambda: shown() == want, scaled(10), interval=0.2,
             what=f"routes table: {want}, have {shown()}")
    assert browser.errors == [], "\n".join(browser.errors)
    be.close()
    s.stop()
