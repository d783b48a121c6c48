"""SIP trunking against real user agents: sipp (Debian sip-tester) as the carrier's
trunk, both ways, over UDP and TCP. The test plays the application: it answers,
rejects and bridges through Bond's API as webhooks arrive.

Audio is checked by tone frequency: the test is the caller's RTP endpoint (the
sipp scenario puts the test's socket in its SDP).
"""

import collections
import contextlib
import json
import os
import re
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # G.711, in the standard library up to 3.12

from conftest import api, bond_with, bridge_to, free_port, share_at, tone

SCENARIOS = os.path.join(os.path.dirname(__file__), "sipp")
TRUNK_USER, TRUNK_PASSWORD = "bond-trunk", "s3cret"


def trunk_connection(bond, receiver, **sip):
    settings = {"allowed_ips": ["127.0.0.1"], **sip}
    body = {"application_name": "trunk", "webhook_event_url": receiver.url, "bond": {"sip": settings}}
    return api(bond, "POST", "/call_control_applications", body)["data"]["id"]


def events(receiver):
    return [json.loads(body)["data"] for _, body in list(receiver.received)]


def wait_event(receiver, event_type, timeout=15.0, **match):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in events(receiver):
            if e["event_type"] == event_type and all(e["payload"].get(k) == v for k, v in match.items()):
                return e["payload"]
        time.sleep(0.05)
    got = [e['event_type'] for e in events(receiver)]
    raise AssertionError(f"no {event_type} {match}; got {got}; sipp: {[s.state() for s in Sipp.latest]}")


def free_media_ports(sip_port):
    """A port for sipp's `-mp` whose next three are free too: sipp binds its
    audio there and its video two ports up, and fails if either is taken.
    None of them is `sip_port`, sipp's own: free again once checked, the
    kernel may hand it out as the next candidate (a run failed so, errno 98)."""
    while True:
        with contextlib.ExitStack() as held:
            try:
                first = free_port()  # a candidate: all four are then bound over UDP
                if sip_port in range(first, first + 4):
                    continue
                for port in range(first, first + 4):
                    sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind(("127.0.0.1", port))
                return first
            except OSError:
                continue


