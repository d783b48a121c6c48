"""aiortc (PyPI) as an agent's browser: a WebRTC peer Bond did not write.

It registers on Bond's signaling socket with an agent token, is dialed as
`agent:<name>`, accepts with its own SDP offer and talks DTLS-SRTP/Opus to Bond.
Its microphone is a 440 Hz sine; what it hears is analysed by frequency:
bridged to `loop:tone?hz=1200` it must hear 1200 Hz, bridged to `loop:echo` its
own 440 Hz (which proves its audio reached Bond), and nothing while muted.
"""

import asyncio
import fractions
import json
import math
import struct
import time

import av
import pytest
import websockets
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from conftest import PUBLIC_IP, api, assert_mostly_tone, default_route_ip, rms
from test_sip_trunk import wait_event

RATE = 48000
FRAME = 960


class Sine(MediaStreamTrack):
    """A microphone that plays a steady tone, paced in real time."""

    kind = "audio"

    def __init__(self, hz):
        super().__init__()
        self.hz, self.sent, self.start = hz, 0, None

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.sent / RATE
        await asyncio.sleep(max(0, due - time.monotonic()))
        samples = [int(6000 * math.sin(2 * math.pi * self.hz * (self.sent + n) / RATE)) for n in range(FRAME)]
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME)
        frame.planes[0].update(b"".join(s.to_bytes(2, "little", signed=True) for s in samples))
        frame.sample_rate, frame.pts, frame.time_base = RATE, self.sent, fractions.Fraction(1, RATE)
        self.sent += FRAME
        return frame


