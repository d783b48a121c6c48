"""`gather`, `gather_using_speak` and `gather_stop` driven by the official Telnyx
Python SDK against a real `bond serve`, with digits pressed by real callers:
baresip sending RFC 4733 telephone-events (its `sndcode` command, over its
ctrl_tcp module), and in-band DTMF tones in a sipp call whose media is the test's
socket. Each gather ends in `call.gather.ended` with the digits and Telnyx's
`status`; a digit during a spoken prompt cuts it short. Bond's speech gather
(`bond_input: "dtmf speech"`) ends with what a caller said (espeak-ng's voice,
transcribed by the embedded whisper.cpp) in `bond_speech`; speaking over a
prompt stops it, as a digit does.

(sipp 3.6.1's `play_dtmf` is not used: it sends telephone-events on payload
types 96 and 97 whatever the SDP says, and marks the end with the reserved bit.)
"""

import contextlib
import glob
import json
import math
import os
import socket
import struct
import time
import warnings

from telnyx import Telnyx

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # G.711, in the standard library up to 3.12

from conftest import API_KEY, free_port, rms
from test_sip_baresip import console_shown_on_failure, free_udp_and_tcp_port, mono_samples, start_baresip, stop_baresip
from test_sip_trunk import events, exchange_rtp, pcmu_samples, rtp_caller, rtp_packets, trunk_connection, wait_event
from test_speech import espeak, silence

ROWS = {"1": 697, "2": 697, "3": 697, "4": 770, "5": 770, "6": 770, "7": 852, "8": 852, "9": 852, "*": 941, "0": 941, "#": 941}
COLUMNS = {"1": 1209, "4": 1209, "7": 1209, "*": 1209, "2": 1336, "5": 1336, "8": 1336, "0": 1336,
           "3": 1477, "6": 1477, "9": 1477, "#": 1477}


def sdk(bond):
    return Telnyx(api_key=API_KEY, base_url=bond.base_url, max_retries=0)


def incoming_answered(bond, receiver, client):
    call = wait_event(receiver, "call.initiated")["call_control_id"]
    assert client.calls.actions.answer(call).data.result == "ok"
    return call


def rtp_caller_answered(bond, receiver):
    """A sipp caller whose media is the test's socket, answered: (caller, socket, SDK, call, Bond's RTP port)."""
    trunk_connection(bond, receiver)
    caller, media = rtp_caller(bond, bye_timeout_ms=60000)
    client = sdk(bond)
    call = incoming_answered(bond, receiver, client)
    return caller, media, client, call, int(caller.logged(r"BOND_RTP (\d+)").group(1))


