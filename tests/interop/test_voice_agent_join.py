"""A second call leg joins a voice agent's conversation (`ai_assistant_join`),
driven by the official Telnyx Python SDK, against the stand-in model server
(fake_openai.py) and the embedded speech engines.

Two sipp callers come in on a trunk; the test speaks for both (Flite's voice)
on one 20 ms clock and listens to what Bond sends each. The agent starts on
the first caller; the second joins as "Dana" (`on_hangup: end_conversation`).
The two callers hear each other, Dana's words reach the model under her name,
the agent's answer is heard by both, and Dana hanging up ends the
conversation.
"""

import datetime
import math
import struct
import time
import wave

import pytest
import telnyx
from telnyx import Telnyx

from conftest import API_KEY, bond_with, ringing_chunks, share_at, tone
from fake_openai import FakeChat, ToolCall
from test_sip_trunk import Sipp, events, rtp_caller, trunk_connection, wait_event
from test_voice_agent import FRAME, Caller, flite, turns

WELCOME = "Welcome, Dana. I will note that the parcel is ready."


def write_wav(path, samples):
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(struct.pack(f"<{len(samples)}h", *samples))


class Pair:
    """Two callers on one 20 ms clock: each tick, each sends its frame and both listen."""

    def __init__(self, a, b):
        self.a, self.b = a, b
        b.start = a.start

    def now(self):
        return self.a.now()

    def tick(self, a_frame, b_frame):
        self.a.send(a_frame)
        self.b.send(b_frame)
        end = self.a.start + 0.02 * self.a.sent
        while time.time() < end:
            self.a.listen()
            self.b.listen()

    def say(self, who, samples):
        begin = self.now()
        silence = [0] * FRAME
        for i in range(0, len(samples) - FRAME + 1, FRAME):
            frame = samples[i:i + FRAME]
            self.tick(frame if who is self.a else silence, frame if who is self.b else silence)
        who.spoke.append((begin, self.now()))

    def wait(self, done, timeout):
        deadline = self.now() + timeout
        while not done():
            assert self.now() < deadline, "the agent did not do what the callers waited for"
            self.tick([0] * FRAME, [0] * FRAME)


def answered(bond, receiver, client, known):
    """A sipp caller, answered: (sipp, Caller, call)."""
    sipp, media = rtp_caller(bond, bye_timeout_ms=180000)
    deadline = time.time() + 15
    while True:
        new = [e["payload"]["call_control_id"] for e in events(receiver)
               if e["event_type"] == "call.initiated" and e["payload"]["call_control_id"] not in known]
        if new:
            break
        assert time.time() < deadline, "no second call.initiated"
        time.sleep(0.05)
    client.calls.actions.answer(new[0])
    return sipp, Caller(media, int(sipp.logged(r"BOND_RTP (\d+)").group(1))), new[0]


def two_callers(bond, receiver):
    """Two sipp callers on a trunk, answered: (SDK, (sipp, Caller, call) of each, the trunk's connection)."""
    connection = trunk_connection(bond, receiver)
    client = Telnyx(api_key=API_KEY, base_url=bond.base_url, max_retries=0)
    first = answered(bond, receiver, client, [])
    return client, first, answered(bond, receiver, client, [first[2]]), connection


SETTLED = "Good, then it is settled."


def desk(messages):
    """The scripted model: welcomes Dana once she has spoken, under her name;
    lets the turn pass when she asks the caller something; then answers the caller."""
    said = messages[-1]["content"] if messages[-1]["role"] == "user" else ""
    if "tomorrow" in said.lower():
        return ToolCall("skip_turn", {})
    if said.startswith("Caller:"):
        return SETTLED
    if any(m["role"] == "user" and m["content"].startswith("Dana:") for m in messages):
        return WELCOME
    return "Hello."


