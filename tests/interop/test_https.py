"""Bond over HTTPS and WSS (`http.tls_cert`, `http.tls_key`) with a
certificate `bond dev-cert` made, and Bond's own `https://` and `wss://`
requests verified against the certificate authority it is told to trust
(`trusted_ca`).

The official Telnyx SDK drives Bond over HTTPS, trusting only the dev CA;
webhooks go to an HTTPS receiver and `streaming_start` to a `wss://` consumer
(the consumer of test_stream_fork.py), both serving the dev certificate; a
consumer whose certificate Bond does not trust gets no stream, and the
application gets `streaming.failed` saying why. Carrier media streams
(test_media_streams.py's carrier) come in over WSS, and the softphone in
headless Chromium works from another machine's point of view: loaded over
HTTPS from the host's own network address, where a browser grants the
microphone only to a secure origin.
"""

import asyncio
import contextlib
import json
import os
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request

import pytest
import telnyx
from telnyx import Telnyx

from conftest import API_KEY, Receiver, api, bond_with, bridge_to, default_route_ip, event_types, share_at
from test_media_streams import TOKEN, Carrier, Codec, connection as stream_connection, open_bridged
from test_stream_fork import Consumer, media_of
from test_sip_trunk import wait_event
from test_telnyx_sdk import EXPECTED, public_key, tone_echo_bridge_hangup
from test_webrtc_aiortc import agent_token, connection as agent_connection
from test_webrtc_chromium import page_with_microphone, poll

BOND_BIN = os.environ.get("BOND_BIN", "target/debug/bond")


@contextlib.contextmanager
def dev_cert(*hosts):
    """`bond dev-cert` in a temporary directory: the paths of ca, cert and key."""
    with tempfile.TemporaryDirectory() as folder:
        named = [arg for host in hosts for arg in ("--host", host)]
        subprocess.run([BOND_BIN, "dev-cert", "--out", folder, *named], check=True, capture_output=True)
        yield {name: os.path.join(folder, f"{name}.pem") for name in ("ca", "cert", "key")}


def tls_env(certs, **extra):
    return {"BOND_HTTP_TLS_CERT": certs["cert"], "BOND_HTTP_TLS_KEY": certs["key"],
            "BOND_TRUSTED_CA": certs["ca"], **extra}


@pytest.fixture
def certs():
    with dev_cert(default_route_ip()) as made:
        yield made


@pytest.fixture
def https_bond(certs):
    with bond_with(tls_env(certs), ca=certs["ca"]) as bond:
        yield bond


def test_the_sdk_drives_bond_over_https_with_webhooks_to_an_https_receiver(https_bond, certs):
    bond = https_bond
    assert bond.base_url.startswith("https://")
    receiver = Receiver(tls=(certs["cert"], certs["key"]))
    try:
        client = Telnyx(api_key=API_KEY, base_url=bond.base_url, max_retries=0,
                        http_client=telnyx.DefaultHttpxClient(verify=bond.ssl_context))
        app = client.call_control_applications.create(application_name="tls", webhook_event_url=receiver.url)
        tone_id, echo_id = tone_echo_bridge_hangup(client, app.data.id)

        received = receiver.wait_for(8)
        assert event_types(received, tone_id) == EXPECTED
        assert event_types(received, echo_id) == EXPECTED
        key = public_key(bond)
        for headers, body in received:
            assert client.webhooks.unwrap(body, headers=headers, key=key).data.event_type in EXPECTED
    finally:
        receiver.close()


def test_a_client_that_does_not_trust_the_certificate_or_speaks_plain_http_is_refused(https_bond):
    with pytest.raises(urllib.error.URLError) as untrusted:
        urllib.request.urlopen(f"https://127.0.0.1:{https_bond.port}/health", timeout=5,
                               context=ssl.create_default_context())
    assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError), untrusted.value
    with pytest.raises(urllib.error.HTTPError) as plain:
        urllib.request.urlopen(f"http://127.0.0.1:{https_bond.port}/health", timeout=5)
    assert plain.value.code == 400
    assert "https://" in json.loads(plain.value.read())["errors"][0]["detail"]
    # Still serving the clients that trust it.
    with urllib.request.urlopen(f"https://127.0.0.1:{https_bond.port}/health", timeout=5,
                                context=https_bond.ssl_context) as ok:
        assert ok.status == 200


