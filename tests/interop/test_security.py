"""What an attacker, another tenant or a misbehaving peer can do to a running
Bond, tried from outside: raw SIP over UDP and TCP, correctly signed webhooks
from the wrong organization, and the like. Each test is the regression test of
one finding (docs/security.md lists them).
"""

import base64
import json
import os
import socket
import subprocess
import time
import urllib.request
import uuid

import nacl.signing

from conftest import api, bond_with
from test_sip_trunk import trunk_connection, wait_event
from test_telnyx_dial import telnyx, telnyx_connection  # noqa: F401 (telnyx is a fixture)

GOOD_SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def sip_request(method, port, via_host, transport="UDP", via_params="", extra="", body=GOOD_SDP, user="100"):
    branch = "z9hG4bK" + uuid.uuid4().hex[:10]
    return (
        f"{method} sip:{user}@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {via_host};branch={branch}{via_params}\r\n"
        f"From: <sip:+15550001111@{via_host.split(':')[0]}>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:{user}@127.0.0.1>\r\n"
        f"Call-ID: {uuid.uuid4().hex}\r\n"
        f"CSeq: 1 {method}\r\n"
        f"Contact: <sip:caller@{via_host}>\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Type: application/sdp\r\n"
        f"{extra}"
        f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
    ).encode()


def statuses(read, wait=2.0):
    """Status codes of the responses `read()` returns until a final one or silence."""
    codes = []
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            data = read()
        except (socket.timeout, ConnectionError):
            break
        if not data:
            break
        for head in data.split(b"SIP/2.0 ")[1:]:
            codes.append(int(head[:3]))
        if codes and codes[-1] >= 200:
            break
    return codes


def udp_from(ip, data, port, wait=2.0):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ip, 0))
        s.settimeout(wait)
        s.sendto(data(s.getsockname()[1]), ("127.0.0.1", port))
        return statuses(lambda: s.recvfrom(65535)[0], wait)


def tcp_from(ip, data, port, wait=2.0):
    with socket.create_connection(("127.0.0.1", port), timeout=wait, source_address=(ip, 0)) as s:
        s.sendall(data(s.getsockname()[1]))
        return statuses(lambda: s.recv(65535), wait)