def test_a_joined_caller_is_heard_under_its_name_hears_the_agent_and_its_hangup_ends_the_conversation(receiver, tmp_path):
    model = FakeChat(desk)
    try:
        with bond_with({"BOND_ASSISTANT_LLM_BASE_URL": model.base_url}) as bond:
            client, (sipp_a, caller, a), (sipp_b, dana, b), connection = two_callers(bond, receiver)
            both = Pair(caller, dana)
            started = client.calls.actions.start_ai_assistant(
                a, assistant={"id": "assistant-desk", "instructions": "You are the shop's agent.",
                              "tools": [{"type": "skip_turn", "skip_turn": {}}]},
                greeting="Hello, this is the shop.")
            conversation = started.data.conversation_id
            assert conversation, started

            # A conversation that is not running, and the conversation's own call, are refused.
            participant = {"id": b, "role": "user", "name": "Dana", "on_hangup": "end_conversation"}
            with pytest.raises(telnyx.UnprocessableEntityError) as unknown:
                client.calls.actions.join_ai_assistant(b, conversation_id="no-such", participant=participant)
            assert unknown.value.body["errors"][0]["source"]["pointer"] == "/conversation_id"
            with pytest.raises(telnyx.UnprocessableEntityError) as itself:
                client.calls.actions.join_ai_assistant(
                    a, conversation_id=conversation, participant={"id": a, "role": "user"})
            assert itself.value.body["errors"][0]["source"]["pointer"] == "/participant/id"

            joined = client.calls.actions.join_ai_assistant(b, conversation_id=conversation, participant=participant)
            assert joined.data.conversation_id == conversation
            wait_event(receiver, "call.ai_assistant.participant_joined", call_control_id=a)
            both.wait(caller.agent_spoke_and_stopped(0.0), timeout=20)
            both.say(dana, flite("Hello, this is Dana from the warehouse. The parcel is ready.", str(tmp_path)))
            said = dana.spoke[-1]
            both.wait(dana.agent_spoke_and_stopped(said[1]), timeout=30)
            answer_heard = (said[1], both.now())
            # Dana asks the caller, not the agent: the model lets the turn pass, and nothing is said.
            both.say(dana, flite("Can you pick it up tomorrow morning?", str(tmp_path)))
            asked_caller = dana.spoke[-1][1]
            skipped = lambda: any(e["event_type"] == "call.ai_assistant.tool_call" for e in events(receiver))
            both.wait(skipped, timeout=20)
            both.wait(lambda: both.now() > asked_caller + 4, timeout=10)
            quiet = (asked_caller + 0.3, both.now())
            both.say(caller, flite("Yes, that works for me.", str(tmp_path)))
            both.wait(caller.agent_spoke_and_stopped(caller.spoke[-1][1]), timeout=30)
            client.calls.actions.hangup(b)
            ended = wait_event(receiver, "call.conversation.ended", call_control_id=a)
            left = wait_event(receiver, "call.ai_assistant.participant_left", call_control_id=a)
            client.calls.actions.hangup(a)
            sipp_a.wait()
            sipp_b.wait()
    finally:
        model.close()

    # The model was told Dana joined, and read her words under her name.
    last = model.requests[-1]["messages"]
    told = [m["content"] for m in last if m["role"] == "system"]
    assert any(t.startswith("Dana joined the call.") for t in told), told
    dana_said = [m["content"] for m in last if m["role"] == "user" and m["content"].startswith("Dana: ")]
    assert dana_said and "warehouse" in dana_said[0].lower(), dana_said
    # The two callers are bridged: the first heard Dana speak.
    assert caller.agent_loud(*said) > 0.5, "the first caller did not hear Dana"
    # The agent's answer was played to both of them.
    assert turns(receiver, a, "assistant")[-2]["said"] == WELCOME
    for who in (caller, dana):
        assert who.agent_loud_seconds(*answer_heard) > 1.0, "the agent's answer was not heard on both legs"
    # The skipped turn: nothing played on either leg, the model saw its call answered, and was asked again
    # only when the caller spoke.
    for who in (caller, dana):
        assert who.agent_loud(*quiet) < 0.02, "the agent spoke on a turn it skipped"
    skip = wait_event(receiver, "call.ai_assistant.tool_call", call_control_id=a)
    assert (skip["name"], skip["status"]) == ("skip_turn", "ok"), skip
    after = last[-3:]
    assert after[0]["role"] == "assistant" and after[0]["tool_calls"][0]["function"]["name"] == "skip_turn", after
    assert after[1] == {"role": "tool", "tool_call_id": after[0]["tool_calls"][0]["id"], "content": '{"skipped":true}'}
    assert after[2]["content"].startswith("Caller: "), after
    assert turns(receiver, a, "assistant")[-1]["said"] == SETTLED
    # Dana's hangup ended the conversation, as her on_hangup asked.
    assert left["participant"] == {"call_control_id": b, "name": "Dana", "role": "user"}, left
    assert ended["reason"] == "participant_hangup" and ended["conversation_id"] == conversation, ended
    bridged = [e["payload"]["call_control_id"] for e in events(receiver) if e["event_type"] == "call.bridged"]
    assert sorted(bridged) == sorted([a, b]), bridged


