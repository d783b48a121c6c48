"""SRTP on SIP legs, keyed by SDES (RFC 4568), with baresip (Debian's, its
`srtp` module) as the peer: baresip calls Bond offering RTP/SAVP with its keys
(`mediaenc=srtp-mand`), and Bond calls baresip with `media_encryption: "SRTP"`.
Audio is checked both ways by tone (test_sip_baresip.py's checks: baresip can
only hear Bond's 1200 Hz, and Bond's recording only baresip's 440 Hz, if both
sides decrypt what the other protected), and the SDP of each side must carry
RTP/SAVP and an `a=crypto` key. A connection with SRTP off refuses an SAVP
offer with 488 rather than answering it in the clear.
"""

import os
import re
import tempfile
import time

import pytest

from conftest import api
from test_sip_baresip import (assert_tones_both_ways, answered_and_recorded, console_shown_on_failure,
                              offer_and_answer, start_baresip, stop_baresip)
from test_sip_trunk import trunk_connection, wait_event

SRTP = "module\tsrtp.so\n"
MANDATORY = ";audio_codecs=PCMU;mediaenc=srtp-mand"
CRYPTO = re.compile(r"a=crypto:\d+ AES_CM_128_HMAC_SHA1_(80|32) inline:")


def test_baresip_calls_bond_with_srtp_and_both_hear_each_other(bond, receiver):
    conn = trunk_connection(bond, receiver, srtp="offered")
    with tempfile.TemporaryDirectory() as workdir:
        log = os.path.join(workdir, "console.log")
        dial = f"/dial sip:+15557654321@127.0.0.1:{bond.sip_port}"
        proc, _, dump = start_baresip(workdir, [dial], log=log, config=SRTP, account=MANDATORY, trace=True)
        with console_shown_on_failure(log):
            call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
            api(bond, "POST", f"/calls/{call}/actions/answer", {})
            saved = answered_and_recorded(bond, receiver, conn, call)
        stop_baresip(proc)
        offer, answer = offer_and_answer(log)
        assert "RTP/SAVP" in offer and CRYPTO.search(offer), offer
        assert "m=audio" in answer and "RTP/SAVP" in answer and CRYPTO.search(answer), answer
        assert_tones_both_ways(dump, workdir, saved)


def test_bond_calls_baresip_with_media_encryption_srtp(bond, receiver):
    conn = trunk_connection(bond, receiver)
    with tempfile.TemporaryDirectory() as workdir:
        log = os.path.join(workdir, "console.log")
        proc, sip_port, dump = start_baresip(workdir, log=log, config=SRTP, account=MANDATORY, trace=True)
        time.sleep(1.0)  # baresip binds its SIP socket
        with console_shown_on_failure(log):
            dialed = api(bond, "POST", "/calls", {"connection_id": conn, "from": "+15550001234",
                                                  "to": f"sip:+15550004444@127.0.0.1:{sip_port}",
                                                  "media_encryption": "SRTP"})
            call = dialed["data"]["call_control_id"]
            saved = answered_and_recorded(bond, receiver, conn, call)
        stop_baresip(proc)
        with open(log, errors="replace") as f:
            trace = f.read()
        invite = trace[trace.index("INVITE sip:"):]
        assert "RTP/SAVP" in invite and CRYPTO.search(invite), invite[:2000]
        assert_tones_both_ways(dump, workdir, saved)


def test_an_srtp_offer_on_a_connection_without_srtp_gets_488_not_plain_rtp(bond, receiver):
    trunk_connection(bond, receiver)
    with tempfile.TemporaryDirectory() as workdir:
        log = os.path.join(workdir, "console.log")
        dial = f"/dial sip:+15557654321@127.0.0.1:{bond.sip_port}"
        proc, _, _ = start_baresip(workdir, [dial], log=log, config=SRTP, account=MANDATORY, trace=True)
        deadline = time.time() + 10
        while time.time() < deadline and "SIP/2.0 488" not in open(log, errors="replace").read():
            time.sleep(0.1)
        stop_baresip(proc)
        with console_shown_on_failure(log):
            assert "SIP/2.0 488" in open(log, errors="replace").read()
    assert not [body for _, body in receiver.received if "call.initiated" in body]
