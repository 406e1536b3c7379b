"""Routes in the admin API: GET /api/v1/status lists each http listener's routes
(`http_routes`: match, action, request counts summed over the workers)."""
import socket

from helpers import free_port, scaled, wait_for
from httpbackend import HttpBackend
from test_admin import Admin
from test_http_proxy import http_config, read_response


def test_status_lists_routes_with_match_action_and_counts(sluice):
    b = HttpBackend()
    try:
        port, aport = free_port(), free_port()
        routes = [
            {"match": {"host": "*.example.com", "path_prefix": "/api", "methods": ["GET", "PUT"],
                       "headers": {"X-A": "1", "X-B": {"regex": "^v"}, "X-C": {"present": False}},
                       "query": {"q": {"present": True}}},
             "backend": "app", "rewrite": {"strip_prefix": "/api"},
             "request_headers": {"set": {"X-Env": "prod"}}},
            {"match": {"path": "/ping"}, "respond": {"status": 200, "body": "pong"}},
            {"redirect": {"to": "https://{host}{request_uri}", "status": 308}},
        ]
        sluice(http_config(port, [b.address], routes=routes, admin_port=aport, workers=2))
        for target in [b"/ping"] * 3 + [b"/x"] * 2:
            s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
            s.sendall(b"GET %s HTTP/1.1\r\nHost: h\r\n\r\n" % target)
            read_response(s)
            s.close()
        admin = Admin(aport)
        web = wait_for(lambda: (lambda l: l if sum(r["requests"] for r in l["http_routes"]) == 5
                                else None)(admin.status()["listeners"][0]), scaled(5),
                       what="5 counted requests")
        assert web["routes"] == 3  # the count stays as it was
        assert web["http_routes"] == [
            {"index": 0, "line": web["http_routes"][0]["line"],
             "match": {"host": "*.example.com", "path_prefix": "/api", "methods": ["GET", "PUT"],
                       "headers": {"X-A": "1", "X-B": {"regex": "^v"}, "X-C": {"present": False}},
                       "query": {"q": {"present": True}}},
             "action": "backend", "backend": "app", "rewrite": True, "request_headers": True,
             "response_headers": False, "requests": 0},
            {"index": 1, "line": web["http_routes"][1]["line"], "match": {"path": "/ping"},
             "action": "respond", "status": 200, "rewrite": False, "request_headers": False,
             "response_headers": False, "requests": 3},
            {"index": 2, "line": web["http_routes"][2]["line"], "match": {},
             "action": "redirect", "to": "https://{host}{request_uri}", "status": 308,
             "rewrite": False, "request_headers": False, "response_headers": False,
             "requests": 2},
        ]
    finally:
        b.close()
