"""A voice agent's tools (`assistant.tools` of `ai_assistant_start`, Telnyx's
`webhook` and `hangup` tools), driven by the official Telnyx Python SDK, on a
SIP call whose caller speaks with Flite's voice, against the stand-in model
server (fake_openai.py) and an application's HTTP endpoint the test runs.

The caller asks about an order; the model calls the webhook tool; Bond sends
the arguments to the application's URL with the tool's headers and hands the
application's answer back to the model as the tool's result, and the model's
next answer is spoken. The caller says goodbye; the model says so and calls
the hangup tool; the call ends once the goodbye has been played.
"""

import json
import threading
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import telnyx

from conftest import api, bond_with, ringing_chunks
from fake_openai import FakeChat, ToolCall
from test_sip_trunk import Sipp, events, media_socket, wait_event
from test_voice_agent import Caller, answered_caller, flite, turns

ORDER = {"status": "shipped", "eta": "Friday"}


class Application:
    """The application's tool endpoint: keeps each request, answers ORDER."""

    def __init__(self):
        self.requests = []
        app = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                app.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                     "call": self.headers.get("Bond-Call-Control-Id"),
                                     "body": json.loads(body or b"null")})
                data = json.dumps(ORDER).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


SCHEMA = {"type": "object", "properties": {"order_number": {"type": "string"}}, "required": ["order_number"]}


def desk(messages):
    """The scripted model: look the order up, say what the tool found, hang up on goodbye."""
    if messages[-1]["role"] == "tool":
        found = json.loads(messages[-1]["content"])
        return f"Your order has {found['status']}. It arrives on {found['eta']}."
    if sum(m["role"] == "user" for m in messages) == 1:
        return ToolCall("order_status", {"order_number": "4567"}, text="Let me check.")
    return ToolCall("hangup", {}, text="Goodbye, have a nice day.")


def test_a_webhook_tool_answers_the_model_and_the_hangup_tool_ends_the_call(receiver, tmp_path):
    model, application = FakeChat(desk), Application()
    tools = [
        {"type": "webhook", "timeout_ms": 3000, "webhook": {
            "name": "order_status", "description": "Look up where an order is.",
            "url": f"{application.url}/orders", "method": "POST",
            "headers": [{"name": "Authorization", "value": "Bearer app-secret"}],
            "body_parameters": SCHEMA}},
        {"type": "hangup", "hangup": {"description": "Hang up once the caller has said goodbye."}},
    ]
    try:
        env = {"BOND_ASSISTANT_LLM_BASE_URL": model.base_url, "BOND_ASSISTANT_PRICE_TTS_PER_MILLION_CHARACTERS": "15"}
        with bond_with(env) as bond:
            caller_sipp, media, client, call, port = answered_caller(bond, receiver)
            caller = Caller(media, port)
            client.calls.actions.start_ai_assistant(
                call, assistant={"id": "assistant-tools", "tools": tools}, greeting="Hello, how can I help?")
            caller.wait(caller.agent_spoke_and_stopped(0.0), timeout=20)
            caller.say(flite("Where is my order four five six seven?", str(tmp_path)))
            caller.wait(caller.agent_spoke_and_stopped(caller.now(), quiet=1.5), timeout=30)
            caller.say(flite("Thank you, goodbye.", str(tmp_path)))
            goodbye_said = caller.now()
            # Listening (the caller's clock goes on) until Bond hangs up.
            caller.wait(lambda: any(e["event_type"] == "call.hangup" for e in events(receiver)), timeout=30)
            hangup = wait_event(receiver, "call.hangup", call_control_id=call)
            shown = api(bond, "GET", f"/calls/{call}")["data"]
            caller_sipp.wait()
    finally:
        model.close()
        application.close()

    # The application got the model's arguments, with the tool's headers, once.
    assert application.requests == [{"path": "/orders", "auth": "Bearer app-secret", "call": call,
                                     "body": {"order_number": "4567"}}], application.requests
    # Both tools were offered to the model as functions.
    offered = model.requests[0]["tools"]
    assert [t["function"]["name"] for t in offered] == ["order_status", "hangup"], offered
    assert offered[0]["function"]["parameters"] == SCHEMA
    # The model's next request held its call and the application's answer, in OpenAI's shape.
    looked_up = model.requests[1]["messages"]
    asked, result = looked_up[-2], looked_up[-1]
    assert asked["role"] == "assistant" and asked["content"] == "Let me check.", asked
    assert [c["function"]["name"] for c in asked["tool_calls"]] == ["order_status"], asked
    assert json.loads(asked["tool_calls"][0]["function"]["arguments"]) == {"order_number": "4567"}
    assert result == {"role": "tool", "tool_call_id": asked["tool_calls"][0]["id"], "content": json.dumps(ORDER)}
    used = [e["payload"] for e in events(receiver) if e["event_type"] == "call.ai_assistant.tool_call"]
    assert [(u["name"], u["status"]) for u in used] == [("order_status", "ok"), ("hangup", "ok")], used
    # What the caller heard: the lookup's words, then the answer the tool's result made, then the goodbye.
    said = [t["said"] for t in turns(receiver, call, "assistant")]
    assert "Let me check. Your order has shipped. It arrives on Friday." in said, said
    assert said[-1] == "Goodbye, have a nice day.", said
    assert caller.agent_loud_seconds(goodbye_said, goodbye_said + 10) > 0.5, "the goodbye was not played"
    assert hangup["hangup_cause"] == "normal_clearing", hangup
    # What the agent used and cost, in call.hangup and on the call.
    ended = wait_event(receiver, "call.conversation.ended", call_control_id=call)
    assert ended["reason"] == "assistant_hangup", ended
    usage = hangup["bond_assistant_usage"]
    assert usage["conversations"] == 1 and usage["usage"] == ended["bond_usage"], (usage, ended["bond_usage"])
    assert usage["usage"]["tts_characters"] > 0 and usage["cost"]["tts"] > 0, usage
    assert shown["bond_assistant_usage"] == usage, shown


