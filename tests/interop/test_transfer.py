"""`transfer` driven by the official Telnyx Python SDK against a real `bond serve`.
A sipp caller (its media the test's socket) is answered, then transferred: to a
built-in tone, which the caller must then hear; through the trunk to a sipp
callee that answers busy (and sees the transfer's custom header on its INVITE),
after which the caller must still be up and take the next command; and to a
sipp callee whose network plays early media (183 with SDP) before it answers,
which the caller hears unless the transfer turns `early_media` off, or before
it fails busy, after which the caller is up and can be transferred again.
"""

import base64
import threading

import pytest
from telnyx import Telnyx

from conftest import API_KEY, assert_mostly_tone, chunks_of, rms, share_at, tone
from test_sip_trunk import (Sipp, events, exchange_rtp, listen, media_socket, rtp_caller, rtp_packets, trunk_connection,
                            wait_event)


def sdk(bond):
    return Telnyx(api_key=API_KEY, base_url=bond.base_url, max_retries=0)


def answered_caller(bond, receiver, client):
    caller, media = rtp_caller(bond, bye_timeout_ms=60000)
    call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
    assert client.calls.actions.answer(call).data.result == "ok"
    bond_port = int(caller.logged(r"BOND_RTP (\d+)").group(1))
    return caller, media, call, bond_port


def test_a_transferred_caller_hears_the_new_party(bond, receiver):
    trunk_connection(bond, receiver)
    client = sdk(bond)
    caller, media, call, bond_port = answered_caller(bond, receiver, client)
    state = base64.b64encode(b"agent-7").decode()
    result = client.calls.actions.transfer(call, to="loop:tone?hz=1200", target_leg_client_state=state)
    assert result.data.result == "ok"
    wait_event(receiver, "call.bridged", call_control_id=call)
    new = next(e["payload"] for e in events(receiver)
               if e["event_type"] == "call.initiated" and e["payload"]["call_control_id"] != call)
    original = wait_event(receiver, "call.initiated", call_control_id=call)
    assert new["call_session_id"] == original["call_session_id"], (new, original)
    assert new["client_state"] == state and new["from"] == original["from"], new
    heard = listen(media, bond_port, 2)[-8000:]
    assert share_at(heard, 1200, 8000) > 0.8, share_at(heard, 1200, 8000)
    client.calls.actions.hangup(call)
    assert caller.wait()[0] == 0


def test_a_failed_transfer_leaves_the_caller_up_for_the_next_command(bond, receiver):
    busy = Sipp("uas_status.xml", {"status": 486, "reason": "Busy Here"})
    trunk_connection(bond, receiver, trunk={"host": "127.0.0.1", "port": busy.port})
    client = sdk(bond)
    caller, media, call, bond_port = answered_caller(bond, receiver, client)
    client.calls.actions.transfer(call, to="+15551230000",
                                  custom_headers=[{"name": "X-Campaign", "value": "spring-42"}])
    failed = wait_event(receiver, "call.hangup")  # the new party's: the caller is still up
    assert failed["call_control_id"] != call and failed["hangup_cause"] == "user_busy", failed
    assert busy.wait()[0] == 0
    assert "X_CAMPAIGN spring-42" in open(busy.log).read(), "the INVITE carries the application's header"
    assert_transferred_again(client, receiver, call, media, bond_port)
    client.calls.actions.hangup(call)
    assert caller.wait()[0] == 0


def assert_transferred_again(client, receiver, call, media, bond_port):
    """The caller is up and takes another transfer: to a tone it then hears."""
    assert client.calls.retrieve_status(call).data.is_alive
    client.calls.actions.transfer(call, to="loop:tone?hz=900")
    wait_event(receiver, "call.bridged", call_control_id=call)
    heard = listen(media, bond_port, 2)[-8000:]
    assert share_at(heard, 900, 8000) > 0.8, share_at(heard, 900, 8000)


def hear_early_media(callee, callee_media, media, bond_port):
    """The callee's network plays 700 Hz before any answer while the caller
    listens: the last second the caller heard."""
    callee_port = int(callee.logged(r"BOND_RTP (\d+)").group(1))
    playing = threading.Thread(target=exchange_rtp,
                               args=(callee_media, callee_port, rtp_packets(tone(700, 8000, 8000 * 2))))
    playing.start()
    heard = listen(media, bond_port, 2)[-8000:]
    playing.join()
    return heard


@pytest.mark.parametrize("early_media", [True, False])
def test_a_transferred_caller_hears_the_new_partys_early_media_unless_turned_off(bond, receiver, early_media):
    callee_media = media_socket()
    callee = Sipp("uas_early_media.xml", {"rtp_port": callee_media.getsockname()[1], "ring_ms": 4000})
    trunk_connection(bond, receiver, trunk={"host": "127.0.0.1", "port": callee.port})
    client = sdk(bond)
    caller, media, call, bond_port = answered_caller(bond, receiver, client)
    client.calls.actions.transfer(call, to="+15551230000", early_media=early_media)
    heard = hear_early_media(callee, callee_media, media, bond_port)
    assert not [e for e in events(receiver) if e["event_type"] == "call.answered"
                and e["payload"]["call_control_id"] != call], "still ringing while the caller listened"
    if early_media:
        assert_mostly_tone(heard, 700, 8000, 0.8, "the new party's early media")
    else:
        loudest = max(rms(c) for c in chunks_of(heard))
        assert loudest < 100, f"early_media off: nothing before the answer, heard rms {loudest:.0f}"
    wait_event(receiver, "call.bridged", call_control_id=call)
    client.calls.actions.hangup(call)
    assert callee.wait()[0] == 0, "the new party hangs up with the caller"
    assert caller.wait()[0] == 0


def test_a_transfer_that_fails_after_early_media_leaves_the_caller_up_for_the_next_one(bond, receiver):
    callee_media = media_socket()
    callee = Sipp("uas_early_media_busy.xml", {"rtp_port": callee_media.getsockname()[1], "ring_ms": 3000})
    trunk_connection(bond, receiver, trunk={"host": "127.0.0.1", "port": callee.port})
    client = sdk(bond)
    caller, media, call, bond_port = answered_caller(bond, receiver, client)
    client.calls.actions.transfer(call, to="+15551230000")
    assert_mostly_tone(hear_early_media(callee, callee_media, media, bond_port), 700, 8000, 0.8, "early media")
    failed = wait_event(receiver, "call.hangup")
    assert failed["call_control_id"] != call and failed["hangup_cause"] == "user_busy", failed
    assert callee.wait()[0] == 0
    # The early media's join is gone: the caller can be bridged again.
    assert_transferred_again(client, receiver, call, media, bond_port)
    client.calls.actions.hangup(call)
    assert caller.wait()[0] == 0