def test_the_joined_callers_hear_each_other_over_the_agent_while_it_speaks(receiver, tmp_path):
    """With interruptions off the agent talks on while Dana makes a sound; the caller hears both."""
    model = FakeChat(desk)
    try:
        with bond_with({"BOND_ASSISTANT_LLM_BASE_URL": model.base_url}) as bond:
            client, (sipp_a, caller, a), (sipp_b, dana, b), _ = two_callers(bond, receiver)
            both = Pair(caller, dana)
            client.calls.actions.start_ai_assistant(
                a, assistant={"id": "assistant-desk", "instructions": "You are the shop's agent."},
                interruption_settings={"enable": False},
                participants=[{"id": b, "role": "user", "name": "Dana"}])
            wait_event(receiver, "call.ai_assistant.participant_joined", call_control_id=a)
            both.say(dana, flite("Hello, this is Dana from the warehouse. The parcel is ready.", str(tmp_path)))
            said = dana.spoke[-1][1]
            both.wait(caller.agent_speaking_for(said, 0.5), timeout=30)
            # A 1 kHz tone from Dana, 0.6 s, while the agent's welcome plays.
            hum = tone(1000, 8000, 4800, amplitude=6000)
            begin = both.now()
            for i in range(0, len(hum), FRAME):
                both.tick([0] * FRAME, hum[i:i + FRAME])
            end = both.now()
            both.wait(caller.agent_spoke_and_stopped(said), timeout=30)
            client.calls.actions.hangup(b)
            client.calls.actions.hangup(a)
            sipp_a.wait()
            sipp_b.wait()
    finally:
        model.close()
    assert turns(receiver, a, "assistant")[-1]["said"] == WELCOME
    # The tone window, less the path's delay at each end: the agent's voice and Dana's tone together.
    heard = caller.samples_heard(begin + 0.1, end)
    hummed = share_at(heard, 1000, 8000)
    assert hummed > 0.15, f"the caller did not hear Dana over the agent: {hummed:.2f} of the sound at 1 kHz"
    # What is not the tone is the agent's voice, still as loud as it speaks.
    voice = math.sqrt(sum(x * x for x in heard) / len(heard) * (1 - hummed))
    assert voice > 2 * caller.LOUD, f"the agent went quiet under Dana's sound (rms {voice:.0f} besides the tone)"


