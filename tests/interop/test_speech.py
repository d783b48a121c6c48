"""Live translation end to end with the embedded engines and no network: a
`loop:play` customer speaks English (espeak-ng), Bond transcribes it (whisper.cpp,
tiny.en), translates it (Apertium) and speaks the Spanish (espeak-ng) into the
bridged agent's call, while a supervisor follows both texts over Server-Sent Events,
and in headless Chromium on the `/supervisor` page. A Spanish-speaking customer is
heard by the multilingual model (Whisper base) and translated into English: a
synthesized voice, and a real person's (the prompts Allison recorded for the
telephone exchange Asterisk, as Debian ships them).
"""

import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.request
import wave

import pytest

from conftest import API_KEY, api, rms, wav_at
from test_sip_trunk import events, wait_event

RATE = 8000
SENTENCES = ["Hello, thank you for calling.", "I would like to pay my bill."]
SPANISH = ["Hola, gracias por llamar.", "Quiero pagar mi factura."]
# "Sus contraseñas han sido cambiadas.", "Ha sido expulsado por el sistema de esta conferencia."
ALLISON_ES = "/usr/share/asterisk/sounds/es_MX_f_Allison"
RECORDED_SPANISH = [os.path.join(ALLISON_ES, f"{name}.wav") for name in ("vm-passchanged", "conf-kicked")]


def espeak(text, workdir, voice="en-us"):
    """`text` spoken by espeak-ng (or, with the voice `recorded`, the recording at
    the path `text`), as 8 kHz 16-bit samples (bytes)."""
    raw = os.path.join(workdir, "raw.wav")
    out = os.path.join(workdir, "out.wav")
    if voice == "recorded":
        raw = text
    else:
        subprocess.run(["espeak-ng", "-v", voice, "-w", raw, text], check=True)
    subprocess.run(["sox", raw, "-r", str(RATE), "-c", "1", "-b", "16", out], check=True)
    with wave.open(out) as w:
        return w.readframes(w.getnframes())


def silence(seconds):
    return b"\0\0" * int(RATE * seconds)


def write_customer(path, workdir, sentences=SENTENCES, voice="en-us"):
    """1 s quiet, the first sentence, 1.5 s quiet, the second, 6 s quiet; returns when the speech ends (s)."""
    first, second = (espeak(s, workdir, voice) for s in sentences)
    parts = [silence(1.0), first, silence(1.5), second]
    speech_end = sum(len(p) for p in parts) / 2 / RATE
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(parts + [silence(6.0)]))
    return speech_end


def follow(bond, call, out, stop):
    """Collect the call's `translation` Server-Sent Events into `out` until `stop` is set."""
    translation_events(f"{bond.base_url}/calls/{call}/translations/stream", out, stop)


