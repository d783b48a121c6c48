"""The softphone page in real headless Chromium (Debian's), driven by Playwright.

Chromium's fake microphone plays a 440 Hz WAV. The page signs in with an agent
token, Bond dials the agent, the page accepts; bridged to `loop:tone?hz=1200`
the page's WebAudio analyser must find 1200 Hz, bridged to `loop:echo` its own
440 Hz. The keypad sends RFC 4733 (Bond reports the digit), mute and hold
silence the echo, and the hang-up button ends the call. The page also places a
call from its dial pad (to `loop:echo`, and hears itself). A sipp caller queued
in a queue that routes by itself hears the hold tune, then the page, made ready
for queue calls, rings, accepts, and the caller hears its microphone.

SOFTPHONE_SCREENSHOTS=<dir> saves screenshots of the main states (docs/ has them).
"""

import contextlib
import math
import os
import struct
import tempfile
import time
import wave

import pytest
from playwright.sync_api import sync_playwright

from conftest import WEBRTC_PORT, api, assert_mostly_tone, bridge_to, firewall, needs_iptables
from test_queues import answered_caller, dequeued, listen, sdk, tune_share
from test_sip_trunk import trunk_connection, wait_event
from test_webrtc_aiortc import agent_token, connection

CHROMIUM = "/usr/bin/chromium"


def write_tone(path, hz, seconds=10, rate=48000):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * n / rate)))
                               for n in range(rate * seconds)))


def poll(page, expression, check, timeout=10.0):
    """Evaluate `expression` in the page until `check(value)` holds; the last value."""
    deadline = time.time() + timeout
    value = None
    while time.time() < deadline:
        value = page.evaluate(expression)
        if check(value):
            return value
        time.sleep(0.2)
    raise AssertionError(f"{expression} never passed its check; last value {value}")


def shoot(page, name):
    folder = os.environ.get("SOFTPHONE_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"softphone-{name}.png"))


@contextlib.contextmanager
def page_with_microphone(height, extra_args=()):
    """A page in Chromium whose fake microphone plays 440 Hz."""
    with tempfile.TemporaryDirectory() as workdir, sync_playwright() as p:
        mic = os.path.join(workdir, "mic.wav")
        write_tone(mic, 440)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={mic}", "--autoplay-policy=no-user-gesture-required",
            "--allow-loopback-in-peer-connection", "--no-sandbox", *extra_args])
        try:
            yield browser.new_page(viewport={"width": 420, "height": height})
        finally:
            browser.close()


# A field of the local candidate of the page's selected ICE candidate pair.
SELECTED_LOCAL_CANDIDATE = """async (field) => {
  const stats = await softphone.state.pc.getStats();
  for (const s of stats.values()) {
    if (s.type === "transport" && s.selectedCandidatePairId) {
      const pair = stats.get(s.selectedCandidatePairId);
      return stats.get(pair.localCandidateId)[field];
    }
  }
  return null;
}"""


def selected_local_candidate(page, field):
    """`candidateType`, `protocol`, ... of the softphone's selected local candidate."""
    return page.evaluate(SELECTED_LOCAL_CANDIDATE, field)


CANDIDATE_PAIRS = """async () => {
  const stats = await softphone.state.pc.getStats();
  const side = (id) => { const c = stats.get(id) || {};
    return `${c.candidateType} ${c.protocol} ${c.address}:${c.port}`; };
  return [...stats.values()].filter((s) => s.type === "candidate-pair")
    .map((p) => `${side(p.localCandidateId)} -> ${side(p.remoteCandidateId)}: ${p.state}`
      + `${p.nominated ? " nominated" : ""}, ${p.bytesReceived} bytes in`);
}"""


def candidate_pairs(page):
    """The softphone's candidate pairs, one line each, for a failing assertion."""
    return "\n".join(page.evaluate(CANDIDATE_PAIRS))


