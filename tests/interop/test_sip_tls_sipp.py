"""sipp over TLS, both directions, audio checked by tone. Debian's sipp is built
without TLS (`sipp -v`: SCTP-PCAP-RTPSTREAM; its package build-conflicts with
libssl-dev), so sipp speaks SIP over TCP to stunnel (Debian's stunnel4, on
OpenSSL), which carries it over TLS: towards Bond as a client that verifies
Bond's certificate against the dev CA, and in front of sipp as a server whose
certificate Bond verifies when it dials a `"transport": "tls"` trunk. Every
SIP message between sipp and Bond crosses that TLS connection; stunnel's log
shows the handshake and the verified peer.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import api, bridge_to, free_port
from test_sip_tls import SIP_TLS_PORT, certs, tls_bond  # noqa: F401 (fixtures)
from test_sip_trunk import Sipp, assert_tone_comes_back, media_socket, trunk_connection, wait_event

STUNNEL = shutil.which("stunnel4") or "/usr/bin/stunnel4"

pytestmark = pytest.mark.skipif(not os.path.exists(STUNNEL) or not shutil.which("sipp"),
                                reason="Debian stunnel4 and sip-tester are installed by scripts/test")


@contextlib.contextmanager
def stunnel(service):
    """stunnel in the foreground with one `service` section; yields a list that
    holds its log once it has stopped."""
    with tempfile.TemporaryDirectory() as folder:
        log = os.path.join(folder, "stunnel.log")
        config = os.path.join(folder, "stunnel.conf")
        with open(config, "w") as f:
            f.write(f"foreground = yes\npid =\ndebug = info\noutput = {log}\n\n[sip]\n{service}")
        proc = subprocess.Popen([STUNNEL, config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stopped_log = []
        try:
            time.sleep(0.5)
            assert proc.poll() is None, open(log).read() if os.path.exists(log) else "stunnel exited"
            yield stopped_log
        finally:
            proc.terminate()
            proc.wait(10)
            stopped_log.append(open(log).read() if os.path.exists(log) else "")


def assert_one_tls_connection(log, handshake):
    """The whole dialog crossed one TLS connection, whose handshake completed."""
    assert log.count("accepted connection from") == 1 and handshake in log, log[-2000:]


def test_sipp_calls_bond_over_tls_and_hears_its_tone_back(tls_bond, receiver, certs):  # noqa: F811
    bond = tls_bond
    conn = trunk_connection(bond, receiver)
    front = free_port()
    client = (f"client = yes\naccept = 127.0.0.1:{front}\nconnect = 127.0.0.1:{SIP_TLS_PORT}\n"
              f"CAfile = {certs['ca']}\nverifyChain = yes\ncheckIP = 127.0.0.1\n")
    with stunnel(client) as log:
        media = media_socket()
        # The caller hangs up 6 s after its ACK, over the same TLS connection.
        caller = Sipp("uac_rtp.xml", {"rtp_port": media.getsockname()[1], "bye_timeout_ms": 6000},
                      target=f"127.0.0.1:{front}", transport="t1")
        call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
        api(bond, "POST", f"/calls/{call}/actions/answer", {})
        bridge_to(bond, conn, call, "loop:echo")
        assert_tone_comes_back(media, int(caller.logged(r"BOND_RTP (\d+)").group(1)))
        code, detail = caller.wait()
        assert code == 0, detail
        hangup = wait_event(receiver, "call.hangup", call_control_id=call)
        assert hangup["hangup_source"] == "caller", hangup
    assert_one_tls_connection(log[0], "TLS connected")
    assert "Certificate accepted at depth=0" in log[0], log[0][-2000:]


def test_bond_calls_sipp_through_a_tls_trunk_and_hears_its_tone_back(tls_bond, receiver, certs):  # noqa: F811
    bond = tls_bond
    media = media_socket()
    front = free_port()
    # sipp's Contact is stunnel's TLS port, so the BYE goes over TLS too.
    callee = Sipp("uas_rtp.xml", {"rtp_port": media.getsockname()[1], "contact": f"127.0.0.1:{front};transport=tls"},
                  transport="t1")
    server = f"accept = 127.0.0.1:{front}\nconnect = 127.0.0.1:{callee.port}\ncert = {certs['cert']}\nkey = {certs['key']}\n"
    with stunnel(server) as log:
        conn = trunk_connection(bond, receiver, trunk={"host": "127.0.0.1", "port": front, "transport": "tls"})
        dialed = api(bond, "POST", "/calls", {"connection_id": conn, "to": "+15550004444", "from": "+15550001234"})
        call = dialed["data"]["call_control_id"]
        wait_event(receiver, "call.answered", call_control_id=call)
        bridge_to(bond, conn, call, "loop:echo")
        assert_tone_comes_back(media, int(callee.logged(r"BOND_RTP (\d+)").group(1)))
        api(bond, "POST", f"/calls/{call}/actions/hangup", {})
        code, detail = callee.wait()
        assert code == 0, detail
        hangup = wait_event(receiver, "call.hangup", call_control_id=call)
        assert hangup["hangup_cause"] == "normal_clearing", hangup
    assert_one_tls_connection(log[0], "TLS accepted")
