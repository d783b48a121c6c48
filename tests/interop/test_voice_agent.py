"""A voice agent (`ai_assistant_start`, driven by the official Telnyx Python
SDK) on a SIP call from sipp, against a stand-in OpenAI-compatible model
server written from OpenAI's published streaming API (fake_openai.py), with the
embedded speech engines (whisper.cpp hears the caller, espeak-ng speaks the
agent).

The caller is scripted: the test speaks into Bond's RTP port (Flite's voice,
not Bond's), on a 20 ms clock, and listens to what Bond plays back, so each
line waits for the agent (its greeting, its answer) the way a person would.
It holds a three-turn conversation: a request, an order number read slowly
with pauses (one turn), and, while the agent reads a long answer, a cough and a
"yeah" (neither interrupts) and then a real interruption (the agent stops; only
what the caller heard goes into the history the model sees next).
"""

import json
import math
import os
import re
import struct
import subprocess
import threading
import time

import pytest
from telnyx import Telnyx

from conftest import API_KEY, bond_with, rms
from fake_elevenlabs import FakeElevenLabs
from fake_openai import FakeChat, Failure, ToolCall
from test_sip_trunk import events, pcmu_samples, rtp_caller, rtp_packets, trunk_connection, wait_event

RATE = 8000
FRAME = 160
GREETING = "Hello, this is Bond's shop. How can I help?"
ANSWER_1 = "Sure. What is your order number?"
# The recognizer writes a number read slowly as digits, words or both ("555. 1, 2, 3, four five").
DIGIT_WORDS = {w: str(d) for d, w in enumerate("zero one two three four five six seven eight nine".split())}
DIGIT_WORDS["oh"] = "0"
ANSWER_2 = ("Thank you. I found your order. It left our warehouse in Rotterdam yesterday evening, "
            "and it should arrive within two working days. You will get a text message with a "
            "tracking link as soon as the courier picks it up. If nobody is at home, the courier "
            "leaves a card and tries again the next day. Is there anything else I can help you with?")
ANSWER_3 = "Of course. What is the new address?"


def flite(text, workdir):
    """`text` in Flite's slt voice, 8 kHz, silence trimmed off both ends: a list of samples."""
    raw, out = os.path.join(workdir, "raw.wav"), os.path.join(workdir, "out.raw")
    subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", raw], check=True)
    trim = ["silence", "1", "0.02", "2%", "reverse", "silence", "1", "0.02", "2%", "reverse"]
    subprocess.run(["sox", raw, "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed", "-t", "raw", out, *trim], check=True)
    data = open(out, "rb").read()
    return list(struct.unpack(f"<{len(data) // 2}h", data))


def cough():
    """A 250 ms burst of shaped noise, as a cough sounds on a phone line."""
    n = RATE // 4
    seed, out = 12345, []
    for i in range(n):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        envelope = math.sin(math.pi * i / n) ** 0.5
        out.append(int(((seed >> 8) % 20000 - 10000) * envelope))
    return out


