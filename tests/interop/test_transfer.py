"""`transfer` driven by the official Telnyx Python SDK against a real `bond serve`.
A sipp caller (its media the test's socket) is answered, then transferred: to a
built-in tone, which the caller must then hear, and through the trunk to a sipp
callee that answers busy (and sees the transfer's custom header on its INVITE),
after which the caller must still be up and take the next command.
"""

import base64

from telnyx import Telnyx

from conftest import API_KEY, share_at
from test_sip_trunk import (Sipp, events, exchange_rtp, pcmu_samples, rtp_caller, rtp_packets, trunk_connection,
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
    back = exchange_rtp(media, bond_port, rtp_packets([0] * 8000 * 2))
    heard = pcmu_samples(back)[-8000:]
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
    assert client.calls.retrieve_status(call).data.is_alive
    client.calls.actions.transfer(call, to="loop:tone?hz=900")
    wait_event(receiver, "call.bridged", call_control_id=call)
    heard = pcmu_samples(exchange_rtp(media, bond_port, rtp_packets([0] * 8000 * 2)))[-8000:]
    assert share_at(heard, 900, 8000) > 0.8, share_at(heard, 900, 8000)
    client.calls.actions.hangup(call)
    assert caller.wait()[0] == 0
