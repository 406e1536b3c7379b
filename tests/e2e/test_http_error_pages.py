"""Listener `error_pages` (shared/spec/http.md): the bodies of responses sluice generates,
per status with a `default`, read at load; content type from the extension."""
import socket
import subprocess

from helpers import SLUICE_BIN, free_port, l4_config, scaled
from test_http_proxy import read_response


def ask(port, data):
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    try:
        s.sendall(data)
        return read_response(s, head_request=data.startswith(b"HEAD"))[:3]
    finally:
        s.close()


def test_error_pages_per_status_and_default(sluice, tmp_path):
    (tmp_path / "404.html").write_bytes(b"<h1>not here</h1>\n")
    (tmp_path / "err.json").write_bytes(b'{"error": true}')
    dead = free_port()  # nothing listens: 502
    port = free_port()
    cfg = l4_config(
        [{"name": "web", "bind": f"127.0.0.1:{port}", "protocol": "http",
          "http": {"error_pages": {404: str(tmp_path / "404.html"),
                                   "default": str(tmp_path / "err.json")}},
          "routes": [{"match": {"path_prefix": "/app"}, "backend": "app"}]}],
        [{"name": "app", "protocol": "http", "retries": 0,
          "servers": [{"address": f"127.0.0.1:{dead}"}]}])
    s = sluice(cfg)
    st, h, body = ask(port, b"GET /nothing HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (st, h["content-type"], body) == (404, "text/html; charset=utf-8",
                                             b"<h1>not here</h1>\n")
    assert h["content-length"] == str(len(body))
    st, h, body = ask(port, b"GET /app HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (st, h["content-type"], body) == (502, "application/json", b'{"error": true}')
    st, h, body = ask(port, b"GET /a/../../x HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (st, body, h["connection"]) == (400, b'{"error": true}', "close")
    st, h, body = ask(port, b"HEAD /nothing HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (st, body, h["content-length"]) == (404, b"", "18")
    assert sorted(e["status"] for e in s.access_log(4)) == [400, 404, 404, 502]


def test_error_pages_without_default_keep_the_plain_bodies(sluice, tmp_path):
    (tmp_path / "503.txt").write_bytes(b"later\n")
    port = free_port()
    cfg = l4_config(
        [{"name": "web", "bind": f"127.0.0.1:{port}", "protocol": "http",
          "http": {"error_pages": {503: str(tmp_path / "503.txt")}},
          "routes": [{"match": {"path": "/x"}, "backend": "app"}]}],
        [{"name": "app", "protocol": "http", "servers": [{"address": "127.0.0.1:1"}]}])
    sluice(cfg)
    st, h, body = ask(port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (st, h["content-type"], body) == (404, "text/plain", b"404 Not Found\n")


def test_bad_error_pages_are_refused(tmp_path):
    (tmp_path / "big.html").write_bytes(b"x" * (16 * 1024 + 1))
    cfg = l4_config(
        [{"name": "web", "bind": f"127.0.0.1:{free_port()}", "protocol": "http",
          "backend": "app",
          "http": {"error_pages": {302: "a.html", "default": str(tmp_path / "missing.html"),
                                   502: str(tmp_path / "big.html")}}}],
        [{"name": "app", "protocol": "http", "servers": [{"address": "127.0.0.1:1"}]}])
    p = tmp_path / "c.yaml"
    p.write_text(cfg)
    r = subprocess.run([SLUICE_BIN, "-t", "-c", str(p)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "http.error_pages.302: expected a status 400-599 or \"default\"" in r.stderr
    assert "http.error_pages.default: cannot read " in r.stderr
    assert "No such file or directory" in r.stderr
    assert "big.html is larger than 16384 bytes" in r.stderr