class Agent:
    """An aiortc peer on Bond's signaling socket."""

    def __init__(self, bond, token):
        self.bond, self.token = bond, token
        self.heard = []
        self.messages = asyncio.Queue()

    async def __aenter__(self):
        self.ws = await websockets.connect(f"ws://127.0.0.1:{self.bond.port}/v2/agent/ws")
        await self.send(type="register", token=self.token)
        self.registered = await self.expect("registered")
        self.reader = asyncio.create_task(self.read())
        self.pc = RTCPeerConnection()
        self.pc.addTrack(Sine(440))
        self.pc.on("track", lambda track: asyncio.ensure_future(self.listen(track)))
        return self

    async def __aexit__(self, *exc):
        self.reader.cancel()
        await self.pc.close()
        await self.ws.close()

    async def send(self, **message):
        await self.ws.send(json.dumps(message))

    async def expect(self, kind, timeout=15):
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] == kind:
                return message
            assert message["type"] != "error", message

    async def read(self):
        async for raw in self.ws:
            await self.messages.put(json.loads(raw))

    async def next(self, kind, timeout=15):
        while True:
            message = await asyncio.wait_for(self.messages.get(), timeout)
            if message["type"] == kind:
                return message
            assert message["type"] != "error", message

    async def listen(self, track):
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return  # the call ended
            assert frame.format.name == "s16", frame.format.name
            channels = len(frame.layout.channels)
            pcm = struct.unpack(f"<{frame.samples * channels}h", bytes(frame.planes[0])[: frame.samples * channels * 2])
            self.heard.extend(pcm[::channels])

    async def accept(self, call):
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.send(type="accept", call_control_id=call, sdp=self.pc.localDescription.sdp)
        answer = await self.next("answer")
        self.answer_sdp = answer["sdp"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    async def place_call(self, to):
        """What the softphone does: its own leg over signaling, then the dial through
        the API with its token, linked to that leg and bridged on answer."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.send(type="call", sdp=self.pc.localDescription.sdp, to=to)
        outgoing = await self.next("outgoing")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=outgoing["sdp"], type="answer"))
        leg = outgoing["call_control_id"]
        body = {"connection_id": self.registered["connection_id"], "to": to, "from": "+15550002222",
                "link_to": leg, "bridge_on_answer": True}
        dialed = await asyncio.to_thread(api, self.bond, "POST", "/calls", body, self.token)
        return leg, dialed["data"]["call_control_id"]

    async def record(self, seconds):
        start = len(self.heard)
        await asyncio.sleep(seconds)
        return self.heard[start:]


def agent_token(bond, name, connection_id=None):
    body = {"agent": name, "ttl_secs": 600, "connection_id": connection_id}
    return api(bond, "POST", "/agent_tokens", body)["data"]["token"]


def connection(bond, receiver):
    body = {"application_name": "agents", "webhook_event_url": receiver.url}
    return api(bond, "POST", "/call_control_applications", body)["data"]["id"]


async def ring(bond, agent, conn, name, **extra):
    """Dial `agent:<name>` and wait for the agent's `incoming_call`; returns the call."""
    body = {"connection_id": conn, "to": f"agent:{name}", "from": "+15550001111", **extra}
    call = (await asyncio.to_thread(api, bond, "POST", "/calls", body))["data"]["call_control_id"]
    ring = await agent.next("incoming_call")
    assert ring["call_control_id"] == call and ring["from"] == "+15550001111"
    return call


async def hear_bridged(bond, agent, conn, call, to):
    """Bridge the agent's call to a new `loop:` leg; what the agent hears 1-3 s later."""
    other = await asyncio.to_thread(api, bond, "POST", "/calls", {"connection_id": conn, "to": to, "from": "+15550000000"})
    await asyncio.to_thread(api, bond, "POST", f"/calls/{call}/actions/bridge",
                            {"call_control_id_to_bridge_with": other["data"]["call_control_id"]})
    await asyncio.sleep(1.0)
    return await agent.record(2.0)


def test_an_aiortc_agent_is_dialed_accepts_and_hears_and_is_heard(webrtc_bond, receiver):
    bond = webrtc_bond
    conn = connection(bond, receiver)

    # One coroutine drives the whole call so aiortc's tasks share its loop.
    async def call_flow():
        async with Agent(bond, agent_token(bond, "dana.k")) as agent:
            assert agent.registered["agent"] == "dana.k"
            call = await ring(bond, agent, conn, "dana.k")
            await agent.accept(call)
            await asyncio.to_thread(wait_event, receiver, "call.answered", call_control_id=call)
            announced = {line.split()[4] for line in agent.answer_sdp.splitlines() if line.startswith("a=candidate")}
            if "BOND_WEBRTC_PUBLIC_IP" in bond.extra_env:
                assert announced == {PUBLIC_IP}, announced
            else:
                assert default_route_ip() in announced and "0.0.0.0" not in announced, announced

            heard = await hear_bridged(bond, agent, conn, call, "loop:tone?hz=1200")
            assert len(heard) > RATE, f"heard {len(heard)} samples"
            assert_mostly_tone(heard, 1200, RATE, 0.7, "the agent hears the tone")

            heard = await hear_bridged(bond, agent, conn, call, "loop:echo")
            assert_mostly_tone(heard, 440, RATE, 0.7, "the agent hears its echo")
            loud = rms(heard)

            await agent.send(type="mute", call_control_id=call, muted=True)
            await asyncio.sleep(0.5)
            muted = await agent.record(1.5)
            assert rms(muted) < loud / 10, (rms(muted), loud)

            await agent.send(type="hangup", call_control_id=call)
            ended = await agent.next("hangup")
            assert ended["cause"] == "normal_clearing"
            hangup = await asyncio.to_thread(wait_event, receiver, "call.hangup", call_control_id=call)
            assert hangup["hangup_source"] == "callee"
            assert int(hangup["call_quality_stats"]["inbound"]["packet_count"]) > 100

    asyncio.run(call_flow())


def test_an_agent_rejecting_or_not_answering_ends_the_call_with_its_cause(bond, receiver):
    conn = connection(bond, receiver)

    async def flow():
        async with Agent(bond, agent_token(bond, "sam")) as agent:
            call = await ring(bond, agent, conn, "sam")
            await agent.send(type="reject", call_control_id=call)
            assert (await agent.next("hangup"))["cause"] == "call_rejected"
            hangup = await asyncio.to_thread(wait_event, receiver, "call.hangup", call_control_id=call)
            assert hangup["hangup_cause"] == "call_rejected"

            await ring(bond, agent, conn, "sam", timeout_secs=5)
            assert (await agent.next("hangup", timeout=20))["cause"] == "timeout"

    asyncio.run(flow())


def test_signaling_refuses_bad_tokens_and_bad_frames(bond, receiver):
    conn = connection(bond, receiver)

    async def flow():
        for first in [json.dumps({"type": "register", "token": "bat_forged.AAAA"}), json.dumps({"type": "ping"})]:
            async with websockets.connect(f"ws://127.0.0.1:{bond.port}/v2/agent/ws") as ws:
                await ws.send(first)
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
                assert closed.value.rcvd.code == 1008
        async with websockets.connect(f"ws://127.0.0.1:{bond.port}/v2/agent/ws") as ws:
            await ws.send(json.dumps({"type": "register", "token": agent_token(bond, "kim")}))
            assert json.loads(await ws.recv())["type"] == "registered"
            for bad in ["not json", json.dumps({"type": "accept", "call_control_id": "v3:nope", "sdp": "v=0"}),
                        json.dumps({"type": "fly"})]:
                await ws.send(bad)
                reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert reply["type"] == "error", reply
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await ws.recv())["type"] == "pong"
            await ws.send(b"\x00binary")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd.code == 1003

    asyncio.run(flow())
    # Dialing an agent nobody registered as is refused at once.
    with pytest.raises(Exception) as refused:
        api(bond, "POST", "/calls", {"connection_id": conn, "to": "agent:nobody", "from": "+15550001111"})
    assert "422" in str(refused.value)


