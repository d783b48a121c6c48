"""Trickle ICE (RFC 8838) with the softphone in real headless Chromium.

The page sends its offer the moment its local description is set and hands
each candidate Chromium gathers afterwards to Bond as a `candidate` frame;
Bond pairs and checks them. The test records the page's signalling frames
(a WebSocket wrapper installed before the page's own scripts) and checks,
for a call Bond rings and one the page places from its dial pad: candidate
frames went out for the call's id, none was refused, and the page hears its
own 440 Hz through `loop:echo`. `#trickle=off` (the page waiting for
gathering and sending a complete offer, kept for comparing) sends none.
"""

import json
import os

import pytest

from conftest import api
from test_sip_trunk import wait_event
from test_webrtc_aiortc import agent_token, connection
from test_webrtc_chromium import CHROMIUM, echo_call, page_with_microphone, poll

# Every signalling frame the page sends and receives, in `window.signalling`.
RECORD_SIGNALLING = """(() => {
  const frames = { sent: [], received: [] };
  window.signalling = frames;
  const Native = window.WebSocket;
  const send = Native.prototype.send;
  Native.prototype.send = function (data) {
    frames.sent.push(JSON.parse(data));
    return send.call(this, data);
  };
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => frames.received.push(JSON.parse(e.data)));
    }
  };
})();"""


def signalling(page):
    return page.evaluate("window.signalling")


def candidates_for(frames, call):
    return [f["candidate"] for f in frames["sent"] if f["type"] == "candidate" and f["call_control_id"] == call]


def refusals(frames):
    return [f for f in frames["received"] if f["type"] == "error"]


def offer_of(frames, kind):
    return next(f["sdp"] for f in frames["sent"] if f["type"] == kind)


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is installed by scripts/test")
@pytest.mark.parametrize("trickle", ["on", "off"])
def test_the_softphone_answers_with_its_candidates_trickled_after_its_offer(bond, receiver, trickle):
    conn = connection(bond, receiver)
    with page_with_microphone(560) as page:
        page.add_init_script(RECORD_SIGNALLING)
        page.goto(f"http://127.0.0.1:{bond.port}/agent#processing=off&trickle={trickle}")
        call = echo_call(page, bond, receiver, conn, "tia")
        frames = signalling(page)
        trickled = candidates_for(frames, call)
        assert refusals(frames) == [], json.dumps(refusals(frames))
        if trickle == "on":
            assert trickled and all(c.startswith("candidate:") for c in trickled), json.dumps(frames["sent"])
            # The accept went out before the candidates that followed it.
            kinds = [f["type"] for f in frames["sent"]]
            assert kinds.index("accept") < kinds.index("candidate"), kinds
        else:
            assert trickled == []
            assert "a=candidate:" in offer_of(frames, "accept")
        page.click("#hangup")
        wait_event(receiver, "call.hangup", call_control_id=call)


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is installed by scripts/test")
def test_a_call_placed_from_the_dial_pad_trickles_its_candidates_once_bond_names_it(bond, receiver):
    conn = connection(bond, receiver)
    token = agent_token(bond, "tomas", conn)
    with page_with_microphone(640) as page:
        page.add_init_script(RECORD_SIGNALLING)
        page.goto(f"http://127.0.0.1:{bond.port}/agent#processing=off&token={token}")
        page.wait_for_selector("#dial:visible")
        page.fill("#dial-to", "loop:echo")
        page.fill("#dial-from", "+15550003333")
        page.click("#dial button[type=submit]")
        page.wait_for_selector("#peer:has-text('In call with loop:echo')", timeout=15000)
        poll(page, "softphone.outputHz()", lambda hz: abs(hz - 440) < 30)
        frames = signalling(page)
        own_leg = next(f["call_control_id"] for f in frames["received"] if f["type"] == "outgoing")
        # Gathered before Bond named the call, held by the page until it did.
        assert candidates_for(frames, own_leg), json.dumps(frames["sent"])
        assert refusals(frames) == [], json.dumps(refusals(frames))
        customer = page.evaluate("softphone.state.call.customer")
        page.click("#hangup")
        wait_event(receiver, "call.hangup", call_control_id=customer)
