"""Agents behind firewalls reach Bond through a TURN relay: coturn (Debian's,
a real TURN server nobody here wrote) runs with the TURN REST API's shared
secret (`use-auth-secret`), Bond is given the same secret (`turn.urls`,
`turn.secret`) and hands each agent's browser short-lived credentials when it
registers. The softphone in headless Chromium then talks to Bond over a
relayed candidate: forced to (`#ice=relay`), and on its own when firewall
rules drop every UDP packet between Bond's WebRTC port and anything but the
relay. Audio is checked both ways through `loop:echo` (the page hears its own
440 Hz microphone), and the page's selected candidate pair must be a relayed
one.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import WEBRTC_PORT, Receiver, bond_with, default_route_ip, firewall, needs_iptables
from test_sip_trunk import wait_event
from test_webrtc_aiortc import connection
from test_webrtc_chromium import candidate_pairs, echo_call, page_with_microphone, selected_local_candidate

SECRET = "turn-shared-secret-for-tests"
RELAY_PORTS = (49160, 49200)

@contextlib.contextmanager
def coturn(ip):
    """coturn on `ip` with the shared secret; yields its `turn:` URL and a list
    that holds coturn's log once it has stopped."""
    with tempfile.TemporaryDirectory() as folder:
        log = os.path.join(folder, "turn.log")
        port = 3478
        proc = subprocess.Popen([
            shutil.which("turnserver") or "/usr/bin/turnserver", "-n", "--no-cli", "--no-tls", "--no-dtls",
            f"--listening-ip={ip}", f"--relay-ip={ip}", f"--listening-port={port}",
            f"--min-port={RELAY_PORTS[0]}", f"--max-port={RELAY_PORTS[1]}",
            "--use-auth-secret", f"--static-auth-secret={SECRET}", "--realm=bond.test", "--fingerprint",
            f"--log-file={log}", "--simple-log", "--no-stdout-log", "--verbose",
        ], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            assert proc.poll() is None, open(log).read() if os.path.exists(log) else "coturn exited"
            stopped_log = []
            yield f"turn:{ip}:{port}?transport=udp", stopped_log
        finally:
            proc.terminate()
            proc.wait(10)
            if os.path.exists(log):
                stopped_log.append(open(log).read())


@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium") or not shutil.which("turnserver"),
                    reason="Debian chromium and coturn are installed by scripts/test")
@pytest.mark.parametrize("how", ["relay_policy", "udp_to_bond_blocked"])
def test_the_softphone_reaches_bond_through_coturn(how):
    if how == "udp_to_bond_blocked":
        needs_iptables()
    ip = default_route_ip()
    receiver = Receiver()
    with coturn(ip) as (url, turn_log), contextlib.ExitStack() as stack:
        # TCP to Bond's port would get through the UDP rule below (ICE-TCP,
        # test_webrtc_tcp.py): this test is about the relay, so Bond takes UDP only.
        env = {"BOND_TURN_URLS": url, "BOND_TURN_SECRET": SECRET, "BOND_WEBRTC_TCP": "false"}
        bond = stack.enter_context(bond_with(env))
        fragment = "processing=off"
        if how == "relay_policy":
            fragment += "&ice=relay"
        else:
            # Every UDP packet to or from Bond's WebRTC port is dropped unless the
            # relay is the other end. Both ways: Bond runs full ICE and checks the
            # browser's host candidates too, and a stateful firewall would let the
            # answers to those checks in.
            relay = f"{RELAY_PORTS[0]}:{RELAY_PORTS[1]}"
            stack.enter_context(firewall("-t", "filter", "INPUT", "-p", "udp", "--dport", str(WEBRTC_PORT),
                                         "!", "--sport", relay, "-j", "DROP"))
            stack.enter_context(firewall("-t", "filter", "OUTPUT", "-p", "udp", "--sport", str(WEBRTC_PORT),
                                         "!", "--dport", relay, "-j", "DROP"))
        conn = connection(bond, receiver)
        with page_with_microphone(560) as page:
            page.goto(f"http://127.0.0.1:{bond.port}/agent#{fragment}")
            call = echo_call(page, bond, receiver, conn, "remote.agent")
            servers = page.evaluate("softphone.state.iceServers")
            assert servers[0]["username"].endswith(":remote.agent") and servers[0]["credential"], servers
            assert selected_local_candidate(page, "candidateType") == "relay", candidate_pairs(page)
            page.click("#hangup")
            wait_event(receiver, "call.hangup", call_control_id=call)
    receiver.close()
    # coturn checked the credential Bond made for that agent, and relayed.
    assert ":remote.agent" in turn_log[0], turn_log[0][-2000:]
