"""baresip (Debian) as a second real SIP user agent, calling Bond and called by it.
Its audio source is a 440 Hz sine (ausine); what it hears is dumped to WAV by its
sndfile module. Bond bridges it to `loop:tone?hz=1200` and records the call in
dual channels, so each direction is checked by tone frequency on its own:
what baresip heard must be 1200 Hz, what Bond heard from baresip 440 Hz.
Opus at the packet times baresip asks for (10 and 40 ms; libopus has no 30 ms frame for it
to send) must flow both ways, each side sending packets of that length.
Two baresips bridged through Bond (a SIP leg to a SIP leg, same codec, which
Bond passes through undecoded, and records from the packets it passes) must each hear the
other's tone, before and while recorded. `send_dtmf` digits must reach baresip as RFC 4733 telephone-events (its console
prints each event it decodes). Bond and baresip exchange RTCP reports: baresip's
echo Bond's sender reports, so Bond measures the round trip, with RTCP on its own port or
multiplexed on the RTP port (`a=rtcp-mux`) when baresip offers that.
"""

import contextlib
import glob
import os
import socket
import re
import signal
import struct
import subprocess
import tempfile
import time
import urllib.request
import wave

import pytest

from conftest import api, bond_with, free_port, share_at
from test_cluster import metric
from test_sip_trunk import trunk_connection, wait_event

CONFIG = """sip_listen\t127.0.0.1:{sip_port}
audio_source\tausine,{hz}
audio_player\taubridge,player
audio_alert\taubridge,alert
ausrc_srate\t48000
ausrc_channels\t2
auplay_srate\t48000
auplay_channels\t2
module_path\t/usr/lib/baresip/modules
module\tg711.so
module\tausine.so
module\taubridge.so
module\tsndfile.so
module_app\taccount.so
module_app\tmenu.so
snd_path\t{dump}
rtp_ports\t{rtp_min}-{rtp_max}
"""


def free_udp_and_tcp_port():
    """A port free both ways now, with the next free over TCP: baresip takes its SIP port over
    UDP and TCP and the next for SIP/TLS, and conftest's free_port checks TCP only."""
    while True:
        port = free_port()
        # UDP and TCP on the port, and TCP on the next (baresip's SIP/TLS listener).
        wanted = [(socket.SOCK_DGRAM, port), (socket.SOCK_STREAM, port + 1)]
        try:
            with contextlib.ExitStack() as held:
                for kind, number in wanted:
                    held.enter_context(socket.socket(socket.AF_INET, kind)).bind(("127.0.0.1", number))
            return port
        except OSError:
            continue


@contextlib.contextmanager
def console_shown_on_failure(log):
    """Add the end of baresip's console `log` to an assertion failing in the block."""
    try:
        yield
    except AssertionError as failed:
        with open(log, errors="replace") as f:
            said = f.read()[-3000:]
        raise AssertionError(f"{failed}\nbaresip said:\n{said}") from failed


def start_baresip(workdir, commands=(), log=None, hz=440, config="", trace=False, account=";audio_codecs=PCMU",
                  sip_port=None):
    """baresip in `workdir` saying a sine of `hz`, running `commands`, with `config` lines and the
    `account` parameters added, on `sip_port` (else a free one); its console (with the SIP messages if
    `trace`) goes to the file `log` if given."""
    sip_port = sip_port or free_udp_and_tcp_port()
    rtp_min = 42000 + (sip_port % 50) * 20
    cfg = os.path.join(workdir, "cfg")
    dump = os.path.join(workdir, "dump")
    os.makedirs(cfg)
    os.makedirs(dump)
    with open(os.path.join(cfg, "config"), "w") as f:
        f.write(CONFIG.format(sip_port=sip_port, dump=dump, rtp_min=rtp_min, rtp_max=rtp_min + 19, hz=hz) + config)
    with open(os.path.join(cfg, "accounts"), "w") as f:
        f.write(f"<sip:+15550004444@127.0.0.1>;regint=0{account};answermode=auto\n")
    open(os.path.join(cfg, "contacts"), "w").close()
    args = ["baresip", "-f", cfg, "-t", "20"] + (["-s"] if trace else [])
    for command in commands:
        args += ["-e", command]
    out = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    return proc, sip_port, dump


