"""A tiny authoritative DNS server for the tests: UDP on 127.0.0.1, answers A and AAAA
queries for the names it was given, built by hand with `struct` (no third-party library).

    dns = DNSServer()                      # binds 127.0.0.1:<free port>, starts a thread
    dns.set("svc.test", ["127.0.0.2"], ttl=1)
    dns.address                            # "127.0.0.1:PORT", for resolver.nameservers
    dns.mode = "servfail"                  # normal | servfail | nxdomain | silent
    dns.count("svc.test")                  # queries seen for a name (any type)
    dns.times("svc.test")                  # when they came (time.monotonic() values)
    dns.close()

A name it knows answers with its records of the asked type (none: NOERROR/NODATA); any
other name gets NXDOMAIN. "silent" drops every query (a nameserver that does not answer).
Other query types get NOTIMP. EDNS options in the query are ignored and not echoed.
"""
import ipaddress
import socket
import struct
import threading
import time

TYPE_A, TYPE_AAAA = 1, 28
CLASS_IN = 1
RCODE_OK, RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NXDOMAIN, RCODE_NOTIMP = 0, 1, 2, 3, 4


def parse_query(data):
    """(id, flags, qname, qtype, qclass, end of question) of a query, or None when it is
    not a well-formed one-question query. Names in queries are never compressed."""
    if len(data) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", data[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    labels, pos = [], 12
    while True:
        if pos >= len(data):
            return None
        n = data[pos]
        pos += 1
        if n == 0:
            break
        if n & 0xC0 or pos + n > len(data):
            return None
        labels.append(data[pos:pos + n].decode("ascii", "replace"))
        pos += n
    if pos + 4 > len(data):
        return None
    qtype, qclass = struct.unpack("!HH", data[pos:pos + 4])
    return qid, flags, ".".join(labels).lower(), qtype, qclass, pos + 4


def build_response(query, rcode, records=(), ttl=0):
    """A response to `query` (raw bytes) with `rcode` and one answer per (type, rdata)."""
    qid, flags, _, _, _, qend = parse_query(query)
    rflags = 0x8000 | (flags & 0x7800) | 0x0400 | (flags & 0x0100) | 0x0080 | rcode
    out = bytearray(struct.pack("!HHHHHH", qid, rflags, 1, len(records), 0, 0))
    out += query[12:qend]
    for rtype, rdata in records:
        out += struct.pack("!HHHIH", 0xC00C, rtype, CLASS_IN, ttl, len(rdata))
        out += rdata
    return bytes(out)


class DNSServer:
    def __init__(self, host="127.0.0.1", port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.address = f"{host}:{self.port}"
        self.mode = "normal"
        self._names = {}  # name -> (ttl, [(type, rdata)])
        self._counts = {}
        self._times = {}
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def set(self, name, addrs, ttl=1):
        """Answers `name` with these IPv4/IPv6 addresses and TTL (seconds) from now on."""
        records = []
        for a in addrs:
            ip = ipaddress.ip_address(a)
            records.append((TYPE_A if ip.version == 4 else TYPE_AAAA, ip.packed))
        with self._lock:
            self._names[name.lower().rstrip(".")] = (ttl, records)

    def remove(self, name):
        with self._lock:
            self._names.pop(name.lower().rstrip("."), None)

    def count(self, name=None):
        """Queries received for `name` (all names when None)."""
        with self._lock:
            if name is None:
                return sum(self._counts.values())
            return self._counts.get(name.lower().rstrip("."), 0)

    def times(self, name):
        """time.monotonic() of every query received for `name` (any type), in order."""
        with self._lock:
            return list(self._times.get(name.lower().rstrip("."), []))

    def answer(self, data):
        """The response bytes for one query datagram, or None to stay silent."""
        q = parse_query(data)
        if q is None:
            return None
        _, _, name, qtype, qclass, _ = q
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + 1
            self._times.setdefault(name, []).append(time.monotonic())
            entry = self._names.get(name)
            mode = self.mode
        if mode == "silent":
            return None
        if mode == "servfail":
            return build_response(data, RCODE_SERVFAIL)
        if mode == "nxdomain":
            return build_response(data, RCODE_NXDOMAIN)
        if qclass != CLASS_IN or qtype not in (TYPE_A, TYPE_AAAA):
            return build_response(data, RCODE_NOTIMP)
        if entry is None:
            return build_response(data, RCODE_NXDOMAIN)
        ttl, records = entry
        return build_response(data, RCODE_OK, [r for r in records if r[0] == qtype], ttl)

    def _serve(self):
        while not self._stop:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self.answer(data)
            if reply is not None:
                try:
                    self.sock.sendto(reply, peer)
                except OSError:
                    pass

    def close(self):
        """Stops answering and closes the port (later queries get ICMP unreachable)."""
        self._stop = True
        try:  # ends the wait in recvfrom() now rather than at its 0.1 s timeout
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as wake:
                wake.sendto(b"", self.sock.getsockname())
        except OSError:  # closed already
            pass
        self._thread.join(timeout=2)
        self.sock.close()


if __name__ == "__main__":  # manual use: python3 dnsserver.py NAME=IP[,IP] ...
    import sys
    import time
    d = DNSServer()
    for arg in sys.argv[1:]:
        n, _, ips = arg.partition("=")
        d.set(n, ips.split(","), ttl=5)
    print(d.address, flush=True)
    while True:
        time.sleep(3600)
