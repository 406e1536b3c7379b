"""curl as the client of an http listener: what a user runs first. Several URLs in one
invocation share one client connection and one pooled server connection; `curl -T` uploads
with `Expect: 100-continue` get the server's 100 through sluice (curl would otherwise wait
out its expect timeout); a chunked upload (`-T -`, size unknown) arrives verbatim; a
chunked response is decoded by curl."""
import os
import re
import subprocess

from helpers import free_port, scaled
from httpbackend import HttpBackend
from test_http_proxy import http_config


def curl(*args, stdin=None, timeout=30):
    r = subprocess.run(["curl", "-sS", "--no-progress-meter", *args], stdin=stdin,
                       capture_output=True, timeout=scaled(timeout))
    assert r.returncode == 0, r
    return r.stdout.decode()


def dechunk(body):
    """Decodes a chunked body (no trailers expected): the data."""
    out, pos = bytearray(), 0
    while True:
        eol = body.index(b"\r\n", pos)
        size = int(body[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            assert body[pos:] == b"\r\n", body[pos:pos + 40]
            return bytes(out)
        out += body[pos:pos + size]
        assert body[pos + size:pos + size + 2] == b"\r\n"
        pos += size + 2


def start(sluice, **kw):
    b = HttpBackend(**kw)
    port = free_port()
    s = sluice(http_config(port, [b.address]))
    return b, s, port


def test_several_urls_share_one_connection_each_side(sluice):
    b, s, port = start(sluice)
    try:
        base = f"http://127.0.0.1:{port}"
        out = curl("-w", "%{http_code} %{num_connects}\\n", "-o", "/dev/null",
                   f"{base}/one", "-o", "/dev/null", f"{base}/two?x=1", "-o", "/dev/null",
                   f"{base}/three", "-o", "/dev/null", f"{base}/chunked")
        # curl opened one connection (num_connects 1, then 0: reused)
        assert out.split("\n")[:4] == ["200 1", "200 0", "200 0", "200 0"], out
        assert [r.target for r in b.requests] == ["/one", "/two?x=1", "/three", "/chunked"]
        assert b.connections == 1, "the server saw one connection for four requests"
        lines = s.access_log(4)
        assert len({e["client"] for e in lines}) == 1, lines
        assert [e["reused"] for e in lines] == [False, True, True, True], lines
        # and curl decodes sluice's relay of a chunked response with a trailer
        assert curl(f"{base}/chunked") == "hello world"
    finally:
        b.close()


def test_upload_with_expect_100_continue(sluice, tmp_path):
    b, s, port = start(sluice, answer_expect=True)
    try:
        data = os.urandom(3 << 20)
        path = tmp_path / "up.bin"
        path.write_bytes(data)
        # an expect timeout far longer than the test: finishing soon means the 100 came
        out = curl("-T", str(path), "--expect100-timeout", "60", "-w",
                   "\\n%{http_code} %{time_total}", f"http://127.0.0.1:{port}/up/file.bin")
        body, last = out.rsplit("\n", 1)
        code, took = last.split()
        assert code == "200" and body == f"path=/up/file.bin body={len(data)}\n", out
        assert float(took) < scaled(10), f"curl waited {took}s: no 100 Continue reached it"
        r = b.requests[0]
        assert r.method == "PUT" and r.get("Expect") == "100-continue"
        assert r.get("Content-Length") == str(len(data)) and r.body == data
        e = s.access_log(1)[0]
        assert e["status"] == 200 and e["method"] == "PUT" and e["bytes_in"] > len(data), e
    finally:
        b.close()


def test_chunked_upload_from_stdin(sluice, tmp_path):
    b, s, port = start(sluice, answer_expect=True)
    try:
        data = os.urandom((2 << 20) + 12345)
        path = tmp_path / "stream.bin"
        path.write_bytes(data)
        with open(path, "rb") as f:  # -T -: size unknown, so curl sends chunked
            out = curl("-T", "-", "-w", "\\n%{http_code}", f"http://127.0.0.1:{port}/stream",
                       stdin=f)
        assert out.rsplit("\n", 1)[1] == "200", out
        r = b.requests[0]
        assert r.get("Transfer-Encoding") == "chunked" and r.get("Content-Length") is None
        assert dechunk(r.body) == data, "the chunked body changed on its way"
        assert re.match(rb"[0-9a-fA-F]+\r\n", r.body)
        assert s.access_log(1)[0]["status"] == 200
    finally:
        b.close()