class Caller:
    """Speaks into Bond's RTP port on a 20 ms clock and keeps what Bond plays
    back, 20 ms at a time, with the time it arrived."""

    LOUD = 300  # rms of a frame of the agent speaking (espeak-ng is far above it)

    def __init__(self, sock, bond_port):
        self.sock, self.port = sock, bond_port
        self.sock.settimeout(0.002)
        self.start = time.time()
        self.sent = 0
        self.heard = []  # (time, rms)
        self.frames = []  # (time, samples) of every frame heard
        self.spoke = []  # (start, end) of each line the caller said

    def now(self):
        return time.time() - self.start

    def tick(self, samples):
        self.send(samples)
        end = self.start + 0.02 * self.sent
        while time.time() < end:
            self.listen()

    def send(self, samples):
        """The next 20 ms frame, to Bond."""
        packet = rtp_packets(samples, seq=1 + self.sent, ts=self.sent * FRAME)[0]
        self.sock.sendto(packet, ("127.0.0.1", self.port))
        self.sent += 1

    def listen(self):
        """Keep a packet from Bond, if one comes within 2 ms."""
        try:
            data, _ = self.sock.recvfrom(2048)
            if len(data) > 12 and data[1] & 0x7F == 0:
                samples = pcmu_samples([data])
                self.heard.append((self.now(), rms(samples)))
                self.frames.append((self.now(), samples))
        except (TimeoutError, BlockingIOError):
            pass

    def say(self, samples):
        begin = self.now()
        for i in range(0, len(samples) - FRAME + 1, FRAME):
            self.tick(samples[i:i + FRAME])
        self.spoke.append((begin, self.now()))

    def quiet(self, seconds):
        for _ in range(int(seconds / 0.02)):
            self.tick([0] * FRAME)

    def agent_loud(self, start, end):
        frames = [r for t, r in self.heard if start <= t < end]
        return sum(r > self.LOUD for r in frames) / max(1, len(frames))

    def samples_heard(self, start, end):
        """What came from Bond between `start` and `end`, as one run of samples."""
        return [x for t, frame in self.frames if start <= t < end for x in frame]

    def agent_loud_seconds(self, start, end):
        return 0.02 * sum(r > self.LOUD for t, r in self.heard if start <= t < end)

    def wait(self, done, timeout):
        deadline = self.now() + timeout
        while not done():
            assert self.now() < deadline, "the agent did not do what the caller waited for"
            self.tick([0] * FRAME)

    def agent_spoke_and_stopped(self, since, quiet=1.0):
        """Waiting for: the agent spoke after `since`, then was quiet for `quiet` s."""
        def done():
            loud = [t for t, r in self.heard if t >= since and r > self.LOUD]
            return bool(loud) and self.now() - loud[-1] >= quiet
        return done

    def agent_speaking_for(self, since, seconds):
        """Waiting for: the agent has been speaking `seconds` s (in one stretch, gaps under 0.6 s) after `since`."""
        def done():
            loud = [t for t, r in self.heard if t >= since and r > self.LOUD]
            if not loud:
                return False
            first = loud[-1]
            for earlier, later in zip(reversed(loud[:-1]), reversed(loud)):
                if later - earlier > 0.6:
                    break
                first = earlier
            return loud[-1] - first >= seconds and self.now() - loud[-1] < 0.1
        return done


def shop(messages):
    """The scripted model: which answer depends on how many turns the caller has had."""
    turns = sum(m["role"] == "user" for m in messages)
    return [ANSWER_1, ANSWER_2, ANSWER_3][min(turns, 3) - 1]


def answered_caller(bond, receiver, trunk=None):
    """A sipp caller whose media is the test's socket, answered: (sipp, socket, SDK, call, Bond's RTP port);
    `trunk` is where the connection sends calls out."""
    trunk_connection(bond, receiver, **({"trunk": trunk} if trunk else {}))
    caller, media = rtp_caller(bond, bye_timeout_ms=180000)
    client = Telnyx(api_key=API_KEY, base_url=bond.base_url, max_retries=0)
    call = wait_event(receiver, "call.initiated")["call_control_id"]
    client.calls.actions.answer(call)
    return caller, media, client, call, int(caller.logged(r"BOND_RTP (\d+)").group(1))


# A cloud recognizer configured where nobody answers.
UNREACHABLE_DEEPGRAM = {"BOND_DEEPGRAM_API_KEY": "dg-test", "BOND_DEEPGRAM_URL": "ws://127.0.0.1:9/v1/listen"}


def agent_answers(bond, receiver, assistant_id, line, workdir):
    """An agent on a caller who says `line` and waits until the agent has answered and gone
    quiet: (sipp, caller, SDK, call, when the line ended)."""
    caller_sipp, media, client, call, port = answered_caller(bond, receiver)
    caller = Caller(media, port)
    client.calls.actions.start_ai_assistant(call, assistant={"id": assistant_id})
    caller.quiet(0.5)
    caller.say(flite(line, workdir))
    spoke = caller.now()
    caller.wait(caller.agent_spoke_and_stopped(spoke), timeout=20)
    return caller_sipp, caller, client, call, spoke


