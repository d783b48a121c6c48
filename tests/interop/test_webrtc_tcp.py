"""Agents whose firewall lets no UDP through reach Bond over TCP (ICE-TCP,
RFC 6544), on Bond's shipped defaults and without any TURN server: a rule
drops every UDP packet to Bond's WebRTC port, and the softphone in headless
Chromium (a real browser, which connects to Bond's passive TCP candidates)
still answers, hears its own 440 Hz microphone through `loop:echo` and is
heard; its selected candidate pair must be a TCP one. Bond's checks toward
the browser's active TCP candidates (which a passive side cannot reach) are
not counted as dropped packets.
"""

import os
import re

import pytest

from conftest import WEBRTC_PORT, Receiver, bond_with, firewall, needs_iptables
from test_queues import metrics
from test_sip_trunk import wait_event
from test_webrtc_aiortc import connection
from test_webrtc_chromium import CHROMIUM, echo_call, page_with_microphone, selected_local_candidate


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is installed by scripts/test")
def test_the_softphone_reaches_bond_over_tcp_when_udp_is_blocked():
    needs_iptables()
    receiver = Receiver()
    with bond_with() as bond, firewall("-t", "filter", "INPUT", "-p", "udp", "--dport", str(WEBRTC_PORT),
                                       "-j", "DROP"):
        conn = connection(bond, receiver)
        with page_with_microphone(560) as page:
            page.goto(f"http://127.0.0.1:{bond.port}/agent#processing=off")
            call = echo_call(page, bond, receiver, conn, "tcp.agent")
            assert selected_local_candidate(page, "protocol") == "tcp"
            dropped = re.search(r"^bond_rtp_packets_dropped_total (\d+)", metrics(bond), re.M)
            assert dropped and dropped.group(1) == "0", dropped
            page.click("#hangup")
            wait_event(receiver, "call.hangup", call_control_id=call)
    receiver.close()
