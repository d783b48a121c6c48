"""The supervisor page's Listen, Whisper and Barge buttons in real headless Chromium.

A customer saying 700 Hz is bridged with an agent saying 1,100 Hz. The page
(whose fake microphone says 440 Hz) joins the agent's call by voice: Listen
hears both parties and neither hears the supervisor; Whisper is heard by the
agent only; Barge by the customer too. What the parties heard is read from
their recordings; what the page hears from its WebAudio meter. The supervisor's
leg ends with the call it supervises, and the page lets go of it and marks the
call ended.
"""

import os
import time

import pytest

from conftest import API_KEY, api, assert_mostly_tone, share_at, wav_at
from test_sip_trunk import wait_event
from test_webrtc_aiortc import connection
from test_webrtc_chromium import CHROMIUM, page_with_microphone, poll


def heard(bond, receiver, call, seconds=1.2):
    """What `call`'s party heard over `seconds` (its recording's right channel, from
    0.2 s in) and the recording's rate."""
    api(bond, "POST", f"/calls/{call}/actions/record_start", {"format": "wav", "channels": "dual"})
    time.sleep(seconds)
    api(bond, "POST", f"/calls/{call}/actions/record_stop", {})
    saved = wait_event(receiver, "call.recording.saved", call_control_id=call)
    with receiver.lock:
        receiver.received.clear()  # the next recording's event is the one to wait for
    _, rate, samples = wav_at(saved["recording_urls"]["wav"])
    right = samples[1::2]  # what the party heard
    return right[rate // 5:], rate


def hears_supervisor(bond, receiver, call, what):
    """The supervisor's 440 Hz is in most 100 ms of what `call`'s party heard: judged
    per chunk, as a late browser frame concealed on a busy machine jumps the tone's
    phase, and one window over the whole would cancel."""
    samples, rate = heard(bond, receiver, call)
    assert_mostly_tone(samples, 440, rate, 0.1, what)


def supervisor_share(bond, receiver, call):
    """The share of 440 Hz (the supervisor) in what `call`'s party heard."""
    samples, rate = heard(bond, receiver, call)
    return share_at(samples, 440, rate)


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is installed by scripts/test")
def test_the_supervisor_page_listens_whispers_and_barges_by_voice(webrtc_bond, receiver):
    bond = webrtc_bond
    conn = connection(bond, receiver)
    dial = lambda to: api(bond, "POST", "/calls", {"connection_id": conn, "to": to, "from": "+15550000000"})
    customer = dial("loop:tone?hz=700")["data"]["call_control_id"]
    agent = dial("loop:tone?hz=1100")["data"]["call_control_id"]
    api(bond, "POST", f"/calls/{customer}/actions/bridge", {"call_control_id_to_bridge_with": agent})

    with page_with_microphone(700) as page:
        page.set_viewport_size({"width": 1100, "height": 700})
        page.goto(f"http://127.0.0.1:{bond.port}/supervisor#processing=off")
        # An API key is refused; a short-lived supervisor token signs in.
        page.fill("#key", API_KEY)
        page.click("#login button[type=submit]")
        page.wait_for_selector("#error:has-text('supervisor token')")
        token = api(bond, "POST", "/supervisor_tokens", {"name": "sam", "ttl_secs": 900})["data"]["token"]
        page.fill("#key", token)
        page.click("#login button[type=submit]")
        page.wait_for_selector("#status:has-text('watching')")
        panel = f"section[data-call='{agent}']"

        page.click(f"{panel} button.monitor")
        page.wait_for_selector(f"{panel} .ear small:has-text('joined')")
        shares = "[700, 1100].map((hz) => window.supervisor.heardShare(hz))"
        poll(page, shares, lambda s: min(s) > 0.1, timeout=15)
        assert page.is_visible(f"{panel} button.monitor.on")
        assert supervisor_share(bond, receiver, customer) < 0.02, "a listener is heard by nobody"
        assert supervisor_share(bond, receiver, agent) < 0.02

        page.click(f"{panel} button.whisper")
        page.wait_for_selector(f"{panel} button.whisper.on")
        time.sleep(0.3)
        hears_supervisor(bond, receiver, agent, "whispering: the agent hears the supervisor")
        assert supervisor_share(bond, receiver, customer) < 0.02, "whispering: the customer does not"

        page.click(f"{panel} button.barge")
        page.wait_for_selector(f"{panel} button.barge.on")
        time.sleep(0.3)
        hears_supervisor(bond, receiver, customer, "barging: the customer hears the supervisor")
        supervisor = page.evaluate("window.supervisor.joined.call")

        api(bond, "POST", f"/calls/{agent}/actions/hangup", {})
        ended = wait_event(receiver, "call.hangup", call_control_id=supervisor)
        assert ended["hangup_cause"] == "normal_clearing", ended
        poll(page, "window.supervisor.joined.call", lambda c: c is None)
        assert not page.is_visible(f"{panel} button.leave")
        page.wait_for_selector(f"{panel}.ended", state="attached", timeout=10000)
        assert not page.is_visible(f"{panel} button.monitor"), "an ended call has nothing to join"