@pytest.fixture
def model():
    fake = FakeChat(shop)
    yield fake
    fake.close()


def turns(receiver, call, role):
    return [e["payload"] for e in events(receiver)
            if e["event_type"] == "call.ai_assistant.turn" and e["payload"]["call_control_id"] == call
            and e["payload"]["role"] == role]


def test_a_three_turn_conversation_with_a_slow_number_a_cough_a_backchannel_and_an_interruption(model, receiver, tmp_path):
    workdir = str(tmp_path)
    env = {
        "BOND_ASSISTANT_LLM_BASE_URL": model.base_url,
        "BOND_ASSISTANT_LLM_API_KEY": "sk-test",
        "BOND_ASSISTANT_PRICE_STT_PER_MINUTE": "0.006",
        "BOND_ASSISTANT_PRICE_LLM_PER_MILLION_PROMPT_TOKENS": "0.15",
        "BOND_ASSISTANT_PRICE_LLM_PER_MILLION_COMPLETION_TOKENS": "0.6",
        "BOND_ASSISTANT_PRICE_TTS_PER_MILLION_CHARACTERS": "15",
    }
    with bond_with(env) as bond:
        caller_sipp, media, client, call, port = answered_caller(bond, receiver)
        caller = Caller(media, port)
        client.calls.actions.start_ai_assistant(
            call,
            assistant={"id": "assistant-shop", "instructions": "You are the shop's phone agent."},
            greeting=GREETING,
            send_message_history_updates=True,
        )
        caller.wait(caller.agent_spoke_and_stopped(0.0), timeout=20)
        caller.say(flite("Hi, I would like to check on my order.", workdir))
        caller.wait(caller.agent_spoke_and_stopped(caller.now()), timeout=20)
        # The number, read slowly: pauses of 1.1 s, longer than the 600 ms that ends an utterance.
        for i, part in enumerate(["My order number is five five five,", "one two three,", "four five six seven."]):
            if i:
                caller.quiet(1.1)
            caller.say(flite(part, workdir))
        number_said = caller.now()
        # The long answer: a cough, then "yeah", each once the agent has been talking a while.
        caller.wait(caller.agent_speaking_for(number_said, 1.5), timeout=20)
        cough_at = caller.now()
        caller.say(cough())
        caller.wait(caller.agent_speaking_for(cough_at + 0.4, 1.0), timeout=10)
        yeah_at = caller.now()
        caller.say(flite("yeah", workdir))
        caller.wait(caller.agent_speaking_for(yeah_at + 0.4, 1.0), timeout=10)
        interrupted_at = caller.now()
        caller.say(flite("Wait, stop. Can I change the delivery address?", workdir))
        interruption_end = caller.now()
        caller.wait(caller.agent_spoke_and_stopped(interruption_end), timeout=20)
        client.calls.actions.hangup(call)
        ended = wait_event(receiver, "call.conversation.ended", timeout=10, call_control_id=call)
        caller_sipp.wait()

    # The model was asked three times: once per caller turn, never for the cough or the "yeah".
    asked = [r["messages"] for r in model.requests]
    assert len(asked) == 3, [m[-1] for m in asked]
    assert model.requests[0]["auth"] == "Bearer sk-test" and model.requests[0]["stream"] is True
    assert asked[0][0] == {"role": "system", "content": "You are the shop's phone agent."}
    assert asked[0][1] == {"role": "assistant", "content": GREETING}
    # The number is one turn, whatever digits or words the recognizer wrote.
    number = asked[1][-1]["content"].lower()
    assert sum(m["role"] == "user" for m in asked[1]) == 2, asked[1]
    digits = "".join(re.findall(r"\d", re.sub(r"[a-z]+", lambda w: DIGIT_WORDS.get(w.group(), " "), number)))
    assert "order" in number and digits.endswith("1234567"), number
    caller_turns = turns(receiver, call, "user")
    assert caller_turns[1]["end_of_turn"]["reason"] == "silence_after_number", caller_turns[1]
    # What the model saw of the interrupted answer is what the caller heard: a beginning of it.
    heard = asked[2][-2]
    assert heard["role"] == "assistant" and ANSWER_2.startswith(heard["content"]), heard
    assert 0 < len(heard["content"]) < len(ANSWER_2), heard
    assert "address" in asked[2][-1]["content"].lower(), asked[2][-1]
    assert sum(m["role"] == "user" for m in asked[2]) == 3, asked[2]

    # The agent went quiet while the caller cut in, and played on after the cough and the "yeah".
    assert caller.agent_loud(interrupted_at + 0.5, interruption_end) < 0.05
    for noise_at in (cough_at, yeah_at):
        assert caller.agent_loud(noise_at + 1.5, noise_at + 3.0) > 0.25, f"the agent played on after {noise_at:.1f} s"
    agent_turns = turns(receiver, call, "assistant")
    assert [t["interrupted"] for t in agent_turns] == [False, False, True, False], agent_turns
    assert agent_turns[2]["content"] == heard["content"] and agent_turns[2]["said"] == ANSWER_2
    for turn in agent_turns[1:]:
        latency = turn["latency_ms"]
        assert latency["first_token"] <= latency["first_audio"] <= latency["playing"], latency

    updates = [e for e in events(receiver) if e["event_type"] == "call.ai_gather.message_history_updated"]
    assert updates and updates[-1]["payload"]["message_history"][-1]["content"] == ANSWER_3
    assert ended["reason"] == "call_hangup" and ended["assistant_id"] == "assistant-shop"
    early = {"used": 0, "dropped": 0}  # early answers are off by default
    assert ended["bond_turns"] == {"caller": 3, "answered": 3, "interrupted": 1, "early_answers": early}, ended["bond_turns"]
    usage = ended["bond_usage"]
    assert usage["llm_prompt_tokens"] > 0 and usage["llm_completion_tokens"] > 0 and usage["tts_characters"] > 0
    assert usage["stt_audio_seconds"] > 5, usage
    assert ended["bond_latency_ms"]["first_audio"]["p50"] is not None
    cost = ended["bond_cost"]
    assert cost["currency"] == "USD" and cost["total"] == pytest.approx(cost["stt"] + cost["llm"] + cost["tts"], abs=1e-5)
    assert cost["tts"] == pytest.approx(usage["tts_characters"] * 15 / 1e6, abs=1e-5), (cost, usage)
    # The call's hang-up carries what its agent used, priced, as the conversation's end reported it.
    hangup = wait_event(receiver, "call.hangup", call_control_id=call)
    assert hangup["bond_assistant_usage"] == {"conversations": 1, "usage": usage, "cost": cost}, hangup


