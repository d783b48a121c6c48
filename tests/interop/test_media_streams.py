"""Carrier media streams into a real `bond serve`, from a test carrier written
from the carriers' published protocols (Telnyx Media Streaming and Twilio
Media Streams documentation), not from Bond's code: Telnyx Media Streaming and Twilio Media
Streams frames, string counters, streamSid, X-Twilio-Signature, error codes.

Audio is checked by tone frequency (a Goertzel filter), both ways.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import math
import urllib.request
import warnings

import array

import G722
import opuslib
import pytest
import websockets
from websockets.asyncio.client import connect

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # G.711 and byte swapping, in the standard library up to 3.12

from conftest import API_KEY, Receiver, api, share_at, tone

TOKEN = "carrier-stream-token-0001"
TWILIO_AUTH = "twilio-auth-token-0001"


def connection(bond, receiver):
    body = {
        "application_name": "streams",
        "webhook_event_url": receiver.url,
        "bond": {"media_streams": {"telnyx_stream_token": TOKEN, "twilio_auth_token": TWILIO_AUTH}},
    }
    return api(bond, "POST", "/call_control_applications", body)["data"]["id"]


def pcm16(samples, big_endian=False):
    raw = b"".join(int(s).to_bytes(2, "little", signed=True) for s in samples)
    return audioop.byteswap(raw, 2) if big_endian else raw


class Codec:
    """The carrier's side of an encoding: 20 ms payloads to and from linear PCM.
    G.722 and Opus use PyPI's G722 (sippy) and opuslib (libopus), not Bond's codecs."""

    def __init__(self, encoding, rate=8000):
        self.encoding, self.rate = encoding, rate
        if encoding == "G722":
            self.rate = 16000
            self.g722_enc, self.g722_dec = G722.G722(16000, 64000), G722.G722(16000, 64000)
        if encoding == "OPUS":
            self.rate = 48000
            self.opus_enc = opuslib.Encoder(48000, 1, opuslib.APPLICATION_VOIP)
            self.opus_dec = opuslib.Decoder(48000, 1)

    def encode(self, samples):
        if self.encoding == "G722":
            return self.g722_enc.encode(array.array("h", samples))
        if self.encoding == "OPUS":
            return self.opus_enc.encode(pcm16(samples), len(samples))
        raw = pcm16(samples)
        if self.encoding in ("PCMU", "audio/x-mulaw"):
            return audioop.lin2ulaw(raw, 2)
        if self.encoding == "PCMA":
            return audioop.lin2alaw(raw, 2)
        return audioop.byteswap(raw, 2)  # L16 is big-endian

    def decode(self, payload):
        if self.encoding == "G722":
            return list(self.g722_dec.decode(payload))
        if self.encoding == "OPUS":
            raw = self.opus_dec.decode(payload, 960)
            return [int.from_bytes(raw[i : i + 2], "little", signed=True) for i in range(0, len(raw), 2)]
        if self.encoding in ("PCMU", "audio/x-mulaw"):
            raw = audioop.ulaw2lin(payload, 2)
        elif self.encoding == "PCMA":
            raw = audioop.alaw2lin(payload, 2)
        else:
            raw = audioop.byteswap(payload, 2)
        return [int.from_bytes(raw[i : i + 2], "little", signed=True) for i in range(0, len(raw), 2)]


class Carrier:
    """One carrier media stream: Telnyx's or Twilio's dialect."""

    def __init__(self, bond, connection_id, kind, codec, call_id, headers=None, token_in_connected=False,
                 client_state=None):
        scheme = "wss" if bond.scheme == "https" else "ws"
        self.url = f"{scheme}://127.0.0.1:{bond.port}/media/{kind}/{connection_id}"
        self.tls = {"ssl": bond.ssl_context} if bond.ssl_context else {}
        self.kind, self.codec, self.call_id = kind, codec, call_id
        self.headers = headers or {}
        self.token_in_connected = token_in_connected
        self.client_state = client_state  # Telnyx echoes the dial's client_state in `start`
        self.stream_id = f"stream-{call_id}"
        self.sequence = 0
        self.chunk = 0
        self.received = []  # frames from Bond, parsed

    def frame(self, event, **fields):
        self.sequence += 1
        if self.kind == "twilio":
            return json.dumps({"event": event, "sequenceNumber": str(self.sequence), "streamSid": self.stream_id, **fields})
        return json.dumps({"event": event, "sequence_number": str(self.sequence), "stream_id": self.stream_id, **fields})

    async def open(self):
        self.ws = await connect(self.url, additional_headers=self.headers, max_size=None, **self.tls)
        connected = {"event": "connected", "version": "1.0.0"}
        if self.kind == "twilio":
            connected["protocol"] = "Call"
        if self.token_in_connected:
            connected["stream_auth_token"] = TOKEN
        await self.ws.send(json.dumps(connected))
        await self.ws.send(self.frame("start", start=self.start_fields()))
        self.reader = asyncio.create_task(self._read())

    def start_fields(self):
        if self.kind == "twilio":
            start = {"accountSid": "AC1", "streamSid": self.stream_id, "callSid": self.call_id, "tracks": ["inbound"],
                     "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                     "customParameters": {"FirstName": "Jane"}}
        else:
            start = {"user_id": "u1", "call_control_id": self.call_id, "call_session_id": "s1",
                     "from": f"+1312555{self.call_id[-4:]}", "to": "+13125550100", "tags": [],
                     "custom_parameters": {"customer_id": "c1"},
                     "media_format": {"encoding": self.codec.encoding, "sample_rate": self.codec.rate, "channels": 1}}
            if self.client_state:
                start["client_state"] = self.client_state
        return start

    async def _read(self):
        try:
            async for message in self.ws:
                self.received.append(json.loads(message))
        except websockets.ConnectionClosed:
            pass

    def media_frame(self, payload, chunk=None):
        if chunk is None:
            chunk = self.chunk + 1
        self.chunk = max(self.chunk, chunk)
        media = {"track": "inbound", "chunk": str(chunk), "timestamp": str(20 * chunk),
                 "payload": base64.b64encode(payload).decode()}
        return self.frame("media", media=media)

    async def send_tone(self, hz, seconds, swap_pairs=False):
        """A tone in 20 ms media frames, in real time; `swap_pairs` sends each
        pair of frames in the wrong order (the protocol does not guarantee order)."""
        per_frame = self.codec.rate // 50
        loop = asyncio.get_running_loop()
        begin = loop.time()
        count = int(seconds * 50)
        first = self.chunk + 1
        for i in range(count):
            j = i ^ 1 if swap_pairs and (i ^ 1) < count else i
            samples = tone(hz, self.codec.rate, per_frame, start=j * per_frame)
            await self.ws.send(self.media_frame(self.codec.encode(samples), chunk=first + j))
            # Paced on a fixed 20 ms grid, as a carrier sends, without drift.
            await asyncio.sleep(max(0.0, begin + (i + 1) * 0.02 - loop.time()))

    def heard(self):
        """Samples Bond sent, decoded."""
        out = []
        for f in self.received:
            if f.get("event") == "media":
                out.extend(self.codec.decode(base64.b64decode(f["media"]["payload"])))
        return out

    def events(self, name):
        return [f for f in self.received if f.get("event") == name]


def call_of(bond, carrier_field, carrier_id, receiver, timeout=10):
    """The Bond call a stream became, from its `call.initiated` webhook."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        for _, body in list(receiver.received):
            data = json.loads(body)["data"]
            if data["event_type"] == "call.initiated" and data["payload"].get(carrier_field) == carrier_id:
                return data["payload"]
        time.sleep(0.05)
    raise AssertionError(f"no call.initiated for {carrier_id}")


