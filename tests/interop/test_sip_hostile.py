"""Malformed and hostile SIP at a real `bond serve`, over UDP: each gets the right
answer or silence, Bond never falls over, and a real call (sipp) still works after.
The scan below sends what SIPVicious's svmap/svwar send: OPTIONS and REGISTER probes
with a "friendly-scanner" User-Agent, and INVITEs from an address no trunk allows.
"""

import socket
import uuid

from conftest import api
from test_sip_trunk import Sipp, trunk_connection, wait_event


def request(method, port, body="", extra="", content_length=None, to_tag=""):
    branch = "z9hG4bK" + uuid.uuid4().hex[:10]
    length = len(body.encode()) if content_length is None else content_length
    return (
        f"{method} sip:100@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch={branch};rport\r\n"
        f"From: <sip:scanner@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:100@127.0.0.1>{to_tag}\r\n"
        f"Call-ID: {uuid.uuid4().hex}\r\n"
        f"CSeq: 1 {method}\r\n"
        "Max-Forwards: 70\r\n"
        f"{extra}"
        f"Content-Length: {length}\r\n\r\n{body}"
    ).encode()


def status_of(sock, data, port, wait=2.0):
    """Send one datagram; the first final status code back, or None for silence."""
    sock.sendto(data, ("127.0.0.1", port))
    sock.settimeout(wait)
    try:
        while True:
            reply, _ = sock.recvfrom(65535)
            code = int(reply.split(b" ", 2)[1])
            if code >= 200:
                return code
    except (socket.timeout, ValueError, IndexError):
        return None


GOOD_SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def test_hostile_sip_gets_the_right_answer_and_bond_keeps_working(bond, receiver):
    trunk_connection(bond, receiver)
    port = bond.sip_port
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 5999))
    scanner = "User-Agent: friendly-scanner\r\n"
    cases = [
        ("OPTIONS probe", request("OPTIONS", port, extra=scanner), {200}),
        ("REGISTER probe", request("REGISTER", port, extra=scanner), {405}),
        # rsipstack's parser drops methods it does not know: silence, not 501.
        ("unknown method", request("FOOBAR", port), {None, 405, 501}),
        ("BYE for no dialog", request("BYE", port, to_tag=";tag=abc"), {481}),
        ("INVITE with unreadable SDP", request("INVITE", port, "v=0\r\nm=audio x\r\n",
                                               extra="Content-Type: application/sdp\r\n"), {400}),
        ("INVITE with no common codec", request("INVITE", port, GOOD_SDP.replace("RTP/AVP 0", "RTP/AVP 18"),
                                                extra="Content-Type: application/sdp\r\n"), {488}),
        ("INVITE without SDP", request("INVITE", port), {488}),
        ("truncated request", request("INVITE", port, GOOD_SDP)[:60], {None, 400}),
        ("garbage", b"\x00\xff" * 200, {None, 400}),
        ("Content-Length larger than the body", request("INVITE", port, GOOD_SDP, content_length=5000,
                                                        extra="Content-Type: application/sdp\r\n"), {None, 400}),
        ("huge header", request("OPTIONS", port, extra="X-Junk: " + "a" * 60000 + "\r\n"), {None, 400, 200}),
    ]
    for name, data, allowed in cases:
        got = status_of(sock, data, port)
        assert got in allowed, f"{name}: got {got}, expected one of {allowed}"
    # No call was created by any of it, and a real call still goes through.
    assert not receiver.received
    caller = Sipp("uac_rejected.xml", {"status": 486}, target=f"127.0.0.1:{port}")
    call = wait_event(receiver, "call.initiated")["call_control_id"]
    api(bond, "POST", f"/calls/{call}/actions/reject", {"cause": "USER_BUSY"})
    code, detail = caller.wait()
    assert code == 0, detail