def stop_baresip(proc):
    """Have baresip quit now (SIGTERM: it ends its calls and closes its dumps), not at its `-t` timer,
    which is only there to end it if a test fails half-way."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def mono_samples(path):
    with wave.open(path) as w:
        frames = w.readframes(w.getnframes())
        channels, rate = w.getnchannels(), w.getframerate()
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    return [samples[i] for i in range(0, len(samples), channels)], rate, samples, channels


def offer_and_answer(log):
    """From the console `log` of a baresip that called Bond with `trace`: what it sent up to Bond's
    200 OK (its INVITE and SDP offer), and the 200 OK up to its ACK (Bond's answer)."""
    with open(log, errors="replace") as f:
        trace = f.read()
    ok = trace.index("SIP/2.0 200 OK")
    return trace[:ok], trace[ok:trace.index("ACK sip:", ok)]


def bridge_to_a_tone_and_record(bond, conn, call):
    """Bridge `call` with `loop:tone?hz=1200`, record it in dual channels for 4 s, and hang it up."""
    tone = api(bond, "POST", "/calls", {"connection_id": conn, "to": "loop:tone?hz=1200", "from": "+15550000000"})
    api(bond, "POST", f"/calls/{call}/actions/bridge", {"call_control_id_to_bridge_with": tone["data"]["call_control_id"]})
    api(bond, "POST", f"/calls/{call}/actions/record_start", {"channels": "dual", "format": "wav"})
    time.sleep(4)
    api(bond, "POST", f"/calls/{call}/actions/hangup", {})


def answered_and_recorded(bond, receiver, conn, call):
    """Once `call` is answered, bridge it to a tone and record it (`bridge_to_a_tone_and_record`);
    the `call.recording.saved` event."""
    wait_event(receiver, "call.answered", call_control_id=call)
    bridge_to_a_tone_and_record(bond, conn, call)
    return wait_event(receiver, "call.recording.saved", call_control_id=call)


def assert_tones_both_ways(dump, workdir, saved):
    """baresip heard Bond's 1200 Hz (its dump of what it decoded), and Bond heard baresip's 440 Hz
    (the left channel of the call's recording, `saved`)."""
    heard_by_baresip = glob.glob(os.path.join(dump, "*-dec.wav"))
    assert heard_by_baresip, "baresip dumped no received audio"
    samples, rate, _, _ = mono_samples(heard_by_baresip[0])
    tail = samples[-rate:]
    assert share_at(tail, 1200, rate) > 0.8, f"baresip heard {share_at(tail, 1200, rate):.2f} of 1200 Hz"
    recording = os.path.join(workdir, "bond.wav")
    with urllib.request.urlopen(saved["recording_urls"]["wav"], timeout=10) as r, open(recording, "wb") as f:
        f.write(r.read())
    _, rate, interleaved, channels = mono_samples(recording)
    assert channels == 2
    said = list(interleaved[0::2])[-rate:]  # left: what the party (baresip) said
    assert share_at(said, 440, rate) > 0.8, f"Bond heard {share_at(said, 440, rate):.2f} of 440 Hz"


@pytest.mark.parametrize("direction", ["baresip calls Bond", "Bond calls baresip"])
def test_audio_flows_both_ways_with_baresip(bond, receiver, direction):
    conn = trunk_connection(bond, receiver)
    with tempfile.TemporaryDirectory() as workdir:
        if direction == "baresip calls Bond":
            proc, _, dump = start_baresip(workdir, [f"/dial sip:+15557654321@127.0.0.1:{bond.sip_port}"])
            call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
            api(bond, "POST", f"/calls/{call}/actions/answer", {})
        else:
            proc, sip_port, dump = start_baresip(workdir)
            time.sleep(1.0)  # baresip binds its SIP socket
            dialed = api(bond, "POST", "/calls", {"connection_id": conn, "to": f"sip:+15550004444@127.0.0.1:{sip_port}",
                                                  "from": "+15550001234"})
            call = dialed["data"]["call_control_id"]
        saved = answered_and_recorded(bond, receiver, conn, call)
        stop_baresip(proc)
        assert_tones_both_ways(dump, workdir, saved)


@pytest.mark.parametrize("rtcp_mux", ["no", "yes"])
def test_bond_and_baresip_exchange_rtcp_reports_and_measure_the_round_trip(bond, receiver, rtcp_mux):
    trunk_connection(bond, receiver)
    with tempfile.TemporaryDirectory() as workdir:
        log = os.path.join(workdir, "console.log")
        proc, _, _ = start_baresip(workdir, [f"/dial sip:+15557654321@127.0.0.1:{bond.sip_port}"], log=log,
                                   config=f"rtcp_mux\t{rtcp_mux}\n", trace=True)
        with console_shown_on_failure(log):
            call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
            api(bond, "POST", f"/calls/{call}/actions/answer", {})
            time.sleep(15)  # reports every 2.5-7.5 s each way; baresip's echo Bond's latest SR
            api(bond, "POST", f"/calls/{call}/actions/hangup", {})
            hangup = wait_event(receiver, "call.hangup", call_control_id=call)
        stop_baresip(proc)
        offer, answer = offer_and_answer(log)
    # Bond's 200 OK agrees to multiplex exactly when baresip's INVITE offered it (RFC 5761).
    assert ("a=rtcp-mux" in offer) == (rtcp_mux == "yes"), offer
    assert ("a=rtcp-mux" in answer) == (rtcp_mux == "yes"), answer
    outbound = hangup["call_quality_stats"]["outbound"]
    assert int(outbound["rtcp_report_count"]) >= 1, outbound
    # baresip's report echoes Bond's sender report: the round trip over loopback is short.
    assert 0 <= float(outbound["rtt_ms"]) < 50, outbound
    assert outbound["skip_packet_count"] == "0" and float(outbound["mos"]) > 4.0, outbound


def test_send_dtmf_reaches_baresip_as_rfc4733_telephone_events(bond, receiver):
    conn = trunk_connection(bond, receiver)
    with tempfile.TemporaryDirectory() as workdir:
        log = os.path.join(workdir, "console.log")
        proc, _, _ = start_baresip(workdir, [f"/dial sip:+15557654321@127.0.0.1:{bond.sip_port}"], log=log)
        call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
        api(bond, "POST", f"/calls/{call}/actions/answer", {})
        wait_event(receiver, "call.answered", call_control_id=call)
        api(bond, "POST", f"/calls/{call}/actions/send_dtmf", {"digits": "159#", "duration_millis": 120})
        deadline = time.time() + 15
        while time.time() < deadline and "'#' (end=1)" not in open(log).read():
            time.sleep(0.1)
        api(bond, "POST", f"/calls/{call}/actions/hangup", {})
        stop_baresip(proc)
        # baresip's console prints each telephone-event it decodes: "received event: '5' (end=0)".
        events = re.findall(r"received event: '(.)' \(end=(\d)\)", open(log).read())
        assert events == [(d, e) for d in "159#" for e in "01"], events


@pytest.fixture(params=["userspace", "kernel"])
def relaying_bond(request):
    """Bond as shipped, and with `rtp.kernel_relay` on (the suite runs as root)."""
    env = {"BOND_RTP_KERNEL_RELAY": "true"} if request.param == "kernel" else {}
    with bond_with(env) as b:
        b.relay = request.param
        yield b


def test_two_baresips_bridged_hear_each_other_passed_through_and_then_recorded(relaying_bond, receiver):
    bond = relaying_bond
    conn = trunk_connection(bond, receiver)
    with tempfile.TemporaryDirectory() as caller_dir, tempfile.TemporaryDirectory() as callee_dir:
        callee, callee_port, callee_dump = start_baresip(callee_dir, hz=660)
        time.sleep(1.0)  # baresip binds its SIP socket
        caller, _, caller_dump = start_baresip(caller_dir, [f"/dial sip:+15557654321@127.0.0.1:{bond.sip_port}"])
        call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
        api(bond, "POST", f"/calls/{call}/actions/answer", {})
        dialed = api(bond, "POST", "/calls", {"connection_id": conn, "to": f"sip:+15550004444@127.0.0.1:{callee_port}",
                                             "from": "+15550001234", "link_to": call, "bridge_on_answer": True})
        other = dialed["data"]["call_control_id"]
        wait_event(receiver, "call.bridged", call_control_id=call)
        time.sleep(3)  # same codec, RFC 4733 on both: packets pass through undecoded
        # With the kernel relay, the kernel carried them (both ways, 50 a second).
        offloaded = metric(bond, "bond_rtp_packets_offloaded_total")
        assert (offloaded > 150) == (bond.relay == "kernel"), offloaded
        api(bond, "POST", f"/calls/{call}/actions/record_start", {"channels": "dual", "format": "wav"})
        time.sleep(3)  # recorded from the packets passing through (in userspace: the recording takes them)
        api(bond, "POST", f"/calls/{call}/actions/hangup", {})  # its linked call ends with it
        hangup = wait_event(receiver, "call.hangup", call_control_id=other)
        # The callee's leg counted every packet, those the kernel carried too (about 6 s at 50 a second).
        for way in ["inbound", "outbound"]:
            count = int(hangup["call_quality_stats"][way]["packet_count"])
            assert 250 < count < 400, f"{way}: {count} packets"
        saved = wait_event(receiver, "call.recording.saved", call_control_id=call)
        stop_baresip(caller)
        stop_baresip(callee)
        for dump, hz, who in [(caller_dump, 660, "the caller"), (callee_dump, 440, "the callee")]:
            heard = glob.glob(os.path.join(dump, "*-dec.wav"))
            assert heard, f"{who} dumped no received audio"
            samples, rate, _, _ = mono_samples(heard[0])
            assert len(samples) > 5 * rate, f"{who} heard {len(samples) / rate:.1f} s"
            before, after = samples[-5 * rate:-4 * rate], samples[-rate:]
            assert share_at(before, hz, rate) > 0.8, f"{who} before recording: {share_at(before, hz, rate):.2f} of {hz} Hz"
            assert share_at(after, hz, rate) > 0.8, f"{who} while recorded: {share_at(after, hz, rate):.2f} of {hz} Hz"
        recording = os.path.join(caller_dir, "bond.wav")
        with urllib.request.urlopen(saved["recording_urls"]["wav"], timeout=10) as r, open(recording, "wb") as f:
            f.write(r.read())
        _, rate, interleaved, _ = mono_samples(recording)
        said, heard = list(interleaved[0::2])[-rate:], list(interleaved[1::2])[-rate:]
        assert share_at(said, 440, rate) > 0.8 and share_at(heard, 660, rate) > 0.8


@pytest.mark.parametrize("ptime", [10, 40])
def test_opus_flows_both_ways_at_the_packet_time_baresip_asks_for(bond, receiver, ptime):
    conn = trunk_connection(bond, receiver)
    with tempfile.TemporaryDirectory() as workdir:
        log = os.path.join(workdir, "console.log")
        proc, _, dump = start_baresip(workdir, [f"/dial sip:+15557654321@127.0.0.1:{bond.sip_port}"], log=log,
                                      config="module\topus.so\n", trace=True,
                                      account=f";audio_codecs=opus/48000/2;ptime={ptime}")
        call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
        api(bond, "POST", f"/calls/{call}/actions/answer", {})
        wait_event(receiver, "call.answered", call_control_id=call)
        answered = time.time()
        bridge_to_a_tone_and_record(bond, conn, call)
        seconds = time.time() - answered
        hangup = wait_event(receiver, "call.hangup", call_control_id=call)
        saved = wait_event(receiver, "call.recording.saved", call_control_id=call)
        stop_baresip(proc)
        offer, answer = offer_and_answer(log)
        assert f"a=ptime:{ptime}" in offer and re.search(r"a=rtpmap:\d+ opus/48000/2", answer), answer
        assert f"a=ptime:{ptime}" in answer, answer
        # Packets each way over the call: one every `ptime` ms (Bond's count from its answer, baresip's
        # from its first packet, so a little less).
        stats = hangup["call_quality_stats"]
        expected = seconds * 1000 / ptime
        for way in ["outbound", "inbound"]:
            count = int(stats[way]["packet_count"])
            assert 0.75 * expected < count < 1.1 * expected, f"{way}: {count} packets in {seconds:.1f} s"
        assert_tones_both_ways(dump, workdir, saved)
