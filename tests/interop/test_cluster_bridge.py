"""Bridges between calls carried by two nodes (docs/cluster.md): each node
bridges its call with a trunk leg, an RTP leg whose peer is the other node's.

A sipp caller (Debian sip-tester) calls node A through a SIP trunk; its media
is a socket of this test's. Node A runs on the shipped defaults, node B on the
quick start's next addresses, both on one Postgres schema and the machine's
NATS. Checked here:

- the caller bridged with a `loop:echo` on node B hears every packet back,
  byte for byte, passed through undecoded on both nodes; the round trip is
  printed beside the same caller bridged with an echo on its own node,
  alternated (A/B/A/B), for BENCHMARKS.md (timings are not asserted);
- hanging up the call on B ends its partner on A (and sipp gets its BYE);
- node B killed: within 7 s its partner on A is hung up, and a partner bridged
  with `park_after_unbridge: "self"` stays up, unbridged.
"""

import random
import struct
import time

import pytest

from conftest import api
from test_cluster import (NATS, NODE_B, application, database, dial, events, hung_up, metric, name_of, node,  # noqa: F401
                          node_of, receiver)
from test_crash_safety import wait_until
from test_sip_trunk import rtp_caller, trunk_connection, wait_event

pytestmark = pytest.mark.host_services

# PCMU codes whose decoding and encoding again give the same code (not the two zeros).
CODES = [c for c in range(256) if c not in (0x7F, 0xFF)]


class Caller:
    """The test's end of the sipp call's media: PCMU packets 20 ms apart, each with a distinct payload."""

    def __init__(self, sock, port):
        self.sock, self.port = sock, port
        self.seq, self.rng = 1, random.Random(41)
        sock.settimeout(0.001)

    def round_trips(self, count, warm_up=50):
        """Send `warm_up` then `count` packets; the round trip (ms) of each of the `count` that came back."""
        sent, back = {}, {}
        start = time.perf_counter()
        for i in range(warm_up + count):
            payload = bytes(self.rng.choice(CODES) for _ in range(160))
            header = struct.pack("!BBHII", 0x80, 0, self.seq & 0xFFFF, self.seq * 160, 0x4321)
            self.seq += 1
            self.sock.sendto(header + payload, ("127.0.0.1", self.port))
            if i >= warm_up:
                sent[payload] = time.perf_counter()
            self.receive(back, start + 0.02 * (i + 1))
        self.receive(back, time.perf_counter() + 0.3)
        return sorted((back[p] - t) * 1000 for p, t in sent.items() if p in back)

    def receive(self, back, until):
        while time.perf_counter() < until:
            try:
                data, _ = self.sock.recvfrom(2048)
            except OSError:
                continue
            if len(data) == 172 and data[1] & 0x7F == 0:
                back.setdefault(data[12:], time.perf_counter())


def bridge(bond, call, other, **options):
    api(bond, "POST", f"/calls/{call}/actions/bridge", {"call_control_id_to_bridge_with": other, **options})


def dial_on(bond, via, connection, wanted, to="loop:echo"):
    """A dial through `via` that placement put on node `wanted` (others hung up)."""
    for _ in range(10):
        call = dial(via, connection, to=to)
        if node_of(bond, call) == wanted:
            return call
        api(bond, "POST", f"/calls/{call}/actions/hangup", {})
    raise AssertionError(f"no dial was placed on {wanted}")


def percentile(values, share):
    return values[min(len(values) - 1, int(len(values) * share))]


def test_a_caller_bridged_with_an_echo_on_another_node_hears_every_packet_back(database, receiver):
    with node(database, NATS) as a, node(database, {**NODE_B, **NATS}) as b:
        connection = trunk_connection(a, receiver)
        caller, media = rtp_caller(a, 120000)
        call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
        api(a, "POST", f"/calls/{call}/actions/answer", {})
        answer = caller.logged(r"BOND_RTP (\d+) ")
        near = api(a, "POST", "/calls", {"connection_id": connection, "to": "loop:echo", "from": "+15550000000",
                                         "link_to": call})["data"]["call_control_id"]
        far = dial_on(a, b, connection, name_of(b))
        assert node_of(a, call) == node_of(a, near) == name_of(a)

        rtp = Caller(media, int(answer.group(1)))
        count, figures = 250, {"same node": [], "two nodes": []}
        for _ in range(2):
            for label, echo in (("same node", near), ("two nodes", far)):
                bridge(a, call, echo)
                passed = metric(a, "bond_rtp_packets_passed_through_total"), metric(b, "bond_rtp_packets_passed_through_total")
                trips = rtp.round_trips(count)
                assert len(trips) == count, f"{label}: {count - len(trips)} of {count} packets lost"
                if label == "two nodes":
                    # Undecoded: into and out of A's trunk leg, and reflected by B's echo.
                    assert metric(a, "bond_rtp_packets_passed_through_total") - passed[0] >= 2 * count
                    assert metric(b, "bond_rtp_packets_passed_through_total") - passed[1] >= count
                figures[label] += trips
        for label, trips in figures.items():
            trips.sort()
            print(f"{label}: round trip p50 {percentile(trips, 0.5):.2f} ms, p99 {percentile(trips, 0.99):.2f} ms")
        assert {e["payload"]["call_control_id"] for e in events(receiver) if e["event_type"] == "call.bridged"} >= {call, far}
        assert api(b, "GET", f"/calls/{far}")["data"]["bridged_with"] == call

        # The echo on B hung up (through A, which forwards it): the caller on A goes with it.
        api(a, "POST", f"/calls/{far}/actions/hangup", {})
        hangup = wait_event(receiver, "call.hangup", timeout=10, call_control_id=call)
        assert hangup["hangup_cause"] == "normal_clearing", hangup
        code, detail = caller.wait()
        assert code == 0, detail


def test_a_node_dying_ends_its_calls_partners_on_other_nodes_unless_parked(database, receiver):
    with node(database, NATS) as a, node(database, {**NODE_B, **NATS}) as b:
        connection = application(a, receiver)
        ended_with, parked = (dial_on(a, a, connection, name_of(a), to="loop:silence") for _ in range(2))
        partners = [dial_on(a, b, connection, name_of(b), to="loop:silence") for _ in range(2)]
        bridge(a, ended_with, partners[0])
        bridge(b, parked, partners[1], park_after_unbridge="self")
        assert api(a, "GET", f"/calls/{parked}")["data"]["bridged_with"] == partners[1]

        b.proc.kill()
        b.proc.wait()
        killed_at = time.time()
        wait_until(lambda: {ended_with, *partners} <= hung_up(receiver), 7, "the dead node's calls and their partner ended")
        print(f"partner on the surviving node hung up {time.time() - killed_at:.1f} s after the kill")
        time.sleep(1)
        kept = api(a, "GET", f"/calls/{parked}")["data"]
        assert kept["ended_at"] is None and kept["bridged_with"] is None, kept
        assert parked not in hung_up(receiver)
        api(a, "POST", f"/calls/{parked}/actions/hangup", {})
