"""SIP over TLS with baresip (Debian's, a real user agent with TLS): baresip
calls Bond on `sip.tls_listen` verifying Bond's certificate against the dev CA,
and Bond calls baresip through a trunk with `"transport": "tls"`, verifying
baresip's certificate against `trusted_ca`. Audio is checked both ways by tone
(test_sip_baresip.py's checks), and baresip's SIP trace must show the
messages went over TLS. A trunk whose certificate chains to a CA Bond does not
trust is refused at the dial, with the verifier's reason, and no call is made;
encryption Bond cannot give (`media_encryption: "DTLS"`, SRTP to a built-in
leg) is refused rather than sent in the clear.

Debian's sipp is built without TLS (`sipp -v`: SCTP-PCAP-RTPSTREAM), so it
cannot be the TLS peer here.
"""

import json
import os
import tempfile
import time
import urllib.error

import pytest

from conftest import api, bond_with
from test_https import dev_cert
from test_sip_baresip import (assert_tones_both_ways, answered_and_recorded, console_shown_on_failure,
                              start_baresip, stop_baresip)
from test_sip_trunk import trunk_connection, wait_event

SIP_TLS_PORT = 5061


def baresip_tls(workdir, certs, name="baresip"):
    """baresip's TLS lines: its own certificate (cert and key in one file, as it takes them)
    and the CA it checks Bond's against."""
    both = os.path.join(workdir, f"{name}.pem")
    with open(both, "w") as f:
        f.write(open(certs["cert"]).read() + open(certs["key"]).read())
    return f"sip_certificate\t{both}\nsip_cafile\t{certs['ca']}\n"


@pytest.fixture
def certs():
    with dev_cert() as made:
        yield made


@pytest.fixture
def tls_bond(certs):
    env = {"BOND_SIP_TLS_CERT": certs["cert"], "BOND_SIP_TLS_KEY": certs["key"], "BOND_TRUSTED_CA": certs["ca"]}
    with bond_with(env) as bond:
        yield bond


@pytest.mark.parametrize("direction", ["baresip calls Bond", "Bond calls baresip through a TLS trunk",
                                       "Bond calls a sip: URI with sip_transport_protocol TLS"])
def test_calls_over_tls_carry_audio_both_ways(tls_bond, receiver, certs, direction):
    bond = tls_bond
    with tempfile.TemporaryDirectory() as workdir:
        log = os.path.join(workdir, "console.log")
        config = baresip_tls(workdir, certs)
        if direction == "baresip calls Bond":
            conn = trunk_connection(bond, receiver)
            dial = f"/dial sip:+15557654321@127.0.0.1:{SIP_TLS_PORT};transport=tls"
            proc, _, dump = start_baresip(workdir, [dial], log=log, config=config, trace=True)
            with console_shown_on_failure(log):
                call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
                api(bond, "POST", f"/calls/{call}/actions/answer", {})
        else:
            proc, sip_port, dump = start_baresip(workdir, log=log, config=config, trace=True)
            # baresip serves SIP over TLS on the port after its SIP port.
            if "trunk" in direction:
                trunk = {"host": "127.0.0.1", "port": sip_port + 1, "transport": "tls"}
                conn = trunk_connection(bond, receiver, trunk=trunk)
                dial = {"to": "+15550004444"}
            else:
                conn = trunk_connection(bond, receiver)
                dial = {"to": f"sip:+15550004444@127.0.0.1:{sip_port + 1}", "sip_transport_protocol": "TLS"}
            time.sleep(1.0)  # baresip binds its sockets
            dialed = api(bond, "POST", "/calls", {"connection_id": conn, "from": "+15550001234", **dial})
            call = dialed["data"]["call_control_id"]
        with console_shown_on_failure(log):
            saved = answered_and_recorded(bond, receiver, conn, call)
        stop_baresip(proc)
        with open(log, errors="replace") as f:
            trace = f.read()
        assert "SIP/2.0/TLS" in trace and "SIP/2.0/UDP" not in trace, trace[-3000:]
        assert_tones_both_ways(dump, workdir, saved)


@pytest.mark.parametrize("to,encryption", [("sip:+15550004444@127.0.0.1:5999", "DTLS"), ("loop:echo", "SRTP")])
def test_encryption_bond_cannot_give_is_refused_rather_than_sent_in_the_clear(tls_bond, receiver, to, encryption):
    conn = trunk_connection(tls_bond, receiver)
    body = {"connection_id": conn, "to": to, "from": "+15550001234", "media_encryption": encryption}
    with pytest.raises(urllib.error.HTTPError) as refused:
        api(tls_bond, "POST", "/calls", body)
    error = json.loads(refused.value.read())["errors"][0]
    assert (refused.value.code, error["code"], error["source"]["pointer"]) == (422, "10015", "/media_encryption")


def test_a_trunk_whose_certificate_bond_does_not_trust_is_refused_at_the_dial(tls_bond, receiver):
    bond = tls_bond
    with tempfile.TemporaryDirectory() as workdir, dev_cert() as stranger:
        proc, sip_port, _ = start_baresip(workdir, config=baresip_tls(workdir, stranger))
        conn = trunk_connection(bond, receiver, trunk={"host": "127.0.0.1", "port": sip_port + 1, "transport": "tls"})
        time.sleep(1.0)
        with pytest.raises(urllib.error.HTTPError) as refused:
            api(bond, "POST", "/calls", {"connection_id": conn, "to": "+15550004444", "from": "+15550001234"})
        stop_baresip(proc)
    error = json.loads(refused.value.read())["errors"][0]
    assert refused.value.code == 422 and error["source"]["pointer"] == "/to", error
    assert "over TLS" in error["detail"] and "certificate" in error["detail"].lower(), error
    calls = api(bond, "GET", "/calls")["data"]
    assert calls == [], calls
