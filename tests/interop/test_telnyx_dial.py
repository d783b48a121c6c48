"""Dialing through Telnyx: a fake Telnyx written from Telnyx's published Call
Control and Media Streaming protocols (developers.telnyx.com: Call Control v2,
media streaming, webhook signing),
not from Bond's code. It answers `POST /v2/calls` and hangup actions, signs its
webhooks with its own Ed25519 key (`timestamp|raw_body`), and opens the media
stream Bond asked for, with the exact frames of the reference.
"""

import asyncio
import base64
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import nacl.signing
import pytest

from test_media_streams import Carrier, Codec, api, share_at

STREAM_TOKEN = "telnyx-stream-token-0001"
TELNYX_CALL = "v3:fake-telnyx-call-0001"


class FakeTelnyx:
    """Telnyx's Call Control API, as much as dialing needs."""

    def __init__(self):
        self.key = nacl.signing.SigningKey.generate()
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                outer.requests.append((self.path, self.headers, body))
                answer = {"data": {"call_control_id": TELNYX_CALL, "call_leg_id": "leg-1",
                                   "call_session_id": "session-1", "is_alive": True, "record_type": "call"}}
                raw = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/v2"

    @property
    def public_key(self):
        return base64.b64encode(bytes(self.key.verify_key)).decode()

    def webhook(self, url, event_type, payload, key=None, timestamp=None):
        """POST a webhook as Telnyx does: the envelope, signed over `timestamp|body`."""
        body = json.dumps({"data": {"event_type": event_type, "id": "evt-1", "occurred_at": "2026-11-22T00:00:00Z",
                                    "record_type": "event", "payload": payload},
                           "meta": {"attempt": 1, "delivered_to": url}}).encode()
        ts = str(timestamp or int(time.time()))
        signature = (key or self.key).sign(ts.encode() + b"|" + body).signature
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "content-type": "application/json", "telnyx-timestamp": ts,
            "telnyx-signature-ed25519": base64.b64encode(signature).decode()})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def telnyx():
    t = FakeTelnyx()
    yield t
    t.close()


def telnyx_connection(bond, receiver, telnyx):
    body = {"application_name": "via-telnyx", "webhook_event_url": receiver.url,
            "bond": {"telnyx": {"api_key": "KEYfake", "api_base_url": telnyx.base_url, "connection_id": "2811212257810187875",
                                "public_key": telnyx.public_key},
                     "media_streams": {"telnyx_stream_token": STREAM_TOKEN}}}
    return api(bond, "POST", "/call_control_applications", body)["data"]["id"]


def events_of(receiver, call_id):
    return [json.loads(b)["data"] for _, b in list(receiver.received)
            if json.loads(b)["data"]["payload"].get("call_control_id") == call_id]