def test_participants_join_as_the_agent_starts_and_one_who_leaves_lets_the_conversation_go_on(receiver):
    model = FakeChat(desk)
    try:
        with bond_with({"BOND_ASSISTANT_LLM_BASE_URL": model.base_url}) as bond:
            client, (sipp_a, caller, a), (sipp_b, dana, b), connection = two_callers(bond, receiver)
            with pytest.raises(telnyx.UnprocessableEntityError) as unknown:
                client.calls.actions.start_ai_assistant(a, participants=[{"id": "v3:nobody", "role": "user"}])
            assert unknown.value.body["errors"][0]["source"]["pointer"] == "/participants/0/id"
            # The agent's call bridged elsewhere: the participant cannot be bridged in, and the start is
            # refused with no conversation reported.
            other = client.calls.dial(connection_id=connection, to="loop:silence", from_="+13125550100")
            other = other.data.call_control_id
            client.calls.actions.bridge(a, call_control_id_to_bridge_with=other, park_after_unbridge="self")
            with pytest.raises(telnyx.UnprocessableEntityError):
                client.calls.actions.start_ai_assistant(a, participants=[{"id": b, "role": "user"}])
            client.calls.actions.hangup(other)
            wait_event(receiver, "call.hangup", call_control_id=other)
            time.sleep(0.3)
            started = client.calls.actions.start_ai_assistant(
                a, assistant={"id": "assistant-desk"}, participants=[{"id": b, "role": "user", "name": "Dana"}])
            joined = wait_event(receiver, "call.ai_assistant.participant_joined", call_control_id=a)
            client.calls.actions.hangup(b)
            left = wait_event(receiver, "call.ai_assistant.participant_left", call_control_id=a)
            sipp_b.wait()
            # Dana left (on_hangup defaults to continue_conversation): the agent's call and agent go on.
            time.sleep(0.5)
            assert client.calls.retrieve_status(a).data.is_alive
            client.calls.actions.stop_ai_assistant(a)
            ended = wait_event(receiver, "call.conversation.ended", call_control_id=a)
            client.calls.actions.hangup(a)
            sipp_a.wait()
    finally:
        model.close()
    assert joined["participant"] == {"call_control_id": b, "name": "Dana", "role": "user"}, joined
    assert joined["conversation_id"] == started.data.conversation_id
    assert left["participant"]["call_control_id"] == b
    assert ended["reason"] == "assistant_stopped", ended
    ends = [e for e in events(receiver) if e["event_type"] == "call.conversation.ended"]
    assert len(ends) == 1, "the refused start reported a conversation"


SPECIALIST_WELCOME = "Thank you for joining. The caller has a question about a refund."


