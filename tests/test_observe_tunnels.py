"""Tunnel events and the tunnels in a snapshot, over real SSH."""

from __future__ import annotations

import pytest

from actorcluster import Runtime
from actorcluster.observe import snapshot
from test_tunnels_support import EchoServer, echo_round_trip, free_ports
from waiting import wait_until

pytestmark = pytest.mark.timeout(60)


def test_a_tunnel_is_opened_shown_then_closed(ssh_bed):
    runtime_port, local_port = free_ports(2)
    runtime = Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs)
    with runtime, runtime.events() as events:
        key = runtime.expose_port_from_runtime(runtime_port, local_port)
        (shown,) = [t for t in snapshot()["tunnels"] if t["tunnel"] == key]
        assert shown["host"] == "host-1" and shown["up"] is True
        runtime.stop_process(key)
        seen = [e for e in events.iter(timeout=2) if e.kind.startswith("tunnel.")]
    assert [(e.kind, e.tunnel) for e in seen] == [("tunnel.opened", key), ("tunnel.closed", key)]
    assert seen[0].carrier and seen[1].reason == "stopped"


def test_a_paramiko_tunnel_shows_its_bytes_and_connections(ssh_bed):
    from prometheus_client.parser import text_string_to_metric_families

    from actorcluster.observe.metrics import TreeMetrics, exposition

    service, local = free_ports(2)
    metrics = TreeMetrics()
    runtime = Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs)
    try:
        with runtime, EchoServer(service, on=ssh_bed.hosts[0]):  # host-1's own loopback
            key = runtime.expose_port_from_runtime(service, local, carrier="paramiko")
            echo_round_trip(local, size=100_000)

            def carried():
                return next(t for t in snapshot()["tunnels"] if t["tunnel"] == key)

            # A relay counts a chunk right after passing it on: the echo may come first.
            wait_until(
                lambda: (carried()["bytes"], carried()["connections"]) == (200_000, 0),
                what="every byte counted, the connection's relay ended",
            )
            shown = carried()
            text = exposition(metrics.registry).decode()
    finally:
        metrics.close()
    assert shown["bytes"] == 200_000 and shown["connections"] == 0
    samples = {
        sample.labels["tunnel"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "actorcluster_tunnel_bytes"
        for sample in family.samples
    }
    assert samples[key] == 200_000