def test_a_dial_goes_out_through_telnyx_and_its_stream_becomes_the_calls_leg(bond, receiver, telnyx):
    conn = telnyx_connection(bond, receiver, telnyx)
    # With AMD: Bond runs it on the media Telnyx streams back.
    call = api(bond, "POST", "/calls", {"connection_id": conn, "to": "+13125550111", "from": "+13125550100",
                                        "answering_machine_detection": "detect",
                                        "answering_machine_detection_config": {"initial_silence_millis": 600}})["data"]
    path, headers, dial = telnyx.requests[0]
    assert path == "/v2/calls" and headers.get("authorization") == "Bearer KEYfake"
    assert dial["to"] == "+13125550111" and dial["connection_id"] == "2811212257810187875"
    assert dial["stream_bidirectional_mode"] == "rtp" and dial["stream_codec"] == "PCMU"
    assert dial["stream_url"] == f"ws://127.0.0.1:{bond.port}/media/telnyx/{conn}"
    assert dial["stream_auth_token"] == STREAM_TOKEN

    # Telnyx reports the answer, then opens the media stream.
    assert telnyx.webhook(dial["webhook_url"], "call.answered",
                          {"call_control_id": TELNYX_CALL, "client_state": dial["client_state"]}) == 200
    echo = api(bond, "POST", "/calls", {"connection_id": conn, "to": "loop:echo", "from": "+13125550100"})["data"]

    async def scenario():
        c = Carrier(bond, conn, "telnyx", Codec("PCMU"), TELNYX_CALL,
                    headers={"x-telnyx-streaming-auth-token": STREAM_TOKEN}, client_state=dial["client_state"])
        await c.open()
        # Before the bridge, the callee's line carries a steady tone: nobody talking.
        await c.send_tone(1000, 1.0)
        api(bond, "POST", f"/calls/{call['call_control_id']}/actions/bridge",
            {"call_control_id_to_bridge_with": echo["call_control_id"]})
        await c.send_tone(1000, 1.5)
        await asyncio.sleep(0.3)
        # A webhook signed with another key changes nothing.
        forged = telnyx.webhook(dial["webhook_url"], "call.hangup",
                                {"call_control_id": TELNYX_CALL, "hangup_cause": "user_busy"},
                                key=nacl.signing.SigningKey.generate())
        stale = telnyx.webhook(dial["webhook_url"], "call.hangup",
                               {"call_control_id": TELNYX_CALL, "hangup_cause": "user_busy"}, timestamp=int(time.time()) - 600)
        alive = api(bond, "GET", f"/calls/{call['call_control_id']}")["data"]["is_alive"]
        api(bond, "POST", f"/calls/{call['call_control_id']}/actions/hangup", {})
        await asyncio.wait_for(c.reader, 5)
        return c, forged, stale, alive

    c, forged, stale, alive = asyncio.run(scenario())
    assert (forged, stale, alive) == (401, 401, True)
    heard = c.heard()
    # Silence until the bridge, then the echo of the tone: decoded (a playout buffer late, and going
    # on after the carrier stops) or, once the echo reflects the packets undecoded, each chunk as it
    # was sent and no more. A second of it, from 0.1 s after it begins, is the tone.
    start = next(i for i, s in enumerate(heard) if abs(s) > 1000)
    assert share_at(heard[start + 800 : start + 8800], 1000, 8000) > 0.8
    assert c.ws.protocol.close_code == 1000
    # Hanging up Bond's call hangs up Telnyx's.
    time.sleep(0.5)
    assert any(p == f"/v2/calls/{TELNYX_CALL}/actions/hangup" for p, _, _ in telnyx.requests), telnyx.requests
    mine = events_of(receiver, call["call_control_id"])
    kinds = [e["event_type"] for e in mine]
    assert kinds[:2] == ["call.initiated", "call.answered"] and kinds[-1] == "call.hangup", kinds
    # A steady tone is nobody talking: Bond's detector says not sure once the initial silence is over.
    amd = [e["payload"] for e in mine if e["event_type"] == "call.machine.detection.ended"]
    assert [a["result"] for a in amd] == ["not_sure"] and amd[0]["decision_time_millis"] >= 600, amd


def test_telnyx_hangups_and_machine_results_reach_the_application(bond, receiver, telnyx):
    conn = telnyx_connection(bond, receiver, telnyx)
    call = api(bond, "POST", "/calls", {"connection_id": conn, "to": "+13125550112", "from": "+13125550100"})["data"]
    _, _, dial = telnyx.requests[0]
    url = dial["webhook_url"]
    assert telnyx.webhook(url, "call.machine.detection.ended", {"call_control_id": TELNYX_CALL, "result": "human"}) == 200
    assert telnyx.webhook(url, "call.hangup", {"call_control_id": TELNYX_CALL, "hangup_cause": "user_busy",
                                               "hangup_source": "callee", "sip_hangup_cause": "486"}) == 200
    status = api(bond, "GET", f"/calls/{call['call_control_id']}")["data"]
    assert status["is_alive"] is False and status["hangup_cause"] == "user_busy" and status["hangup_source"] == "callee"
    receiver.wait_for(3)
    mine = events_of(receiver, call["call_control_id"])
    machine = [e for e in mine if e["event_type"] == "call.machine.detection.ended"]
    assert machine and machine[0]["payload"]["result"] == "human"
    # Telnyx ended it: Bond does not send a hangup back.
    assert not any(p.endswith("/actions/hangup") for p, _, _ in telnyx.requests)
