#!/usr/bin/env python3
"""Many voice agents at once: per-stage latency of their answers, and what they used.

Usage (scripts/test's interop venv has what it needs):
    BOND_BIN=target/release/bond target/interop-venv/bin/python scripts/voice-agent-load.py --calls 50 > load.md

Each call is a `loop:play` caller whose WAV (Flite's slt voice, not Bond's)
waits through the greeting, then says three things with 7 s of quiet after
each: the caller does not wait for the agent, so an agent that falls behind is
talked over, as it would be on a real line. `ai_assistant_start` runs on every
call against a stand-in OpenAI-compatible server (tests/interop/fake_openai.py,
written from OpenAI's published streaming API) that starts answering after
`--first-token-ms` and streams two words per chunk every 30 ms; whisper.cpp
(tiny.en) hears the callers (or, with `--recognizer deepgram`, a stand-in
Deepgram below, so that the machine does not transcribe) and espeak-ng speaks
the agents (or, with `--voice`, a stand-in ElevenLabs,
tests/interop/fake_elevenlabs.py, streaming its speech or sending it whole),
in one `bond serve` on this machine. Calls start `--stagger-ms` apart; each is
hung up 2 s after its caller finishes.

The report gives, over every answered turn, the percentiles of each stage of
`call.ai_assistant.turn`'s `latency_ms` (from the end of the caller's speech),
how many turns were answered and interrupted, Bond's CPU time and peak memory,
and what the speech path dropped. Nothing is asserted: this measures.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from websockets.sync.server import serve

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "interop"))
from conftest import Bond, Receiver, api  # noqa: E402
from fake_elevenlabs import FakeElevenLabs  # noqa: E402
from fake_openai import FakeChat  # noqa: E402

RATE = 8000
LINES = [
    "Hello, I would like to check on my order please.",
    "My order number is four five six seven.",
    "Great, thank you. That is all I needed.",
]
ANSWERS = [
    "Of course. What is your order number?",
    "Thank you. Your order left our warehouse yesterday and arrives tomorrow.",
    "You are welcome. Have a nice day.",
]
STAGES = ["transcript", "first_token", "first_audio", "playing"]


def flite(text, workdir):
    raw, out = os.path.join(workdir, "raw.wav"), os.path.join(workdir, "out.raw")
    subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", raw], check=True)
    trim = ["silence", "1", "0.02", "2%", "reverse", "silence", "1", "0.02", "2%", "reverse"]
    subprocess.run(["sox", raw, "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed", "-t", "raw", out, *trim], check=True)
    return open(out, "rb").read()


def write_caller(path, workdir):
    """4 s of quiet (the greeting), then each line and 7 s of quiet; returns the length (s)."""
    quiet = lambda s: b"\0\0" * int(RATE * s)  # noqa: E731
    parts = [quiet(4.0)]
    for line in LINES:
        parts += [flite(line, workdir), quiet(7.0)]
    data = b"".join(parts)
    subprocess.run(["sox", "-t", "raw", "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed", "-", path],
                   input=data, check=True)
    return len(data) / 2 / RATE


class FakeDeepgram:
    """Deepgram's live transcription as its documentation describes it
    (`/v1/listen`: binary audio in; `{"type": "Finalize"}` answered by a final
    `Results` saying `from_finalize`; `KeepAlive`; `CloseStream`), answering
    each Finalize after `delay` seconds. It does not listen: the n-th utterance
    on a connection (one per call) is taken to be the caller's n-th line."""

    def __init__(self, delay):
        self.delay = delay
        self.server = serve(self.handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/v1/listen"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, ws):
        said = 0
        for message in ws:
            if isinstance(message, bytes):
                continue
            kind = json.loads(message).get("type")
            if kind == "CloseStream":
                break
            if kind == "Finalize":
                time.sleep(self.delay)
                text = LINES[min(said, len(LINES) - 1)]
                said += 1
                ws.send(json.dumps({"type": "Results", "channel_index": [0, 1], "duration": 1.0, "start": 0.0,
                                    "is_final": True, "speech_final": True, "from_finalize": True,
                                    "channel": {"alternatives": [{"transcript": text, "confidence": 0.9,
                                                                  "words": []}]}}))

    def close(self):
        self.server.shutdown()


def answers(messages):
    turns = sum(m["role"] == "user" for m in messages)
    return ANSWERS[min(turns, len(ANSWERS)) - 1]


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * p // 100) - 1)]


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def metric(bond, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{bond.port}/metrics", timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--first-token-ms", type=int, default=300)
    parser.add_argument("--stagger-ms", type=int, default=200)
    parser.add_argument("--early-transcripts", choices=["on", "off"], default="on",
                        help="assistant.early_transcripts (on: Bond's default)")
    parser.add_argument("--early-look-ms", type=int, default=240,
                        help="assistant.early_look_ms (240: Bond's default)")
    parser.add_argument("--not-heard", choices=["on", "off"], default="on",
                        help="the not-heard line for a turn no recognizer transcribed (off: bond_not_heard_phrase \"\")")
    parser.add_argument("--early-answers", choices=["on", "off"], default="off",
                        help="assistant.early_answers (off: Bond's default)")
    parser.add_argument("--voice", choices=["espeak", "elevenlabs", "elevenlabs-whole"], default="espeak",
                        help="espeak-ng (embedded), or a stand-in ElevenLabs streaming its speech "
                             "(tests/interop/fake_elevenlabs.py), or sending it whole once synthesized")
    parser.add_argument("--voice-first-ms", type=int, default=150,
                        help="the stand-in ElevenLabs: its speech starts after this long")
    parser.add_argument("--voice-speed", type=float, default=2.0,
                        help="the stand-in ElevenLabs: it synthesizes this many times faster than speech plays")
    parser.add_argument("--recognizer", choices=["whisper", "deepgram"], default="whisper",
                        help="the embedded whisper.cpp, or a stand-in Deepgram on this machine that answers "
                             "each utterance with the line said after --recognizer-ms (the machine does not transcribe)")
    parser.add_argument("--recognizer-ms", type=int, default=200)
    parser.add_argument("--events", help="also write every webhook received, one JSON object a line, to this file")
    args = parser.parse_args()
    model = FakeChat(answers, first_token_delay=args.first_token_ms / 1000, chunk_delay=0.03)
    voice = None
    if args.voice != "espeak":
        voice = FakeElevenLabs(speed=args.voice_speed, first_ms=args.voice_first_ms,
                               whole=args.voice == "elevenlabs-whole")
    deepgram = FakeDeepgram(args.recognizer_ms / 1000) if args.recognizer == "deepgram" else None
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as data_dir, tempfile.TemporaryDirectory() as workdir:
        length = write_caller(os.path.join(data_dir, "caller.wav"), workdir)
        flag = lambda on: "true" if on == "on" else "false"  # noqa: E731
        bond = Bond(data_dir, {"BOND_ASSISTANT_LLM_BASE_URL": model.base_url,
                               "BOND_ASSISTANT_EARLY_TRANSCRIPTS": flag(args.early_transcripts),
                               "BOND_ASSISTANT_EARLY_LOOK_MS": str(args.early_look_ms),
                               "BOND_ASSISTANT_EARLY_ANSWERS": flag(args.early_answers),
                               **({"BOND_ELEVENLABS_API_KEY": "el-load", "BOND_ELEVENLABS_URL": voice.base_url}
                                  if voice else {}),
                               **({"BOND_DEEPGRAM_API_KEY": "dg-load", "BOND_DEEPGRAM_URL": deepgram.url}
                                  if deepgram else {})})
        bond.start()
        try:
            conn = api(bond, "POST", "/call_control_applications",
                       {"application_name": "agents", "webhook_event_url": receiver.url})["data"]["id"]
            cpu_before, started = cpu_seconds(bond.proc.pid), time.time()
            calls, starts = [], []
            for i in range(args.calls):
                call = api(bond, "POST", "/calls", {"connection_id": conn, "to": "loop:play?file=caller.wav",
                                                    "from": "+13125550100"})["data"]["call_control_id"]
                start = {"assistant": {"id": f"assistant-{i}"}, "greeting": "Hello, how can I help?"}
                if args.not_heard == "off":
                    start["bond_not_heard_phrase"] = ""
                api(bond, "POST", f"/calls/{call}/actions/ai_assistant_start", start)
                calls.append(call)
                starts.append(time.time())
                time.sleep(args.stagger_ms / 1000)
            # Each call is hung up 2 s after its own caller's WAV ends (its last
            # line was followed by 7 s of quiet), not when the first call's does:
            # a call started later still has its last turn to finish.
            for call, call_started in zip(calls, starts):
                time.sleep(max(0.0, call_started + length + 2 - time.time()))
                api(bond, "POST", f"/calls/{call}/actions/hangup", {})
            wall = time.time() - started
            cpu = cpu_seconds(bond.proc.pid) - cpu_before
            rss = peak_rss_mib(bond.proc.pid)
            dropped = {name: metric(bond, name) for name in
                       ("bond_speech_utterances_dropped_total", "bond_assistant_inputs_dropped_total",
                        "bond_speech_early_transcripts_used_total", "bond_assistant_early_answers_total")}
            deadline = time.time() + 30
            while time.time() < deadline and sum(
                    json.loads(b)["data"]["event_type"] == "call.conversation.ended" for _, b in receiver.received) < len(calls):
                time.sleep(0.2)
            bond.stop()
        finally:
            bond.kill()
            model.close()
            if voice:
                voice.close()
            if deepgram:
                deepgram.close()
    report(args, receiver, calls, wall, cpu, rss, dropped, len(model.requests))


def voice_named(args):
    if args.voice == "espeak":
        return "espeak-ng"
    how = "whole once synthesized" if args.voice == "elevenlabs-whole" else "streamed"
    return (f"stand-in ElevenLabs ({how}: speech starts {args.voice_first_ms} ms after the request, "
            f"synthesized at {args.voice_speed:g}x the speed it plays)")


def report(args, receiver, calls, wall, cpu, rss, dropped, model_requests):
    events = [json.loads(b)["data"] for _, b in receiver.received]
    if args.events:
        with open(args.events, "w") as out:
            out.writelines(json.dumps(e) + "\n" for e in events)
    turns = [e["payload"] for e in events if e["event_type"] == "call.ai_assistant.turn"]
    answers_ = [t for t in turns if t["role"] == "assistant" and t["latency_ms"]["first_token"] is not None]
    callers = [t for t in turns if t["role"] == "user"]
    refused = sum(e["event_type"] == "call.transcription.failed" for e in events)
    ended = [e["payload"] for e in events if e["event_type"] == "call.conversation.ended"]
    cores = os.cpu_count()
    names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
    model_name = re.sub(r"\s+", " ", names[0]) if names else "unknown CPU"
    print(f"# Voice agents under load: {args.calls} calls\n")
    print(f"{model_name}, {cores} cores; `bond serve` {os.environ.get('BOND_BIN', 'target/debug/bond')}; "
          f"stand-in model: first token after {args.first_token_ms} ms, 2 words per 30 ms; calls {args.stagger_ms} ms apart; "
          f"early transcripts {args.early_transcripts} ({args.early_look_ms} ms into a pause), early answers {args.early_answers}, not-heard line {args.not_heard}; "
          f"voice {voice_named(args)}; recognizer "
          f"{'a stand-in Deepgram answering after %d ms' % args.recognizer_ms if args.recognizer == 'deepgram' else 'whisper.cpp'}.\n")
    not_heard = sum(t["role"] == "assistant" and t["latency_ms"]["first_token"] is None and t["said"].startswith("Sorry")
                    for t in turns)
    print(f"- caller turns ended: {len(callers)} of the {3 * len(calls)} lines said; answered: {len(answers_)}; "
          f"not-heard lines: {not_heard}; "
          f"interrupted answers: {sum(t['interrupted'] for t in turns if t['role'] == 'assistant')}; "
          f"calls whose recognizer refused an utterance (busy): {refused}")
    print(f"- end-of-turn reasons: " + ", ".join(
        f"{r} {sum(t['end_of_turn']['reason'] == r for t in callers)}"
        for r in sorted({t['end_of_turn']['reason'] for t in callers})))
    print(f"- Bond CPU: {cpu:.1f} s over {wall:.0f} s ({100 * cpu / wall / cores:.0f} % of {cores} cores); peak RSS {rss:.0f} MiB")
    print(f"- counters: {', '.join(f'{k} {v:.0f}' for k, v in dropped.items())}")
    early = [t["early_answers"] for t in (e["bond_turns"] for e in ended)]
    print(f"- conversations ended: {len(ended)} of {len(calls)}; early answers used "
          f"{sum(e['used'] for e in early)}, dropped {sum(e['dropped'] for e in early)}; "
          f"model requests {model_requests}\n")
    print("| stage, from the end of the caller's speech | p50 | p95 | p99 | max |")
    print("|---|---|---|---|---|")
    for stage in STAGES:
        values = [t["latency_ms"][stage] for t in answers_ if t["latency_ms"][stage] is not None]
        cells = [percentile(values, p) for p in (50, 95, 99)] + [max(values) if values else None]
        print(f"| {stage} | " + " | ".join("-" if v is None else f"{v} ms" for v in cells) + " |")
    usage = [e["bond_usage"] for e in ended]
    if usage:
        print(f"\nPer call, mean: {sum(u['stt_audio_seconds'] for u in usage) / len(usage):.1f} s of audio to "
              f"speech-to-text, {sum(u['llm_prompt_tokens'] for u in usage) / len(usage):.0f} prompt and "
              f"{sum(u['llm_completion_tokens'] for u in usage) / len(usage):.0f} completion tokens, "
              f"{sum(u['tts_characters'] for u in usage) / len(usage):.0f} characters spoken.")


if __name__ == "__main__":
    main()