def translation_events(url, out, stop, opened=None):
    """Collect the `translation` Server-Sent Events at `url` into `out`, one per
    sentence, until `stop` is set; `opened` is set once the stream is open."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        if opened:
            opened.set()
        event = None
        for raw in r:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: ") and event == "translation":
                out.append(json.loads(line[len("data: "):]))
            if stop.is_set() or len(out) >= len(SENTENCES):
                return


def speech_share(samples, start, end):
    """Share of 20 ms frames between `start` and `end` (s) louder than -40 dBFS."""
    frames = [samples[i : i + 160] for i in range(int(start * RATE), int(end * RATE), 160)]
    loud = [f for f in frames if f and rms(f) > 327]
    return len(loud) / max(len(frames), 1)


def translated_call(bond, receiver, spoken="en", into="es", recorded=False):
    """A recorded `loop:silence` agent bridged to a customer speaking `spoken` (English or
    Spanish; with `recorded`, a real person's Spanish), translated into `into` with
    voice; returns (customer, agent, when it started, when the speech ends)."""
    conn = api(bond, "POST", "/call_control_applications", {"application_name": "speech", "webhook_event_url": receiver.url})["data"]["id"]
    if recorded:
        sentences, voice = RECORDED_SPANISH, "recorded"
    else:
        sentences, voice = (SENTENCES, "en-us") if spoken == "en" else (SPANISH, "es")
    with tempfile.TemporaryDirectory() as workdir:
        speech_end = write_customer(os.path.join(bond.data_dir, "customer.wav"), workdir, sentences, voice)
    agent = api(bond, "POST", "/calls", {"connection_id": conn, "to": "loop:silence", "from": "+13125550100"})["data"]["call_control_id"]
    api(bond, "POST", f"/calls/{agent}/actions/record_start", {"channels": "single", "format": "wav"})
    customer = api(bond, "POST", "/calls", {"connection_id": conn, "to": "loop:play?file=customer.wav", "from": "+13125550101"})["data"]["call_control_id"]
    started = time.time()
    api(bond, "POST", f"/calls/{customer}/actions/bridge", {"call_control_id_to_bridge_with": agent})
    api(bond, "POST", f"/calls/{customer}/actions/translation_start", {"translate_from": spoken, "translate_to": into, "voice_to_voice": True})
    api(bond, "POST", f"/calls/{customer}/actions/transcription_start", {"transcription_engine": "B", "language": spoken})
    return customer, agent, started, speech_end


def translations(receiver, count, timeout=40):
    """The `call.translation` payloads, waiting up to `timeout` s for `count` of them."""
    deadline = time.time() + timeout
    while True:
        done = [e["payload"] for e in events(receiver) if e["event_type"] == "call.translation"]
        if len(done) >= count or time.time() > deadline:
            return done
        time.sleep(0.1)


def test_english_speech_is_transcribed_translated_and_spoken_in_spanish_to_the_agent(bond, receiver):
    customer, agent, started, speech_end = translated_call(bond, receiver)
    streamed, stop = [], threading.Event()
    supervisor = threading.Thread(target=follow, args=(bond, customer, streamed, stop), daemon=True)
    supervisor.start()
    done = translations(receiver, len(SENTENCES))
    last_at = time.time() - started  # the second translation arrived (to 0.1 s)
    assert len(done) == len(SENTENCES), f"got {[e['event_type'] for e in events(receiver)]}"
    originals = [t["translation_data"]["original"].lower() for t in done]
    spanish = [t["translation_data"]["translation"].lower() for t in done]
    assert "thank you for calling" in originals[0], originals
    assert "pay my bill" in originals[1], originals
    assert "gracias" in spanish[0] and "factura" in spanish[1], spanish
    for t in done:
        latency = t["translation_data"]["latency_ms"]
        print(f"speech end -> translation: {latency['total']} ms ({latency})")
        assert latency["total"] >= latency["endpointing"] + latency["recognizer"] + latency["translation"]
    transcripts = [e["payload"]["transcription_data"] for e in events(receiver) if e["event_type"] == "call.transcription"]
    assert [t["transcript"].lower() for t in transcripts] == originals
    assert all(t["transcription_track"] == "inbound" and t["is_final"] and 0 < t["confidence"] <= 1 for t in transcripts)

    # Each translation is spoken into the agent's call; the event says how long that took.
    deadline = time.time() + 10
    while True:
        spoken = [e["payload"]["translation_data"] for e in events(receiver) if e["event_type"] == "call.translation.spoken"]
        if len(spoken) == len(SENTENCES) or time.time() > deadline:
            break
        time.sleep(0.1)
    assert [s["translation"].lower() for s in spoken] == spanish
    for s, t in zip(spoken, done):
        latency = s["latency_ms"]
        print(f"speech end -> translation playing: {latency['total']} ms ({latency}, {s['duration_ms']} ms long)")
        assert latency["total"] >= t["translation_data"]["latency_ms"]["total"] + latency["tts"]
        assert s["language"] == "es" and s["duration_ms"] > 500

    supervisor.join(timeout=10)
    stop.set()
    assert [s["original"].lower() for s in streamed] == originals, streamed
    assert [s["translation"].lower() for s in streamed] == spanish

    # The agent hears the second sentence's Spanish once it is translated, after the English
    # ended: let it play, then read the recording (it began as the customer was dialed).
    window = (max(speech_end + 0.3, last_at), last_at + 3.0)
    time.sleep(max(0.0, started + window[1] + 0.5 - time.time()))
    api(bond, "POST", f"/calls/{agent}/actions/record_stop", {})
    saved = wait_event(receiver, "call.recording.saved", call_control_id=agent)
    channels, rate, samples = wav_at(saved["recording_urls"]["wav"])
    assert (channels, rate) == (1, RATE)
    assert speech_share(samples, 0.0, 0.8) < 0.1, "quiet before the customer speaks"
    heard = speech_share(samples, *window)
    assert heard > 0.3, f"after the English ended, the agent hears the Spanish {window}: {heard:.2f} of frames"
    api(bond, "POST", f"/calls/{customer}/actions/hangup", {})


def heard_in_spanish(bond, receiver, recorded=False):
    """A Spanish-speaking customer translated into English, as `translated_call` makes
    it, hung up once both sentences are translated: what was heard, and its English
    (lower case), one each per sentence."""
    customer, _, _, _ = translated_call(bond, receiver, spoken="es", into="en", recorded=recorded)
    said = RECORDED_SPANISH if recorded else SPANISH
    done = translations(receiver, len(said))
    api(bond, "POST", f"/calls/{customer}/actions/hangup", {})
    failed = [e["payload"] for e in events(receiver) if e["event_type"].endswith(".failed")]
    assert len(done) == len(said), f"got {[e['event_type'] for e in events(receiver)]}, failures {failed}"
    originals = [t["translation_data"]["original"].lower() for t in done]
    english = [t["translation_data"]["translation"].lower() for t in done]
    print(f"heard {originals}, translated {english}")
    for t in done:
        print(f"speech end -> translation: {t['translation_data']['latency_ms']}")
    return originals, english


def test_spanish_speech_is_heard_by_the_multilingual_model_and_translated_into_english(bond, receiver):
    originals, english = heard_in_spanish(bond, receiver)
    assert "gracias" in originals[0] and "factura" in originals[1], originals
    assert "thank" in english[0] and "bill" in english[1], english


@pytest.mark.skipif(not os.path.isdir(ALLISON_ES), reason="asterisk-core-sounds-es-wav is installed by scripts/test")
def test_a_real_persons_spanish_is_heard_by_the_multilingual_model_and_translated_into_english(bond, receiver):
    originals, english = heard_in_spanish(bond, receiver, recorded=True)
    assert "contraseñas" in originals[0] and "expulsado" in originals[1], originals
    assert "passwords" in english[0] and "expelled" in english[1], english


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is installed by scripts/test")
def test_the_supervisor_page_shows_what_was_said_before_it_opened_and_what_comes_live(bond, receiver):
    from playwright.sync_api import sync_playwright

    customer, _, _, _ = translated_call(bond, receiver)
    first = translations(receiver, 1)
    assert first, "the first sentence is translated before the page opens"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 600})
            page.goto(f"http://127.0.0.1:{bond.port}/supervisor")
            # An API key is refused, and so is a token Bond did not sign; a supervisor token signs in.
            page.fill("#key", API_KEY)
            page.click("#login button[type=submit]")
            page.wait_for_selector("#error:has-text('supervisor token')")
            page.fill("#key", "bat_bm90LWEtdG9rZW4.c2lnbmF0dXJl")
            page.click("#login button[type=submit]")
            page.wait_for_selector("#error:has-text('agent token')")
            token = api(bond, "POST", "/supervisor_tokens", {"name": "sam"})["data"]["token"]
            page.fill("#key", token)
            page.click("#login button[type=submit]")
            page.wait_for_selector("#status:has-text('watching')")
            rows = f"section[data-call='{customer}'] tr.segment"
            page.wait_for_function(f"document.querySelectorAll(\"{rows}\").length >= {len(SENTENCES)}", timeout=40000)
            cells = page.eval_on_selector_all(rows, "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))")
            folder = os.environ.get("SUPERVISOR_SCREENSHOTS")
            if folder:
                page.screenshot(path=os.path.join(folder, "supervisor.png"))
        finally:
            browser.close()
    done = translations(receiver, len(SENTENCES))
    expected = [[f"en{t['translation_data']['original']}", f"es{t['translation_data']['translation']}"] for t in done]
    assert cells == expected, cells
