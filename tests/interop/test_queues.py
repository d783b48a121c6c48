"""`enqueue`, `leave_queue` and `/v2/queues` driven by the official Telnyx Python
SDK against a real `bond serve`, with sipp callers whose media is the test's
socket. A queued caller hears Bond's hold music, then its place in line spoken
over it; the application picks it for an "agent" (a built-in tone) with
`bridge`, and the caller hears the agent. Callers leave with Telnyx's
`call.dequeued` reasons: bridged, leave, timeout and hangup. A queue that
routes by itself (Bond's `bond_routing`) rings the longest-idle available
agent with the skills it asks for (aiortc on the signalling socket), moves on when it rings out, and the
caller hears the agent who answers.
"""

import asyncio
import json
import math
import os
import re
import struct
import time
import urllib.error
import urllib.request
import wave

import pytest
from telnyx import Telnyx

from conftest import API_KEY, api, chunks_of, rms, share_at
from test_sip_trunk import events, listen, rtp_caller, trunk_connection, wait_event
from test_webrtc_aiortc import Agent, agent_token

# The notes of Bond's hold tune (`calls/src/queue/music.rs`).
TUNE_HZ = [440.0, 554.37, 659.25, 329.63, 415.30, 493.88]


def sdk(bond):
    return Telnyx(api_key=API_KEY, base_url=bond.base_url, max_retries=0)


def answered_caller(bond, receiver, client):
    """A new sipp caller, answered: (caller, its media socket, the call, Bond's RTP port)."""
    known = {e["payload"]["call_control_id"] for e in events(receiver) if e["event_type"] == "call.initiated"}
    caller, media = rtp_caller(bond, bye_timeout_ms=60000)
    deadline = time.time() + 15
    while not (new := [e["payload"]["call_control_id"] for e in events(receiver)
                       if e["event_type"] == "call.initiated" and e["payload"]["call_control_id"] not in known]):
        assert time.time() < deadline, "no new incoming call"
        time.sleep(0.05)
    call = new[0]
    assert client.calls.actions.answer(call).data.result == "ok"
    bond_port = int(caller.logged(r"BOND_RTP (\d+)").group(1))
    return caller, media, call, bond_port


def tune_share(samples):
    """How much of what sounds, 100 ms at a time, is one of the tune's notes (near 1 for the tune)."""
    sounding = [c for c in chunks_of(samples) if rms(c) > 100]
    return sum(max(share_at(c, hz, 8000) for hz in TUNE_HZ) for c in sounding) / max(1, len(sounding))


def agent_states(bond):
    return {a["name"]: a["state"] for a in api(bond, "GET", "/agents")["data"]}


def metrics(bond):
    with urllib.request.urlopen(f"http://127.0.0.1:{bond.port}/metrics", timeout=10) as r:
        return r.read().decode()


def dequeued(receiver, call):
    return wait_event(receiver, "call.dequeued", call_control_id=call)


def test_a_queued_caller_hears_music_and_its_place_then_the_agent_that_picks_it(bond, receiver):
    conn = trunk_connection(bond, receiver)
    client = sdk(bond)
    first, first_media, call, port = answered_caller(bond, receiver, client)
    assert client.calls.actions.enqueue(call, queue_name="support").data.result == "ok"
    joined = wait_event(receiver, "call.enqueued", call_control_id=call)
    assert (joined["queue"], joined["current_position"]) == ("support", 1), joined

    second, _, other, _ = answered_caller(bond, receiver, client)
    client.calls.actions.enqueue(other, queue_name="support", max_size=5)
    assert wait_event(receiver, "call.enqueued", call_control_id=other)["current_position"] == 2
    queue = client.queues.retrieve("support").data
    assert (queue.name, queue.current_size, queue.max_size) == ("support", 2, 100), queue
    waiting = client.queues.calls.list("support").data
    assert [(c.call_control_id, c.queue_position) for c in waiting] == [(call, 1), (other, 2)], waiting

    # Music first; from 2 s in, "you are next in line" over it, the music ducked.
    heard = listen(first_media, port, 5.0)
    music = heard[2000:8000 * 2]
    assert rms(music) > 300 and tune_share(music) > 0.6, (rms(music), tune_share(music))
    spoken = heard[8000 * 2 + 4000:8000 * 4]
    assert rms(spoken) > 300 and tune_share(spoken) < 0.5, (rms(spoken), tune_share(spoken))

    agent = client.calls.dial(connection_id=conn, to="loop:tone?hz=1200", from_="+15550000000").data
    client.calls.actions.bridge(call, call_control_id_to_bridge_with=agent.call_control_id)
    left = dequeued(receiver, call)
    assert (left["queue"], left["reason"], left["queue_position"]) == ("support", "bridged", 1), left
    wait_event(receiver, "call.bridged", call_control_id=call)
    kinds = [e["event_type"] for e in events(receiver) if e["payload"]["call_control_id"] == call]
    assert kinds.index("call.dequeued") < kinds.index("call.bridged"), kinds
    heard = listen(first_media, port, 1.5)[-8000:]
    assert share_at(heard, 1200, 8000) > 0.8, share_at(heard, 1200, 8000)
    assert client.queues.calls.retrieve(other, queue_name="support").data.queue_position == 1

    client.calls.actions.leave_queue(other)
    assert dequeued(receiver, other)["reason"] == "leave"
    assert client.queues.retrieve("support").data.current_size == 0
    for c in (call, other):
        client.calls.actions.hangup(c)
    assert first.wait()[0] == 0 and second.wait()[0] == 0