def test_an_aiortc_agent_places_a_call_through_the_api_and_hears_the_callee(bond, receiver):
    conn = connection(bond, receiver)

    async def flow():
        async with Agent(bond, agent_token(bond, "lee", conn)) as agent:
            assert agent.registered["connection_id"] == conn
            leg, customer = await agent.place_call("loop:tone?hz=1200")
            assert (await agent.next("answered"))["call_control_id"] == leg
            await asyncio.sleep(1.0)
            heard = await agent.record(2.0)
            assert_mostly_tone(heard, 1200, RATE, 0.7, "the agent hears the tone")
            initiated = await asyncio.to_thread(wait_event, receiver, "call.initiated", call_control_id=leg)
            assert (initiated["direction"], initiated["from"]) == ("incoming", "agent:lee")
            bridged = await asyncio.to_thread(wait_event, receiver, "call.bridged", call_control_id=customer)
            assert bridged["call_session_id"] == initiated["call_session_id"]
            # The built-in callee speaks at the agent leg's 48 kHz: nothing is resampled between them.
            answered = await asyncio.to_thread(wait_event, receiver, "call.answered", call_control_id=customer)
            assert answered["sampling_rate"] == 48000, answered

            await agent.send(type="hangup", call_control_id=leg)
            assert (await agent.next("hangup"))["cause"] == "normal_clearing"
            hangup = await asyncio.to_thread(wait_event, receiver, "call.hangup", call_control_id=leg)
            assert hangup["hangup_source"] == "caller"
            await asyncio.to_thread(wait_event, receiver, "call.hangup", call_control_id=customer)

    asyncio.run(flow())


def test_a_call_an_agent_places_ends_its_leg_when_refused_and_needs_a_connection(bond, receiver):
    conn = connection(bond, receiver)

    async def flow():
        async with Agent(bond, agent_token(bond, "ana", conn)) as caller, \
                Agent(bond, agent_token(bond, "bo")) as callee:
            leg, dialed = await caller.place_call("agent:bo")
            ring = await callee.next("incoming_call")
            assert ring["call_control_id"] == dialed and ring["from"] == "+15550002222"
            await callee.send(type="reject", call_control_id=dialed)
            ended = await caller.next("hangup")
            assert (ended["call_control_id"], ended["cause"]) == (leg, "call_rejected")
            hangup = await asyncio.to_thread(wait_event, receiver, "call.hangup", call_control_id=leg)
            assert hangup["hangup_cause"] == "call_rejected"

            # Without a connection in its token an agent only takes calls.
            await callee.pc.setLocalDescription(await callee.pc.createOffer())
            await callee.send(type="call", sdp=callee.pc.localDescription.sdp, to="loop:echo")
            while (refused := await asyncio.wait_for(callee.messages.get(), 15))["type"] != "error":
                pass
            assert (refused["type"], refused["code"]) == ("error", "call_failed"), refused

    asyncio.run(flow())
