"""A cluster living through its own engines stopping (docs/cluster.md): NATS
stopped for 30 s, then Postgres for 30 s, while calls are up.

Two nodes reach NATS and Postgres through TCP forwarders this test cuts
(`tcp_proxy.py`), so the machine's own servers keep running. A sipp caller
on node A is bridged with a `loop:echo` on node B. Checked:

- NATS down: the caller still hears every packet back; an action on a call
  the other node carries answers 503 with Retry-After, one on the node's own
  call works; once NATS is back, forwarded actions work again, and a call
  hung up during the outage has its partner on the other node hung up;
- Postgres down: the caller still hears every packet back; an action answers
  503 with Retry-After; a second caller hanging up meanwhile gets its 200,
  and its call's end (with the time it ended) and `call.hangup` are recorded
  once Postgres is back; no call was ended for the outage;
- afterwards every call's webhooks are delivered, in order, each `call.hangup`
  once; an event whose delivery was in flight as Postgres stopped may come
  twice, the same event with the same `data.id`.

And a node that stalls (SIGSTOP: its NATS connection stays open, so a request
for it is delivered and never answered): an action on its call through the
other node answers 503 with Retry-After once its lease lapses, not 504 at the
forward's 10 s timeout, and the call is reported ended.
"""

import json
import signal
import time
from datetime import datetime

import pytest

from conftest import api
from tcp_proxy import TcpProxy
from test_cluster import (NATS, NODE_B, application, balanced, database, dial, events, hung_up,  # noqa: F401
                          name_of, node, node_of, receiver, status_of)
from test_cluster_bridge import Caller, bridge, dial_on
from test_crash_safety import postgres_url, wait_until
from test_sip_trunk import rtp_caller, trunk_connection, wait_event

pytestmark = pytest.mark.host_services

OUTAGE = 30


def incoming(receiver):
    return {e["payload"]["call_control_id"] for e in events(receiver)
            if e["event_type"] == "call.initiated" and e["payload"]["direction"] == "incoming"}


def through(proxy, url):
    return url.replace(":5432/", f":{proxy.port}/", 1)


def test_calls_live_through_nats_then_postgres_stopped_for_30_s(receiver):
    url = postgres_url()
    if not url:
        import pytest

        pytest.skip("BOND_TEST_DATABASE_URL is not set")
    nats, pg = TcpProxy(4222), TcpProxy(5432)
    env = {"BOND_DATABASE_URL": through(pg, url), "BOND_CLUSTER_NATS_URL": f"nats://127.0.0.1:{nats.port}"}
    try:
        with node(env["BOND_DATABASE_URL"], env) as a, node(env["BOND_DATABASE_URL"], {**NODE_B, **env}) as b:
            connection = trunk_connection(a, receiver)
            caller, media = rtp_caller(a, 200000)
            call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
            api(a, "POST", f"/calls/{call}/actions/answer", {})
            rtp = Caller(media, int(caller.logged(r"BOND_RTP (\d+) ").group(1)))
            far = dial_on(a, b, connection, name_of(b))
            own = dial_on(a, a, connection, name_of(a), to="loop:silence")
            bridge(a, call, far)
            # A second bridge across the nodes, for a hangup while NATS is down.
            here = dial_on(a, a, connection, name_of(a), to="loop:silence")
            there = dial_on(a, b, connection, name_of(b), to="loop:silence")
            bridge(a, here, there)
            assert len(rtp.round_trips(50)) == 50

            nats.down()
            stopped = time.time()
            api(b, "POST", f"/calls/{there}/actions/hangup", {})
            assert status_of(a, far, "client_state_update", {"client_state": "YQ=="}) == (503, "1")
            assert status_of(a, own, "client_state_update", {"client_state": "YQ=="}) == (200, None)
            while time.time() - stopped < OUTAGE:
                assert len(rtp.round_trips(100)) == 100, "media stopped with NATS"
            assert api(a, "GET", f"/calls/{here}")["data"]["ended_at"] is None, "told without NATS?"
            nats.up()
            wait_until(lambda: status_of(a, far, "client_state_update", {"client_state": "Yg=="})[0] == 200, 15,
                       "forwarded actions again once NATS is back")
            # The hangup on B reaches its partner on A once NATS is back.
            wait_until(lambda: here in hung_up(receiver), 10, "the partner of the call hung up during the outage")

            second, _ = rtp_caller(a, 10000)  # it hangs up 10 s after its answer
            wait_until(lambda: len(incoming(receiver)) == 2, 15, "the second caller's call.initiated")
            second_call = (incoming(receiver) - {call}).pop()
            api(a, "POST", f"/calls/{second_call}/actions/answer", {})
            second.logged(r"BOND_RTP (\d+) ")
            pg.down()
            stopped = time.time()
            assert status_of(a, own, "client_state_update", {"client_state": "Yw=="}) == (503, "1")
            while time.time() - stopped < OUTAGE:
                assert len(rtp.round_trips(100)) == 100, "media stopped with Postgres"
            pg.up()
            back = time.time()
            code, detail = second.wait()
            assert code == 0, detail
            hangup = wait_event(receiver, "call.hangup", timeout=15, call_control_id=second_call)
            assert hangup["hangup_source"] == "caller", hangup
            ended = api(a, "GET", f"/calls/{second_call}")["data"]["ended_at"]
            assert datetime.fromisoformat(ended.replace("Z", "+00:00")).timestamp() < back, (ended, back)
            wait_until(lambda: status_of(a, own, "client_state_update", {"client_state": "ZA=="})[0] == 200, 15,
                       "actions again once Postgres is back")
            time.sleep(5)  # a lease and more: nobody takes the other for dead
            for c in (call, far, own):
                assert api(a, "GET", f"/calls/{c}")["data"]["ended_at"] is None, c
            assert len(rtp.round_trips(50)) == 50

            api(a, "POST", f"/calls/{call}/actions/hangup", {})
            api(a, "POST", f"/calls/{own}/actions/hangup", {})
            wait_until(lambda: {call, far, own} <= hung_up(receiver), 15, "every hangup")
            caller.wait()
            # At least once: an event whose delivery was in flight as Postgres stopped may come
            # again (the same event, same data.id); those the outage held back come once.
            copies = {}
            for e in events(receiver):
                copies.setdefault(e["id"], set()).add(json.dumps(e, sort_keys=True))
            assert all(len(bodies) == 1 for bodies in copies.values()), "one data.id, two different events"
            ours = (call, far, own, second_call, here, there)
            hangups = [e for e in events(receiver) if e["event_type"] == "call.hangup"
                       and e["payload"]["call_control_id"] in ours]
            assert len(hangups) == len({e["id"] for e in hangups}) == len(ours), hangups
            for c in ours:
                types = [e["event_type"] for e in events(receiver) if e["payload"]["call_control_id"] == c]
                assert types[0] == "call.initiated" and types[-1] == "call.hangup", (c, types)
    finally:
        nats.down()
        pg.down()


def test_an_action_for_a_stalled_node_answers_503_once_its_lease_lapses(database, receiver):
    with node(database, NATS) as a, node(database, {**NODE_B, **NATS}) as b:
        connection = application(a, receiver)
        wait_until(lambda: balanced(a, b), 10, "both nodes up")
        calls = [dial(a, connection) for _ in range(8)]
        on_b = next(call for call in calls if node_of(a, call) == name_of(b))
        b.proc.send_signal(signal.SIGSTOP)  # killed when the node's context ends
        assert status_of(a, on_b) == (503, "1")
        wait_until(lambda: on_b in hung_up(receiver), 7, "the stalled node's call ended")
        assert status_of(a, on_b)[0] == 422
