"""Bond codes Opus as the receiving peer asks in its `a=fmtp` (RFC 7587 section 6.1), with baresip
(Debian) as the peer. baresip's opus module puts its settings in its offer: `opus_bitrate` as
`maxaveragebitrate`, `opus_inbandfec` as `useinbandfec=1`. What Bond sends baresip is read off the
loopback interface with a packet socket (root): the RTP payloads' size gives the bitrate, and the
first bits after each Opus packet's TOC byte say whether it carries in-band FEC (LBRR, RFC 6716 4.2.4).
Without `useinbandfec=1` Bond sends none (RFC 7587's default); with it, FEC comes as the tone starts.
"""

import contextlib
import os
import socket
import struct
import tempfile
import threading

import pytest

from conftest import api
from test_sip_baresip import bridge_to_a_tone_and_record, offer_and_answer, start_baresip, stop_baresip
from test_sip_trunk import trunk_connection, wait_event

ETH_P_IP = 0x0800


@contextlib.contextmanager
def rtp_sent_to(ports):
    """Collect the RTP payloads of UDP datagrams sent over loopback to any of `ports`, while in the block."""
    payloads, stop = [], threading.Event()
    sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sniffer.bind(("lo", 0))
    sniffer.settimeout(0.2)

    def read():
        while not stop.is_set():
            try:
                frame = sniffer.recv(2048)
            except socket.timeout:
                continue
            ip = frame[14:]  # loopback frames carry an (all-zero) Ethernet header
            if len(ip) < 20 or ip[9] != socket.IPPROTO_UDP:
                continue
            udp = ip[(ip[0] & 0x0F) * 4:]
            if len(udp) < 8 + 12 or struct.unpack("!H", udp[2:4])[0] not in ports:
                continue
            rtp = udp[8:]
            if rtp[0] >> 6 != 2 or 200 <= rtp[1] <= 204:  # not RTP version 2, or RTCP
                continue
            header = 12 + 4 * (rtp[0] & 0x0F)
            if rtp[0] & 0x10:  # a header extension: its length in 32-bit words follows its profile
                header += 4 + 4 * struct.unpack("!H", rtp[header + 2:header + 4])[0]
            payloads.append(bytes(rtp[header:]))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        yield payloads
    finally:
        stop.set()
        thread.join()
        sniffer.close()


def has_lbrr(packet):
    """A SILK or hybrid packet of one 20 ms mono frame: the LBRR flag is the second bit after the TOC byte."""
    return len(packet) > 1 and packet[0] >> 3 < 16 and packet[0] & 0x03 == 0 and (packet[1] >> 6) & 1 == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="a packet socket needs root")
@pytest.mark.parametrize("setting,asked", [("opus_bitrate\t12000", "maxaveragebitrate=12000"),
                                           ("opus_inbandfec\tyes", "useinbandfec=1")])
def test_bond_codes_opus_within_the_bitrate_and_with_the_fec_baresip_asks_for(bond, receiver, setting, asked):
    conn = trunk_connection(bond, receiver)
    with tempfile.TemporaryDirectory() as workdir:
        log = os.path.join(workdir, "console.log")
        proc, sip_port, _ = start_baresip(workdir, [f"/dial sip:+15557654321@127.0.0.1:{bond.sip_port}"], log=log,
                                          config=f"module\topus.so\n{setting}\n", trace=True,
                                          account=";audio_codecs=opus/48000/2")
        # start_baresip's RTP ports for this SIP port.
        rtp_min = 42000 + (sip_port % 50) * 20
        with rtp_sent_to(set(range(rtp_min, rtp_min + 20))) as payloads:
            call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
            api(bond, "POST", f"/calls/{call}/actions/answer", {})
            wait_event(receiver, "call.answered", call_control_id=call)
            bridge_to_a_tone_and_record(bond, conn, call)
            wait_event(receiver, "call.hangup", call_control_id=call)
        stop_baresip(proc)
        offer, _ = offer_and_answer(log)
        assert asked in offer, offer
    # Over 4 s bridged to the tone, 200 packets.
    assert len(payloads) >= 190, f"{len(payloads)} RTP packets seen"
    lbrr = sum(map(has_lbrr, payloads))
    if asked.startswith("maxaveragebitrate"):
        # libopus keeps to a bitrate on average (over the last 3 s, the encoder settled); RFC 7587's
        # default is no FEC.
        kbps = sum(map(len, payloads[-150:])) * 8 / (150 * 20)
        assert kbps <= 12 * 1.1 and lbrr == 0, f"{kbps:.1f} kbit/s, {lbrr} packets with FEC"
    else:
        # SILK's voice activity detector takes a steady tone for background within a second, and
        # sends no FEC for background: FEC comes with the tone's first second.
        assert lbrr >= 10, f"{lbrr} packets with FEC"