def test_failing_engines_fall_back_and_say_so_a_filler_covers_the_wait_and_stop_ends_it(receiver, tmp_path):
    primary = FakeChat(lambda _: Failure(503, "overloaded"))
    # Slow to start: the agent says its filler after 2.5 s of silence, before the answer
    # (3.8 s, under the 4 s first-token timeout, so a loaded machine that synthesizes
    # the filler late still plays it before the answer can start).
    fallback = FakeChat(lambda _: "The fallback model answers.", first_token_delay=3.8)
    env = {"BOND_ASSISTANT_LLM_BASE_URL": primary.base_url, "BOND_ASSISTANT_FALLBACK_BASE_URL": fallback.base_url,
           # A cloud recognizer and voice first, neither of them reachable: whisper and espeak-ng take over.
           **UNREACHABLE_DEEPGRAM, "BOND_ELEVENLABS_API_KEY": "el-test", "BOND_ELEVENLABS_URL": "http://127.0.0.1:9"}
    try:
        with bond_with(env) as bond:
            caller_sipp, caller, client, call, _ = agent_answers(
                bond, receiver, "assistant-fallback", "Hello, is anybody there?", str(tmp_path))
            failed = [e["payload"] for e in events(receiver) if e["event_type"] == "call.ai_assistant.failed"]
            by_stage = {f["stage"]: f for f in failed}
            assert sorted(by_stage) == ["llm", "stt", "tts"], failed
            assert all(f["fallback"] is True for f in failed), failed
            assert "overloaded" in by_stage["llm"]["error"], failed
            assert "deepgram" in by_stage["stt"]["error"].lower(), failed
            assert "elevenlabs" in by_stage["tts"]["error"].lower(), failed
            answer = turns(receiver, call, "assistant")[-1]
            assert answer["content"] == "The fallback model answers.", answer
            first_token = answer["latency_ms"]["first_token"] / 1000
            assert first_token > 3.8, answer["latency_ms"]
            speech_end = caller.spoke[-1][1]
            # The answer cannot be heard before its first token is in.
            filler = caller.agent_loud_seconds(speech_end + 0.8, speech_end + first_token)
            assert filler > 0.3, f"the filler: {filler:.2f} s of the agent's voice before the answer"
            client.calls.actions.stop_ai_assistant(call)
            ended = wait_event(receiver, "call.conversation.ended", call_control_id=call)
            assert ended["reason"] == "assistant_stopped", ended
            with pytest.raises(Exception) as again:
                client.calls.actions.stop_ai_assistant(call)
            assert "no assistant" in str(again.value).lower()
            client.calls.actions.hangup(call)
            caller_sipp.wait()
        assert len(primary.requests) == 1 and len(fallback.requests) == 1
    finally:
        primary.close()
        fallback.close()


