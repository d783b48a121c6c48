"""Two `bond serve` nodes on one Postgres database (docs/cluster.md).

Node A runs on the shipped defaults; node B on the next free addresses (the
quick start's layout). Each test gets a fresh schema in BOND_TEST_DATABASE_URL
and is skipped without it. Checked here:

- calls placed through both nodes: every webhook delivered once (one `data.id`,
  one delivery), each call's events in order, and both nodes delivering;
- an action sent to either node reaches the node carrying the call over NATS;
  without NATS it is refused (421) naming that node; for a node just killed it
  answers 503 with Retry-After until the node is reaped, then "call ended";
- a node starting ends only its own calls left from before, never another's;
- a node killed with SIGKILL mid-call: its calls' `call.hangup` delivered
  within 7 s, the other node's calls untouched, its recording in progress
  reported interrupted (`call.recording.error`), then repaired and saved when
  the node starts again on its disk;
- one Idempotency-Key sent 20 times at once through both nodes: one call;
- with three nodes, 300 dials through any of them: each carries a third
  (within 10 %); dials linked to a call or supervising it: on that call's node
  (bridges across nodes: test_cluster_bridge.py);
- an API key's request rate spread over two nodes: one burst with Redis, two
  without; an address's failed authentications likewise, API keys and SIP
  digest answers;
- a SIP connection's `max_concurrent_calls` holds across the nodes: with
  2, one caller parked on each node, a third is refused 503 on either, and
  a slot freed on one node is taken on the other;
- a dial to an agent through either node rings it on the node its signaling
  socket is connected to; the agent registering on the other node closes
  that socket (4000), as on one node;
- a dial out through Telnyx placed on the other node gives Telnyx that node's
  `stream_url` and `webhook_url`, so the media stream lands where the call is;
- a control node (`cluster.role`) places every dial on the media nodes, sends
  them their actions, refuses dials to agents, and listens for no SIP;
- a supervisor following the organization on one node sees every translated
  segment of a call the other node carries, in order.
"""

import asyncio
import contextlib
import json
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import websockets

from conftest import API_KEY, Bond, Receiver, api
from test_crash_safety import postgres_url, wait_until
from test_speech import SENTENCES, translation_events, write_customer

# Postgres and NATS on the host's loopback (conftest.shard).
pytestmark = pytest.mark.host_services

# Both nodes talk over the NATS server every machine here runs.
NATS = {"BOND_CLUSTER_NATS_URL": "nats://127.0.0.1:4222"}
# Node B: every listening address of the defaults moved (HTTP, SIP, WebRTC, RTP range),
# each below the system's ephemeral ports (32768-60999), which an outgoing
# connection (a node's own, to Postgres or NATS) may hold.
NODE_B = {
    "BOND_HTTP_LISTEN": "127.0.0.1:8081",
    "BOND_SIP_UDP_LISTEN": "0.0.0.0:5070",
    "BOND_SIP_TCP_LISTEN": "0.0.0.0:5070",
    "BOND_WEBRTC_LISTEN": "0.0.0.0:31001",
    "BOND_RTP_PORT_MIN": "10002",
    "BOND_RTP_PORT_MAX": "14998",
}
NODE_C = {
    "BOND_HTTP_LISTEN": "127.0.0.1:8082",
    "BOND_SIP_UDP_LISTEN": "0.0.0.0:5080",
    "BOND_SIP_TCP_LISTEN": "0.0.0.0:5080",
    "BOND_WEBRTC_LISTEN": "0.0.0.0:31002",
    "BOND_RTP_PORT_MIN": "15002",
    "BOND_RTP_PORT_MAX": "19998",
}


@contextlib.contextmanager
def node(url, env=None):
    """A node on database `url`, with its own data directory, killed afterwards."""
    with tempfile.TemporaryDirectory() as data_dir:
        bond = Bond(data_dir, {"BOND_DATABASE_URL": url, **(env or {})})
        bond.start()
        try:
            yield bond
        finally:
            bond.kill()


@pytest.fixture
def database():
    url = postgres_url()
    if not url:
        pytest.skip("BOND_TEST_DATABASE_URL is not set")
    return url


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def events(receiver):
    return [json.loads(body)["data"] for _, body in receiver.received]