def test_the_invite_tool_dials_the_target_the_model_named_and_it_joins_on_answer(receiver, tmp_path):
    """The model invites "Specialist" (a `loop:play` leg whose party speaks after
    10 s): Bond dials it, it joins on answer, the agent welcomes it once its own
    words have played, and what the specialist says reaches the model under its
    name and the caller's ear."""
    def agent(messages):
        last = messages[-1]
        said = last["content"] if last["role"] == "user" else ""
        if said.startswith("Specialist:"):
            return "Welcome. Go ahead, please."
        if last["role"] == "tool":
            return "They will join shortly."
        joined = any("Specialist joined" in m["content"] for m in messages if m["role"] == "system")
        if joined and not any(m.get("content") == SPECIALIST_WELCOME for m in messages):
            return SPECIALIST_WELCOME
        if "specialist" in said.lower():
            return ToolCall("invite", {"target": "Specialist"}, text="I will bring in a specialist.")
        return "Hello."

    model = FakeChat(agent)
    tools = [{"type": "invite", "invite": {"targets": [{"name": "Specialist", "to": "loop:play?file=specialist.wav"}]}}]
    try:
        with bond_with({"BOND_ASSISTANT_LLM_BASE_URL": model.base_url}) as bond:
            write_wav(f"{bond.data_dir}/specialist.wav",
                      [0] * 80000 + flite("Hello, this is the refunds specialist.", str(tmp_path)) + [0] * 4000)
            trunk_connection(bond, receiver)
            client = Telnyx(api_key=API_KEY, base_url=bond.base_url, max_retries=0)
            sipp, caller, call = answered(bond, receiver, client, [])
            client.calls.actions.start_ai_assistant(call, assistant={"id": "assistant-desk", "tools": tools})
            caller.quiet(0.5)
            caller.say(flite("Can I talk to a specialist about my refund?", str(tmp_path)))
            caller.wait(lambda: any(e["event_type"] == "call.ai_assistant.participant_joined"
                                    for e in events(receiver)), timeout=30)
            joined = wait_event(receiver, "call.ai_assistant.participant_joined", call_control_id=call)
            specialist_joined = caller.now()
            caller.wait(lambda: any(m["messages"][-1]["content"].startswith("Specialist:") for m in model.requests
                                    if m["messages"][-1]["role"] == "user"), timeout=30)
            caller.wait(caller.agent_spoke_and_stopped(caller.now()), timeout=20)
            client.calls.actions.hangup(call)
            sipp.wait()
    finally:
        model.close()
    invited = joined["participant"]
    assert invited["name"] == "Specialist" and invited["call_control_id"] != call, joined
    used = [e["payload"] for e in events(receiver) if e["event_type"] == "call.ai_assistant.tool_call"]
    assert [(u["name"], u["status"]) for u in used] == [("invite", "ok")], used
    asked_first = model.requests[1]["messages"]
    assert asked_first[-1] == {"role": "tool", "tool_call_id": asked_first[-2]["tool_calls"][0]["id"],
                               "content": '{"invited":"Specialist","status":"ringing"}'}, asked_first[-2:]
    said = [t["said"] for t in turns(receiver, call, "assistant")]
    assert SPECIALIST_WELCOME in said, said
    heard_specialist = [m["messages"][-1]["content"] for m in model.requests
                        if m["messages"][-1]["content"].startswith("Specialist:")]
    assert "hello" in heard_specialist[0].lower(), heard_specialist
    # The caller heard the specialist through the bridge, after the welcome.
    assert caller.agent_loud_seconds(specialist_joined, caller.now()) > 2.0
    new_leg = [e["payload"] for e in events(receiver) if e["event_type"] == "call.initiated"
               and e["payload"]["call_control_id"] == invited["call_control_id"]]
    assert new_leg and new_leg[0]["to"] == "loop:play?file=specialist.wav", new_leg


BUSY = "Sorry, the specialist is busy. Can I help you myself?"

SCREENED_WELCOME = "Welcome, specialist. The caller asks about a refund."


def inviting_agent(failed, reply, tool="invite"):
    """The scripted model: invites Specialist (or calls another `tool` with
    the target) when the caller asks for one, says `reply` when Bond's note
    says the invitation `failed` (a phrase of it), and welcomes the
    specialist once they joined."""
    def agent(messages):
        last = messages[-1]
        said = last["content"] if last["role"] == "user" else ""
        if last["role"] == "system" and failed in last["content"]:
            return reply
        joined = any("Specialist joined" in m["content"] for m in messages if m["role"] == "system")
        if joined and not any(m.get("content") == SCREENED_WELCOME for m in messages):
            return SCREENED_WELCOME
        if last["role"] == "tool":
            return "Let me ring them for you, one moment please."
        if "specialist" in said.lower():
            return ToolCall(tool, {"target": "Specialist"})
        return "Hello."
    return agent


def ask_for_the_specialist(receiver, tmp_path, model, tools, until, trunk=None, specialist=None, heard=None):
    """A sipp caller on a trunk (`trunk`: where it sends calls out) asks the
    agent (`model`, offered `tools`) for a specialist and listens until the
    agent has said `until` (or, a function, until `until(call)` is true), then
    hangs up; `specialist` is the audio of `specialist.wav` in Bond's data
    directory. Returns the caller's call id; what it heard goes into `heard`."""
    try:
        with bond_with({"BOND_ASSISTANT_LLM_BASE_URL": model.base_url}) as bond:
            if specialist:
                write_wav(f"{bond.data_dir}/specialist.wav", specialist)
            trunk_connection(bond, receiver, **({"trunk": trunk} if trunk else {}))
            client = Telnyx(api_key=API_KEY, base_url=bond.base_url, max_retries=0)
            sipp, caller, call = answered(bond, receiver, client, [])
            client.calls.actions.start_ai_assistant(call, assistant={"id": "assistant-desk", "tools": tools})
            caller.quiet(0.5)
            caller.say(flite("Can I talk to a specialist about my refund?", str(tmp_path)))
            said = lambda: until in [t["said"] for t in turns(receiver, call, "assistant")]
            caller.wait((lambda: until(call)) if callable(until) else said, timeout=40)
            if heard is not None:
                heard.extend(s for _, frame in caller.frames for s in frame)
            client.calls.actions.hangup(call)
            sipp.wait()
    finally:
        model.close()
    return call