def test_the_transfer_tool_hands_the_caller_to_the_target_the_model_named(receiver, tmp_path):
    """The application's dynamic variables and the call's own fill the instructions
    and a target's `to` before they are checked. The target, a sipp callee on the
    trunk, rings for 3.5 s: the caller hears the tool's ringtone (Bond's own field,
    the UK's here) after the agent's last words, until it answers."""
    def agent(messages):
        if sum(m["role"] == "user" for m in messages) == 1:
            return ToolCall("transfer", {"target": "Support"}, text="I will put you through to support.")
        return "Anything else?"

    model = FakeChat(agent)
    tools = [{"type": "transfer", "transfer": {"targets": [{"name": "Sales", "to": "loop:tone?hz=1200"},
                                                           {"name": "Support", "to": "{{support_line}}"}],
                                               "ringtone": "uk"}}]
    assistant = {"id": "assistant-desk", "tools": tools,
                 "instructions": "You help {{customer_name}}, who calls from {{ telnyx_end_user_target }}.",
                 "dynamic_variables": {"customer_name": "Jane", "support_line": "+15551230000"}}
    support_media = media_socket()
    support = Sipp("uas_ring_rtp.xml", {"rtp_port": support_media.getsockname()[1], "ring_ms": 3500})
    try:
        with bond_with({"BOND_ASSISTANT_LLM_BASE_URL": model.base_url}) as bond:
            trunk = {"host": "127.0.0.1", "port": support.port}
            caller_sipp, media, client, call, port = answered_caller(bond, receiver, trunk)
            caller = Caller(media, port)
            with pytest.raises(telnyx.UnprocessableEntityError) as refused:
                client.calls.actions.start_ai_assistant(call, assistant={**assistant, "dynamic_variables": {}})
            assert refused.value.body["errors"][0]["source"]["pointer"] == "/assistant/instructions", refused.value.body
            client.calls.actions.start_ai_assistant(call, assistant=assistant)
            caller_number = wait_event(receiver, "call.initiated", call_control_id=call)["from"]
            caller.quiet(0.5)
            caller.say(flite("I have a problem with my router, can I talk to support?", str(tmp_path)))
            caller.wait(lambda: any(e["event_type"] == "call.bridged" for e in events(receiver)), timeout=30)
            bridged = wait_event(receiver, "call.bridged", call_control_id=call)
            ended = wait_event(receiver, "call.conversation.ended", call_control_id=call)
            heard = [s for _, frame in caller.frames for s in frame]
            client.calls.actions.hangup(call)
            caller_sipp.wait()
            assert support.wait()[0] == 0
    finally:
        model.close()
    ringing = ringing_chunks(heard, (400, 450))
    assert len(ringing) >= 3, f"the UK ringtone while Support rings: {len(ringing)} chunks of 100 ms"
    assert model.requests[0]["messages"][0]["content"] == f"You help Jane, who calls from {caller_number}."
    # The model was offered the targets by name, and the call went to the one it named.
    offered = model.requests[0]["tools"][0]["function"]
    assert offered["name"] == "transfer" and offered["parameters"]["properties"]["target"]["enum"] == ["Sales", "Support"]
    new_leg = [e["payload"] for e in events(receiver) if e["event_type"] == "call.bridged"
               and e["payload"]["call_control_id"] != call]
    assert [leg["to"] for leg in new_leg] == ["+15551230000"], new_leg
    assert bridged["call_session_id"] == new_leg[0]["call_session_id"], "the transfer shares the caller's session"
    assert ended["reason"] == "assistant_transfer", ended
    used = [e["payload"] for e in events(receiver) if e["event_type"] == "call.ai_assistant.tool_call"]
    assert [(u["name"], u["arguments"], u["status"]) for u in used] == [("transfer", {"target": "Support"}, "ok")], used
    said = [t["said"] for t in turns(receiver, call, "assistant")]
    assert said[-1] == "I will put you through to support.", said
    assert len(model.requests) == 1, "after the transfer the agent asks nothing more"


