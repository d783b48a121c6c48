"""`streaming_start` against a consumer written from Telnyx's published
media-streaming protocol (developers.telnyx.com, media streaming), as
an application that consumes Telnyx streams would be: a WebSocket server that
checks the auth header and every frame (`connected`, `start`, `media`, `stop`,
string counters, per-track chunks) and decodes the payloads with the standard
library's G.711 and raw L16, checking the audio by tone frequency.
"""

import asyncio
import base64
import json
import math
import ssl
import threading
import time
import warnings

import pytest
import websockets
from websockets.asyncio.server import serve

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # G.711 and byte swapping, in the standard library up to 3.12

from conftest import api, free_port, share_at, wav_at
from test_sip_trunk import wait_event

TOKEN = "stream-consumer-token-0001"


class Consumer:
    """A Telnyx stream consumer on its own thread and event loop; keeps each
    connection's request headers and the frames it received, parsed."""

    def __init__(self, on_start=None, tls=None):
        """`on_start(ws)`, if given, runs when the `start` frame arrives (to send audio back);
        with `tls` (a certificate file and its key file) the consumer serves `wss://`."""
        self.on_start = on_start
        self.ssl = None
        if tls:
            self.ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ssl.load_cert_chain(*tls)
        self.port = free_port()
        self.sessions = []  # (headers, [frames]) per connection
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._serve(),), daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    @property
    def url(self):
        return f"{'wss' if self.ssl else 'ws'}://127.0.0.1:{self.port}/stream"

    async def _serve(self):
        async def handler(ws):
            frames = []
            with self.lock:
                self.sessions.append((dict(ws.request.headers), frames))
            try:
                async for message in ws:
                    frame = json.loads(message)
                    frame["<received>"] = time.time()
                    frames.append(frame)
                    if frame["event"] == "start" and self.on_start:
                        await self.on_start(ws)
            except websockets.ConnectionClosed:
                pass
            frames.append({"event": "<closed>"})

        self.stopping = asyncio.get_running_loop().create_future()
        async with serve(handler, "127.0.0.1", self.port, ssl=self.ssl):
            self.ready.set()
            await self.stopping

    def close(self):
        self.loop.call_soon_threadsafe(self.stopping.set_result, None)
        self.thread.join(10)
        self.loop.close()

    def session(self, index=0, timeout=15.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.sessions) > index:
                    return self.sessions[index]
            time.sleep(0.05)
        raise AssertionError("Bond did not connect")

    def wait_frames(self, frames, until, timeout=15.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if until(list(frames)):
                return list(frames)
            time.sleep(0.05)
        raise AssertionError(f"frames so far: {[f['event'] for f in frames][:10]}...")


@pytest.fixture
def consumer():
    c = Consumer()
    yield c
    c.close()


def app(bond, receiver):
    body = {"application_name": "stream out", "webhook_event_url": receiver.url}
    return api(bond, "POST", "/call_control_applications", body)["data"]["id"]


def dial(bond, conn, to):
    return api(bond, "POST", "/calls", {"connection_id": conn, "to": to, "from": "+15550001111"})["data"]


def action(bond, call, name, body):
    return api(bond, "POST", f"/calls/{call}/actions/{name}", body)


def media_of(frames, track):
    return [f for f in frames if f["event"] == "media" and f["media"]["track"] == track]


def test_a_call_streams_its_party_to_a_telnyx_consumer_until_streaming_stop(bond, receiver, consumer):
    conn = app(bond, receiver)
    call = dial(bond, conn, "loop:tone?hz=1000")
    cid = call["call_control_id"]
    action(
        bond,
        cid,
        "streaming_start",
        {
            "stream_url": consumer.url,
            "stream_auth_token": TOKEN,
            "custom_parameters": [{"name": "customer_id", "value": "customer_123"}],
        },
    )
    headers, frames = consumer.session()
    assert headers.get("x-telnyx-streaming-auth-token") == TOKEN
    started = wait_event(receiver, "streaming.started", call_control_id=cid)
    assert started["stream_url"] == consumer.url

    consumer.wait_frames(frames, lambda fs: len(media_of(fs, "inbound")) >= 50)
    action(bond, cid, "streaming_stop", {"stream_id": started["stream_id"]})
    frames = consumer.wait_frames(frames, lambda fs: fs[-1]["event"] == "<closed>")
    stopped = wait_event(receiver, "streaming.stopped", call_control_id=cid)
    assert stopped["stream_id"] == started["stream_id"]

    assert [f["event"] for f in frames[:2]] == ["connected", "start"]
    assert frames[0]["version"] == "1.0.0"
    start = frames[1]
    assert start["stream_id"] == started["stream_id"]
    assert start["start"]["call_control_id"] == cid
    assert start["start"]["call_session_id"] == call["call_session_id"]
    assert start["start"]["media_format"] == {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}
    assert start["start"]["custom_parameters"] == {"customer_id": "customer_123"}
    assert [f["event"] for f in frames[-2:]] == ["stop", "<closed>"]
    assert frames[-2]["stop"]["call_control_id"] == cid

    sent = frames[:-1]
    assert [f["sequence_number"] for f in sent[1:]] == [str(n) for n in range(1, len(sent))], "string counters, in order"
    media = media_of(frames, "inbound")
    assert media_of(frames, "outbound") == [], "inbound_track is the default"
    assert [m["media"]["chunk"] for m in media] == [str(n) for n in range(1, len(media) + 1)]
    assert all(m["stream_id"] == start["stream_id"] for m in media)
    assert [int(m["media"]["timestamp"]) for m in media[:3]] == [0, 20, 40]
    pcm = b"".join(audioop.ulaw2lin(base64.b64decode(m["media"]["payload"]), 2) for m in media)
    assert len(pcm) == len(media) * 320, "20 ms of 8 kHz PCMU per frame"
    samples = list(memoryview(pcm).cast("h"))
    assert share_at(samples[1600:], 1000, 8000) > 0.9, "the consumer hears the call's 1000 Hz party"

    assert api(bond, "GET", f"/calls/{cid}")["data"]["is_alive"], "stopping the stream leaves the call up"


def test_both_tracks_of_a_bridged_call_stream_as_l16_and_end_with_the_call(bond, receiver, consumer):
    conn = app(bond, receiver)
    customer = dial(bond, conn, "loop:tone?hz=700")["call_control_id"]
    agent = dial(bond, conn, "loop:tone?hz=1100")["call_control_id"]
    action(bond, customer, "bridge", {"call_control_id_to_bridge_with": agent})
    action(
        bond,
        customer,
        "streaming_start",
        {"stream_url": consumer.url, "stream_track": "both_tracks", "stream_codec": "L16"},
    )
    with pytest.raises(Exception) as second:
        action(bond, customer, "streaming_start", {"stream_url": consumer.url})
    assert "422" in str(second.value), "one stream per call"

    _, frames = consumer.session()
    consumer.wait_frames(frames, lambda fs: len(media_of(fs, "outbound")) >= 50)
    api(bond, "POST", f"/calls/{customer}/actions/hangup", {})
    frames = consumer.wait_frames(frames, lambda fs: fs[-1]["event"] == "<closed>")
    wait_event(receiver, "streaming.stopped", call_control_id=customer)
    assert frames[-2]["event"] == "stop", "the call's end stops the stream"

    assert frames[1]["start"]["media_format"] == {"encoding": "L16", "sample_rate": 16000, "channels": 1}
    for track, hz in (("inbound", 700), ("outbound", 1100)):
        media = media_of(frames, track)
        assert [m["media"]["chunk"] for m in media] == [str(n) for n in range(1, len(media) + 1)]
        raw = b"".join(base64.b64decode(m["media"]["payload"]) for m in media)
        assert len(raw) == len(media) * 640, "20 ms of 16 kHz 16-bit audio per frame"
        samples = list(memoryview(audioop.byteswap(raw, 2)).cast("h"))  # L16 is big-endian
        assert share_at(samples[3200:], hz, 16000) > 0.9, f"{track}: {hz} Hz"


def test_a_dial_with_stream_url_streams_from_the_answer_in_the_asked_codec(bond, receiver, consumer):
    conn = app(bond, receiver)
    body = {"connection_id": conn, "to": "loop:tone?hz=600", "from": "+15550001111"}
    body.update(stream_url=consumer.url, stream_codec="PCMA", client_state="c3RyZWFt")
    cid = api(bond, "POST", "/calls", body)["data"]["call_control_id"]
    _, frames = consumer.session()
    consumer.wait_frames(frames, lambda fs: len(media_of(fs, "inbound")) >= 50)
    start = frames[1]["start"]
    assert (start["call_control_id"], start["client_state"]) == (cid, "c3RyZWFt")
    assert start["media_format"] == {"encoding": "PCMA", "sample_rate": 8000, "channels": 1}
    pcm = b"".join(audioop.alaw2lin(base64.b64decode(m["media"]["payload"]), 2) for m in media_of(frames, "inbound"))
    assert share_at(list(memoryview(pcm).cast("h"))[1600:], 600, 8000) > 0.9
    wait_event(receiver, "streaming.started", call_control_id=cid)


def test_a_consumer_that_cannot_be_reached_gives_streaming_failed_and_the_call_goes_on(bond, receiver):
    conn = app(bond, receiver)
    cid = dial(bond, conn, "loop:echo")["call_control_id"]
    url = f"ws://127.0.0.1:{free_port()}/nobody"
    action(bond, cid, "streaming_start", {"stream_url": url, "stream_track": "outbound_track"})
    failed = wait_event(receiver, "streaming.failed", call_control_id=cid)
    assert failed["stream_params"] == {"stream_url": url, "track": "outbound_track"}
    assert failed["failure_reason"]
    assert api(bond, "GET", f"/calls/{cid}")["data"]["is_alive"]
    # The failed stream is gone: another may start.
    action(bond, cid, "streaming_start", {"stream_url": url})


def test_a_stream_url_on_the_metadata_address_fails_at_once_without_a_connection(bond, receiver):
    conn = app(bond, receiver)
    cid = dial(bond, conn, "loop:echo")["call_control_id"]
    action(bond, cid, "streaming_start", {"stream_url": "ws://169.254.169.254/latest/meta-data/"})
    failed = wait_event(receiver, "streaming.failed", call_control_id=cid)
    assert "not an address Bond connects to" in failed["failure_reason"], failed
    assert api(bond, "GET", f"/calls/{cid}")["data"]["is_alive"]


def recorded_call_streaming_to(bond, receiver, back, **bidirectional):
    """A silent call, recorded in dual channels, streaming to `back` with these
    `stream_bidirectional_*` fields and the audio sent back played to itself: its id."""
    cid = dial(bond, app(bond, receiver), "loop:silence")["call_control_id"]
    action(bond, cid, "record_start", {"channels": "dual", "format": "wav"})
    action(bond, cid, "streaming_start", {"stream_url": back.url, "stream_bidirectional_target_legs": "self",
                                          **bidirectional})
    return cid


def recorded_sides(bond, receiver, cid):
    """Stop the call's recording: (what its party heard, what it said, the loud 20 ms frames heard)."""
    time.sleep(0.3)
    action(bond, cid, "record_stop", {})
    saved = wait_event(receiver, "call.recording.saved", call_control_id=cid)
    _, _, stereo = wav_at(saved["recording_urls"]["wav"])
    heard = stereo[1::2]  # right: what the call's party heard
    loud = [i for i in range(0, len(heard) - 160, 160) if max(abs(x) for x in heard[i:i + 160]) > 2000]
    return heard, stereo[0::2], loud


def test_audio_sent_back_on_a_bidirectional_stream_is_played_to_the_call_and_its_mark_answered(bond, receiver):
    """`stream_bidirectional_mode: rtp`: the consumer answers `start` with 1 s of a 1 kHz
    tone (one PCMU media frame, no stream_id, as an app sends it), then a mark; the
    call's party hears the tone (its recording) and the mark comes back once it played."""
    tone = [int(8000 * math.sin(2 * math.pi * 1000 * n / 8000)) for n in range(8000)]
    payload = base64.b64encode(audioop.lin2ulaw(b"".join(s.to_bytes(2, "little", signed=True) for s in tone), 2)).decode()
    sent_at = []

    async def answer(ws):
        await ws.send(json.dumps({"event": "media", "media": {"payload": payload}}))
        await ws.send(json.dumps({"event": "mark", "mark": {"name": "tone-played"}}))
        await ws.send("not json")
        sent_at.append(time.time())

    back = Consumer(on_start=answer)
    try:
        cid = recorded_call_streaming_to(bond, receiver, back, stream_bidirectional_mode="rtp",
                                         stream_bidirectional_codec="PCMU")
        _, frames = back.session()
        frames = back.wait_frames(frames, lambda fs: any(f["event"] == "mark" for f in fs))
        mark = next(f for f in frames if f["event"] == "mark")
        assert mark["mark"] == {"name": "tone-played"} and mark["stream_id"]
        waited = mark["<received>"] - sent_at[0]
        assert 0.85 < waited < 2.0, f"the mark came {waited:.2f} s after 1 s of audio"
        error = next(f for f in frames if f["event"] == "error")
        assert error["payload"]["code"] == 100003, error
        heard, said, loud = recorded_sides(bond, receiver, cid)
        assert 45 <= len(loud) <= 55, f"about 1 s of tone: {len(loud)} frames"
        segment = heard[loud[0] + 400:loud[0] + 6000]
        assert share_at(segment, 1000, 8000) > 0.9
        assert max(abs(x) for x in said) < 100, "left, what the party said: silence"
        action(bond, cid, "hangup", {})
    finally:
        back.close()


def test_an_mp3_file_sent_back_in_telnyxs_default_mode_is_played_and_a_second_within_a_second_is_refused(bond, receiver):
    """`stream_bidirectional_mode: mp3` (Telnyx's default): a whole MP3 file, made by LAME
    (the `lameenc` package) from 1 s of 1 kHz at 16 kHz, is heard by the call's party; a
    second file sent at once gets Telnyx's rate-limit error 100005."""
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(64)
    encoder.set_in_sample_rate(16000)
    encoder.set_channels(1)
    encoder.set_quality(2)
    tone = b"".join(int(8000 * math.sin(2 * math.pi * 1000 * n / 16000)).to_bytes(2, "little", signed=True)
                    for n in range(16000))
    mp3 = base64.b64encode(encoder.encode(tone) + encoder.flush()).decode()

    async def answer(ws):
        await ws.send(json.dumps({"event": "media", "media": {"payload": mp3}}))
        await ws.send(json.dumps({"event": "media", "media": {"payload": mp3}}))
        await ws.send(json.dumps({"event": "mark", "mark": {"name": "mp3-played"}}))

    back = Consumer(on_start=answer)
    try:
        cid = recorded_call_streaming_to(bond, receiver, back, stream_bidirectional_mode="mp3")
        _, frames = back.session()
        frames = back.wait_frames(frames, lambda fs: any(f["event"] == "mark" for f in fs))
        error = next(f for f in frames if f["event"] == "error")
        assert error["payload"]["code"] == 100005, error
        heard, _, loud = recorded_sides(bond, receiver, cid)
        assert 40 <= len(loud) <= 60, f"about 1 s of the MP3's tone, once: {len(loud)} frames"
        assert share_at(heard[loud[0] + 800:loud[0] + 6000], 1000, 8000) > 0.9
        action(bond, cid, "hangup", {})
    finally:
        back.close()


def test_a_telnyx_app_that_sets_no_target_legs_and_sends_odd_sized_chunks_is_heard_by_the_caller(bond, receiver):
    """Written as voice-AI frameworks use Telnyx: `stream_bidirectional_mode: rtp`
    and no `stream_bidirectional_target_legs` on a call that is not bridged, and
    audio resampled into chunks of 1,100 PCMU bytes (137.5 ms), not whole 20 ms
    frames. On Telnyx the caller hears it; so on Bond, seamlessly."""
    tone = [int(8000 * math.sin(2 * math.pi * 1000 * n / 8000)) for n in range(8000)]
    ulaw = audioop.lin2ulaw(b"".join(s.to_bytes(2, "little", signed=True) for s in tone), 2)

    async def answer(ws):
        for i in range(0, len(ulaw), 1100):
            await ws.send(json.dumps({"event": "media", "media": {"payload": base64.b64encode(ulaw[i:i + 1100]).decode()}}))
        await ws.send(json.dumps({"event": "mark", "mark": {"name": "said"}}))

    back = Consumer(on_start=answer)
    try:
        cid = dial(bond, app(bond, receiver), "loop:silence")["call_control_id"]
        action(bond, cid, "record_start", {"channels": "dual", "format": "wav"})
        action(bond, cid, "streaming_start", {"stream_url": back.url, "stream_bidirectional_mode": "rtp",
                                              "stream_bidirectional_codec": "PCMU"})
        _, frames = back.session()
        frames = back.wait_frames(frames, lambda fs: any(f["event"] == "mark" for f in fs))
        assert not [f for f in frames if f["event"] == "error"], frames
        heard, _, loud = recorded_sides(bond, receiver, cid)
        assert 47 <= len(loud) <= 53, f"1 s of tone, nothing dropped: {len(loud)} frames"
        assert loud == list(range(loud[0], loud[0] + 160 * len(loud), 160)), "no gap between the chunks"
        assert share_at(heard[loud[0] + 400:loud[-1]], 1000, 8000) > 0.9
        action(bond, cid, "hangup", {})
    finally:
        back.close()


def test_digits_the_caller_presses_reach_the_stream_as_dtmf_frames(bond, receiver, consumer):
    """A caller on a Telnyx media stream presses 7 (Telnyx's `dtmf` frame) and then
    plays 4 in band (the DTMF tones in its audio): the application streaming that
    call gets a `dtmf` frame for each, as from Telnyx, and call.dtmf.received."""
    from test_media_streams import TOKEN as CARRIER_TOKEN
    from test_media_streams import Carrier, Codec, call_of
    from test_media_streams import connection as carrier_connection

    conn = carrier_connection(bond, receiver)

    async def scenario():
        c = Carrier(bond, conn, "telnyx", Codec("PCMU"), "v2:call-dtmf1",
                    headers={"x-telnyx-streaming-auth-token": CARRIER_TOKEN})
        await c.open()
        call = call_of(bond, "carrier_call_control_id", c.call_id, receiver)["call_control_id"]
        await asyncio.to_thread(action, bond, call, "streaming_start", {"stream_url": consumer.url})
        await asyncio.to_thread(consumer.session)
        await c.send_tone(0, 0.5)
        await c.ws.send(c.frame("dtmf", dtmf={"digit": "7"}))
        await c.send_tone(0, 0.3)
        # 4: 770 Hz + 1209 Hz for 100 ms, then silence.
        per_frame = 160
        for i in range(5):
            samples = [int(4000 * (math.sin(2 * math.pi * 770 * n / 8000) + math.sin(2 * math.pi * 1209 * n / 8000)))
                       for n in range(i * per_frame, (i + 1) * per_frame)]
            await c.ws.send(c.media_frame(c.codec.encode(samples)))
            await asyncio.sleep(0.02)
        await c.send_tone(0, 0.5)
        return call

    call = asyncio.run(scenario())
    _, frames = consumer.session()
    frames = consumer.wait_frames(frames, lambda fs: len([f for f in fs if f["event"] == "dtmf"]) >= 2)
    dtmf = [f for f in frames if f["event"] == "dtmf"]
    assert [f["dtmf"]["digit"] for f in dtmf] == ["7", "4"], dtmf
    for f in dtmf:
        assert f["stream_id"] and isinstance(f["sequence_number"], str) and f["occurred_at"].endswith("Z"), f
    digits = [json.loads(b)["data"]["payload"]["digit"] for _, b in list(receiver.received)
              if json.loads(b)["data"]["event_type"] == "call.dtmf.received"]
    assert digits == ["7", "4"], digits
    action(bond, call, "hangup", {})