def hung_up(receiver):
    return {e["payload"]["call_control_id"] for e in events(receiver) if e["event_type"] == "call.hangup"}


def dial(bond, connection, to="loop:echo", key=None):
    body = json.dumps({"connection_id": connection, "to": to, "from": "+13125550100"}).encode()
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    req = urllib.request.Request(f"{bond.base_url}/calls", method="POST", data=body, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["data"]["call_control_id"]


def metric(bond, name):
    """A counter or gauge of this node's /metrics (0 before it is first set)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{bond.port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    return 0.0


def delivered_count(bond):
    return metric(bond, "bond_webhooks_delivered_total")


def balanced(*nodes):
    """Whether the nodes hold the 64 delivery partitions between them, about evenly
    (each its share, 64 / nodes rounded up, or what the others leave)."""
    held = [metric(n, "bond_webhook_partitions_held") for n in nodes]
    return sum(held) == 64 and min(held) >= 64 // len(nodes) - 2


def application(bond, receiver):
    body = {"application_name": "cluster", "webhook_event_url": receiver.url}
    return api(bond, "POST", "/call_control_applications", body)["data"]["id"]


def test_calls_through_two_nodes_have_each_webhook_delivered_once_in_order(database, receiver):
    with node(database) as a, node(database, NODE_B) as b:
        connection = application(a, receiver)
        wait_until(lambda: balanced(a, b), 10, "the delivery partitions split between the nodes")
        calls = []
        for _ in range(20):
            calls += [dial(a, connection), dial(b, connection)]
        # Without a bus, an action reaches only the node carrying the call: 421, naming it.
        with pytest.raises(urllib.error.HTTPError) as refused:
            api(a, "POST", f"/calls/{calls[1]}/actions/hangup", {})
        assert refused.value.code == 421
        assert "127.0.0.1:8081" in json.loads(refused.value.read())["errors"][0]["detail"]
        for i, call in enumerate(calls):
            api(a if i % 2 == 0 else b, "POST", f"/calls/{call}/actions/hangup", {})
        wait_until(lambda: hung_up(receiver) >= set(calls), 30, "every call's call.hangup")
        time.sleep(1.5)  # room for a duplicate to arrive
        received = events(receiver)
        ids = [e["id"] for e in received]
        assert len(ids) == len(set(ids)), "an event was delivered twice"
        for call in calls:
            types = [e["event_type"] for e in received if e["payload"].get("call_control_id") == call]
            assert types[0] == "call.initiated" and types[-1] == "call.hangup", (call, types)
            assert types.count("call.hangup") == 1, (call, types)
        assert delivered_count(a) > 0 and delivered_count(b) > 0, "one node delivered everything"
        assert delivered_count(a) + delivered_count(b) == len(received)


def node_of(bond, call):
    """The node carrying `call` (Bond's `node_id` field)."""
    return api(bond, "GET", f"/calls/{call}")["data"]["node_id"]


def name_of(bond):
    """A node's name, as made on its first start."""
    with open(os.path.join(bond.data_dir, "node_id")) as f:
        return f.read().strip()


def status_of(bond, call, action="hangup", body=None):
    """The HTTP status (and Retry-After) of an action through `bond`."""
    try:
        api(bond, "POST", f"/calls/{call}/actions/{action}", body or {})
        return 200, None
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("retry-after")


def test_actions_through_either_node_reach_the_node_carrying_the_call(database, receiver):
    with node(database, NATS) as a, node(database, {**NODE_B, **NATS}) as b:
        connection = application(a, receiver)
        wait_until(lambda: balanced(a, b), 10, "both nodes up")
        # Dials are spread over the nodes: take one call each carries.
        calls = [dial(a, connection) for _ in range(8)]
        carried = {call: node_of(a, call) for call in calls}
        on_a = next(call for call in calls if carried[call] == name_of(a))
        on_b, another_on_b = [call for call in calls if carried[call] == name_of(b)][:2]
        # Each through the node that does not carry it.
        assert status_of(b, on_a, "client_state_update", {"client_state": "YQ=="}) == (200, None)
        assert api(a, "GET", f"/calls/{on_a}")["data"]["client_state"] == "YQ=="
        assert status_of(a, on_b) == (200, None)
        wait_until(lambda: on_b in hung_up(receiver), 10, "the forwarded hangup's call.hangup")
        # An error comes back as the carrying node gave it: the call has ended (422).
        assert status_of(a, on_b)[0] == 422

        # B dies: until A reaps it, actions on B's calls answer 503 with Retry-After.
        b.proc.kill()
        b.proc.wait()
        assert status_of(a, another_on_b) == (503, "1")
        wait_until(lambda: another_on_b in hung_up(receiver), 7, "the dead node's call ended")
        assert status_of(a, another_on_b)[0] == 422
        assert status_of(a, on_a) == (200, None)


def test_a_node_killed_mid_call_has_its_calls_reported_ended_and_the_others_kept(database, receiver):
    with node(database) as a, node(database, NODE_B) as b:
        connection = application(a, receiver)
        wait_until(lambda: balanced(a, b), 10, "the delivery partitions split between the nodes")
        on_a = [dial(a, connection) for _ in range(5)]
        on_b = [dial(b, connection) for _ in range(5)]
        wait_until(lambda: len(events(receiver)) >= 10, 20, "every call.initiated")
        api(b, "POST", f"/calls/{on_b[0]}/actions/record_start", {"channels": "single", "format": "wav"})
        time.sleep(1)  # a second of it on B's disk

        # A node starting again ends its own calls left from its last run, not another's.
        b_dir = b.data_dir
        b.proc.kill()
        b.proc.wait()
        killed_at = time.time()
        # Node A reports B's calls ended: B's lease lapses (3 s) and A reaps it.
        wait_until(lambda: hung_up(receiver) >= set(on_b), 7, "call.hangup of the dead node's calls within 7 s")
        reported_in = time.time() - killed_at
        for call in on_a:
            assert api(a, "GET", f"/calls/{call}")["data"]["ended_at"] is None, "a live node's call was ended"
        assert not hung_up(receiver) & set(on_a)
        # Its recording in progress is reported interrupted.
        errors = [e["payload"] for e in events(receiver) if e["event_type"] == "call.recording.error"]
        assert [e["call_control_id"] for e in errors] == [on_b[0]], errors
        recording = errors[0]["recording_id"]
        assert api(a, "GET", f"/recordings/{recording}")["data"]["status"] == "interrupted"

        # B back on its data directory: nothing of A's is touched, nothing reported twice.
        again = Bond(b_dir, {"BOND_DATABASE_URL": database, **NODE_B})
        again.start()
        try:
            # Back on its disk, B repairs the recording and announces it.
            wait_until(lambda: any(e["event_type"] == "call.recording.saved" for e in events(receiver)), 10,
                       "the repaired recording's call.recording.saved")
            saved = next(e["payload"] for e in events(receiver) if e["event_type"] == "call.recording.saved")
            assert saved["recording_id"] == recording and saved["repaired_after_crash"] is True, saved
            assert saved["duration_millis"] >= 500, saved
            more_on_b = [dial(again, connection) for _ in range(2)]
            time.sleep(2)
            for call in on_a + more_on_b:
                assert api(a, "GET", f"/calls/{call}")["data"]["ended_at"] is None
            hangups = [e for e in events(receiver) if e["event_type"] == "call.hangup"]
            assert len(hangups) == len(on_b), [e["payload"]["call_control_id"] for e in hangups]
            causes = {e["payload"]["hangup_cause"] for e in hangups}
            assert causes == {"unspecified"}, causes
        finally:
            again.kill()
        print(f"dead node's calls reported ended {reported_in:.1f} s after the kill")


def test_one_idempotency_key_through_two_nodes_makes_one_call(database, receiver):
    with node(database) as a, node(database, NODE_B) as b:
        connection = application(a, receiver)
        key = str(uuid.uuid4())
        start = threading.Barrier(20)

        def attempt(i):
            start.wait()
            for _ in range(50):
                try:
                    return dial(a if i % 2 == 0 else b, connection, key=key)
                except urllib.error.HTTPError as e:
                    if e.code != 409:  # the first is still being answered
                        raise
                    time.sleep(0.05)
            raise AssertionError("the first request never finished")

        with ThreadPoolExecutor(20) as pool:
            answers = set(pool.map(attempt, range(20)))
        assert len(answers) == 1, answers
        calls = api(a, "GET", "/calls?page[size]=50")["data"]
        assert len(calls) == 1, [c["call_control_id"] for c in calls]




def test_dials_through_any_of_three_nodes_are_spread_and_partners_kept_together(database, receiver):
    loose = {"BOND_RATE_LIMIT_PER_SECOND": "1000", "BOND_RATE_LIMIT_BURST": "1000", **NATS}
    with node(database, loose) as a, node(database, {**NODE_B, **loose}) as b, \
            node(database, {**NODE_C, **loose}) as c:
        nodes = [a, b, c]
        connection = application(a, receiver)
        wait_until(lambda: len(api(a, "GET", "/calls")["data"]) == 0 and balanced(a, b, c), 10, "three nodes up")
        with ThreadPoolExecutor(6) as pool:
            calls = list(pool.map(lambda i: dial(nodes[i % 3], connection), range(300)))
        carried = [node_of(a, call) for call in calls]
        counts = {n: carried.count(n) for n in set(carried)}
        print(f"300 dials carried per node: {sorted(counts.values())}")
        assert len(counts) == 3, counts
        assert all(90 <= n <= 110 for n in counts.values()), counts

        # Linked and supervising dials, through every node: on their partner's node.
        for i, partner in enumerate(calls[:30]):
            via = nodes[(i + 1) % 3]
            field = {"link_to": partner} if i % 2 == 0 else {"supervise_call_control_id": partner}
            body = {"connection_id": connection, "to": "loop:echo", "from": "+13125550100", **field}
            linked = api(via, "POST", "/calls", body)["data"]["call_control_id"]
            assert node_of(a, linked) == carried[i], (field, carried[i])


def test_a_request_rate_holds_for_the_cluster_with_redis_and_per_node_without(database):
    # A burst of 10 at 1 request a second, per API key.
    limits = {"BOND_RATE_LIMIT_PER_SECOND": "1", "BOND_RATE_LIMIT_BURST": "10"}

    def allowed(a, b, n=40):
        """Requests answered (not 429) of `n` alternated over the two nodes, and how long they took."""
        answered, started = 0, time.time()
        for i in range(n):
            try:
                api(a if i % 2 == 0 else b, "GET", "/calls")
                answered += 1
            except urllib.error.HTTPError as e:
                assert e.code == 429, e.code
        return answered, time.time() - started

    def failed(a, b, n=40):
        """Requests with made-up keys, alternated over the nodes, answered 401 (not 429), and how long they took."""
        unauthorized, started = 0, time.time()
        for i in range(n):
            try:
                api(a if i % 2 == 0 else b, "GET", "/calls", key=f"KEYmadeup{i:027d}")
            except urllib.error.HTTPError as e:
                assert e.code in (401, 429), e.code
                unauthorized += e.code == 401
        return unauthorized, time.time() - started

    shared = {"BOND_CLUSTER_REDIS_URL": "redis://127.0.0.1:6379", **limits}
    with node(database, shared) as a, node(database, {**NODE_B, **shared}) as b:
        answered, took = allowed(a, b)
        print(f"with Redis: {answered} of 40 answered in {took:.2f} s")
        # One bucket for both nodes: the burst, plus what refilled meanwhile.
        assert 10 <= answered <= 10 + int(took) + 1, (answered, took)
        # 20 failed authentications an address, then one a second: for the cluster.
        tried, took = failed(a, b)
        print(f"with Redis: {tried} of 40 made-up keys tried in {took:.2f} s")
        assert 20 <= tried <= 20 + int(took) + 1, (tried, took)
    with node(database, limits) as a, node(database, {**NODE_B, **limits}) as b:
        answered, took = allowed(a, b)
        print(f"without: {answered} of 40 answered in {took:.2f} s")
        # Each node its own bucket: twice the burst (the check can fail).
        assert answered >= 20, (answered, took)
        tried, _ = failed(a, b)
        print(f"without: {tried} of 40 made-up keys tried")
        assert tried == 40, tried


def test_a_supervisor_on_one_node_sees_every_segment_of_a_call_another_node_carries(database, receiver):
    with node(database, NATS) as a, node(database, {**NODE_B, **NATS}) as b:
        connection = application(a, receiver)
        with tempfile.TemporaryDirectory() as workdir:
            for bond in (a, b):
                write_customer(os.path.join(bond.data_dir, "customer.wav"), workdir)
        agent = dial(a, connection, to="loop:silence")
        carrier = a if node_of(a, agent) == name_of(a) else b
        watcher = b if carrier is a else a
        # Linked to the agent: placed beside it, on the carrying node.
        body = {"connection_id": connection, "to": "loop:play?file=customer.wav", "from": "+13125550101", "link_to": agent}
        customer = api(watcher, "POST", "/calls", body)["data"]["call_control_id"]
        assert node_of(a, customer) == node_of(a, agent)

        seen, opened = [], threading.Event()
        url = f"{watcher.base_url}/translations/stream"
        follower = threading.Thread(target=translation_events, args=(url, seen, threading.Event(), opened), daemon=True)
        follower.start()
        assert opened.wait(10), "the supervisor stream opened"
        api(watcher, "POST", f"/calls/{customer}/actions/bridge", {"call_control_id_to_bridge_with": agent})
        api(watcher, "POST", f"/calls/{customer}/actions/translation_start", {"translate_from": "en", "translate_to": "es"})
        follower.join(40)
        stored = api(watcher, "GET", f"/calls/{customer}/translations")["data"]
        assert len(stored) == len(SENTENCES), stored
        assert [s["id"] for s in seen] == [s["id"] for s in stored], (seen, stored)
        assert all(s["call_control_id"] == customer for s in seen)


def test_a_control_node_places_every_dial_on_the_media_nodes_and_takes_no_sip(database, receiver):
    control, media = {"BOND_CLUSTER_ROLE": "control", **NATS}, {"BOND_CLUSTER_ROLE": "media", **NATS}
    with node(database, {**NODE_C, **control}) as c, node(database, media) as a, \
            node(database, {**NODE_B, **media}) as b:
        connection = application(c, receiver)
        wait_until(lambda: balanced(a, b, c), 10, "three nodes up")
        calls = [dial(c, connection) for _ in range(20)]
        carried = [node_of(c, call) for call in calls]
        assert set(carried) == {name_of(a), name_of(b)}, carried
        for call in calls:
            assert status_of(c, call) == (200, None)
        wait_until(lambda: set(calls) <= hung_up(receiver), 10, "the hangups sent through the control node")
        with pytest.raises(urllib.error.HTTPError) as refused:
            dial(c, connection, to="agent:alice")
        assert refused.value.code == 422 and "cluster.role" in refused.value.read().decode()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", 5080), timeout=2)


def test_a_dial_to_an_agent_through_any_node_rings_it_where_it_is_connected(database, receiver):
    with node(database, NATS) as a, node(database, {**NODE_B, **NATS}) as b:
        connection = application(a, receiver)
        token = api(a, "POST", "/agent_tokens", {"agent": "alice", "ttl_secs": 600})["data"]["token"]

        async def rung_through_a():
            async with websockets.connect(f"ws://127.0.0.1:{b.port}/v2/agent/ws") as ws:
                await ws.send(json.dumps({"type": "register", "token": token}))
                assert json.loads(await ws.recv())["type"] == "registered"
                call = await asyncio.to_thread(dial, a, connection, "agent:alice")
                while (frame := json.loads(await asyncio.wait_for(ws.recv(), 5)))["type"] != "incoming_call":
                    pass
                # Alice registers again, on A: her socket on B is closed as on one node.
                async with websockets.connect(f"ws://127.0.0.1:{a.port}/v2/agent/ws") as again:
                    await again.send(json.dumps({"type": "register", "token": token}))
                    assert json.loads(await again.recv())["type"] == "registered"
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        while True:
                            await asyncio.wait_for(ws.recv(), 5)
                return call, frame, closed.value.rcvd.code

        call, ring, closed_with = asyncio.run(rung_through_a())
        assert closed_with == 4000
        assert ring["call_control_id"] == call
        assert node_of(a, call) == name_of(b)
        # Connected nowhere: refused as on one node.
        with pytest.raises(urllib.error.HTTPError) as refused:
            dial(a, connection, to="agent:bob")
        assert refused.value.code == 422


def test_a_telnyx_dial_placed_on_another_node_has_telnyx_stream_to_that_node(database, receiver):
    from test_telnyx_dial import FakeTelnyx, telnyx_connection

    telnyx = FakeTelnyx()
    try:
        with node(database, NATS) as a, node(database, {**NODE_B, **NATS}) as b:
            connection = telnyx_connection(a, receiver, telnyx)
            body = {"connection_id": connection, "to": "+13125550111", "from": "+13125550100"}
            calls = [api(a, "POST", "/calls", body)["data"]["call_control_id"] for _ in range(6)]
            for call, (_, _, dialed) in zip(calls, telnyx.requests):
                port = a.port if node_of(a, call) == name_of(a) else b.port
                assert dialed["stream_url"] == f"ws://127.0.0.1:{port}/media/telnyx/{connection}", dialed
                assert dialed["webhook_url"] == f"http://127.0.0.1:{port}/webhooks/telnyx/{connection}", dialed
            assert {node_of(a, call) for call in calls} == {name_of(a), name_of(b)}
    finally:
        telnyx.close()


def test_a_connections_max_concurrent_calls_holds_across_the_nodes(database, receiver):
    from test_sip_trunk import Sipp, rtp_caller, trunk_connection

    def incoming():
        return [e["payload"]["call_control_id"] for e in events(receiver)
                if e["event_type"] == "call.initiated" and e["payload"]["direction"] == "incoming"]

    def refused_with_503(bond):
        caller = Sipp("uac_rejected.xml", {"status": 503}, target=f"127.0.0.1:{bond.sip_port}")
        code, detail = caller.wait()
        assert code == 0, detail

    with node(database) as a, node(database, NODE_B) as b:
        trunk_connection(a, receiver, max_concurrent_calls=2)
        callers = [rtp_caller(a, 20000)[0]]
        wait_until(lambda: len(incoming()) == 1, 10, "the first caller parked on A")
        callers.append(rtp_caller(b, 20000)[0])
        wait_until(lambda: len(incoming()) == 2, 10, "the second caller parked on B")
        refused_with_503(a)
        refused_with_503(b)
        # One hangs up on A: B takes a caller again.
        api(a, "POST", f"/calls/{incoming()[0]}/actions/hangup", {})
        wait_until(lambda: incoming()[0] in hung_up(receiver), 10, "the first call ended")
        callers.append(rtp_caller(b, 20000)[0])
        wait_until(lambda: len(incoming()) == 3, 10, "a third caller parked on B")
        for call in incoming()[1:]:
            api(b, "POST", f"/calls/{call}/actions/hangup", {})
        for caller in callers:
            caller.proc.kill()


def test_sip_digest_failures_spread_over_two_nodes_throttle_the_source_on_both(database, receiver):
    from test_sip_trunk import Sipp, trunk_connection

    redis = {"BOND_CLUSTER_REDIS_URL": "redis://127.0.0.1:6379"}
    with node(database, redis) as a, node(database, {**NODE_B, **redis}) as b:
        # 127.0.0.1 is not allowed by address: it must answer the digest challenge.
        trunk_connection(a, receiver, allowed_ips=["192.0.2.10"],
                         inbound_auth={"username": "carrier", "password": "carrier-pw"})

        def caller(bond, password, scenario="uac_auth.xml"):
            """A caller answering the challenge with `password` (uac_auth.xml), or refused before any."""
            sipp = Sipp(scenario, {"status": 403}, target=f"127.0.0.1:{bond.sip_port}", auth=("carrier", password))
            code, detail = sipp.wait()
            assert code == 0, detail

        # Ten wrong answers, five to each node: each node alone would allow ten.
        for i in range(10):
            caller(a if i % 2 == 0 else b, "guess")
        # Now even the right password is turned away at once (403, no challenge), on either node.
        caller(a, "carrier-pw", "uac_rejected.xml")
        caller(b, "carrier-pw", "uac_rejected.xml")
        assert not events(receiver), "a throttled source creates nothing"