async def open_bridged(bond, receiver, a, b):
    """Open both carriers' streams and bridge the two calls they became; the calls."""
    await a.open()
    await b.open()
    field = {"twilio": "carrier_call_sid", "telnyx": "carrier_call_control_id"}
    call_a, call_b = (call_of(bond, field[c.kind], c.call_id, receiver) for c in (a, b))
    api(bond, "POST", f"/calls/{call_a['call_control_id']}/actions/bridge",
        {"call_control_id_to_bridge_with": call_b["call_control_id"]})
    return call_a, call_b


def twilio_signature(url):
    return base64.b64encode(hmac.new(TWILIO_AUTH.encode(), url.encode(), hashlib.sha1).digest()).decode()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.mark.parametrize("codec_a,codec_b", [
    (Codec("PCMU"), Codec("L16", 16000)),
    (Codec("PCMA"), Codec("L16", 8000)),
    (Codec("G722"), Codec("OPUS")),
])
def test_two_telnyx_streams_bridged_carry_tones_both_ways(bond, receiver, codec_a, codec_b):
    conn = connection(bond, receiver)

    async def scenario():
        a = Carrier(bond, conn, "telnyx", codec_a, "v2:call-a001", headers={"x-telnyx-streaming-auth-token": TOKEN})
        b = Carrier(bond, conn, "telnyx", codec_b, "v2:call-b002", token_in_connected=True)
        call_a, _ = await open_bridged(bond, receiver, a, b)
        assert call_a["direction"] == "incoming" and call_a["stream_id"] == a.stream_id
        assert call_a["custom_parameters"] == {"customer_id": "c1"}
        # A's frames arrive in swapped pairs: Bond puts them back in order.
        await asyncio.gather(a.send_tone(1000, 2.0, swap_pairs=True), b.send_tone(600, 2.0))
        await asyncio.sleep(0.3)
        return a, b

    a, b = asyncio.run(scenario())
    heard_b = b.heard()
    heard_a = a.heard()
    # Bond sends 20 ms frames all along: about 50 a second, never a pile at once.
    assert len(b.events("media")) >= 90, len(b.events("media"))
    middle_b = heard_b[len(heard_b) // 3 : 2 * len(heard_b) // 3]
    middle_a = heard_a[len(heard_a) // 3 : 2 * len(heard_a) // 3]
    assert share_at(middle_b, 1000, codec_b.rate) > 0.8, share_at(middle_b, 1000, codec_b.rate)
    assert share_at(middle_a, 600, codec_a.rate) > 0.8, share_at(middle_a, 600, codec_a.rate)
    # Telnyx frames from the app carry no stream_id; all are Telnyx-shaped.
    assert all("streamSid" not in f for f in b.received)


def test_a_twilio_stream_bridged_to_a_telnyx_stream(bond, receiver):
    conn = connection(bond, receiver)
    path = f"/media/twilio/{conn}"
    url = f"ws://127.0.0.1:{bond.port}{path}"

    async def scenario():
        tw = Carrier(bond, conn, "twilio", Codec("audio/x-mulaw"), "CA0000000000000000000000000000t001",
                     headers={"X-Twilio-Signature": twilio_signature(url)})
        tx = Carrier(bond, conn, "telnyx", Codec("PCMU"), "v2:call-x003", headers={"x-telnyx-streaming-auth-token": TOKEN})
        await open_bridged(bond, receiver, tw, tx)
        await tw.send_tone(800, 1.5)
        await asyncio.sleep(0.3)
        return tw, tx

    tw, tx = asyncio.run(scenario())
    heard = tx.heard()
    assert share_at(heard[len(heard) // 3 : 2 * len(heard) // 3], 800, 8000) > 0.8
    # Twilio frames from the app carry the streamSid.
    assert tw.events("media") and all(f["streamSid"] == tw.stream_id for f in tw.events("media"))


@pytest.mark.parametrize("kind,headers", [
    ("telnyx", {"x-telnyx-streaming-auth-token": "wrong"}),
    ("telnyx", {}),
    ("twilio", {"X-Twilio-Signature": "AAAA"}),
])
def test_bad_credentials_close_with_policy_violation_and_create_nothing(bond, receiver, kind, headers):
    conn = connection(bond, receiver)

    async def scenario():
        c = Carrier(bond, conn, kind, Codec("PCMU"), "v2:call-bad1", headers=headers)
        await c.open()
        await asyncio.wait_for(c.reader, 5)
        return c.ws.protocol.close_code

    assert asyncio.run(scenario()) == 1008
    assert api(bond, "GET", "/calls")["data"] == []


def test_bad_frames_get_telnyx_errors_and_the_stream_goes_on(bond, receiver):
    conn = connection(bond, receiver)

    async def scenario():
        c = Carrier(bond, conn, "telnyx", Codec("PCMU"), "v2:call-e004", headers={"x-telnyx-streaming-auth-token": TOKEN})
        await c.open()
        call_of(bond, "carrier_call_control_id", c.call_id, receiver)
        await c.ws.send("{not json")
        await c.ws.send(json.dumps({"event": "media", "media": {"payload": "%%%not base64"}}))
        await c.ws.send(json.dumps({"event": "teleport"}))
        for _ in range(400):  # flooding: far over 50 frames a second
            await c.ws.send(c.media_frame(b"\xff" * 160))
        await asyncio.sleep(1.2)
        await c.send_tone(1000, 0.2)  # still streaming after all that
        await asyncio.sleep(0.2)
        return c

    c = asyncio.run(scenario())
    codes = [int(f["payload"]["code"]) for f in c.events("error")]
    assert codes.count(100003) == 2 and 100004 in codes and 100005 in codes, codes
    assert c.ws.protocol.close_code is None  # not closed by Bond


def test_binary_frames_on_a_twilio_stream_close_it(bond, receiver):
    conn = connection(bond, receiver)
    url = f"ws://127.0.0.1:{bond.port}/media/twilio/{conn}"

    async def scenario():
        c = Carrier(bond, conn, "twilio", Codec("audio/x-mulaw"), "CA0000000000000000000000000000b005",
                    headers={"X-Twilio-Signature": twilio_signature(url)})
        await c.open()
        call_of(bond, "carrier_call_sid", c.call_id, receiver)
        await c.ws.send(b"\x00\x01")
        await asyncio.wait_for(c.reader, 5)
        return c.ws.protocol.close_code

    assert asyncio.run(scenario()) == 1003


def test_marks_dtmf_stop_and_hangup_from_the_api(bond, receiver):
    conn = connection(bond, receiver)

    async def scenario():
        c = Carrier(bond, conn, "telnyx", Codec("PCMU"), "v2:call-m006", headers={"x-telnyx-streaming-auth-token": TOKEN})
        await c.open()
        call = call_of(bond, "carrier_call_control_id", c.call_id, receiver)
        # A burst of one second of audio, then a mark: answered only once it has played.
        for _ in range(50):
            await c.ws.send(c.media_frame(b"\xff" * 160))
        await c.ws.send(c.frame("mark", mark={"name": "after-audio"}))
        await asyncio.sleep(0.4)
        early = list(c.events("mark"))
        await asyncio.sleep(1.2)
        played = list(c.events("mark"))
        # Another burst, a mark, then clear: the mark comes back at once.
        for _ in range(50):
            await c.ws.send(c.media_frame(b"\xff" * 160))
        await c.ws.send(c.frame("mark", mark={"name": "cleared"}))
        await c.ws.send(c.frame("clear"))
        await asyncio.sleep(0.2)
        cleared = [m["mark"]["name"] for m in c.events("mark")]
        await c.ws.send(c.frame("dtmf", dtmf={"digit": "5"}))
        await asyncio.sleep(0.3)
        api(bond, "POST", f"/calls/{call['call_control_id']}/actions/hangup", {})
        await asyncio.wait_for(c.reader, 5)
        return c, call, early, played, cleared

    c, call, early, played, cleared = asyncio.run(scenario())
    assert early == [], early
    assert [m["mark"]["name"] for m in played] == ["after-audio"]
    assert cleared == ["after-audio", "cleared"]
    assert c.ws.protocol.close_code == 1000
    events = [json.loads(b)["data"] for _, b in receiver.wait_for(4)]
    mine = [e for e in events if e["payload"]["call_control_id"] == call["call_control_id"]]
    kinds = [e["event_type"] for e in mine]
    assert "call.dtmf.received" in kinds and kinds[-1] == "call.hangup", kinds
    assert next(e for e in mine if e["event_type"] == "call.dtmf.received")["payload"]["digit"] == "5"


def test_stop_hangs_the_call_up(bond, receiver):
    conn = connection(bond, receiver)

    async def scenario():
        c = Carrier(bond, conn, "telnyx", Codec("PCMU"), "v2:call-s007", headers={"x-telnyx-streaming-auth-token": TOKEN})
        await c.open()
        call = call_of(bond, "carrier_call_control_id", c.call_id, receiver)
        await c.send_tone(440, 0.2)
        await c.ws.send(c.frame("stop", stop={"user_id": "u1", "call_control_id": c.call_id}))
        await asyncio.sleep(0.5)
        return call

    call = asyncio.run(scenario())
    status = api(bond, "GET", f"/calls/{call['call_control_id']}")["data"]
    assert status["is_alive"] is False and status["hangup_cause"] == "normal_clearing"