def test_a_caller_waiting_too_long_leaves_with_timeout_and_stays_up(bond, receiver):
    trunk_connection(bond, receiver)
    client = sdk(bond)
    caller, media, call, port = answered_caller(bond, receiver, client)
    client.calls.actions.enqueue(call, queue_name="sales", max_wait_time_secs=1)
    left = dequeued(receiver, call)
    assert (left["reason"], left["wait_time_secs"]) == ("timeout", 1), left
    assert client.calls.retrieve_status(call).data.is_alive
    assert rms(listen(media, port, 1.0)[-4000:]) < 50, "the music stopped"
    client.calls.actions.hangup(call)
    assert caller.wait()[0] == 0


def test_a_caller_hanging_up_leaves_its_queue_before_the_hangup_event(bond, receiver):
    trunk_connection(bond, receiver)
    client = sdk(bond)
    caller, _, call, _ = answered_caller(bond, receiver, client)
    client.calls.actions.enqueue(call, queue_name="sales")
    wait_event(receiver, "call.enqueued", call_control_id=call)
    client.calls.actions.hangup(call)
    wait_event(receiver, "call.hangup", call_control_id=call)
    mine = [(e["event_type"], e["payload"].get("reason")) for e in events(receiver)
            if e["payload"]["call_control_id"] == call]
    assert mine[-2:] == [("call.dequeued", "hangup"), ("call.hangup", None)], mine
    assert client.queues.retrieve("sales").data.current_size == 0
    caller.wait()


def write_tone_wav(path, hz, rate=44100, seconds=2):
    """A stereo 16-bit WAV of a tone, at a rate no call runs at."""
    frames = b"".join(struct.pack("<hh", s, s) for s in
                      (int(8000 * math.sin(2 * math.pi * hz * i / rate)) for i in range(rate * seconds)))
    with wave.open(path, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)


def test_a_queue_with_its_own_hold_file_plays_it_to_waiting_callers(bond, receiver):
    trunk_connection(bond, receiver)
    client = sdk(bond)
    write_tone_wav(os.path.join(bond.data_dir, "hold.wav"), 700)
    with pytest.raises(urllib.error.HTTPError) as refused:
        api(bond, "POST", "/queues", {"queue_name": "music", "bond_hold_audio_file": "missing.wav"})
    error = json.loads(refused.value.read())["errors"][0]
    assert refused.value.code == 422 and error["source"]["pointer"] == "/bond_hold_audio_file", error
    made = api(bond, "POST", "/queues", {"queue_name": "music", "bond_hold_audio_file": "hold.wav"})["data"]
    assert made["bond_hold_audio_file"] == "hold.wav", made
    caller, media, call, port = answered_caller(bond, receiver, client)
    client.calls.actions.enqueue(call, queue_name="music")
    heard = listen(media, port, 1.5)[-8000:]  # before the first announcement, 2 s in
    assert share_at(heard, 700, 8000) > 0.8, share_at(heard, 700, 8000)
    client.calls.actions.hangup(call)
    caller.wait()


