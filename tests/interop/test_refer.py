"""REFER both ways against sipp, driven by the official Telnyx Python SDK against a real
`bond serve`:
- a caller bridged to a party transfers its call blind (REFER): Bond dials the number in
  Refer-To through the connection's trunk (a sipp callee), bridges the party with it,
  NOTIFYs the caller 100 then 200 and hangs it up; the callee hears the party's tone;
- the same REFER on a connection without `bond.sip.accept_refer` is refused (403) and
  the call goes on as it was;
- the `refer` action: Bond REFERs a sipp caller, which reports success by NOTIFY; Bond
  sends call.refer.started and call.refer.completed, then hangs up.
"""


from telnyx import Telnyx

from conftest import API_KEY, share_at
from test_sip_trunk import Sipp, events, listen_rtp, media_socket, pcmu_samples, sipp_caller, trunk_connection, wait_event

TONE_HZ = 1200
TARGET = "+15551230000"


def sdk(bond):
    return Telnyx(api_key=API_KEY, base_url=bond.base_url, max_retries=0)


def bridged_to_tone(client, receiver):
    """The incoming call answered and bridged to a built-in tone (its `transfer`)."""
    call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
    client.calls.actions.answer(call)
    client.calls.actions.transfer(call, to=f"loop:tone?hz={TONE_HZ}")
    wait_event(receiver, "call.bridged", call_control_id=call)
    return call


def test_a_callers_blind_transfer_connects_its_party_to_the_number_it_names(bond, receiver):
    media = media_socket()
    target = Sipp("uas_rtp.xml", {"rtp_port": media.getsockname()[1]})
    trunk_connection(bond, receiver, trunk={"host": "127.0.0.1", "port": target.port}, accept_refer=True)
    client = sdk(bond)
    caller, _ = sipp_caller(bond, "uac_refer.xml", refer_after_ms=3000, refer_to=f"sip:{TARGET}@127.0.0.1")
    call = bridged_to_tone(client, receiver)

    started = wait_event(receiver, "call.refer.started", call_control_id=call)
    assert started["refer_to"] == f"sip:{TARGET}@127.0.0.1" and started["requested_by"] == "peer", started
    completed = wait_event(receiver, "call.refer.completed", call_control_id=call)
    assert completed["sip_notify_response"] == 200, completed
    hangup = wait_event(receiver, "call.hangup", call_control_id=call)
    assert hangup["hangup_cause"] == "normal_clearing", hangup
    assert caller.wait()[0] == 0, caller.wait()
    log = open(caller.log).read()
    assert "NOTIFY_STATUS 100" in log and "NOTIFY_STATUS 200" in log, log[-2000:]

    new = wait_event(receiver, "call.answered", to=TARGET)
    original = wait_event(receiver, "call.initiated", call_control_id=call)
    assert new["call_session_id"] == original["call_session_id"]  # the party's session, from its transfer
    pcmu = [p for p in listen_rtp(media, 2.0) if p[1] & 0x7F == 0]
    heard = pcmu_samples(pcmu)[-8000:]
    assert share_at(heard, TONE_HZ, 8000) > 0.8, share_at(heard, TONE_HZ, 8000)
    client.calls.actions.hangup(new["call_control_id"])
    assert target.wait()[0] == 0


def test_a_refer_on_a_connection_that_does_not_accept_it_is_refused(bond, receiver):
    trunk_connection(bond, receiver)
    client = sdk(bond)
    caller, _ = sipp_caller(bond, "uac_refer.xml", refer_after_ms=3000, refer_to=f"sip:{TARGET}@127.0.0.1")
    call = bridged_to_tone(client, receiver)
    assert caller.wait()[0] == 0, caller.wait()
    assert "REFER_REFUSED" in open(caller.log).read()
    hangup = wait_event(receiver, "call.hangup", call_control_id=call)
    assert hangup["hangup_source"] == "caller", hangup
    assert not [e for e in events(receiver) if e["event_type"].startswith("call.refer.")]


def test_the_refer_action_sends_the_peer_elsewhere_and_reports_its_notify(bond, receiver):
    trunk_connection(bond, receiver)
    client = sdk(bond)
    caller, _ = sipp_caller(bond, "uac_referred.xml")
    call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
    client.calls.actions.answer(call)
    wait_event(receiver, "call.answered", call_control_id=call)
    result = client.calls.actions.refer(call, sip_address="sip:+15550002222@pbx.example.com",
                                        custom_headers=[{"name": "X-Reason", "value": "overflow"}])
    assert result.data.result == "ok"
    wait_event(receiver, "call.refer.started", call_control_id=call)
    completed = wait_event(receiver, "call.refer.completed", call_control_id=call)
    assert completed["sip_notify_response"] == 200, completed
    wait_event(receiver, "call.hangup", call_control_id=call)
    assert caller.wait()[0] == 0, caller.wait()
    log = open(caller.log).read()
    assert "REFER_TO sip:+15550002222@pbx.example.com" in log and "REASON overflow" in log, log[-2000:]