class Sipp:
    """One sipp run of a scenario file whose {placeholders} are filled in first."""

    # The last few started, for a failed wait to say whether they are running.
    latest = collections.deque(maxlen=3)

    def __init__(self, scenario, fields=None, target=None, transport="u1", service="+15557654321", auth=None):
        self.dir = tempfile.mkdtemp()
        self.scenario = scenario
        text = open(os.path.join(SCENARIOS, scenario)).read()
        defaults = {"ptime": 20, "contact": "[local_ip]:[local_port];transport=[transport]"}
        for key, value in {**defaults, **(fields or {})}.items():
            text = text.replace("{" + key + "}", str(value))
        path = os.path.join(self.dir, scenario)
        with open(path, "w") as f:
            f.write(text)
        self.port = free_port()
        self.log = os.path.join(self.dir, "sipp.log")
        args = ["sipp", "-sf", path, "-p", str(self.port), "-i", "127.0.0.1", "-m", "1", "-t", transport,
                "-s", service, "-timeout", "40s", "-timeout_error", "-mp", str(free_media_ports(self.port)),
                "-trace_logs", "-log_file", self.log, "-trace_err", "-error_file",
                os.path.join(self.dir, "errors.log"), "-nostdin"]
        if auth:
            args += ["-au", auth[0], "-ap", auth[1]]
        if target:
            args.append(target)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     cwd=self.dir)
        Sipp.latest.append(self)

    def state(self):
        """Its scenario and port, and if it has ended, its exit code and the end of its error log."""
        code = self.proc.poll()
        if code is None:
            return f"{self.scenario} port {self.port}: running"
        errors = os.path.join(self.dir, "errors.log")
        tail = open(errors).read()[-300:] if os.path.exists(errors) else ""
        return f"{self.scenario} port {self.port}: exited {code} {tail!r} {self.proc.stderr.read()[-300:]!r}"

    def logged(self, pattern, timeout=15.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(self.log):
                m = re.search(pattern, open(self.log).read())
                if m:
                    return m
            time.sleep(0.05)
        raise AssertionError(f"sipp never logged {pattern}")

    def wait(self, timeout=40):
        code = self.proc.wait(timeout=timeout)
        errors = os.path.join(self.dir, "errors.log")
        detail = open(errors).read()[-2000:] if os.path.exists(errors) else self.proc.stderr.read()
        return code, detail


def media_socket():
    """A UDP socket on loopback standing in for a SIP peer's media."""
    media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    media.bind(("127.0.0.1", 0))
    return media


def sipp_caller(bond, scenario, transport="u1", **fields):
    """A sipp caller running `scenario`, whose media ({rtp_port}) is a socket of the test's: (caller, socket)."""
    media = media_socket()
    caller = Sipp(scenario, {"rtp_port": media.getsockname()[1], **fields},
                  target=f"127.0.0.1:{bond.sip_port}", transport=transport)
    return caller, media


def rtp_caller(bond, bye_timeout_ms, transport="u1", **fields):
    """A sipp caller (uac_rtp.xml) whose media is a socket of the test's: (caller, socket)."""
    return sipp_caller(bond, "uac_rtp.xml", transport, bye_timeout_ms=bye_timeout_ms, **fields)


def rtp_packets(samples, ssrc=0x1234, pt=0, seq=1, ts=0, per_packet=160):
    """PCMU packets of `samples` (8 kHz), `per_packet` samples each (160: 20 ms)."""
    out = []
    for i in range(0, len(samples) - per_packet + 1, per_packet):
        payload = audioop.lin2ulaw(b"".join(struct.pack("<h", s) for s in samples[i:i + per_packet]), 2)
        header = struct.pack("!BBHII", 0x80, pt, (seq + i // per_packet) & 0xFFFF, ts + i, ssrc)
        out.append(header + payload)
    return out


def assert_tone_comes_back(media, port, ptime=20):
    """3 s of a 700 Hz tone to Bond's `port` in `ptime` ms packets; what comes back
    (from loop:echo) is most of it, and that tone. The packets sent."""
    packets = rtp_packets(tone(700, 8000, 8000 * 3), per_packet=8 * ptime)
    back = exchange_rtp(media, port, packets, interval=ptime / 1000)
    heard = pcmu_samples(back)[-8000:]
    seconds_back = sum(len(p) - 12 for p in back) / 8000
    assert seconds_back > 2, f"only {seconds_back} s of the 3 s came back in {len(back)} packets"
    assert share_at(heard, 700, 8000) > 0.8, share_at(heard, 700, 8000)
    return packets


def pcmu_samples(packets):
    pcm = audioop.ulaw2lin(b"".join(p[12:] for p in packets), 2)
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm))


def exchange_rtp(sock, bond_port, packets, interval=0.02):
    """Send a packet every `interval` s (on a fixed schedule, like a real sender's clock);
    return what came back (PCMU payload packets)."""
    sock.settimeout(0.002)
    received = []
    start = time.time()
    for i, packet in enumerate(packets):
        sock.sendto(packet, ("127.0.0.1", bond_port))
        end = start + interval * (i + 1)
        while time.time() < end:
            try:
                data, _ = sock.recvfrom(2048)
                if len(data) > 12 and data[1] & 0x7F == 0:
                    received.append(data)
            except (socket.timeout, BlockingIOError):
                pass
    return received


def listen(media, bond_port, seconds):
    """What Bond sends the caller over `seconds` (the caller saying nothing), 8 kHz samples."""
    return pcmu_samples(exchange_rtp(media, bond_port, rtp_packets([0] * int(8000 * seconds))))


@pytest.mark.parametrize("transport,ptime", [("u1", 20), ("t1", 20), ("u1", 30)])
def test_a_trunk_call_answered_and_bridged_to_echo_sends_the_callers_audio_back(bond, receiver, transport, ptime):
    """The caller's tone comes back from `loop:echo`; also when the caller sends 30 ms packets
    though its offer said a=ptime:20 (an idle echo reflects the packets as they came; while it
    decodes, Bond cuts them into 20 ms frames and sends 20 ms packets)."""
    conn = trunk_connection(bond, receiver)
    caller, media = rtp_caller(bond, 60000, transport=transport)
    incoming = wait_event(receiver, "call.initiated", direction="incoming")
    assert incoming["state"] == "parked" and incoming["from"] == "+15550001111", incoming
    assert incoming["to"] == "+15557654321" and "PCMU" in incoming["offered_codecs"]
    call = incoming["call_control_id"]
    api(bond, "POST", f"/calls/{call}/actions/answer", {})
    echo = bridge_to(bond, conn, call, "loop:echo")
    answer = caller.logged(r"BOND_RTP (\d+) .* PTIME (\d+)")
    assert answer.group(2) == "20", answer.group(0)
    packets = assert_tone_comes_back(media, int(answer.group(1)), ptime)
    answered = wait_event(receiver, "call.answered", call_control_id=call)
    assert answered["codec"] == "PCMU"
    # The application hangs up: Bond sends the BYE, sipp answers it.
    api(bond, "POST", f"/calls/{call}/actions/hangup", {})
    code, detail = caller.wait()
    assert code == 0, detail
    hangup = wait_event(receiver, "call.hangup", call_control_id=call)
    assert hangup["hangup_cause"] == "normal_clearing"
    stats = hangup["call_quality_stats"]["inbound"]
    assert int(stats["packet_count"]) >= len(packets) - 5 and float(stats["mos"]) > 4.0, stats
    with urllib.request.urlopen(f"http://127.0.0.1:{bond.port}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    assert re.search(r"^bond_call_mos_count [1-9]", metrics, re.M), "the call's MOS is in /metrics"
    assert re.search(r"^bond_call_packets_received_total [1-9]", metrics, re.M)
    wait_event(receiver, "call.hangup", call_control_id=echo)


def test_a_caller_asking_for_40_ms_packets_gets_them_from_a_decoded_bridge(bond, receiver):
    """sipp's offer says a=ptime:40: Bond's answer says 40 too, and the loop:tone it is bridged
    with (decoded and encoded again, not passed through) reaches the caller in 40 ms packets."""
    conn = trunk_connection(bond, receiver)
    caller, media = rtp_caller(bond, 60000, ptime=40)
    call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
    api(bond, "POST", f"/calls/{call}/actions/answer", {})
    tone_call = api(bond, "POST", "/calls", {"connection_id": conn, "to": "loop:tone?hz=800", "from": "+15550000000"})
    api(bond, "POST", f"/calls/{call}/actions/bridge",
        {"call_control_id_to_bridge_with": tone_call["data"]["call_control_id"]})
    answer = caller.logged(r"BOND_RTP (\d+) .* PTIME (\d+)")
    assert answer.group(2) == "40", answer.group(0)
    packets = rtp_packets([0] * 8000 * 2, per_packet=320)
    back = exchange_rtp(media, int(answer.group(1)), packets, interval=0.04)
    audio = back[5:]
    assert len(audio) > 30, f"only {len(back)} packets came"
    assert {len(p) - 12 for p in audio} == {320}, sorted({len(p) - 12 for p in audio})
    stamps = [struct.unpack("!I", p[4:8])[0] for p in audio]
    assert all(b - a == 320 for a, b in zip(stamps, stamps[1:])), "one continuous stream"
    assert share_at(pcmu_samples(audio), 800, 8000) > 0.8
    api(bond, "POST", f"/calls/{call}/actions/hangup", {})
    code, detail = caller.wait()
    assert code == 0, detail


def listen_rtp(sock, seconds):
    """The RTP packets that arrive on `sock` within `seconds`."""
    sock.settimeout(0.05)
    received, end = [], time.time() + seconds
    while time.time() < end:
        try:
            data, _ = sock.recvfrom(2048)
            if len(data) > 12:
                received.append(data)
        except (socket.timeout, BlockingIOError):
            pass
    return received


def test_a_caller_holds_resumes_and_changes_codec_with_re_invites(bond, receiver):
    """sipp re-INVITEs an answered call bridged to a tone, 2 s apart: sendonly is answered
    recvonly and Bond's RTP stops; sendrecv brings it back; an offer of PCMA alone moves the
    call to PCMA, the tone still heard; an offer of G.722 alone (another sample rate) is
    refused with 488 and the call goes on in PCMA until the caller hangs up."""
    conn = trunk_connection(bond, receiver)
    caller, media = sipp_caller(bond, "uac_reinvite.xml", phase_ms=2000)
    call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
    api(bond, "POST", f"/calls/{call}/actions/answer", {})
    tone_call = api(bond, "POST", "/calls", {"connection_id": conn, "to": "loop:tone?hz=800", "from": "+15550000000"})
    api(bond, "POST", f"/calls/{call}/actions/bridge",
        {"call_control_id_to_bridge_with": tone_call["data"]["call_control_id"]})

    def phase(log):
        """sipp's line for the answer it got, and Bond's packets over the second after it settled."""
        line = caller.logged(log).group(0)
        listen_rtp(media, 0.3)
        return line, listen_rtp(media, 1.0)

    def tone_share(packets, decode):
        pcm = decode(b"".join(p[12:] for p in packets), 2)
        return share_at(struct.unpack(f"<{len(pcm) // 2}h", pcm), 800, 8000)

    line, packets = phase(r"ANSWERED \S+ \S+")
    assert line == "ANSWERED sendrecv 0", line
    assert len(packets) >= 40 and {p[1] & 0x7F for p in packets} == {0}, len(packets)
    assert tone_share(packets, audioop.ulaw2lin) > 0.8

    line, packets = phase(r"HELD \S+ \S+")
    assert line == "HELD recvonly 0", line
    assert packets == [], f"{len(packets)} packets sent to a caller that holds"

    line, packets = phase(r"RESUMED \S+ \S+")
    assert line == "RESUMED sendrecv 0", line
    assert len(packets) >= 40 and {p[1] & 0x7F for p in packets} == {0}, len(packets)

    line, packets = phase(r"MOVED \S+ \S+")
    assert line == "MOVED sendrecv 8", line
    assert len(packets) >= 40 and {p[1] & 0x7F for p in packets} == {8}, {p[1] & 0x7F for p in packets}
    assert tone_share(packets, audioop.alaw2lin) > 0.8

    _, packets = phase(r"REFUSED 488")
    assert len(packets) >= 40 and {p[1] & 0x7F for p in packets} == {8}, "the call goes on as it was"
    code, detail = caller.wait()
    assert code == 0, detail
    hangup = wait_event(receiver, "call.hangup", call_control_id=call)
    assert (hangup["hangup_cause"], hangup["hangup_source"]) == ("normal_clearing", "caller")


def test_sipps_own_30_ms_pcma_recording_is_taken_whole(bond, receiver):
    """sipp plays its stock g711a.pcap (PCMA in 30 ms packets, about 7 s) into a call bridged to
    loop:echo: Bond takes every packet (cut into 20 ms frames) and scores the call clean."""
    conn = trunk_connection(bond, receiver)
    caller = Sipp("load_uac.xml", {"plays": 1}, target=f"127.0.0.1:{bond.sip_port}")
    call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
    api(bond, "POST", f"/calls/{call}/actions/answer", {})
    bridge_to(bond, conn, call, "loop:echo")
    code, detail = caller.wait()
    assert code == 0, detail
    stats = wait_event(receiver, "call.hangup", call_control_id=call)["call_quality_stats"]["inbound"]
    assert int(stats["packet_count"]) > 200, f"about 7 s of 30 ms packets: {stats}"
    assert stats["skip_packet_count"] == "0" and float(stats["mos"]) > 4.0, stats


def test_a_caller_hanging_up_ends_the_call_as_the_callers(bond, receiver):
    trunk_connection(bond, receiver)
    caller, media = rtp_caller(bond, 1500)
    call = wait_event(receiver, "call.initiated")["call_control_id"]
    api(bond, "POST", f"/calls/{call}/actions/answer", {})
    code, detail = caller.wait()
    assert code == 0, detail
    hangup = wait_event(receiver, "call.hangup", call_control_id=call)
    assert (hangup["hangup_cause"], hangup["hangup_source"]) == ("normal_clearing", "caller")


@pytest.fixture
def bond_with_2s_rtp_timeout():
    with bond_with({"BOND_SIP_RTP_TIMEOUT_SECS": "2"}) as b:
        yield b


def test_a_call_whose_rtp_stops_is_hung_up_by_bond_as_a_timeout(bond_with_2s_rtp_timeout, receiver):
    bond = bond_with_2s_rtp_timeout
    trunk_connection(bond, receiver)
    # The caller would hang up itself after 30 s: the BYE must come from Bond first.
    caller, media = rtp_caller(bond, 30000)
    call = wait_event(receiver, "call.initiated")["call_control_id"]
    api(bond, "POST", f"/calls/{call}/actions/answer", {})
    bond_port = int(caller.logged(r"BOND_RTP (\d+)").group(1))
    exchange_rtp(media, bond_port, rtp_packets(tone(700, 8000, 8000)))  # 1 s of audio, then none
    code, detail = caller.wait()
    assert code == 0, detail
    hangup = wait_event(receiver, "call.hangup", call_control_id=call)
    assert (hangup["hangup_cause"], hangup["hangup_source"]) == ("timeout", "unknown"), hangup
    assert hangup["sip_hangup_cause"] == "200", "the call was answered"
    assert int(hangup["call_quality_stats"]["inbound"]["packet_count"]) >= 45


def test_cancel_before_the_answer_is_originator_cancel(bond, receiver):
    trunk_connection(bond, receiver)
    caller = Sipp("uac_cancel.xml", target=f"127.0.0.1:{bond.sip_port}")
    call = wait_event(receiver, "call.initiated")["call_control_id"]
    code, detail = caller.wait()
    assert code == 0, detail
    hangup = wait_event(receiver, "call.hangup", call_control_id=call)
    assert (hangup["hangup_cause"], hangup["sip_hangup_cause"]) == ("originator_cancel", "487")


@pytest.mark.parametrize("cause,status", [("USER_BUSY", 486), ("CALL_REJECTED", 603)])
def test_a_rejected_call_gets_the_status_of_its_cause(bond, receiver, cause, status):
    trunk_connection(bond, receiver)
    caller = Sipp("uac_rejected.xml", {"status": status}, target=f"127.0.0.1:{bond.sip_port}")
    call = wait_event(receiver, "call.initiated")["call_control_id"]
    api(bond, "POST", f"/calls/{call}/actions/reject", {"cause": cause})
    code, detail = caller.wait()
    assert code == 0, detail
    hangup = wait_event(receiver, "call.hangup", call_control_id=call)
    assert hangup["hangup_cause"] == cause.lower()


def test_a_caller_not_on_the_allow_list_is_forbidden(bond, receiver):
    body = {"application_name": "other", "webhook_event_url": receiver.url,
            "bond": {"sip": {"allowed_ips": ["192.0.2.10"]}}}
    api(bond, "POST", "/call_control_applications", body)
    caller = Sipp("uac_rejected.xml", {"status": 403}, target=f"127.0.0.1:{bond.sip_port}")
    code, detail = caller.wait()
    assert code == 0, detail
    assert not events(receiver)


@pytest.mark.parametrize("password,status", [("carrier-pw", 486), ("guess", 403)])
def test_a_caller_from_any_address_answers_a_digest_challenge(bond, receiver, password, status):
    trunk_connection(bond, receiver, allowed_ips=["192.0.2.10"],
                     inbound_auth={"username": "carrier", "password": "carrier-pw"})
    caller = Sipp("uac_auth.xml", {"status": status}, target=f"127.0.0.1:{bond.sip_port}",
                  auth=("carrier", password))
    if status == 486:
        call = wait_event(receiver, "call.initiated")
        assert call["from"] == "+15550004444", call
        api(bond, "POST", f"/calls/{call['call_control_id']}/actions/reject", {"cause": "USER_BUSY"})
    code, detail = caller.wait()
    assert code == 0, detail
    if status == 403:
        assert not events(receiver), "a wrong password creates nothing"


def test_a_full_connection_answers_503(bond, receiver):
    trunk_connection(bond, receiver, max_concurrent_calls=1)
    first, media = rtp_caller(bond, 3000)
    call = wait_event(receiver, "call.initiated")["call_control_id"]
    second = Sipp("uac_rejected.xml", {"status": 503}, target=f"127.0.0.1:{bond.sip_port}")
    code, detail = second.wait()
    assert code == 0, detail
    api(bond, "POST", f"/calls/{call}/actions/answer", {})
    assert first.wait()[0] == 0


def test_bond_dials_out_through_a_trunk_that_challenges_it(bond, receiver):
    trunk = Sipp("uas_auth.xml")
    conn = trunk_connection(bond, receiver, trunk={
        "host": "127.0.0.1", "port": trunk.port, "username": TRUNK_USER, "password": TRUNK_PASSWORD})
    time.sleep(0.3)  # sipp binds its socket
    call = api(bond, "POST", "/calls", {"connection_id": conn, "to": "+15551230000", "from": "+15550009999"})
    call = call["data"]["call_control_id"]
    answered = wait_event(receiver, "call.answered", call_control_id=call)
    assert answered["codec"] == "PCMA", "the trunk's answer chose PCMA"
    api(bond, "POST", f"/calls/{call}/actions/hangup", {})
    code, detail = trunk.wait()
    assert code == 0, detail
    hangup = wait_event(receiver, "call.hangup", call_control_id=call)
    assert hangup["hangup_cause"] == "normal_clearing"


def test_a_sip_uri_is_dialed_directly_over_tcp(bond, receiver):
    """A sip: URI naming the trunk's own host (here over TCP) is answered with
    the trunk's credentials; test_security.py checks another host gets none."""
    trunk = Sipp("uas_auth.xml", transport="t1")
    conn = trunk_connection(bond, receiver, trunk={"host": "127.0.0.1", "port": trunk.port, "transport": "tcp",
                                                   "username": TRUNK_USER, "password": TRUNK_PASSWORD})
    time.sleep(0.3)
    to = f"sip:alice@127.0.0.1:{trunk.port};transport=tcp"
    call = api(bond, "POST", "/calls", {"connection_id": conn, "to": to, "from": "+15550009999"})
    call = call["data"]["call_control_id"]
    wait_event(receiver, "call.answered", call_control_id=call)
    api(bond, "POST", f"/calls/{call}/actions/hangup", {})
    assert trunk.wait()[0] == 0


@pytest.mark.parametrize("status,reason,cause", [
    (486, "Busy Here", "user_busy"), (404, "Not Found", "not_found"), (603, "Decline", "call_rejected"),
    (480, "Temporarily Unavailable", "no_answer")])
def test_a_failed_outgoing_call_maps_to_its_telnyx_cause(bond, receiver, status, reason, cause):
    trunk = Sipp("uas_status.xml", {"status": status, "reason": reason})
    conn = trunk_connection(bond, receiver, trunk={"host": "127.0.0.1", "port": trunk.port})
    time.sleep(0.3)
    call = api(bond, "POST", "/calls", {"connection_id": conn, "to": "+15551230000", "from": "+15550009999"})
    call = call["data"]["call_control_id"]
    hangup = wait_event(receiver, "call.hangup", call_control_id=call)
    assert (hangup["hangup_cause"], hangup["hangup_source"]) == (cause, "callee")
    assert trunk.wait()[0] == 0


def test_an_unanswered_outgoing_call_is_cancelled_at_its_timeout(bond, receiver):
    trunk = Sipp("uas_no_answer.xml")
    conn = trunk_connection(bond, receiver, trunk={"host": "127.0.0.1", "port": trunk.port})
    time.sleep(0.3)
    call = api(bond, "POST", "/calls", {"connection_id": conn, "to": "+15551230000", "from": "+15550009999",
                                        "timeout_secs": 5})
    call = call["data"]["call_control_id"]
    hangup = wait_event(receiver, "call.hangup", call_control_id=call, timeout=20)
    assert hangup["hangup_cause"] == "timeout"
    code, detail = trunk.wait()
    assert code == 0, detail
