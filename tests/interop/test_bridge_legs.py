"""Bridges across leg kinds through a real `bond serve`, a SIP caller (sipp for the
signalling, a socket for its RTP) on one side:

- bridged to a Telnyx media stream opened by the test carrier (written from Telnyx's
  published protocol): a tone goes each way; a dual-channel recording of the SIP call
  carries the caller's tone left and the stream's right, and its length matches what
  Bond reports within 40 ms;
- bridged to a browser agent in headless Chromium, the agent-customer flow: the caller
  is answered, the agent dialed with `link_to` and `bridge_on_answer` and accepts on the
  softphone page; each hears the other's tone. With Opus (Bond's default for browsers)
  the bridge transcodes; with `webrtc.codecs` putting PCMU first, Chromium sends PCMU
  and the bridge passes packets through undecoded (`/metrics` counts them).
"""

import asyncio
import os
import re
import threading
import urllib.request

import pytest

from conftest import api, assert_mostly_tone, bond_with, share_at, tone, wav_at
from test_media_streams import TOKEN, TWILIO_AUTH, Carrier, Codec, call_of
from test_sip_trunk import Sipp, exchange_rtp, media_socket, pcmu_samples, rtp_packets, trunk_connection, wait_event
from test_webrtc_aiortc import agent_token
from test_webrtc_chromium import CHROMIUM, page_with_microphone, poll


def sip_caller(bond, receiver):
    """A sipp call in, answered: (its call_control_id, its RTP socket, Bond's RTP port, sipp)."""
    media = media_socket()
    caller = Sipp("uac_rtp.xml", {"rtp_port": media.getsockname()[1], "bye_timeout_ms": 60000},
                  target=f"127.0.0.1:{bond.sip_port}")
    call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
    api(bond, "POST", f"/calls/{call}/actions/answer", {})
    return call, media, int(caller.logged(r"BOND_RTP (\d+)").group(1)), caller