def dtmf_pcmu(keys, tone_ms=120, gap_ms=200):
    """PCMU packets (20 ms, 8 kHz) of each key's two tones (ITU-T Q.23, about -10 dBm0 each), with silence between."""
    samples = [0] * (8 * 200)
    for key in keys:
        low, high = ROWS[key], COLUMNS[key]
        samples += [int(4000 * (math.sin(2 * math.pi * low * n / 8000) + math.sin(2 * math.pi * high * n / 8000)))
                    for n in range(8 * tone_ms)]
        samples += [0] * (8 * gap_ms)
    packets = []
    for i in range(0, len(samples) - 159, 160):
        payload = audioop.lin2ulaw(b"".join(struct.pack("<h", s) for s in samples[i:i + 160]), 2)
        packets.append(struct.pack("!BBHII", 0x80, 0, i // 160 + 1, i, 0x5EED) + payload)
    return packets


def send_paced(sock, port, packets):
    start = time.time()
    for i, packet in enumerate(packets):
        sock.sendto(packet, ("127.0.0.1", port))
        time.sleep(max(0.0, start + 0.02 * (i + 1) - time.time()))


def baresip_ctrl(port, command, params, timeout=10.0):
    """One command to baresip's ctrl_tcp module (a JSON netstring); its answer's `ok`."""
    body = json.dumps({"command": command, "params": params, "token": "gather"}).encode()
    deadline = time.time() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(f"{len(body)}:".encode() + body + b",")
                answer = s.recv(65536).decode()
                return json.loads(answer[answer.index(":") + 1:answer.rindex(",")]).get("ok")
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def baresip_calling(bond, workdir):
    """A baresip in `workdir` calling Bond: its ctrl_tcp port (to press keys) and the
    folder it dumps what it hears to (`*-dec.wav`, complete once the block has ended)."""
    sip_port = free_udp_and_tcp_port()
    ctrl_port = free_port()
    while ctrl_port in (sip_port, sip_port + 1):
        ctrl_port = free_port()
    config = f"module_app\tctrl_tcp.so\nctrl_tcp_listen\t127.0.0.1:{ctrl_port}\n"
    log = workdir / "baresip.log"
    proc, _, dump = start_baresip(str(workdir), [f"/dial sip:+15557654321@127.0.0.1:{bond.sip_port}"],
                                  config=config, sip_port=sip_port, log=str(log))
    try:
        with console_shown_on_failure(log):
            yield ctrl_port, dump
    finally:
        stop_baresip(proc)


def test_gather_collects_rfc4733_digits_a_baresip_caller_presses(bond, receiver, tmp_path):
    trunk_connection(bond, receiver)
    client = sdk(bond)
    with baresip_calling(bond, tmp_path) as (ctrl_port, _):
        call = incoming_answered(bond, receiver, client)
        result = client.calls.actions.gather(call, minimum_digits=2, maximum_digits=5, terminating_digit="#",
                                             inter_digit_timeout_millis=3000, gather_id="menu-1")
        assert result.data.result == "ok"
        time.sleep(0.5)  # the answer reaches baresip
        assert baresip_ctrl(ctrl_port, "sndcode", "12#")
        ended = wait_event(receiver, "call.gather.ended", call_control_id=call)
    assert (ended["digits"], ended["status"]) == ("12", "valid"), ended
    mine = [e for e in events(receiver) if e["payload"]["call_control_id"] == call]
    pressed = [e["payload"]["digit"] for e in mine if e["event_type"] == "call.dtmf.received"]
    assert pressed[:3] == ["1", "2", "#"], pressed
    kinds = [e["event_type"] for e in mine]
    assert kinds.index("call.gather.ended") > kinds.index("call.dtmf.received"), kinds


def test_gather_hears_in_band_tones_and_a_pause_after_them_ends_it(bond, receiver):
    caller, media, client, call, bond_port = rtp_caller_answered(bond, receiver)
    client.calls.actions.gather(call, maximum_digits=4, inter_digit_timeout_millis=1000)
    send_paced(media, bond_port, dtmf_pcmu("47"))
    ended = wait_event(receiver, "call.gather.ended", call_control_id=call)
    assert (ended["digits"], ended["status"]) == ("47", "valid"), ended
    client.calls.actions.hangup(call)
    caller.wait()


def test_a_gather_times_out_is_stopped_and_ends_with_the_call(bond, receiver):
    trunk_connection(bond, receiver)
    caller, media = rtp_caller(bond, bye_timeout_ms=60000)
    client = sdk(bond)
    call = incoming_answered(bond, receiver, client)

    client.calls.actions.gather(call, initial_timeout_millis=400)
    ended = wait_event(receiver, "call.gather.ended", call_control_id=call)
    assert (ended["digits"], ended["status"]) == ("", "timeout"), ended

    client.calls.actions.gather(call)
    client.calls.actions.stop_gather(call)
    stopped = [e["payload"] for e in events(receiver) if e["event_type"] == "call.gather.ended"]
    deadline = time.time() + 5
    while len(stopped) < 2 and time.time() < deadline:
        time.sleep(0.05)
        stopped = [e["payload"] for e in events(receiver) if e["event_type"] == "call.gather.ended"]
    assert [s["status"] for s in stopped] == ["timeout", "cancelled"], stopped

    client.calls.actions.gather(call)
    client.calls.actions.hangup(call)
    wait_event(receiver, "call.hangup", call_control_id=call)
    mine = [e for e in events(receiver) if e["payload"]["call_control_id"] == call]
    last_two = [(e["event_type"], e["payload"].get("status")) for e in mine][-2:]
    assert last_two == [("call.gather.ended", "call_hangup"), ("call.hangup", None)], last_two
    caller.wait()


def test_a_spoken_prompt_is_cut_short_by_a_digit_and_the_digits_gathered(bond, receiver, tmp_path):
    trunk_connection(bond, receiver)
    client = sdk(bond)
    with baresip_calling(bond, tmp_path) as (ctrl_port, dump):
        call = incoming_answered(bond, receiver, client)
        prompt = "Please enter your four digit account number, followed by the pound key. " * 3
        result = client.calls.actions.gather_using_speak(
            call, payload=prompt, voice="female", language="en-US", minimum_digits=2, maximum_digits=4,
            terminating_digit="#", timeout_millis=5000, maximum_tries=2)
        assert result.data.result == "ok"
        time.sleep(1.0)  # well inside the prompt, which lasts some 15 s
        assert baresip_ctrl(ctrl_port, "sndcode", "12#")
        ended = wait_event(receiver, "call.gather.ended", timeout=10.0, call_control_id=call)
        time.sleep(2.5)  # what baresip hears after the digits: the prompt must have stopped
    heard, rate, _, _ = mono_samples(glob.glob(os.path.join(dump, "*-dec.wav"))[0])
    assert (ended["digits"], ended["status"]) == ("12", "valid"), ended
    loudest = max(rms(heard[i:i + rate // 10]) for i in range(0, 2 * rate, rate // 10))
    assert loudest > 500, f"baresip never heard the prompt (loudest 100 ms: {loudest:.0f})"
    assert rms(heard[-3 * rate // 2:]) < 100, f"the prompt went on after the digits ({rms(heard[-3 * rate // 2:]):.0f})"
    kinds = [e["event_type"] for e in events(receiver) if e["payload"]["call_control_id"] == call]
    assert not any(k.startswith("call.speak") for k in kinds), f"a prompt sends no speak events: {kinds}"


def test_a_prompt_nobody_answers_is_tried_again_then_times_out(bond, receiver):
    trunk_connection(bond, receiver)
    caller, media = rtp_caller(bond, bye_timeout_ms=60000)
    client = sdk(bond)
    call = incoming_answered(bond, receiver, client)
    client.calls.actions.gather_using_speak(call, payload="Press one.", voice="female", language="en-US",
                                            timeout_millis=300, maximum_tries=2)
    ended = wait_event(receiver, "call.gather.ended", call_control_id=call)
    assert (ended["digits"], ended["status"]) == ("", "timeout"), ended
    client.calls.actions.hangup(call)
    caller.wait()


def test_a_speech_gather_ends_with_what_the_caller_said(bond, receiver, tmp_path):
    caller, media, client, call, bond_port = rtp_caller_answered(bond, receiver)
    said = espeak("I would like to pay my bill.", str(tmp_path)) + silence(1.5)
    samples = struct.unpack(f"<{len(said) // 2}h", said)
    # Bond's own field: the gather listens for speech as well as digits.
    client.calls.actions.gather(call, extra_body={"bond_input": "dtmf speech", "bond_speech_language": "en"})
    send_paced(media, bond_port, rtp_packets(list(samples)))
    ended = wait_event(receiver, "call.gather.ended", timeout=30.0, call_control_id=call)
    assert (ended["digits"], ended["status"]) == ("", "valid"), ended
    heard = ended["bond_speech"]["transcript"].lower()
    assert "pay" in heard and "bill" in heard, ended["bond_speech"]
    kinds = [e["event_type"] for e in events(receiver) if e["payload"]["call_control_id"] == call]
    assert "call.transcription" not in kinds, "a speech gather sends no transcription events"
    client.calls.actions.hangup(call)
    caller.wait()


def test_a_speech_gather_that_replaces_another_still_hears_the_caller(bond, receiver, tmp_path):
    caller, media, client, call, bond_port = rtp_caller_answered(bond, receiver)
    said = espeak("I would like to pay my bill.", str(tmp_path)) + silence(1.5)
    samples = struct.unpack(f"<{len(said) // 2}h", said)
    listening = {"bond_input": "dtmf speech", "bond_speech_language": "en"}
    client.calls.actions.gather(call, extra_body=listening)
    client.calls.actions.gather(call, extra_body=listening)
    first = wait_event(receiver, "call.gather.ended", call_control_id=call)
    assert first["status"] == "cancelled", first
    send_paced(media, bond_port, rtp_packets(list(samples)))
    ended = wait_event(receiver, "call.gather.ended", timeout=30.0, call_control_id=call, status="valid")
    assert "bill" in ended["bond_speech"]["transcript"].lower(), ended["bond_speech"]
    client.calls.actions.hangup(call)
    caller.wait()


def test_speaking_over_a_prompt_stops_it_and_the_words_end_the_gather(bond, receiver, tmp_path):
    caller, media, client, call, bond_port = rtp_caller_answered(bond, receiver)
    prompt = "Please tell me, in a few words, why you are calling today. " * 3
    client.calls.actions.gather_using_speak(call, payload=prompt, voice="female", language="en-US",
                                            extra_body={"bond_input": "dtmf speech"})
    # The caller waits 2 s before speaking: espeak-ng makes the prompt first, which on
    # a busy CI machine took over a second.
    said = silence(2.0) + espeak("I would like to pay my bill.", str(tmp_path)) + silence(3.0)
    samples = struct.unpack(f"<{len(said) // 2}h", said)
    heard = pcmu_samples(exchange_rtp(media, bond_port, rtp_packets(list(samples))))
    ended = wait_event(receiver, "call.gather.ended", timeout=30.0, call_control_id=call)
    assert (ended["digits"], ended["status"]) == ("", "valid"), ended
    assert "bill" in ended["bond_speech"]["transcript"].lower(), ended["bond_speech"]
    assert rms(heard[:16000]) > 500, f"the prompt played first ({rms(heard[:16000]):.0f})"
    assert rms(heard[-8000:]) < 100, f"the prompt stopped when the caller spoke ({rms(heard[-8000:]):.0f})"
    client.calls.actions.hangup(call)
    caller.wait()