def test_the_application_hands_the_model_a_tool_exchange_and_the_agent_answers_from_it(receiver, tmp_path):
    """The application looked the order up itself: it adds the model's call and its
    result (`add_ai_assistant_messages`, Telnyx's shape: the call names only the
    function) with `trigger_response`, and the agent answers from it at once."""
    def agent(messages):
        if messages[-1]["role"] == "tool":
            found = json.loads(messages[-1]["content"])
            return f"Your order has {found['status']}."
        return "Hello."

    model = FakeChat(agent)
    exchange = [
        {"role": "assistant", "tool_calls": [{"id": "app_1", "type": "function", "function": {"name": "order_status"}}]},
        {"role": "tool", "tool_call_id": "app_1", "content": json.dumps(ORDER)},
    ]
    try:
        with bond_with({"BOND_ASSISTANT_LLM_BASE_URL": model.base_url}) as bond:
            caller_sipp, media, client, call, port = answered_caller(bond, receiver)
            caller = Caller(media, port)
            client.calls.actions.start_ai_assistant(call, assistant={"id": "assistant-app"})
            caller.quiet(0.5)
            client.calls.actions.add_ai_assistant_messages(call, messages=exchange, trigger_response=True)
            caller.wait(lambda: any(t["said"] for t in turns(receiver, call, "assistant")), timeout=20)
            with pytest.raises(urllib.error.HTTPError) as loose:
                api(bond, "POST", f"/calls/{call}/actions/ai_assistant_add_messages", {"messages": exchange[1:]})
            client.calls.actions.hangup(call)
            caller_sipp.wait()
    finally:
        model.close()
    asked = model.requests[0]["messages"]
    assert asked[-2] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "app_1", "type": "function", "function": {"name": "order_status", "arguments": "{}"}}]}, asked
    assert asked[-1] == {"role": "tool", "tool_call_id": "app_1", "content": json.dumps(ORDER)}, asked
    said = [t["said"] for t in turns(receiver, call, "assistant")]
    assert said == ["Your order has shipped."], said
    error = json.loads(loose.value.read())["errors"][0]
    assert (loose.value.code, error["code"], error["source"]["pointer"]) == (422, "10002", "/messages/0/tool_call_id")