def admin(bond, *args):
    """`bond admin ...` on the running Bond's database; its `name=value` lines."""
    out = subprocess.run([os.environ.get("BOND_BIN", "target/debug/bond"), "admin", *args],
                         env={"PATH": os.environ.get("PATH", ""), "BOND_DATA_DIR": bond.data_dir},
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def second_organization(bond, name="Other Org"):
    """Another tenant of the same Bond: its admin key."""
    org = admin(bond, "create-org", name)["organization_id"]
    return admin(bond, "create-key", "--org", org, "--role", "admin")["api_key"]


def test_a_forged_via_received_does_not_match_allowed_ips_over_udp_or_tcp(bond, receiver):
    """allowed_ips is matched against the transport's source address only: an
    INVITE from 127.0.0.1 claiming `received=127.0.0.2` (or a Via host of
    127.0.0.2) is refused on a connection that allows only 127.0.0.2."""
    trunk_connection(bond, receiver, allowed_ips=["127.0.0.2"])
    port = bond.sip_port
    forged = [
        ("UDP", udp_from, lambda p: sip_request("INVITE", port, f"127.0.0.1:{p}", via_params=";received=127.0.0.2;rport")),
        ("UDP", udp_from, lambda p: sip_request("INVITE", port, f"127.0.0.2:{p}")),
        ("TCP", tcp_from, lambda p: sip_request("INVITE", port, f"127.0.0.1:{p}", "TCP", ";received=127.0.0.2")),
        ("TCP", tcp_from, lambda p: sip_request("INVITE", port, f"127.0.0.2:{p}", "TCP")),
    ]
    for transport, send, data in forged:
        codes = send("127.0.0.1", data, port)
        assert codes[-1:] == [403], (transport, codes)
    time.sleep(0.5)
    assert not receiver.received, "a forged INVITE made a call"
    # The carrier's real address still gets in, over both transports.
    for send, transport in [(udp_from, "UDP"), (tcp_from, "TCP")]:
        codes = send("127.0.0.2", lambda p: sip_request("INVITE", port, f"127.0.0.2:{p}", transport), port, wait=1.0)
        assert 100 in codes or 180 in codes, (transport, codes)
    wait_event(receiver, "call.initiated")


def test_a_signed_webhook_on_another_organizations_connection_cannot_touch_your_call(bond, receiver, telnyx):
    """Organization B posts a correctly signed Telnyx webhook to its own connection
    naming organization A's call in `client_state`: A's call stays up and A's
    application hears nothing of it."""
    conn_a = telnyx_connection(bond, receiver, telnyx)
    call = api(bond, "POST", "/calls", {"connection_id": conn_a, "to": "+13125550111", "from": "+13125550100"})["data"]
    dial = telnyx.requests[0][2]
    key_b = second_organization(bond)
    signer_b = nacl.signing.SigningKey.generate()
    telnyx_b = {"api_key": "KEYfake", "api_base_url": telnyx.base_url, "connection_id": "1",
                "public_key": base64.b64encode(bytes(signer_b.verify_key)).decode()}
    body = {"application_name": "b", "webhook_event_url": receiver.url,
            "bond": {"telnyx": telnyx_b, "media_streams": {"telnyx_stream_token": "b-token"}}}
    conn_b = api(bond, "POST", "/call_control_applications", body, key=key_b)["data"]["id"]
    url_b = dial["webhook_url"].replace(conn_a, conn_b)
    for event, payload in [
        ("call.machine.detection.ended", {"result": "machine"}),
        ("call.dtmf.received", {"digit": "9"}),
        ("call.hangup", {"hangup_cause": "user_busy"}),
    ]:
        payload = {"call_control_id": "v3:attacker-call", "client_state": dial["client_state"], **payload}
        assert telnyx.webhook(url_b, event, payload, key=signer_b) == 200
    time.sleep(0.5)
    status = api(bond, "GET", f"/calls/{call['call_control_id']}")["data"]
    assert status["is_alive"] is True, status
    kinds = [json.loads(b)["data"]["event_type"] for _, b in list(receiver.received)]
    assert kinds == ["call.initiated"], kinds


def test_trunk_credentials_are_never_answered_to_another_hosts_challenge(bond, receiver):
    """A sip: URI on any host: the host challenges with its own realm, and Bond
    must not answer with a digest of the trunk's password (crackable offline)."""
    trunk = {"host": "203.0.113.1", "username": "acme", "password": "trunk-password"}
    conn = trunk_connection(bond, receiver, trunk=trunk)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as evil:
        evil.bind(("127.0.0.1", 0))
        evil.settimeout(5)
        to = f"sip:+13125550111@127.0.0.1:{evil.getsockname()[1]}"
        call = api(bond, "POST", "/calls", {"connection_id": conn, "to": to, "from": "+13125550100"})
        call = call["data"]["call_control_id"]
        invite, bond_addr = evil.recvfrom(65535)
        headers = invite.decode().split("\r\n\r\n")[0].split("\r\n")
        copy = [h for h in headers if h.split(":")[0].lower() in ("via", "from", "call-id", "cseq")]
        to_header = next(h for h in headers if h.lower().startswith("to:"))
        challenge = "\r\n".join(["SIP/2.0 401 Unauthorized", *copy, f"{to_header};tag=evil",
                                   'WWW-Authenticate: Digest realm="evil.example", nonce="abc123", algorithm=MD5',
                                   "Content-Length: 0", "", ""])
        evil.sendto(challenge.encode(), bond_addr)
        answered_with = []
        deadline = time.time() + 4
        while time.time() < deadline:
            try:
                data, _ = evil.recvfrom(65535)
            except socket.timeout:
                break
            if data.startswith(b"INVITE") and b"authorization:" in data.lower():
                answered_with.append(data)
    assert not answered_with, "Bond answered another host's challenge with the trunk's credentials"
    hangup = wait_event(receiver, "call.hangup", call_control_id=call)
    assert hangup["hangup_source"] == "callee", hangup


def test_an_incoming_call_nobody_answers_gets_480_and_ends_at_the_ring_timeout(receiver):
    """A caller that goes silent after its INVITE no longer holds a call (and
    its RTP ports) forever: at sip.ring_timeout_secs it gets 480."""
    with bond_with({"BOND_SIP_RING_TIMEOUT_SECS": "2"}) as bond:
        trunk_connection(bond, receiver)
        started = time.time()
        codes = udp_from("127.0.0.1", lambda p: sip_request("INVITE", bond.sip_port, f"127.0.0.1:{p}"),
                         bond.sip_port, wait=6)
        assert codes[-1] == 480 and 180 in codes, codes
        assert 1.5 < time.time() - started < 5
        call = wait_event(receiver, "call.initiated")["call_control_id"]
        hangup = wait_event(receiver, "call.hangup", call_control_id=call)
        assert hangup["hangup_cause"] == "timeout", hangup
        status = api(bond, "GET", f"/calls/{call}")["data"]
        assert status["is_alive"] is False


def test_idle_sip_tcp_connections_cannot_starve_bond_of_descriptors(receiver):
    """Under `ulimit -n 256`, 300 SIP-TCP connections that each send one line and
    wait: Bond keeps answering /health and placing calls, does not flood its log,
    closes what it did not take at once and the rest when they stay idle."""
    env = {"BOND_SIP_TCP_IDLE_TIMEOUT_SECS": "3", "BOND_LOG_LEVEL": "info"}
    with bond_with(env, nofile=256) as bond:
        conn = trunk_connection(bond, receiver)
        sockets = []
        for n in range(300):
            s = socket.socket()
            s.settimeout(2)
            try:
                s.connect(("127.0.0.1", bond.sip_port))
                s.sendall(b"OPTIONS sip:bond@127.0.0.1 SIP/2.0\r\n")
            except OSError:
                s.close()
                continue
            sockets.append(s)
        started = time.time()
        urllib.request.urlopen(f"http://127.0.0.1:{bond.port}/health", timeout=2).read()
        call = api(bond, "POST", "/calls", {"connection_id": conn, "to": "loop:echo", "from": "+15550001111"})
        assert call["data"]["is_alive"] is True
        assert time.time() - started < 2, "Bond was slow to answer with the connections open"
        # What Bond refused it closed at once; the rest it closes once they stay idle.
        time.sleep(5)
        still_open = 0
        for s in sockets:
            s.settimeout(0.2)
            try:
                still_open += s.recv(1) != b""
            except socket.timeout:
                still_open += 1
            except OSError:
                pass
            s.close()
        assert still_open == 0, f"{still_open} connections still open after the idle timeout"
        # A real SIP call over TCP still goes through.
        codes = tcp_from("127.0.0.1", lambda p: sip_request("INVITE", bond.sip_port, f"127.0.0.1:{p}", "TCP"),
                         bond.sip_port, wait=1.0)
        assert 100 in codes or 180 in codes, codes
        bond.stop()
        log = bond.log()
        assert len(log) < 200_000, f"the log grew to {len(log)} bytes"


def rss_peak_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_parallel_recording_downloads_are_streamed_not_read_into_memory(bond, receiver):
    """Twenty slow downloads of a 22 MB recording at once: Bond streams the file,
    so its peak memory grows by far less than 20 x 22 MB."""
    conn = trunk_connection(bond, receiver)
    call = api(bond, "POST", "/calls", {"connection_id": conn, "to": "loop:tone?hz=440", "from": "+15550001111",
                                        "record": "record-from-answer"})["data"]["call_control_id"]
    time.sleep(0.5)
    api(bond, "POST", f"/calls/{call}/actions/hangup", {})
    saved = wait_event(receiver, "call.recording.saved", call_control_id=call)
    url = saved["recording_urls"]["wav"]
    recordings = os.path.join(bond.data_dir, "recordings")
    (path,) = [os.path.join(d, f) for d, _, files in os.walk(recordings) for f in files if f.endswith(".wav")]
    with open(path, "r+b") as f:  # the same recording, grown to 22 MB
        f.seek(22 * 1024 * 1024)
        f.write(b"\0")
    before = rss_peak_kib(bond.proc.pid)

    def slow_download(results):
        with urllib.request.urlopen(url, timeout=30) as r:
            first = r.read(64 * 1024)
            time.sleep(1.5)  # every download is open at once
            results.append(len(first) + len(r.read()))

    import threading
    results = []
    threads = [threading.Thread(target=slow_download, args=(results,)) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [22 * 1024 * 1024 + 1] * 20, results
    grown_mib = (rss_peak_kib(bond.proc.pid) - before) / 1024
    assert grown_mib < 100, f"peak memory grew by {grown_mib:.0f} MiB for 20 downloads"


def test_a_request_body_sent_a_byte_at_a_time_is_cut_off(bond):
    """Headers in time, then the body trickles a byte a second: Bond answers 408
    after 10 s instead of holding the connection for as long as the client likes."""
    import threading

    with socket.create_connection(("127.0.0.1", bond.port), timeout=20) as s:
        s.sendall(b"POST /v2/calls HTTP/1.1\r\nHost: bond\r\nAuthorization: Bearer x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        started = time.time()
        answered = threading.Event()

        def trickle():
            while not answered.wait(1.0):
                try:
                    s.sendall(b" ")
                except OSError:
                    return

        threading.Thread(target=trickle, daemon=True).start()
        answer = s.recv(4096)
        answered.set()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert 9 < time.time() - started < 15


def test_a_media_stream_that_never_starts_is_closed_after_10_s_even_if_it_pings(bond, receiver):
    """An unauthenticated media-stream WebSocket that only pings does not stay
    open past the 10 s it has to send `start`."""
    import asyncio

    import websockets

    conn = api(bond, "POST", "/call_control_applications",
               {"application_name": "streams", "webhook_event_url": receiver.url,
                "bond": {"media_streams": {"telnyx_stream_token": "secret-token"}}})["data"]["id"]

    async def pinger():
        async with websockets.connect(f"ws://127.0.0.1:{bond.port}/media/telnyx/{conn}") as ws:
            started = time.time()
            try:
                while time.time() - started < 30:
                    await asyncio.wait_for(ws.ping(), 2)
                    await asyncio.sleep(1)
            except websockets.ConnectionClosed as closed:
                return time.time() - started, closed.rcvd.code if closed.rcvd else None
            return time.time() - started, None

    held, code = asyncio.run(pinger())
    assert code == 1008 and held < 15, (held, code)


def test_sip_over_tcp_restarts_at_once_while_old_connections_sit_in_time_wait(receiver):
    """Bond closes its SIP-TCP connections when it stops, which leaves them in
    TIME-WAIT on its side; started again at once it must still bind port 5060."""
    with bond_with() as bond:
        trunk_connection(bond, receiver)
        peers = []
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", bond.sip_port), timeout=5)
            s.sendall(sip_request("OPTIONS", bond.sip_port, f"127.0.0.1:{s.getsockname()[1]}", "TCP", body=""))
            assert b"SIP/2.0 200" in s.recv(65535)
            peers.append(s)
        bond.stop()
        waiting = subprocess.run(["ss", "-tan", "state", "time-wait", f"( sport = :{bond.sip_port} )"],
                                 capture_output=True, text=True).stdout
        bond.start()
        codes = tcp_from("127.0.0.1", lambda p: sip_request("OPTIONS", bond.sip_port, f"127.0.0.1:{p}", "TCP", body=""),
                         bond.sip_port)
        assert codes == [200], (codes, waiting)
        for s in peers:
            s.close()
