"""`bridge` with `play_ringtone` (Telnyx's field), driven by the official Telnyx
Python SDK against a real `bond serve`: a sipp caller (its media the test's
socket) is answered and bridged with a call Bond dials through the trunk to a
sipp callee that rings. While it rings, the caller hears the named country's
ringback tone; when it answers, the two are bridged and the caller hears it.
A callee that never answers ends at its timeout, and the caller, who heard
the ringtone until then, hears it no more and stays up.
"""

import contextlib
import threading

from conftest import assert_mostly_tone, chunks_of, rms, share_at, tone
from test_sip_trunk import Sipp, exchange_rtp, listen, media_socket, rtp_packets, trunk_connection, wait_event
from test_transfer import answered_caller, sdk

RATE = 8000


def assert_ringtone(samples, pair, what):
    """The loud 100 ms chunks of `samples` are the two frequencies of `pair`."""
    loud = [c for c in chunks_of(samples) if rms(c) > 500]
    assert len(loud) >= 3, f"{what}: {len(loud)} loud chunks, rms {[round(rms(c)) for c in chunks_of(samples)]}"
    shares = sorted(share_at(c, pair[0], RATE) + share_at(c, pair[1], RATE) for c in loud)
    assert shares[len(shares) // 2] > 0.8, f"{what}: {pair} share per loud chunk {[round(s, 2) for s in shares]}"
    return loud


def listen_now(media, bond_port, seconds):
    """What the caller hears over `seconds` while it sends silence, not what
    its socket kept from before."""
    media.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while media.recv(2048):
            pass
    return listen(media, bond_port, seconds)


def test_a_call_bridged_with_a_ringing_call_hears_its_ringtone_until_it_answers(bond, receiver):
    callee_media = media_socket()
    callee = Sipp("uas_ring_rtp.xml", {"rtp_port": callee_media.getsockname()[1], "ring_ms": 4000})
    conn = trunk_connection(bond, receiver, trunk={"host": "127.0.0.1", "port": callee.port})
    client = sdk(bond)
    caller, media, call, bond_port = answered_caller(bond, receiver, client)
    ringing = client.calls.dial(connection_id=conn, to="+15551230000", from_="+15550001111").data.call_control_id
    result = client.calls.actions.bridge(call, call_control_id_to_bridge_with=ringing, play_ringtone=True,
                                         ringtone="uk")
    assert result.data.result == "ok"
    heard = listen_now(media, bond_port, 2.5)
    loud = assert_ringtone(heard, (400, 450), "while the callee rings")
    assert len(loud) < len(chunks_of(heard)) - 5, "the UK cadence pauses 2 s after each double ring"

    wait_event(receiver, "call.answered", call_control_id=ringing)
    wait_event(receiver, "call.bridged", call_control_id=call)
    callee_port = int(callee.logged(r"BOND_RTP (\d+)").group(1))
    speaking = threading.Thread(target=exchange_rtp,
                                args=(callee_media, callee_port, rtp_packets(tone(1000, RATE, RATE * 2))))
    speaking.start()
    heard = listen_now(media, bond_port, 1.5)[-RATE:]
    speaking.join()
    assert_mostly_tone(heard, 1000, RATE, 0.8, "the caller hears the callee once bridged")
    assert max(share_at(c, 400, RATE) + share_at(c, 450, RATE) for c in chunks_of(heard)) < 0.2, "no ringtone"

    client.calls.actions.hangup(call)
    assert callee.wait()[0] == 0, "the callee hangs up with the call it was bridged with"
    assert caller.wait()[0] == 0


def test_a_ringtone_stops_when_the_ringing_call_ends_unanswered_and_the_caller_stays_up(bond, receiver):
    callee = Sipp("uas_no_answer.xml")
    conn = trunk_connection(bond, receiver, trunk={"host": "127.0.0.1", "port": callee.port})
    client = sdk(bond)
    caller, media, call, bond_port = answered_caller(bond, receiver, client)
    ringing = client.calls.dial(connection_id=conn, to="+15551230000", from_="+15550001111",
                                timeout_secs=5).data.call_control_id
    client.calls.actions.bridge(call, call_control_id_to_bridge_with=ringing, play_ringtone=True)
    assert_ringtone(listen_now(media, bond_port, 1.5), (440, 480), "the US ringtone, unless another is named")

    ended = wait_event(receiver, "call.hangup", call_control_id=ringing)
    assert ended["hangup_cause"] == "timeout", ended
    assert callee.wait()[0] == 0
    # Longer than the US cadence's 4 s pause: a ringtone still playing would be heard.
    heard = listen_now(media, bond_port, 4.2)
    assert max(rms(c) for c in chunks_of(heard)) < 100, "nothing plays once the callee is gone"
    assert client.calls.retrieve_status(call).data.is_alive
    client.calls.actions.hangup(call)
    assert caller.wait()[0] == 0