def echo_call(page, bond, receiver, conn, name):
    """Sign the softphone in as `name`, ring it, accept, and bridge it to
    loop:echo until it hears its own 440 Hz; the call."""
    page.fill("#token", agent_token(bond, name))
    page.click("#login button[type=submit]")
    page.wait_for_selector("#status:has-text('registered')")
    call = api(bond, "POST", "/calls", {"connection_id": conn, "to": f"agent:{name}",
                                        "from": "+15550001111"})["data"]["call_control_id"]
    page.wait_for_selector("#accept:visible")
    page.click("#accept")
    wait_event(receiver, "call.answered", call_control_id=call)
    bridge_to(bond, conn, call, "loop:echo")
    poll(page, "softphone.outputHz()", lambda hz: abs(hz - 440) < 30)
    return call


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is installed by scripts/test")
def test_the_softphone_in_chromium_answers_hears_is_heard_and_sends_dtmf(webrtc_bond, receiver):
    bond = webrtc_bond
    conn = connection(bond, receiver)
    token = agent_token(bond, "dana.k")
    with page_with_microphone(560) as page:
        # The fake microphone's steady tone is what echo cancellation exists to remove.
        page.goto(f"http://127.0.0.1:{bond.port}/agent#processing=off")
        shoot(page, "signed-out")
        page.fill("#token", token)
        page.click("#login button[type=submit]")
        page.wait_for_selector("#status:has-text('registered')")
        shoot(page, "registered")

        dialed = api(bond, "POST", "/calls", {"connection_id": conn, "to": "agent:dana.k", "from": "+15550001111"})
        call = dialed["data"]["call_control_id"]
        page.wait_for_selector("#accept:visible")
        shoot(page, "ringing")
        page.click("#accept")
        wait_event(receiver, "call.answered", call_control_id=call)
        page.wait_for_selector("#status:has-text('in call')", timeout=15000)

        bridge_to(bond, conn, call, "loop:tone?hz=1200")
        poll(page, "softphone.outputHz()", lambda hz: abs(hz - 1200) < 30)
        shoot(page, "in-call")

        bridge_to(bond, conn, call, "loop:echo")
        poll(page, "softphone.outputHz()", lambda hz: abs(hz - 440) < 30)
        time.sleep(1.0)
        loud = poll(page, "softphone.outputLevel()", lambda level: level > 0.05)

        page.click("#keypad button:has-text('5')")
        digit = wait_event(receiver, "call.dtmf.received", call_control_id=call)
        assert digit["digit"] == "5"

        for control in ["#mute", "#hold"]:
            page.click(control)
            poll(page, "softphone.outputLevel()", lambda level: level < loud / 10)
            page.click(control)
            poll(page, "softphone.outputLevel()", lambda level: level > loud / 2)

        page.click("#hangup")
        hangup = wait_event(receiver, "call.hangup", call_control_id=call)
        assert hangup["hangup_cause"] == "normal_clearing" and hangup["hangup_source"] == "callee"
        page.wait_for_selector("#call", state="hidden")


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is installed by scripts/test")
def test_the_softphone_says_so_when_the_microphone_is_refused_or_the_token_is_bad(bond, receiver):
    conn = connection(bond, receiver)
    with sync_playwright() as p:
        # No fake-UI flag: Chromium denies the microphone.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--deny-permission-prompts"])
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{bond.port}/agent")
        page.fill("#token", "bat_not.valid")
        page.click("#login button[type=submit]")
        page.wait_for_selector("#error:has-text('Signed out')")

        page.fill("#token", agent_token(bond, "kim"))
        page.click("#login button[type=submit]")
        page.wait_for_selector("#status:has-text('registered')")
        api(bond, "POST", "/calls", {"connection_id": conn, "to": "agent:kim", "from": "+15550001111"})
        page.wait_for_selector("#accept:visible")
        page.click("#accept")
        page.wait_for_selector("#error:has-text('Microphone')")
        shoot(page, "microphone-refused")
        browser.close()


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is installed by scripts/test")
def test_the_softphone_places_a_call_from_its_dial_pad(bond, receiver):
    conn = connection(bond, receiver)
    token = agent_token(bond, "ravi", conn)
    with page_with_microphone(640) as page:
        page.goto(f"http://127.0.0.1:{bond.port}/agent#processing=off&token={token}")
        page.wait_for_selector("#dial:visible")
        page.fill("#dial-to", "loop:echo")
        page.fill("#dial-from", "+15550003333")
        shoot(page, "dial-pad")
        page.click("#dial button[type=submit]")
        page.wait_for_selector("#peer:has-text('In call with loop:echo')", timeout=15000)
        poll(page, "softphone.outputHz()", lambda hz: abs(hz - 440) < 30)
        customer = page.evaluate("softphone.state.call.customer")
        bridged = wait_event(receiver, "call.bridged", call_control_id=customer)
        assert bridged["to"] == "loop:echo" and bridged["from"] == "+15550003333"

        page.click("#hangup")
        wait_event(receiver, "call.hangup", call_control_id=customer)
        page.wait_for_selector("#call", state="hidden")
        # A destination Bond refuses is reported, and the agent's leg is let go.
        page.fill("#dial-to", "not a number")
        page.click("#dial button[type=submit]")
        page.wait_for_selector("#error:has-text('could not be placed')")
        page.wait_for_selector("#call", state="hidden")


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is installed by scripts/test")
def test_a_media_connection_that_cannot_be_set_up_is_named_on_the_page_and_in_the_webhook(bond, receiver):
    """A firewall drops everything Bond's WebRTC port sends: ICE never completes,
    and the call ends as `connection_failed`, not `unspecified`."""
    needs_iptables()
    conn = connection(bond, receiver)
    token = agent_token(bond, "noor")
    with page_with_microphone(560) as page, firewall("-t", "filter", "OUTPUT", "-p", "udp",
                                                    "--sport", str(WEBRTC_PORT), "-j", "DROP"):
        page.goto(f"http://127.0.0.1:{bond.port}/agent#token={token}")
        page.wait_for_selector("#status:has-text('registered')")
        call = api(bond, "POST", "/calls", {"connection_id": conn, "to": "agent:noor", "from": "+15550001111"})
        call = call["data"]["call_control_id"]
        page.wait_for_selector("#accept:visible")
        page.click("#accept")
        hangup = wait_event(receiver, "call.hangup", call_control_id=call, timeout=30)
        assert hangup["hangup_cause"] == "connection_failed", hangup
        page.wait_for_selector("#error:has-text('could not be set up')", timeout=10000)


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is installed by scripts/test")
def test_a_queued_caller_hears_music_then_the_softphone_agent_the_queue_rings(bond, receiver):
    trunk_connection(bond, receiver)
    client = sdk(bond)
    api(bond, "POST", "/queues", {"queue_name": "help", "bond_routing": "longest_idle"})
    with page_with_microphone(560) as page:
        page.goto(f"http://127.0.0.1:{bond.port}/agent#processing=off")
        page.fill("#token", agent_token(bond, "dana.k"))
        page.click("#login button[type=submit]")
        page.wait_for_selector("#status:has-text('registered')")

        caller, media, call, port = answered_caller(bond, receiver, client)
        client.calls.actions.enqueue(call, queue_name="help")
        music = listen(media, port, 1.5)[2000:]
        assert tune_share(music) > 0.6, f"the caller hears the hold tune first: {tune_share(music):.2f}"

        page.check("#available")  # ready: the queue rings this agent
        page.wait_for_selector("#accept:visible", timeout=10000)
        page.click("#accept")
        assert dequeued(receiver, call)["reason"] == "bridged"
        page.wait_for_selector("#status:has-text('in call')", timeout=15000)
        heard = listen(media, port, 2.5)[-8000:]
        assert_mostly_tone(heard, 440, 8000, 0.7, "the caller hears the agent")
        page.click("#hangup")
        wait_event(receiver, "call.hangup", call_control_id=call)
        assert caller.wait()[0] == 0
