"""How long from an agent going available to the queued caller hearing it
(issue 42's hand-off time), through a real `bond serve`: a sipp caller (its
media the script's socket) waits in a queue that routes by itself; an aiortc
agent (a 1,700 Hz microphone, a note the hold tune never plays) says it is
available, accepts the call it is offered at once, and the clock stops at the
first 20 ms packet in which the caller hears 1,700 Hz. Also reported: until the
agent's browser rings, and until `call.dequeued` (bridged) reaches the webhook.

Usage (the binary, and rounds):
  BOND_BIN=target/release/bond target/interop-venv/bin/python tests/interop/bench_queue_handoff.py 30
"""

import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

import test_webrtc_aiortc as agents  # noqa: E402
from conftest import API_KEY, Bond, Receiver, api, share_at  # noqa: E402
from telnyx import Telnyx  # noqa: E402
from test_queues import answered_caller  # noqa: E402
from test_sip_trunk import pcmu_samples, rtp_packets, trunk_connection, wait_event  # noqa: E402

AGENT_HZ = 1700


class Agent(agents.Agent):
    """The aiortc agent with a microphone at AGENT_HZ, a fresh peer connection per call."""

    async def __aenter__(self):
        await super().__aenter__()
        await self.fresh_connection()
        return self

    async def fresh_connection(self):
        await self.pc.close()
        self.pc = agents.RTCPeerConnection()
        self.pc.addTrack(agents.Sine(AGENT_HZ))
        self.pc.on("track", lambda track: asyncio.ensure_future(self.listen(track)))


def first_heard(media, bond_port, deadline):
    """Send silence every 20 ms; the arrival time of the first packet carrying AGENT_HZ."""
    silence = rtp_packets([0] * 160)[0]
    media.settimeout(0.002)
    next_send = time.monotonic()
    while time.monotonic() < deadline:
        if time.monotonic() >= next_send:
            media.sendto(silence, ("127.0.0.1", bond_port))
            next_send += 0.02
        try:
            data, _ = media.recvfrom(2048)
        except (socket.timeout, BlockingIOError):
            continue
        if len(data) > 12 and data[1] & 0x7F == 0:
            samples = pcmu_samples([data])
            if max(abs(s) for s in samples) > 500 and share_at(samples, AGENT_HZ, 8000) > 0.5:
                return time.monotonic()
    raise AssertionError("the caller never heard the agent")


async def one_round(bond, receiver, client, agent):
    caller, media, call, port = await asyncio.to_thread(answered_caller, bond, receiver, client)
    await asyncio.to_thread(client.calls.actions.enqueue, call, queue_name="bench")
    await asyncio.sleep(0.5)  # the caller is in line, hearing music
    listening = asyncio.create_task(asyncio.to_thread(first_heard, media, port, time.monotonic() + 20))
    started = time.monotonic()
    await agent.send(type="availability", available=True)
    offer = await agent.next("incoming_call")
    rang = time.monotonic()
    await agent.accept(offer["call_control_id"])
    heard = await listening
    await asyncio.to_thread(wait_event, receiver, "call.dequeued", call_control_id=call)
    dequeued = time.monotonic()
    await agent.send(type="availability", available=False)
    await asyncio.to_thread(client.calls.actions.hangup, call)
    await agent.next("hangup")
    await asyncio.to_thread(caller.wait)
    media.close()
    await agent.fresh_connection()
    return rang - started, heard - started, dequeued - started


def summary(name, values):
    ms = sorted(v * 1000 for v in values)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"{name}: p50 {statistics.median(ms):.0f} ms, p99 {p99:.0f} ms, max {ms[-1]:.0f} ms ({len(ms)} rounds)"


async def run(bond, receiver, rounds):
    trunk_connection(bond, receiver)
    client = Telnyx(api_key=API_KEY, base_url=bond.base_url, max_retries=0)
    api(bond, "POST", "/queues", {"queue_name": "bench", "bond_routing": "longest_idle"})
    results = []
    async with Agent(bond, agents.agent_token(bond, "bench")) as agent:
        for _ in range(rounds):
            results.append(await one_round(bond, receiver, client, agent))
    print(summary("available -> the agent's browser rings", [r[0] for r in results]))
    print(summary("available -> the caller hears the agent", [r[1] for r in results]))
    print(summary("available -> call.dequeued (bridged) at the webhook", [r[2] for r in results]))


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as data_dir:
        bond = Bond(data_dir)
        receiver = Receiver()
        bond.start()
        try:
            asyncio.run(run(bond, receiver, rounds))
        finally:
            bond.stop()
            receiver.close()


if __name__ == "__main__":
    main()