def test_gather_using_ai_fills_its_schema_from_the_conversation_sends_partial_results_then_ends(receiver, tmp_path):
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "order_number": {"type": "string"}},
              "required": ["name", "order_number"]}

    def desk(messages):
        said = [m["content"] for m in messages if m["role"] == "user"]
        if len(said) < 2 and messages[-1]["role"] == "user":
            return ToolCall("gather_partial", {"name": "Jane"})  # saved, then the model goes on
        if len(said) < 2:
            return "Thank you. And your order number?"
        return ToolCall("gather_complete", {"name": "Jane", "order_number": "4567"}, text="Got it.")

    model = FakeChat(desk)
    # Answers asked ahead in the caller's pauses (off by default): the gather is the same.
    early = {"BOND_ASSISTANT_EARLY_ANSWERS": "true", "BOND_ASSISTANT_EARLY_LOOK_MS": "120"}
    try:
        with bond_with({"BOND_ASSISTANT_LLM_BASE_URL": model.base_url, **early}) as bond:
            caller_sipp, media, client, call, port = answered_caller(bond, receiver)
            caller = Caller(media, port)
            client.calls.actions.gather_using_ai(call, parameters=schema, greeting="Hello. What is your name?",
                                                 gather_ended_speech="Thank you, goodbye.", send_partial_results=True)
            caller.wait(caller.agent_spoke_and_stopped(0.0), timeout=20)
            caller.say(flite("My name is Jane.", str(tmp_path)))
            partial = wait_event(receiver, "call.ai_gather.partial_results", timeout=20, call_control_id=call)
            caller.wait(caller.agent_spoke_and_stopped(caller.now()), timeout=20)
            caller.say(flite("It is four five six seven.", str(tmp_path)))
            gathered = wait_event(receiver, "call.ai_gather.ended", timeout=20, call_control_id=call)
            ended = wait_event(receiver, "call.conversation.ended", timeout=20, call_control_id=call)
            client.calls.actions.hangup(call)
            caller_sipp.wait()
    finally:
        model.close()
    assert partial["partial_results"] == {"name": "Jane"}, partial
    assert [m["role"] for m in partial["message_history"]][-2:] == ["assistant", "user"], partial
    assert gathered["status"] == "valid" and gathered["result"] == {"name": "Jane", "order_number": "4567"}, gathered
    assert [m["role"] for m in gathered["message_history"]][:2] == ["system", "assistant"], gathered
    assert ended["reason"] == "gather_ended", ended
    # Three answers were asked for (the name, the model going on after its partial save, the
    # number); an answer asked ahead and used is one of them, one dropped is a request more.
    early = ended["bond_turns"]["early_answers"]
    assert len(model.requests) == 3 + early["dropped"], ([r["messages"][-1] for r in model.requests], early)
    # The model was offered the schema as a function, and told to call it; and,
    # for partial results, the same with nothing required.
    request = model.requests[-1]
    so_far = {k: v for k, v in schema.items() if k != "required"}
    assert request["tools"] == [
        {"type": "function", "function": {"name": "gather_complete",
                                          "description": "Save the information gathered from the caller.",
                                          "parameters": schema}},
        {"type": "function", "function": {"name": "gather_partial",
                                          "description": "Save what has been gathered from the caller so far.",
                                          "parameters": so_far}}]
    assert "gather_complete" in request["messages"][0]["content"]
    # The partial call and what Bond answered it stay in the history the model reads.
    saved = [m for m in request["messages"] if m["role"] == "tool"]
    assert [json.loads(m["content"]) for m in saved] == [{"saved": True}], request["messages"]
    last = turns(receiver, call, "assistant")[-1]
    assert last["said"] == "Got it. Thank you, goodbye.", last


