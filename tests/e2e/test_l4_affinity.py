"""affinity.client_ip on a tcp backend: the same client address always reaches the same
server, whatever the balance algorithm, while different clients spread."""
from helpers import connect, free_port, l4_config, recv_line


def test_client_ip_affinity_with_round_robin(sluice, demo):
    servers = [demo("banner", name=f"S{i}") for i in range(3)]
    port = free_port()
    s = sluice(l4_config(
        [{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
        [{"name": "pool", "balance": "round_robin", "affinity": {"client_ip": True},
          "servers": [{"address": d.address} for d in servers]}]))
    chosen = {}
    for i in range(1, 31):
        ip = f"127.0.0.{i + 1}"
        picks = set()
        for _ in range(4):
            c = connect(port, source_ip=ip)
            picks.add(recv_line(c))
            c.close()
        assert len(picks) == 1, (ip, picks)
        chosen[ip] = picks.pop()
    # 30 client addresses over 3 servers: every server gets some
    assert set(chosen.values()) == {"S0", "S1", "S2"}, chosen
    s.stop()
