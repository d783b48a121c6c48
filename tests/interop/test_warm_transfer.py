"""A warm (attended) transfer built from Bond's primitives, driven by the
official Telnyx Python SDK as docs/api.md's recipe describes: a sipp caller
(its media the test's socket) talks to an agent (a built-in 700 Hz tone); the
agent puts the caller on hold with music (500 Hz) and consults a third party
(1,200 Hz); then either completes the transfer (the caller hears the third
party, the agent leaves) or cancels it (the third party goes, the caller hears
the agent again). The caller is up throughout.
"""

import math
import os
import struct
import wave

from conftest import api, share_at
from test_queues import answered_caller, listen, sdk
from test_sip_trunk import trunk_connection, wait_event

AGENT_HZ, MUSIC_HZ, THIRD_HZ = 700, 500, 1200


def write_music(bond):
    """The hold music: a WAV at the caller's rate (PCMU, 8 kHz) in Bond's data directory."""
    with wave.open(os.path.join(bond.data_dir, "hold.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        samples = (int(6000 * math.sin(2 * math.pi * MUSIC_HZ * n / 8000)) for n in range(8000 * 2))
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))


def hears(media, port, hz, seconds=1.5):
    heard = listen(media, port, seconds)[-4000:]
    return share_at(heard, hz, 8000)


def consult(bond, receiver, client, conn):
    """The caller talking to the agent, then on hold while the agent talks to a third party."""
    write_music(bond)
    caller, media, call, port = answered_caller(bond, receiver, client)
    agent = client.calls.dial(connection_id=conn, to=f"loop:tone?hz={AGENT_HZ}", from_="+15550000001").data
    # The caller stays up when the agent's bridge comes apart.
    client.calls.actions.bridge(call, call_control_id_to_bridge_with=agent.call_control_id,
                                park_after_unbridge="self")
    assert hears(media, port, AGENT_HZ) > 0.8
    # `hold` and `unhold` are Bond's own (the SDK has no method for them).
    api(bond, "POST", f"/calls/{call}/actions/hold", {"audio_file": "hold.wav"})
    third = client.calls.dial(connection_id=conn, to=f"loop:tone?hz={THIRD_HZ}", from_="+15550000001").data
    wait_event(receiver, "call.answered", call_control_id=third.call_control_id)
    # The agent stays up if the third party hangs up (a cancelled transfer).
    client.calls.actions.bridge(agent.call_control_id, call_control_id_to_bridge_with=third.call_control_id,
                                park_after_unbridge="self")
    assert hears(media, port, MUSIC_HZ) > 0.8, "the caller hears the music while the agent consults"
    assert client.calls.retrieve_status(call).data.is_alive
    return caller, media, call, port, agent.call_control_id, third.call_control_id


def test_a_completed_warm_transfer_leaves_the_caller_with_the_third_party(bond, receiver):
    conn = trunk_connection(bond, receiver)
    client = sdk(bond)
    caller, media, call, port, agent, third = consult(bond, receiver, client, conn)
    api(bond, "POST", f"/calls/{call}/actions/unhold", {})
    client.calls.actions.bridge(call, call_control_id_to_bridge_with=third)
    client.calls.actions.hangup(agent)
    wait_event(receiver, "call.hangup", call_control_id=agent)
    assert hears(media, port, THIRD_HZ) > 0.8, "the caller hears the third party"
    assert client.calls.retrieve_status(call).data.is_alive
    client.calls.actions.hangup(call)
    assert caller.wait()[0] == 0


def test_a_cancelled_warm_transfer_returns_the_caller_to_the_agent(bond, receiver):
    conn = trunk_connection(bond, receiver)
    client = sdk(bond)
    caller, media, call, port, agent, third = consult(bond, receiver, client, conn)
    client.calls.actions.hangup(third)
    wait_event(receiver, "call.hangup", call_control_id=third)
    client.calls.actions.bridge(call, call_control_id_to_bridge_with=agent, park_after_unbridge="self")
    api(bond, "POST", f"/calls/{call}/actions/unhold", {})
    assert hears(media, port, AGENT_HZ) > 0.8, "the caller hears the agent again"
    assert client.calls.retrieve_status(agent).data.is_alive
    client.calls.actions.hangup(call)
    assert caller.wait()[0] == 0
