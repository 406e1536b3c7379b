"""The duration histograms in seconds and in the right buckets.

sluice_connection_duration_seconds and sluice_backend_connect_duration_seconds are
compared observation by observation with the access log (duration_ms, connect_ms: the
same clock reading), and once more with the time the test itself measured, so that a unit
error (milliseconds fed as microseconds, seconds as milliseconds ...) on either side shows."""
from helpers import connect, echo_roundtrip, free_port, l4_config, scaled, wait_closed
from test_admin import Admin
from test_metrics import assert_histogram_holds, fetch, histogram_of, ms_to_s, value

import time


def hold(port, seconds):
    """A connection that echoes once, stays open `seconds` (the stimulus), then closes.
    Returns (local port, seconds from connect to close as the client saw them)."""
    t0 = time.monotonic()
    c = connect(port)
    echo_roundtrip(c)
    time.sleep(seconds)
    local = c.getsockname()[1]
    c.close()
    return local, time.monotonic() - t0


def test_connection_duration_in_seconds_and_buckets(sluice, demo):
    d = demo("echo")
    port, aport = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "timed", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": d.address}]}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)
    for seconds in (0, 0.1):
        hold(port, seconds)
    s.access_log(2)
    before, sum0, count0 = histogram_of(fetch(admin)[1], "sluice_connection_duration_seconds",
                                        listener="timed")
    assert count0 == 2

    # a connection held ~0.5 s adds ~0.5 s to _sum and one observation above 0.25 s
    local, client_side = hold(port, 0.5)
    e = s.log_for(local)
    # sluice sees the close a little after the client made it (its loop may be busy)
    assert 0.5 <= e["duration_ms"] / 1000 <= client_side + scaled(0.5), (e, client_side)
    after, sum1, count1 = histogram_of(fetch(admin)[1], "sluice_connection_duration_seconds",
                                       listener="timed")
    assert count1 == 3
    assert 0.4 <= sum1 - sum0 <= 2, (sum0, sum1)
    assert after[0.25] - before[0.25] == 0, (before, after)
    assert after[2.5] - before[2.5] == 1, (before, after)

    # ... and every observation sits in its bucket, exactly as logged
    hold(port, 0.3)
    entries = s.access_log(4)
    assert_histogram_holds(fetch(admin)[1], "sluice_connection_duration_seconds",
                           ms_to_s(entries, "duration_ms"), listener="timed")
    s.stop()


def test_backend_connect_time_counts_from_the_first_attempt(sluice, demo, blackhole):
    """A client whose first server does not answer (connect_timeout 300 ms) is connected to
    the second: its connect time, in the log and in the histogram, is at least 0.3 s. The
    attempt that timed out is one connect failure of the silent server, which has no
    established connection."""
    live = demo("echo")
    hole = blackhole()
    port, aport = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": hole.address},
                                               {"address": live.address}],
                   "connect_timeout": "300ms", "retries": 1}],
        workers=1, admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)
    for n in range(1, 5):  # round robin over two servers: at least one of these retries
        c = connect(port)
        echo_roundtrip(c, timeout=scaled(5))
        c.close()
        entries = s.access_log(n)
        if any(e["retries"] for e in entries) and n >= 2:
            break
    retried = [e for e in entries if e["retries"]]
    assert retried and len(retried) < len(entries), entries
    assert all(e["connect_ms"] >= 300 for e in retried), retried
    samples = fetch(admin)[1]
    assert_histogram_holds(samples, "sluice_backend_connect_duration_seconds",
                           ms_to_s(entries, "connect_ms"), backend="pool")
    assert value(samples, "sluice_backend_connect_failures_total", backend="pool",
                 server=hole.address) == len(retried)
    assert value(samples, "sluice_server_connections_total", backend="pool",
                 server=hole.address) == 0
    assert value(samples, "sluice_server_connections_total", backend="pool",
                 server=live.address) == len(entries)
    s.stop()


def test_connect_timeout_with_no_server_left(sluice, blackhole):
    """Every attempt timing out: connect_failed, one failure per attempt, no connect time
    observed (there was no connection), and a connection duration of about the timeout."""
    hole = blackhole()
    port, aport = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": hole.address}],
                   "connect_timeout": "200ms", "retries": 0}],
        admin={"bind": f"127.0.0.1:{aport}"}))
    s.wait_listening([aport])
    admin = Admin(aport)
    c = connect(port)
    state, _, _ = wait_closed(c, scaled(5))
    assert state in ("eof", "reset")
    e = s.log_for(c)
    c.close()
    assert e["termination"] == "connect_failed" and e["connect_ms"] is None, e
    samples = fetch(admin)[1]
    assert value(samples, "sluice_backend_connect_failures_total", backend="pool",
                 server=hole.address) == 1
    assert histogram_of(samples, "sluice_backend_connect_duration_seconds",
                        backend="pool")[2] == 0
    assert value(samples, "sluice_listener_refused_total", listener="front") == 0
    assert_histogram_holds(samples, "sluice_connection_duration_seconds",
                           [e["duration_ms"] / 1000], listener="front")
    assert 0.2 <= e["duration_ms"] / 1000 < scaled(2), e
    s.stop()