def middle(samples):
    return samples[len(samples) // 3: 2 * len(samples) // 3]


def middle_of_sound(samples, threshold=500):
    """The middle third of the stretch from the first to the last loud sample: a
    recording runs from record_start to record_stop, and on a busy machine one
    side's tone may start or end well inside it."""
    loud = [i for i, x in enumerate(samples) if abs(x) > threshold]
    return middle(samples[loud[0]:loud[-1] + 1]) if loud else samples


def test_a_sip_caller_bridged_to_a_telnyx_stream_hears_it_and_is_heard(bond, receiver):
    settings = {"sip": {"allowed_ips": ["127.0.0.1"]},
                "media_streams": {"telnyx_stream_token": TOKEN, "twilio_auth_token": TWILIO_AUTH}}
    body = {"application_name": "bridge", "webhook_event_url": receiver.url, "bond": settings}
    conn = api(bond, "POST", "/call_control_applications", body)["data"]["id"]
    sip_call, media, bond_port, caller = sip_caller(bond, receiver)

    async def scenario():
        carrier = Carrier(bond, conn, "telnyx", Codec("PCMU"), "v2:call-x001",
                          headers={"x-telnyx-streaming-auth-token": TOKEN})
        await carrier.open()
        stream_call = call_of(bond, "carrier_call_control_id", carrier.call_id, receiver)["call_control_id"]
        api(bond, "POST", f"/calls/{sip_call}/actions/bridge", {"call_control_id_to_bridge_with": stream_call})
        api(bond, "POST", f"/calls/{sip_call}/actions/record_start", {"channels": "dual", "format": "wav"})
        loop = asyncio.get_running_loop()
        caller_says = loop.run_in_executor(None, exchange_rtp, media, bond_port, rtp_packets(tone(700, 8000, 8000 * 3)))
        _, back = await asyncio.gather(carrier.send_tone(1100, 3.0), caller_says)
        api(bond, "POST", f"/calls/{sip_call}/actions/record_stop", {})
        await asyncio.sleep(0.3)
        return carrier, back, stream_call

    carrier, back, stream_call = asyncio.run(scenario())
    heard_by_caller = pcmu_samples(back)
    heard_by_stream = carrier.heard()
    assert len(back) > 100, f"only {len(back)} packets reached the caller"
    assert share_at(middle(heard_by_caller), 1100, 8000) > 0.8, "the caller hears the stream's tone"
    assert share_at(middle(heard_by_stream), 700, 8000) > 0.8, "the stream hears the caller's tone"

    saved = wait_event(receiver, "call.recording.saved", call_control_id=sip_call)
    channels, rate, samples = wav_at(saved["recording_urls"]["wav"])
    assert channels == 2
    left, right = samples[0::2], samples[1::2]
    file_ms = len(left) * 1000 // rate
    assert abs(file_ms - saved["duration_millis"]) <= 40, (file_ms, saved["duration_millis"])
    # Per 100 ms: the two sides are passed through, so the recording places each
    # packet where it crossed Bond, and a carrier frame that came late on a busy
    # machine shifts the tone's phase there; one whole-window share would halve.
    assert_mostly_tone(middle_of_sound(left), 700, rate, 0.8, "left: what the caller said")
    assert_mostly_tone(middle_of_sound(right), 1100, rate, 0.8, "right: what the caller heard (the stream)")

    api(bond, "POST", f"/calls/{sip_call}/actions/hangup", {})
    assert wait_event(receiver, "call.hangup", call_control_id=sip_call)["hangup_cause"] == "normal_clearing"
    wait_event(receiver, "call.hangup", call_control_id=stream_call)
    code, detail = caller.wait()
    assert code == 0, detail


def passed_through(bond):
    """`bond_rtp_packets_passed_through_total` from Bond's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{bond.port}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    found = re.search(r"^bond_rtp_packets_passed_through_total (\d+)", metrics, re.M)
    return int(found.group(1)) if found else 0


@pytest.fixture
def bond_pcmu_for_browsers():
    with bond_with({"BOND_WEBRTC_CODECS": "PCMU,opus"}) as b:
        yield b


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is installed by scripts/test")
def test_a_sip_caller_and_a_browser_agent_dialed_for_it_hear_each_other(bond, receiver):
    caller_and_agent_talk(bond, receiver)
    assert passed_through(bond) == 0, "Opus to the browser, PCMU to the caller: transcoded"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is installed by scripts/test")
def test_a_pcmu_browser_agent_and_a_pcmu_caller_pass_packets_through(bond_pcmu_for_browsers, receiver):
    bond = bond_pcmu_for_browsers
    caller_and_agent_talk(bond, receiver)
    # 5 s of the caller's packets, and the browser's for as long: most of them crossed undecoded.
    assert passed_through(bond) > 300, passed_through(bond)


def caller_and_agent_talk(bond, receiver):
    """A sipp caller and a Chromium agent dialed for it, bridged: each hears the other."""
    conn = trunk_connection(bond, receiver)
    token = agent_token(bond, "ana.r")
    with page_with_microphone(560) as page:  # the page's microphone says 440 Hz
        page.goto(f"http://127.0.0.1:{bond.port}/agent#processing=off")
        page.fill("#token", token)
        page.click("#login button[type=submit]")
        page.wait_for_selector("#status:has-text('registered')")

        customer, media, bond_port, caller = sip_caller(bond, receiver)
        dial = {"connection_id": conn, "to": "agent:ana.r", "from": "+15550001111",
                "link_to": customer, "bridge_on_answer": True}
        agent = api(bond, "POST", "/calls", dial)["data"]["call_control_id"]
        page.wait_for_selector("#accept:visible")
        page.click("#accept")
        wait_event(receiver, "call.bridged", call_control_id=agent)

        heard = {}
        says = threading.Thread(target=lambda: heard.update(back=exchange_rtp(
            media, bond_port, rtp_packets(tone(700, 8000, 8000 * 5)))))
        says.start()
        poll(page, "softphone.outputHz()", lambda hz: abs(hz - 700) < 30, timeout=15)
        says.join()
        back = pcmu_samples(heard["back"])
        assert len(heard["back"]) > 150, f"only {len(heard['back'])} packets reached the caller"
        # Per 100 ms over the last 2 s: on a busy machine a late browser frame is
        # concealed, and one phase jump would undo a single window's share.
        assert_mostly_tone(back[-16000:], 440, 8000, 0.6, "the caller hears the agent's microphone")

        page.click("#hangup")
        hangup = wait_event(receiver, "call.hangup", call_control_id=agent)
        assert hangup["hangup_source"] == "callee"
        # The bridged customer ends with the agent (no park_after_unbridge): sipp gets Bond's BYE.
        wait_event(receiver, "call.hangup", call_control_id=customer)
        code, detail = caller.wait()
        assert code == 0, detail