def test_queues_are_made_sized_listed_and_deleted_and_a_full_one_refuses(bond, receiver):
    trunk_connection(bond, receiver)
    client = sdk(bond)
    made = client.queues.create(queue_name="vip", max_size=1).data
    assert (made.name, made.max_size, made.current_size, made.record_type) == ("vip", 1, 0, "queue"), made
    caller, _, call, _ = answered_caller(bond, receiver, client)
    client.calls.actions.enqueue(call, queue_name="vip")
    _, _, other, _ = answered_caller(bond, receiver, client)
    with pytest.raises(Exception) as refused:
        client.calls.actions.enqueue(other, queue_name="vip")
    assert refused.value.status_code == 422 and "full" in str(refused.value), refused.value
    assert client.queues.update("vip", max_size=2).data.max_size == 2
    client.calls.actions.enqueue(other, queue_name="vip")
    waiting = r'bond_queue_calls_waiting\{[^}]*queue="vip"[^}]*\} (\d+)\n'
    assert re.findall(waiting, metrics(bond)) == ["2"]
    assert [q.name for q in client.queues.list().data] == ["vip"]
    with pytest.raises(Exception) as busy:
        client.queues.delete("vip")
    assert busy.value.status_code == 422, busy.value
    client.queues.calls.remove(call, queue_name="vip")
    assert dequeued(receiver, call)["reason"] == "leave"
    client.calls.actions.hangup(other)
    wait_event(receiver, "call.hangup", call_control_id=other)
    client.queues.delete("vip")
    with pytest.raises(Exception) as gone:
        client.queues.retrieve("vip")
    assert gone.value.status_code == 404, gone.value
    # A deleted queue reads 0, not the callers it last had.
    assert re.findall(waiting, metrics(bond)) == ["0"]
    client.calls.actions.hangup(call)
    caller.wait()


def test_a_routing_queue_rings_the_longest_idle_agent_and_the_next_when_it_rings_out(bond, receiver):
    trunk_connection(bond, receiver)
    client = sdk(bond)
    made = api(bond, "POST", "/queues", {"queue_name": "help", "bond_routing": "longest_idle", "bond_ring_secs": 5,
                                         "bond_skills": ["billing"]})
    assert (made["data"]["bond_routing"], made["data"]["bond_ring_secs"]) == ("longest_idle", 5), made
    assert made["data"]["bond_skills"] == ["billing"], made

    async def flow():
        async with Agent(bond, agent_token(bond, "ann")) as ann, Agent(bond, agent_token(bond, "bob")) as bob:
            states = await asyncio.to_thread(agent_states, bond)
            assert states == {"ann": "unavailable", "bob": "unavailable"}, states
            # The queue asks for billing: a supervisor gives both agents the skill.
            skilled = await asyncio.to_thread(api, bond, "PATCH", "/agents/ann", {"skills": ["billing", "spanish"]})
            assert skilled["data"]["skills"] == ["billing", "spanish"], skilled
            # ann makes herself ready first (idle longest); the supervisor makes bob ready.
            await ann.send(type="availability", available=True)
            assert (await ann.next("availability"))["available"] is True
            await asyncio.sleep(0.2)
            await asyncio.to_thread(api, bond, "PATCH", "/agents/bob", {"available": True, "skills": ["billing"]})
            assert (await bob.next("availability"))["available"] is True
            caller, media, call, port = await asyncio.to_thread(answered_caller, bond, receiver, client)
            await asyncio.to_thread(client.calls.actions.enqueue, call, queue_name="help")
            offered = await ann.next("incoming_call")
            scraped = await asyncio.to_thread(metrics, bond)
            assert re.search(r'bond_queue_calls_waiting\{[^}]*queue="help"[^}]*\} 1\n', scraped), scraped[-2000:]
            assert re.search(r'bond_agents\{[^}]*state="busy"[^}]*\} 1\n', scraped), "ann rings: busy"
            assert offered["from"] == wait_event(receiver, "call.initiated", call_control_id=call)["from"]
            # ann lets it ring out: Bond makes her unavailable, and bob gets the caller.
            assert (await ann.next("availability", timeout=15))["available"] is False
            assert (await ann.next("hangup"))["cause"] == "timeout"
            offered = await bob.next("incoming_call")
            await bob.accept(offered["call_control_id"])
            left = await asyncio.to_thread(dequeued, receiver, call)
            assert (left["reason"], left["queue"]) == ("bridged", "help"), left
            heard = (await asyncio.to_thread(listen, media, port, 2.5))[-8000:]
            assert share_at(heard, 440, 8000) > 0.7, f"the caller hears bob's 440 Hz: {share_at(heard, 440, 8000):.2f}"
            states = await asyncio.to_thread(agent_states, bond)
            assert states == {"ann": "unavailable", "bob": "busy"}, states
            await asyncio.to_thread(client.calls.actions.hangup, call)
            assert (await bob.next("hangup"))["cause"] == "normal_clearing"
            return caller

    caller = asyncio.run(flow())
    assert caller.wait()[0] == 0