def test_an_invited_callee_who_refuses_is_told_to_the_model_which_answers_the_caller(receiver, tmp_path):
    """The model invites "Specialist" through the trunk; the sipp callee there
    answers 486 Busy Here at once, while the agent is still saying that it
    rings. The invited call ends `user_busy`, the model is told the
    invitation was not answered and its answer is spoken to the caller."""
    model = FakeChat(inviting_agent("did not answer", BUSY))
    tools = [{"type": "invite", "invite": {"targets": [{"name": "Specialist", "to": "+15551230000"}]}}]
    busy = Sipp("uas_status.xml", {"status": 486, "reason": "Busy Here"})
    call = ask_for_the_specialist(receiver, tmp_path, model, tools, BUSY,
                                  trunk={"host": "127.0.0.1", "port": busy.port})
    assert busy.wait()[0] == 0
    refused = [e["payload"] for e in events(receiver) if e["event_type"] == "call.hangup"
               and e["payload"]["call_control_id"] != call]
    assert [r["hangup_cause"] for r in refused] == ["user_busy"], refused
    told = [m["messages"] for m in model.requests if m["messages"][-1]["role"] == "system"]
    assert told and told[0][-1]["content"] == "Specialist did not answer the invitation.", told
    said = [t["said"] for t in turns(receiver, call, "assistant")]
    assert said[-1] == BUSY and said.count(BUSY) == 1, said


NO_ANSWER = "The specialist is not picking up. Can I help you myself?"


def test_an_invited_callee_who_only_rings_is_cancelled_at_its_timeout_and_the_model_is_told(receiver, tmp_path):
    """The invite's target rings (180) and never answers: at the target's
    `timeout_secs` Bond cancels it (the sipp callee sees the CANCEL and
    answers 487), the invited call ends `timeout`, and the model is told the
    invitation was not answered; its answer is spoken to the caller, who was
    never left alone with the ringing."""
    model = FakeChat(inviting_agent("did not answer", NO_ANSWER))
    target = {"name": "Specialist", "to": "+15551230000", "timeout_secs": 5}
    tools = [{"type": "invite", "invite": {"targets": [target]}}]
    ringing = Sipp("uas_no_answer.xml")
    call = ask_for_the_specialist(receiver, tmp_path, model, tools, NO_ANSWER,
                                  trunk={"host": "127.0.0.1", "port": ringing.port})
    code, detail = ringing.wait()
    assert code == 0, detail
    invited = [e for e in events(receiver) if e["payload"].get("call_control_id") not in (None, call)]
    hangups = [e["payload"] for e in invited if e["event_type"] == "call.hangup"]
    assert [h["hangup_cause"] for h in hangups] == ["timeout"], hangups
    rang = iso_seconds(hangups[0]["end_time"]) - iso_seconds(hangups[0]["start_time"])
    assert 4.5 < rang < 8, rang
    assert not [e for e in invited if e["event_type"] in ("call.answered", "call.ai_assistant.participant_joined")]
    told = [m["messages"][-1]["content"] for m in model.requests if m["messages"][-1]["role"] == "system"]
    assert told == ["Specialist did not answer the invitation."], told
    said = [t["said"] for t in turns(receiver, call, "assistant")]
    assert said[-1] == NO_ANSWER and said.count(NO_ANSWER) == 1, said


