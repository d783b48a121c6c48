"""The official Telnyx Python SDK drives a running Bond by changing only its base URL.

Acceptance test of the control plane: the SDK creates a connection, dials a
`loop:tone` call, reads it, bridges it to a `loop:echo` call and hangs up; a
webhook receiver gets call.initiated, call.answered, call.bridged, call.hangup
in order for each call, and the SDK's own Ed25519 verification accepts every one.
"""

import json
import tempfile
import time

import pytest
import telnyx
from telnyx import Telnyx

from conftest import API_KEY, Bond, Receiver, event_types, free_port

EXPECTED = ["call.initiated", "call.answered", "call.bridged", "call.hangup"]


def sdk(bond: Bond) -> Telnyx:
    return Telnyx(api_key=API_KEY, base_url=bond.base_url, max_retries=0)


def public_key(bond: Bond) -> str:
    import urllib.request

    req = urllib.request.Request(f"{bond.base_url}/webhook_public_key", headers={"Authorization": f"Bearer {API_KEY}"})
    return json.load(urllib.request.urlopen(req, context=bond.ssl_context))["data"]["public_key"]


def tone_echo_bridge_hangup(client: Telnyx, connection_id: str):
    tone = client.calls.dial(connection_id=connection_id, to="loop:tone?hz=1000", from_="+13125550100")
    assert tone.data.record_type == "call"
    assert tone.data.is_alive
    tone_id = tone.data.call_control_id
    echo_id = client.calls.dial(connection_id=connection_id, to="loop:echo", from_="+13125550100").data.call_control_id

    status = client.calls.retrieve_status(tone_id)
    assert status.data.call_control_id == tone_id
    assert status.data.is_alive

    result = client.calls.actions.bridge(tone_id, call_control_id_to_bridge_with=echo_id)
    assert result.data.result == "ok"
    time.sleep(0.3)
    assert client.calls.actions.hangup(tone_id).data.result == "ok"
    assert not client.calls.retrieve_status(tone_id).data.is_alive
    assert not client.calls.retrieve_status(echo_id).data.is_alive
    return tone_id, echo_id


def test_sdk_dials_bridges_and_hangs_up_with_signed_webhooks(bond, receiver):
    client = sdk(bond)
    app = client.call_control_applications.create(application_name="sdk interop", webhook_event_url=receiver.url)
    assert app.data.application_name == "sdk interop"
    connection_id = app.data.id
    assert client.call_control_applications.retrieve(connection_id).data.webhook_event_url == receiver.url

    tone_id, echo_id = tone_echo_bridge_hangup(client, connection_id)

    received = receiver.wait_for(8)
    assert event_types(received, tone_id) == EXPECTED
    assert event_types(received, echo_id) == EXPECTED
    key = public_key(bond)
    for headers, body in received:
        event = client.webhooks.unwrap(body, headers=headers, key=key)
        assert event.data.event_type in EXPECTED
        with pytest.raises(Exception):
            client.webhooks.unwrap(body.replace("call.", "CALL."), headers=headers, key=key)


def test_sdk_errors_follow_telnyx(bond):
    client = sdk(bond)
    with pytest.raises(telnyx.AuthenticationError):
        Telnyx(api_key="KEYwrong", base_url=bond.base_url, max_retries=0).calls.retrieve_status("v3:nothing")
    with pytest.raises(telnyx.NotFoundError):
        client.calls.retrieve_status("v3:nothing")
    with pytest.raises(telnyx.UnprocessableEntityError) as bad:
        client.calls.dial(connection_id="1", to="not-a-number", from_="+13125550100")
    assert bad.value.status_code == 422
    app = client.call_control_applications.create(application_name="errors", webhook_event_url="http://127.0.0.1:9/x")
    call = client.calls.dial(connection_id=app.data.id, to="loop:silence", from_="+13125550100").data.call_control_id
    client.calls.actions.hangup(call)
    with pytest.raises(telnyx.UnprocessableEntityError) as ended:
        client.calls.actions.hangup(call)
    assert ended.value.body["errors"][0]["code"] == "90018"


def test_events_queued_while_the_receiver_is_down_arrive_after_a_restart():
    with tempfile.TemporaryDirectory() as data_dir:
        hook_port = free_port()  # nothing listens here yet
        bond = Bond(data_dir)
        bond.start()
        client = sdk(bond)
        url = f"http://127.0.0.1:{hook_port}/hooks"
        connection_id = client.call_control_applications.create(application_name="outage", webhook_event_url=url).data.id
        tone_id, echo_id = tone_echo_bridge_hangup(client, connection_id)
        bond.stop()

        bond.start()
        receiver = Receiver(hook_port)
        try:
            received = receiver.wait_for(8)
            time.sleep(0.5)
            assert len(receiver.received) == 8, "each event exactly once"
            assert event_types(received, tone_id) == EXPECTED
            assert event_types(received, echo_id) == EXPECTED
            key = public_key(bond)
            ids = set()
            for headers, body in received:
                event = client.webhooks.unwrap(body, headers=headers, key=key)
                ids.add(event.data.id)
            assert len(ids) == 8
            # The early events had been tried (and refused) before the restart.
            assert json.loads(received[0][1])["meta"]["attempt"] > 1
        finally:
            receiver.close()
            bond.stop()


def test_sdk_plays_audio_and_speaks_and_unwraps_their_webhooks(bond, receiver):
    """start_playback (base64 WAV), speak (espeak-ng) and stop_playback through the
    SDK; the SDK's own webhook types accept call.playback.* and call.speak.*."""
    import base64
    import io
    import math
    import wave

    client = sdk(bond)
    connection_id = client.call_control_applications.create(
        application_name="playback", webhook_event_url=receiver.url
    ).data.id
    call_id = client.calls.dial(connection_id=connection_id, to="loop:silence", from_="+13125550100").data.call_control_id

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"".join(int(8000 * math.sin(2 * math.pi * 800 * n / 16000)).to_bytes(2, "little", signed=True) for n in range(3200)))
    content = base64.b64encode(buf.getvalue()).decode()

    assert client.calls.actions.start_playback(call_id, playback_content=content, client_state="cGxheQ==").data.result == "ok"
    assert client.calls.actions.speak(call_id, payload="Thank you for calling.", voice="female", language="en-US").data.result == "ok"
    assert client.calls.actions.start_playback(call_id, playback_content=content, loop="infinity").data.result == "ok"
    # 200 ms of tone, then the speech, then the endless clip: stop it.
    deadline = time.time() + 20
    while time.time() < deadline and event_types(receiver.received, call_id).count("call.playback.started") < 2:
        time.sleep(0.05)
    assert client.calls.actions.stop_playback(call_id, stop="all").data.result == "ok"
    client.calls.actions.hangup(call_id)

    expected = [
        "call.initiated",
        "call.answered",
        "call.playback.started",
        "call.playback.ended",
        "call.speak.started",
        "call.speak.ended",
        "call.playback.started",
        "call.playback.ended",
        "call.hangup",
    ]
    received = receiver.wait_for(len(expected))
    assert event_types(received, call_id) == expected
    key = public_key(bond)
    statuses = []
    for headers, body in received:
        event = client.webhooks.unwrap(body, headers=headers, key=key)
        if event.data.event_type in ("call.playback.ended", "call.speak.ended"):
            statuses.append(event.data.payload.status)
    assert statuses == ["completed", "completed", "cancelled"]