def test_streams_go_out_over_wss_only_to_a_consumer_whose_certificate_verifies(https_bond, certs):
    bond = https_bond
    trusted = Consumer(tls=(certs["cert"], certs["key"]))
    with dev_cert() as stranger_certs:
        stranger = Consumer(tls=(stranger_certs["cert"], stranger_certs["key"]))
    receiver = Receiver()
    try:
        conn = stream_connection(bond, receiver)
        client = Telnyx(api_key=API_KEY, base_url=bond.base_url, max_retries=0,
                        http_client=telnyx.DefaultHttpxClient(verify=bond.ssl_context))
        call = client.calls.dial(connection_id=conn, to="loop:tone?hz=1000", from_="+13125550100").data
        client.calls.actions.start_streaming(call.call_control_id, stream_url=trusted.url)
        _, frames = trusted.session()
        trusted.wait_frames(frames, lambda fs: len(media_of(fs, "inbound")) >= 25)
        assert frames[1]["event"] == "start" and frames[1]["start"]["call_control_id"] == call.call_control_id
        client.calls.actions.stop_streaming(call.call_control_id)
        wait_event(receiver, "streaming.stopped", call_control_id=call.call_control_id)

        client.calls.actions.start_streaming(call.call_control_id, stream_url=stranger.url)
        failed = wait_event(receiver, "streaming.failed", call_control_id=call.call_control_id)
        assert "certificate" in failed["failure_reason"].lower(), failed
        assert stranger.sessions == []
    finally:
        for closing in (trusted, stranger):
            closing.close()
        receiver.close()


def test_carrier_media_streams_come_in_over_wss(https_bond):
    bond = https_bond
    receiver = Receiver()
    try:
        conn = stream_connection(bond, receiver)

        async def scenario():
            headers = {"x-telnyx-streaming-auth-token": TOKEN}
            a = Carrier(bond, conn, "telnyx", Codec("PCMU"), "v2:call-tls1", headers=headers)
            b = Carrier(bond, conn, "telnyx", Codec("PCMA"), "v2:call-tls2", headers=headers)
            assert a.url.startswith("wss://")
            await open_bridged(bond, receiver, a, b)
            await asyncio.gather(a.send_tone(1000, 1.5), b.send_tone(600, 1.5))
            await asyncio.sleep(0.3)
            return a, b

        a, b = asyncio.run(scenario())
        heard_a, heard_b = a.heard(), b.heard()
        middle_a = heard_a[len(heard_a) // 3: 2 * len(heard_a) // 3]
        middle_b = heard_b[len(heard_b) // 3: 2 * len(heard_b) // 3]
        assert share_at(middle_b, 1000, 8000) > 0.8, share_at(middle_b, 1000, 8000)
        assert share_at(middle_a, 600, 8000) > 0.8, share_at(middle_a, 600, 8000)
    finally:
        receiver.close()


@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian chromium is installed by scripts/test")
def test_the_softphone_loaded_over_https_from_the_network_address_gets_the_microphone(certs):
    host = default_route_ip()
    receiver = Receiver()
    env = tls_env(certs, BOND_HTTP_LISTEN="0.0.0.0:8080")
    try:
        with bond_with(env, ca=certs["ca"]) as bond:
            conn = agent_connection(bond, receiver)
            token = agent_token(bond, "tls.agent")
            with page_with_microphone(560, ["--ignore-certificate-errors"]) as page:
                # Not localhost: only HTTPS makes this origin secure enough for the microphone.
                page.goto(f"https://{host}:{bond.port}/agent#processing=off")
                assert page.evaluate("window.isSecureContext")
                page.fill("#token", token)
                page.click("#login button[type=submit]")
                page.wait_for_selector("#status:has-text('registered')")

                dialed = api(bond, "POST", "/calls", {"connection_id": conn, "to": "agent:tls.agent",
                                                      "from": "+15550001111"})
                call = dialed["data"]["call_control_id"]
                page.wait_for_selector("#accept:visible")
                page.click("#accept")
                wait_event(receiver, "call.answered", call_control_id=call)
                bridge_to(bond, conn, call, "loop:echo")
                poll(page, "softphone.outputHz()", lambda hz: abs(hz - 440) < 30)
                page.click("#hangup")
                wait_event(receiver, "call.hangup", call_control_id=call)
    finally:
        receiver.close()