NOT_AVAILABLE = "The specialist is not available, so I will help you myself."


@pytest.mark.parametrize("answers", ["voicemail", "voicemail-message", "person"])
def test_a_screened_invite_joins_a_person_and_stops_at_a_voicemail(receiver, tmp_path, answers):
    """The invite tool with `voicemail_detection` (premium): the invited call
    is screened by Bond's answering-machine detection. A voicemail greeting
    ending in a beep is hung up on (`stop_transfer`), or first hears the
    message once its greeting ends (`leave_message_and_stop_transfer`), and
    the model is told, so the agent answers the caller itself; a person's
    short "Hello?" joins the conversation, and the agent welcomes them."""
    model = FakeChat(inviting_agent("a voicemail did", NOT_AVAILABLE))
    detection = {"detection_mode": "premium", "on_voicemail_detected": {"action": "stop_transfer"}}
    if answers == "voicemail-message":
        message = {"type": "message", "message": "Please call the caller back about their refund today."}
        detection["on_voicemail_detected"] = {"action": "leave_message_and_stop_transfer", "voicemail_message": message}
    target = {"name": "Specialist", "to": "loop:play?file=specialist.wav"}
    tools = [{"type": "invite", "invite": {"targets": [target], "voicemail_detection": detection}}]
    if answers.startswith("voicemail"):
        greeting = "Hi, you have reached the refunds desk at Parcel Post. Nobody can take your call right now, " \
                   "so please leave your name and number after the tone."
        audio = flite(greeting, str(tmp_path)) + [0] * 2400 + tone(1000, 8000, 4000) + [0] * 80000
        said_last = NOT_AVAILABLE
    else:
        audio = flite("Hello?", str(tmp_path)) + [0] * 96000 + flite("This is the refunds specialist.", str(tmp_path))
        said_last = SCREENED_WELCOME
    call = ask_for_the_specialist(receiver, tmp_path, model, tools, said_last, specialist=audio + [0] * 4000)
    invited = [e["payload"]["call_control_id"] for e in events(receiver) if e["event_type"] == "call.initiated"
               and e["payload"]["call_control_id"] != call]
    assert len(invited) == 1, invited
    screening = [e for e in events(receiver) if e["event_type"].startswith("call.machine.premium.")
                 and e["payload"]["call_control_id"] == invited[0]]
    verdicts = [e["payload"]["result"] for e in screening if e["event_type"].endswith("detection.ended")]
    joined = [e["payload"] for e in events(receiver) if e["event_type"] == "call.ai_assistant.participant_joined"]
    hangups = [e for e in events(receiver) if e["event_type"] == "call.hangup"
               and e["payload"]["call_control_id"] == invited[0]]
    told = [m["messages"][-1]["content"] for m in model.requests if m["messages"][-1]["role"] == "system"]
    if answers == "person":
        assert verdicts == ["human_residence"], verdicts
        assert [j["participant"]["name"] for j in joined] == ["Specialist"], joined
        return
    assert verdicts == ["machine"], verdicts
    assert joined == [], "a voicemail never joins the conversation"
    assert hangups and hangups[0]["payload"]["hangup_source"] == "caller", hangups
    if answers == "voicemail":
        assert told == ["Specialist did not answer: a voicemail did, so the invitation was stopped."], told
        return
    assert told == ["Specialist did not answer: a voicemail did, and your message was left on it."], told
    greeting_ended = [e for e in screening if e["event_type"].endswith("greeting.ended")]
    assert greeting_ended and greeting_ended[0]["payload"]["result"] == "beep_detected", screening
    # The message (about 3 s of speech) played between the beep and the hangup.
    spoken = iso_seconds(hangups[0]["occurred_at"]) - iso_seconds(greeting_ended[0]["occurred_at"])
    assert spoken > 2.0, spoken