def test_a_turn_no_recognizer_could_hear_gets_the_not_heard_line_not_silence(receiver, tmp_path):
    model = FakeChat(lambda _: "Fine.")
    # The only recognizer is a cloud one that cannot be reached (no whisper model on this Bond).
    env = {"BOND_ASSISTANT_LLM_BASE_URL": model.base_url, **UNREACHABLE_DEEPGRAM,
           "BOND_WHISPER_MODEL": str(tmp_path / "no-model.bin")}
    try:
        with bond_with(env) as bond:
            caller_sipp, caller, client, call, spoke = agent_answers(
                bond, receiver, "assistant-deaf", "Hello, is anybody there?", str(tmp_path))
            client.calls.actions.hangup(call)
            caller_sipp.wait()
    finally:
        model.close()
    answer = turns(receiver, call, "assistant")[-1]
    assert answer["said"] == "Sorry, I did not catch that. Could you say it again?", answer
    assert caller.agent_loud_seconds(spoke, caller.now()) > 1.0
    failed = [e["payload"] for e in events(receiver) if e["event_type"] == "call.ai_assistant.failed"]
    assert [(f["stage"], f["fallback"]) for f in failed] == [("stt", False)], failed
    assert model.requests == [], "the model is not asked about words nobody heard"


def test_a_silent_caller_is_checked_on_twice_then_waited_for(receiver, tmp_path):
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    checks = []

    def desk(messages):
        if messages[-1]["role"] == "system" and "still there" in messages[-1]["content"]:
            checks.append(messages)
            return "Are you still there?"
        return ToolCall("gather_complete", {"name": "Jane"}, text="Thank you.")

    model = FakeChat(desk)
    try:
        with bond_with({"BOND_ASSISTANT_LLM_BASE_URL": model.base_url}) as bond:
            caller_sipp, media, client, call, port = answered_caller(bond, receiver)
            caller = Caller(media, port)
            client.calls.actions.gather_using_ai(call, parameters=schema, greeting="Hello. What is your name?",
                                                 user_response_timeout_ms=1500)
            caller.wait(lambda: sum(e["event_type"] == "call.ai_assistant.caller_silent"
                                    for e in events(receiver)) == 2, timeout=30)
            second_check = caller.now()
            caller.wait(caller.agent_spoke_and_stopped(second_check, quiet=3.5), timeout=20)
            caller.say(flite("My name is Jane.", str(tmp_path)))
            gathered = wait_event(receiver, "call.ai_gather.ended", timeout=20, call_control_id=call)
            client.calls.actions.hangup(call)
            caller_sipp.wait()
    finally:
        model.close()
    silent = [e["payload"] for e in events(receiver) if e["event_type"] == "call.ai_assistant.caller_silent"]
    assert len(silent) == 2, silent
    assert all(1500 <= s["waited_ms"] < 2500 for s in silent), silent
    # Each check was asked with the instruction last; the instruction is not kept in the history.
    assert len(checks) == 2 and checks[1][-2] == {"role": "assistant", "content": "Are you still there?"}, checks
    history = gathered["message_history"]
    assert [m["content"] for m in history if m["role"] == "assistant"][-2:] == ["Are you still there?"] * 2, history
    assert not any(m["role"] == "system" and "still there" in m["content"] for m in history), history
    assert gathered["result"] == {"name": "Jane"}, gathered
    # The agent's two checks were heard; then it waited without a third.
    spoken = [t for t in turns(receiver, call, "assistant") if t["said"] == "Are you still there?"]
    assert len(spoken) == 2, spoken


