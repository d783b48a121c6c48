//! The bodies of `ai_assistant_start` and `ai_assistant_add_messages`
//! (Telnyx Call Control). Bond keeps no stored assistants: `assistant.id` names
//! the conversation in the events, and what Telnyx would take from the stored
//! assistant (instructions, model) comes from the request or Bond's defaults.
//! Fields Bond cannot honour yet answer 10015, so nobody mistakes them for done.

use std::time::Duration;

use bond_speech::chat::ToolCall;
use serde::Deserialize;
use serde_json::Value;

use super::fields::parse;
use crate::assistant::{AiGather, AssistantStart, Message, Role, Rules};
use crate::error::CallError;

/// Telnyx's limit on a greeting.
const MAX_GREETING_CHARS: usize = 3_000;
/// The longest voice name taken (Telnyx's are `Provider.model.voice`).
const MAX_VOICE_BYTES: usize = 200;
/// Said when the request gives no instructions (Bond has no stored assistant to take them from).
const DEFAULT_INSTRUCTIONS: &str =
    "You are a helpful voice assistant on a phone call. Answer in one or two short spoken sentences.";

#[derive(Debug, Deserialize)]
struct Start {
    assistant: Option<Assistant>,
    /// `gather_using_ai`'s voice name (`ai_assistant_start` has it in `assistant.voice_settings`).
    voice: Option<String>,
    greeting: Option<String>,
    interruption_settings: Option<Interruptions>,
    message_history: Option<Vec<Value>>,
    send_message_history_updates: Option<bool>,
    transcription: Option<Transcription>,
    participants: Option<Vec<super::assistant_join::Participant>>,
    /// Bond: how long to wait for more after words that stop mid-number or mid-clause.
    bond_unfinished_turn_wait_ms: Option<u64>,
    /// Bond: what the agent says when its answer is slow to come (empty: nothing).
    bond_filler_phrase: Option<String>,
    /// Bond: how long after the caller's turn the filler is said, if nothing plays yet.
    bond_silence_limit_ms: Option<u64>,
    /// Bond: what the agent says when the caller's turn could not be transcribed (empty: nothing).
    bond_not_heard_phrase: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Assistant {
    id: Option<String>,
    instructions: Option<String>,
    greeting: Option<String>,
    model: Option<String>,
    tools: Option<Vec<Value>>,
    voice_settings: Option<VoiceSettings>,
    external_llm: Option<Value>,
    fallback_config: Option<Value>,
    mcp_servers: Option<Value>,
}

/// Telnyx's voice settings: the voice name, handed to each text-to-speech
/// engine of the chain (the rest are a provider's knobs Bond does not turn).
#[derive(Debug, Deserialize)]
struct VoiceSettings {
    voice: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Interruptions {
    enable: Option<bool>,
    /// Bond: speech shorter than this does not interrupt (a cough, "mm-hm").
    bond_min_speech_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Transcription {
    language: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GatherUsingAi {
    parameters: Option<Value>,
    gather_ended_speech: Option<String>,
    language: Option<String>,
    send_partial_results: Option<bool>,
    user_response_timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct AddMessages {
    messages: Option<Vec<Value>>,
    trigger_response: Option<bool>,
}

fn invalid(detail: impl Into<String>, pointer: &str) -> CallError {
    CallError::invalid("10002", detail, pointer)
}

fn later(detail: &str, pointer: &str) -> CallError {
    CallError::invalid("10015", format!("{detail} is not available in Bond yet."), pointer)
}

/// `ai_assistant_start`'s body, checked.
pub fn start(body: &Value) -> Result<AssistantStart, CallError> {
    let asked: Start = parse(body)?;
    let assistant = asked.assistant.unwrap_or_default();
    for (present, what, pointer) in [
        (
            assistant.external_llm.is_some(),
            "external_llm (Bond uses the models its operator configured)",
            "/assistant/external_llm",
        ),
        (
            assistant.fallback_config.is_some(),
            "fallback_config (the fallback is Bond's configuration)",
            "/assistant/fallback_config",
        ),
        (assistant.mcp_servers.is_some(), "MCP servers", "/assistant/mcp_servers"),
    ] {
        if present {
            return Err(later(what, pointer));
        }
    }
    let greeting = asked.greeting.or(assistant.greeting).filter(|g| !g.trim().is_empty());
    if greeting.as_ref().is_some_and(|g| g.chars().count() > MAX_GREETING_CHARS) {
        return Err(invalid(format!("greeting is longer than {MAX_GREETING_CHARS} characters"), "/greeting"));
    }
    let mut rules = Rules::default();
    if let Some(interruptions) = asked.interruption_settings {
        rules.interruptions = interruptions.enable.unwrap_or(true);
        if let Some(ms) = interruptions.bond_min_speech_ms {
            rules.min_interruption = bounded(ms, 100, 5_000, "/interruption_settings/bond_min_speech_ms")?;
        }
    }
    if let Some(ms) = asked.bond_unfinished_turn_wait_ms {
        rules.unfinished_wait = bounded(ms, 0, 10_000, "/bond_unfinished_turn_wait_ms")?;
    }
    if let Some(ms) = asked.bond_silence_limit_ms {
        rules.silence_limit = bounded(ms, 500, 30_000, "/bond_silence_limit_ms")?;
    }
    for (phrase, rule, name) in [
        (asked.bond_filler_phrase, &mut rules.filler, "bond_filler_phrase"),
        (asked.bond_not_heard_phrase, &mut rules.not_heard, "bond_not_heard_phrase"),
    ] {
        let Some(phrase) = phrase else { continue };
        if phrase.chars().count() > MAX_GREETING_CHARS {
            return Err(invalid(format!("{name} is too long"), &format!("/{name}")));
        }
        *rule = phrase.trim().to_owned();
    }
    let language = asked.transcription.and_then(|t| t.language).filter(|l| l != "auto");
    let language = language.map(|l| language_tag(l, "/transcription/language")).transpose()?;
    let history = messages(asked.message_history.unwrap_or_default(), "/message_history")?;
    let (voice, pointer) = match assistant.voice_settings.and_then(|v| v.voice) {
        Some(voice) => (voice, "/assistant/voice_settings/voice"),
        None => (asked.voice.unwrap_or_default(), "/voice"),
    };
    if voice.len() > MAX_VOICE_BYTES {
        return Err(invalid(format!("a voice name is at most {MAX_VOICE_BYTES} bytes"), pointer));
    }
    let participants = asked.participants.unwrap_or_default().into_iter().enumerate();
    let participants = participants
        .map(|(i, p)| super::assistant_join::participant_at(p, &format!("/participants/{i}")))
        .collect::<Result<_, _>>()?;
    Ok(AssistantStart {
        assistant_id: assistant.id.unwrap_or_default(),
        instructions: assistant.instructions.unwrap_or_else(|| DEFAULT_INSTRUCTIONS.to_owned()),
        greeting,
        model: assistant.model.filter(|m| !m.is_empty()),
        language: language.unwrap_or_else(|| "en".to_owned()),
        voice,
        history,
        rules,
        send_history_updates: asked.send_message_history_updates.unwrap_or(false),
        gather: None,
        tools: super::assistant_tools::tools(assistant.tools.as_deref().unwrap_or_default())?,
        participants,
    })
}

fn language_tag(language: String, pointer: &str) -> Result<String, CallError> {
    let tag = language.len() <= 35 && language.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if tag && !language.is_empty() {
        Ok(language)
    } else {
        Err(invalid(format!("{} must be a language tag", pointer[1..].replace('/', ".")), pointer))
    }
}

/// `gather_using_ai`'s body: an agent start that collects `parameters` (a JSON
/// Schema object), then says `gather_ended_speech` and ends.
pub fn gather_using_ai(body: &Value) -> Result<AssistantStart, CallError> {
    let asked: GatherUsingAi = parse(body)?;
    let parameters = match asked.parameters {
        Some(schema @ Value::Object(_)) => schema,
        Some(_) => return Err(invalid("parameters must be a JSON Schema object", "/parameters")),
        None => return Err(CallError::invalid("10005", "parameters is required", "/parameters")),
    };
    let ended_speech = asked.gather_ended_speech.filter(|s| !s.trim().is_empty());
    if ended_speech.as_ref().is_some_and(|s| s.chars().count() > MAX_GREETING_CHARS) {
        let detail = format!("gather_ended_speech is longer than {MAX_GREETING_CHARS} characters");
        return Err(invalid(detail, "/gather_ended_speech"));
    }
    let mut start = start(body)?;
    if let Some(ms) = asked.user_response_timeout_ms {
        let timeout = bounded(ms, 1_000, 600_000, "/user_response_timeout_ms")?;
        start.rules.user_response_timeout = Some(timeout);
    }
    if let Some(language) = asked.language {
        start.language = language_tag(language, "/language")?;
    }
    let gather = AiGather { parameters, ended_speech, partial: asked.send_partial_results.unwrap_or(false) };
    start.instructions = format!("{} {}", start.instructions, gather.instructions());
    start.gather = Some(gather);
    Ok(start)
}

/// `ai_assistant_add_messages`' body: the messages, and whether they make the agent answer now.
pub fn add_messages(body: &Value) -> Result<(Vec<Message>, bool), CallError> {
    let asked: AddMessages = parse(body)?;
    let messages = messages(asked.messages.unwrap_or_default(), "/messages")?;
    if messages.is_empty() {
        return Err(invalid("messages must hold at least one message", "/messages"));
    }
    Ok((messages, asked.trigger_response.unwrap_or(false)))
}

fn bounded(ms: u64, low: u64, high: u64, pointer: &str) -> Result<Duration, CallError> {
    if (low..=high).contains(&ms) {
        Ok(Duration::from_millis(ms))
    } else {
        Err(invalid(format!("{} must be {low} to {high}", &pointer[1..]), pointer))
    }
}

/// Messages in OpenAI's shape (`role`, `content`); `developer` is a system
/// message. An assistant message may carry the tools it called (`tool_calls`,
/// its `content` then optional), and a `tool` message answers one of them
/// (`tool_call_id`) called earlier in the same list: the application hands the
/// model a whole exchange, as OpenAI takes it.
fn messages(values: Vec<Value>, pointer: &str) -> Result<Vec<Message>, CallError> {
    let mut out: Vec<Message> = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let at = format!("{pointer}/{i}");
        let role = match value["role"].as_str() {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some("system" | "developer") => Role::System,
            Some("tool") => Role::Tool,
            _ => {
                return Err(invalid(
                    "role must be user, assistant, system, developer or tool",
                    &format!("{at}/role"),
                ))
            }
        };
        let tool_calls = match (role, &value["tool_calls"]) {
            (_, Value::Null) => Vec::new(),
            (Role::Assistant, calls) => tool_calls(calls, &format!("{at}/tool_calls"))?,
            _ => {
                return Err(invalid("only an assistant message has tool_calls", &format!("{at}/tool_calls")))
            }
        };
        let content = match value["content"].as_str() {
            Some(content) => content.to_owned(),
            None if !tool_calls.is_empty() && value["content"].is_null() => String::new(),
            None => return Err(invalid("content must be text", &format!("{at}/content"))),
        };
        let mut message = Message { tool_calls, ..Message::new(role, content) };
        if role == Role::Tool {
            let id = value["tool_call_id"].as_str().unwrap_or_default();
            let called = out.iter().any(|m| m.tool_calls.iter().any(|c| c.id == id));
            if !called {
                return Err(invalid(
                    "tool_call_id must name a tool call of an earlier assistant message in the list",
                    &format!("{at}/tool_call_id"),
                ));
            }
            message.tool_call_id = Some(id.to_owned());
        }
        out.push(message);
    }
    // The model refuses a history with a call nobody answered, so it is refused here.
    for (i, message) in out.iter().enumerate() {
        let answered = |id: &str| out[i..].iter().any(|m| m.tool_call_id.as_deref() == Some(id));
        if let Some(open) = message.tool_calls.iter().position(|c| !answered(&c.id)) {
            return Err(invalid(
                "each tool call needs a tool message answering it later in the list",
                &format!("{pointer}/{i}/tool_calls/{open}"),
            ));
        }
    }
    Ok(out)
}

/// An assistant message's `tool_calls`: `[{id, type: "function", function:
/// {name, arguments}}]`; Telnyx's shape leaves `arguments` out, so it may be
/// missing (`{}`).
fn tool_calls(value: &Value, pointer: &str) -> Result<Vec<ToolCall>, CallError> {
    let calls = value.as_array().ok_or_else(|| invalid("tool_calls must be a list", pointer))?;
    calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let function = &call["function"];
            let arguments = match &function["arguments"] {
                Value::Null => Some("{}"),
                arguments => arguments.as_str(),
            };
            let kind = call["type"].as_str().unwrap_or("function");
            match (call["id"].as_str(), function["name"].as_str(), arguments, kind) {
                (Some(id), Some(name), Some(arguments), "function") if !id.is_empty() && !name.is_empty() => {
                    Ok(ToolCall { id: id.to_owned(), name: name.to_owned(), arguments: arguments.to_owned() })
                }
                _ => Err(invalid(
                    "a tool call has an id, type function, and a function with a name (and its arguments as JSON text)",
                    &format!("{pointer}/{i}"),
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn telnyx_fields_fill_the_start_and_bonds_defaults_the_rest() {
        let body = json!({
            "assistant": { "id": "assistant-1", "instructions": "Be brief.", "model": "small" },
            "greeting": "Hello!",
            "interruption_settings": { "enable": true, "bond_min_speech_ms": 400 },
            "transcription": { "language": "en-US" },
            "message_history": [{ "role": "developer", "content": "The caller is Jane." }],
            "voice": "Telnyx.KokoroTTS.af",
        });
        let start = start(&body).unwrap();
        assert_eq!(start.assistant_id, "assistant-1");
        assert_eq!(start.greeting.as_deref(), Some("Hello!"));
        assert_eq!(start.model.as_deref(), Some("small"));
        assert_eq!(start.language, "en-US");
        assert_eq!(start.rules.min_interruption, Duration::from_millis(400));
        assert_eq!(start.history, vec![Message::new(Role::System, "The caller is Jane.")]);
        let joined =
            super::start(&json!({ "participants": [{ "id": "v3:leg", "role": "user", "name": "Dana" }] }));
        assert_eq!(joined.unwrap().participants[0].name.as_deref(), Some("Dana"));
        let nameless = super::start(&json!({ "participants": [{ "role": "user" }] }));
        assert!(
            matches!(nameless, Err(CallError::Invalid { pointer, .. }) if pointer == "/participants/0/id")
        );
        let bare = super::start(&json!({})).unwrap();
        assert_eq!(bare.instructions, DEFAULT_INSTRUCTIONS);
        assert_eq!(bare.language, "en");
        assert!(bare.rules.interruptions);
    }

    #[test]
    fn what_bond_cannot_honour_yet_is_refused_by_name() {
        for (body, pointer) in [
            (json!({ "assistant": { "tools": [{ "type": "retrieval" }] } }), "/assistant/tools/0/type"),
            (
                json!({ "assistant": { "external_llm": { "base_url": "http://x" } } }),
                "/assistant/external_llm",
            ),
            (json!({ "participants": [{ "id": "v3:leg", "role": "assistant" }] }), "/participants/0/role"),
        ] {
            match start(&body) {
                Err(CallError::Invalid { code: "10015", pointer: p, .. }) => assert_eq!(p, pointer),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn gather_using_ai_collects_its_parameters_through_a_function() {
        let schema = json!({ "type": "object", "properties": { "order": { "type": "string" } }, "required": ["order"] });
        let body = json!({ "parameters": schema, "gather_ended_speech": "Thanks!", "language": "en", "greeting": "Hi." });
        let start = gather_using_ai(&body).unwrap();
        let gather = start.gather.as_ref().unwrap();
        assert_eq!(gather.parameters, schema);
        assert_eq!(gather.ended_speech.as_deref(), Some("Thanks!"));
        assert!(start.instructions.contains("gather_complete") && start.instructions.contains("\"order\""));
        assert_eq!(gather.tools().len(), 1);
        assert_eq!(gather.tools()[0]["function"]["parameters"], schema);
        assert_eq!(start.greeting.as_deref(), Some("Hi."));
        for (body, code, pointer) in [
            (json!({}), "10005", "/parameters"),
            (json!({ "parameters": "order" }), "10002", "/parameters"),
            (json!({ "parameters": {}, "language": "en us" }), "10002", "/language"),
        ] {
            match gather_using_ai(&body) {
                Err(CallError::Invalid { code: c, pointer: p, .. }) => {
                    assert_eq!((c, p.as_str()), (code, pointer))
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_voice_comes_from_voice_settings_or_gather_using_ais_voice() {
        let settings = json!({ "assistant": { "voice_settings": { "voice": "ElevenLabs.m.v" } } });
        assert_eq!(start(&settings).unwrap().voice, "ElevenLabs.m.v");
        let gather = json!({ "parameters": {}, "voice": "male" });
        assert_eq!(gather_using_ai(&gather).unwrap().voice, "male");
        assert_eq!(start(&json!({})).unwrap().voice, "");
        let long = json!({ "assistant": { "voice_settings": { "voice": "v".repeat(201) } } });
        match start(&long) {
            Err(CallError::Invalid { pointer, .. }) => assert_eq!(pointer, "/assistant/voice_settings/voice"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn partial_results_offer_a_second_function_that_requires_nothing() {
        let schema = json!({ "type": "object", "properties": { "order": { "type": "string" } }, "required": ["order"] });
        let start = gather_using_ai(&json!({ "parameters": schema, "send_partial_results": true })).unwrap();
        let tools = start.gather.as_ref().unwrap().tools();
        let names: Vec<_> = tools.iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["gather_complete", "gather_partial"]);
        assert_eq!(tools[0]["function"]["parameters"], schema);
        let so_far = json!({ "type": "object", "properties": { "order": { "type": "string" } } });
        assert_eq!(tools[1]["function"]["parameters"], so_far);
        assert!(start.instructions.contains("call the function gather_partial"));
    }

    #[test]
    fn wrong_fields_point_at_themselves() {
        for (body, pointer) in [
            (json!({ "greeting": "x".repeat(3001) }), "/greeting"),
            (
                json!({ "interruption_settings": { "bond_min_speech_ms": 20 } }),
                "/interruption_settings/bond_min_speech_ms",
            ),
            (json!({ "message_history": [{ "role": "user" }] }), "/message_history/0/content"),
            (json!({ "transcription": { "language": "en us" } }), "/transcription/language"),
        ] {
            match start(&body) {
                Err(CallError::Invalid { code: "10002", pointer: p, .. }) => assert_eq!(p, pointer),
                other => panic!("{body}: {other:?}"),
            }
        }
        assert!(add_messages(&json!({ "messages": [] })).is_err());
        let (added, now) = add_messages(
            &json!({ "messages": [{ "role": "user", "content": "Hi" }], "trigger_response": true }),
        )
        .unwrap();
        assert_eq!((added.len(), now), (1, true));
    }

    #[test]
    fn the_application_hands_the_model_a_whole_tool_exchange() {
        let call = json!({ "id": "call_1", "type": "function", "function": { "name": "lookup", "arguments": "{\"order\":\"42\"}" } });
        let asked = json!({ "messages": [
            { "role": "assistant", "content": null, "tool_calls": [call] },
            { "role": "tool", "tool_call_id": "call_1", "content": "{\"status\":\"shipped\"}" },
        ] });
        let (added, _) = add_messages(&asked).unwrap();
        assert_eq!(added[0].tool_calls[0].name, "lookup");
        assert_eq!(added[0].tool_calls[0].arguments, "{\"order\":\"42\"}");
        assert_eq!((added[1].role, added[1].tool_call_id.as_deref()), (Role::Tool, Some("call_1")));
        let start = start(&json!({ "message_history": asked["messages"] })).unwrap();
        assert_eq!(start.history, added);
        // Telnyx's shape: no arguments, no content.
        let telnyx = json!({ "messages": [
            { "role": "assistant", "tool_calls": [{ "id": "c", "type": "function", "function": { "name": "lookup" } }] },
            { "role": "tool", "tool_call_id": "c", "content": "ok" },
        ] });
        let (added, _) = add_messages(&telnyx).unwrap();
        assert_eq!((added[0].tool_calls[0].arguments.as_str(), added[0].content.as_str()), ("{}", ""));
    }

    #[test]
    fn a_tool_exchange_with_a_loose_end_is_refused_where_it_is_loose() {
        let call = json!({ "id": "call_1", "type": "function", "function": { "name": "lookup", "arguments": "{}" } });
        for (messages, pointer) in [
            (
                json!([{ "role": "tool", "tool_call_id": "call_1", "content": "42" }]),
                "/messages/0/tool_call_id",
            ),
            (
                json!([{ "role": "assistant", "content": null, "tool_calls": [call] },
                       { "role": "tool", "tool_call_id": "call_2", "content": "42" }]),
                "/messages/1/tool_call_id",
            ),
            (
                json!([{ "role": "assistant", "content": "One moment.", "tool_calls": [call] }]),
                "/messages/0/tool_calls/0",
            ),
            (json!([{ "role": "user", "content": "Hi", "tool_calls": [call] }]), "/messages/0/tool_calls"),
            (
                json!([{ "role": "assistant", "content": null, "tool_calls": [{ "id": "x" }] }]),
                "/messages/0/tool_calls/0",
            ),
        ] {
            match add_messages(&json!({ "messages": messages })) {
                Err(CallError::Invalid { code: "10002", pointer: p, .. }) => assert_eq!(p, pointer),
                other => panic!("{messages}: {other:?}"),
            }
        }
    }
}