def iso_seconds(stamp):
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("answers", ["voicemail", "person"])
def test_a_screened_transfer_tool_bridges_a_person_and_stops_at_a_voicemail(receiver, tmp_path, answers):
    """The transfer tool with `voicemail_detection` (premium): the agent goes
    on while the target rings and is screened, and the caller hears the
    tool's ringtone between its words (checked on the longer screening of a
    voicemail greeting). A voicemail greeting is hung
    up on and the model told, so the agent answers the caller itself; a
    person's "Hello?" gets the call: the conversation ends
    `assistant_transfer` and the caller is bridged with the person, whose
    call ends with the caller's."""
    model = FakeChat(inviting_agent("a voicemail did", NOT_AVAILABLE, tool="transfer"))
    detection = {"detection_mode": "premium", "on_voicemail_detected": {"action": "stop_transfer"}}
    target = {"name": "Specialist", "to": "loop:play?file=specialist.wav"}
    # Bond's own `ringtone`: the UK's, whose double ring recurs every 3 s, around the agent's words.
    tools = [{"type": "transfer", "transfer": {"targets": [target], "voicemail_detection": detection,
                                               "ringtone": "uk"}}]
    if answers == "voicemail":
        greeting = "Hi, you have reached the refunds desk at Parcel Post. Please leave a message after the tone."
        audio = flite(greeting, str(tmp_path)) + [0] * 2400 + tone(1000, 8000, 4000) + [0] * 80000
        until = NOT_AVAILABLE
    else:
        audio = flite("Hello?", str(tmp_path)) + [0] * 96000

        def until(call):
            return any(e["event_type"] == "call.bridged" and e["payload"]["call_control_id"] == call
                       for e in events(receiver))
    heard = []
    call = ask_for_the_specialist(receiver, tmp_path, model, tools, until, specialist=audio + [0] * 4000,
                                  heard=heard)
    invited = [e["payload"]["call_control_id"] for e in events(receiver) if e["event_type"] == "call.initiated"
               and e["payload"]["call_control_id"] != call]
    assert len(invited) == 1, invited
    of_invited = [e for e in events(receiver) if e["payload"].get("call_control_id") == invited[0]]
    verdicts = [e["payload"]["result"] for e in of_invited
                if e["event_type"] == "call.machine.premium.detection.ended"]
    hangups = [e["payload"] for e in of_invited if e["event_type"] == "call.hangup"]
    ended = [e["payload"] for e in events(receiver) if e["event_type"] == "call.conversation.ended"]
    told = [m["messages"][-1]["content"] for m in model.requests if m["messages"][-1]["role"] == "system"]
    tool_results = [m["messages"][-1]["content"] for m in model.requests if m["messages"][-1]["role"] == "tool"]
    assert tool_results == ['{"status":"ringing","transferring":"Specialist"}'], tool_results
    if answers == "person":
        assert verdicts == ["human_residence"], verdicts
        assert [e["reason"] for e in ended] == ["assistant_transfer"], ended
        bridged = [e["payload"] for e in of_invited if e["event_type"] == "call.bridged"]
        assert bridged, "the person's call is bridged with the caller's"
        assert told == [], told
        # The caller's hangup takes the person's call with it.
        wait_event(receiver, "call.hangup", call_control_id=invited[0], timeout=10)
        return
    assert verdicts == ["machine"], verdicts
    # A person's "Hello?" is screened in a second, mostly under the agent's words; a greeting takes longer.
    ringing = ringing_chunks(heard, (400, 450))
    assert len(ringing) >= 3, f"the UK ringtone while the target is screened: {len(ringing)} chunks of 100 ms"
    assert not [e for e in of_invited if e["event_type"] == "call.bridged"], "a voicemail is never bridged"
    assert hangups and hangups[0]["hangup_source"] == "caller", hangups
    assert told == ["Specialist did not answer: a voicemail did, so the transfer was stopped."], told
    assert [e["reason"] for e in ended] == ["call_hangup"], "the conversation went on until the caller hung up"