def test_the_agent_speaks_with_the_elevenlabs_voice_and_model_telnyx_names(receiver):
    model, voice = FakeChat(lambda _: "Fine."), FakeElevenLabs()
    env = {"BOND_ASSISTANT_LLM_BASE_URL": model.base_url,
           "BOND_ELEVENLABS_API_KEY": "el-test", "BOND_ELEVENLABS_URL": voice.base_url}
    try:
        with bond_with(env) as bond:
            caller_sipp, media, client, call, port = answered_caller(bond, receiver)
            caller = Caller(media, port)
            # Telnyx's name for an ElevenLabs voice, its voice id from a dynamic variable.
            assistant = {"id": "assistant-voice", "dynamic_variables": {"desk": "desk-voice"},
                         "voice_settings": {"voice": "ElevenLabs.eleven_turbo_v2.{{desk}}"}}
            client.calls.actions.start_ai_assistant(call, assistant=assistant, greeting="Hello there.")
            caller.wait(caller.agent_spoke_and_stopped(0.0), timeout=20)
            client.calls.actions.hangup(call)
            caller_sipp.wait()
    finally:
        model.close()
        voice.close()
    assert voice.requests == [("desk-voice", "el-test",
                               {"text": "Hello there.", "model_id": "eleven_turbo_v2", "language_code": "en"})]
    assert caller.agent_loud_seconds(0.0, caller.now()) > 0.3, "the caller heard the voice's answer"
    assert not [e for e in events(receiver) if e["event_type"] == "call.ai_assistant.failed"]


def test_a_streamed_voice_is_heard_from_its_first_part_on_and_the_rest_follows_without_gaps(receiver):
    held = threading.Event()
    model, voice = FakeChat(lambda _: "Fine."), FakeElevenLabs(hold=held)
    env = {"BOND_ASSISTANT_LLM_BASE_URL": model.base_url,
           "BOND_ELEVENLABS_API_KEY": "el-test", "BOND_ELEVENLABS_URL": voice.base_url}
    greeting = "Hello there, and welcome to the shop."  # 37 characters: 1.48 s of the fake's speech
    try:
        with bond_with(env) as bond:
            caller_sipp, media, client, call, port = answered_caller(bond, receiver)
            caller = Caller(media, port)
            client.calls.actions.start_ai_assistant(call, assistant={"id": "assistant-stream"}, greeting=greeting)
            # The voice has sent 300 ms and holds the rest: the caller hears it all the same.
            caller.wait(lambda: caller.agent_loud_seconds(0.0, caller.now()) >= 0.2, timeout=20)
            caller.quiet(0.6)
            assert caller.agent_loud_seconds(0.0, caller.now()) <= 0.32, "only what the voice has sent"
            released = caller.now()
            held.set()
            caller.wait(caller.agent_spoke_and_stopped(released), timeout=20)
            client.calls.actions.hangup(call)
            caller_sipp.wait()
    finally:
        held.set()
        model.close()
        voice.close()
    assert len(voice.requests) == 1
    rest = [(t, r > Caller.LOUD) for t, r in caller.heard if t >= released]
    loud = [t for t, is_loud in rest if is_loud]
    gaps = [t for t, is_loud in rest if loud[0] <= t <= loud[-1] and not is_loud]
    assert abs(caller.agent_loud_seconds(released, caller.now()) - 1.18) <= 0.1, "the rest, all of it"
    assert len(gaps) <= 1, f"the parts follow on from each other: {len(gaps)} quiet frames among them"
    assert not [e for e in events(receiver) if e["event_type"] == "call.ai_assistant.failed"]
