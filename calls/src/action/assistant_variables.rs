//! Telnyx's dynamic variables in `ai_assistant_start` and `gather_using_ai`:
//! `{{name}}` in the instructions, the greetings, the tools and the voice is replaced by
//! the request's `assistant.dynamic_variables`, or by the call's own (`telnyx_*`),
//! before the fields are checked, so a transfer target or a webhook URL taken
//! from a variable is checked as a written one is. A variable with no value is
//! refused at the field that names it: Bond has no stored assistant or variables
//! webhook to take one from, and the agent must not say "{{name}}" to a caller.

use std::collections::HashMap;

use serde_json::Value;
use time::OffsetDateTime;

use bond_store::CallRecord;

use crate::error::CallError;

/// The fields whose strings may name variables (Telnyx: instructions, greeting,
/// tools, and the voice).
const TEMPLATED: &[&[&str]] = &[
    &["assistant", "instructions"],
    &["assistant", "greeting"],
    &["greeting"],
    &["assistant", "tools"],
    &["assistant", "voice_settings", "voice"],
];

/// The longest a string may grow to once its variables are filled (a large
/// value named many times would otherwise multiply the request's size).
const MAX_FILLED_BYTES: usize = 64 * 1024;

/// What the call's own variables are made of.
struct Parties<'a> {
    incoming: bool,
    from: &'a str,
    to: &'a str,
    caller_name: &'a str,
}

/// `body` with its variables replaced; unchanged when it names none.
pub fn resolve(body: &Value, call: &CallRecord, now: OffsetDateTime) -> Result<Value, CallError> {
    let parties = Parties {
        incoming: call.direction == "incoming",
        from: &call.from,
        to: &call.to,
        caller_name: call.from_display_name.as_deref().unwrap_or_default(),
    };
    resolve_for(body, &parties, now)
}

fn resolve_for(body: &Value, parties: &Parties<'_>, now: OffsetDateTime) -> Result<Value, CallError> {
    let mut values = call_variables(parties, now);
    match body.pointer("/assistant/dynamic_variables") {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) => {
            for (name, value) in given {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => {
                        let pointer = format!("/assistant/dynamic_variables/{name}");
                        return Err(invalid(
                            "a dynamic variable is a string, a number or a boolean",
                            pointer,
                        ));
                    }
                };
                values.insert(name.clone(), text);
            }
        }
        Some(_) => {
            return Err(invalid(
                "assistant.dynamic_variables must be an object",
                "/assistant/dynamic_variables",
            ))
        }
    }
    let mut body = body.clone();
    for path in TEMPLATED {
        let pointer: String = path.iter().map(|p| format!("/{p}")).collect();
        if let Some(field) = body.pointer_mut(&pointer) {
            fill(field, &values, &pointer)?;
        }
    }
    Ok(body)
}

/// The call's own variables, as Telnyx names them.
fn call_variables(call: &Parties<'_>, now: OffsetDateTime) -> HashMap<String, String> {
    let (agent, end_user) = if call.incoming { (call.to, call.from) } else { (call.from, call.to) };
    let channel = if end_user.starts_with("agent:") { "web_call" } else { "phone_call" };
    let time = format!(
        "{}, {} {} {} {:02}:{:02}:{:02} {} UTC",
        now.weekday(),
        now.month(),
        now.day(),
        now.year(),
        (now.hour() + 11) % 12 + 1,
        now.minute(),
        now.second(),
        if now.hour() < 12 { "AM" } else { "PM" },
    );
    [
        ("telnyx_call_to", call.to),
        ("telnyx_call_from", call.from),
        ("telnyx_call_caller_id_name", call.caller_name),
        ("telnyx_agent_target", agent),
        ("telnyx_end_user_target", end_user),
        ("telnyx_conversation_channel", channel),
        ("telnyx_current_time", &time),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect()
}

/// Replace the variables in every string of `field` (at `pointer`).
fn fill(field: &mut Value, values: &HashMap<String, String>, pointer: &str) -> Result<(), CallError> {
    match field {
        Value::String(text) => {
            if let Some(filled) = substitute(text, values).map_err(|why| invalid(why, pointer))? {
                // A transfer's targets given as one variable: its value is their JSON list
                // (only there: any other field named `targets` keeps its string).
                *field = match serde_json::from_str::<Value>(&filled) {
                    Ok(list @ Value::Array(_))
                        if pointer.ends_with("/transfer/targets") || pointer.ends_with("/invite/targets") =>
                    {
                        list
                    }
                    _ => Value::String(filled),
                };
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                fill(item, values, &format!("{pointer}/{i}"))?;
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields.iter_mut() {
                fill(item, values, &format!("{pointer}/{key}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `text` with each `{{ name }}` replaced; `None` when it names none, why not
/// as the error (the first name without a value, or the text grown too long).
fn substitute(text: &str, values: &HashMap<String, String>) -> Result<Option<String>, String> {
    let mut out = String::with_capacity(text.len());
    let (mut rest, mut named) = (text, false);
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            // Not a variable (JSON in a description, say): kept as written.
            out.push_str(&rest[..start + 2]);
            rest = after;
            continue;
        }
        let Some(value) = values.get(name) else {
            return Err(format!("the dynamic variable {name} has no value (assistant.dynamic_variables)"));
        };
        if out.len() + start + value.len() > MAX_FILLED_BYTES {
            return Err(format!(
                "the text is longer than {MAX_FILLED_BYTES} bytes once its variables are filled"
            ));
        }
        out.push_str(&rest[..start]);
        out.push_str(value);
        rest = &after[end + 2..];
        named = true;
    }
    out.push_str(rest);
    Ok(named.then_some(out))
}

fn invalid(detail: impl Into<String>, pointer: impl Into<String>) -> CallError {
    CallError::invalid("10002", detail, pointer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Monday, February 24 2025 04:04:15 PM UTC.
    const NOW: i64 = 1_740_413_055;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(NOW).unwrap()
    }

    fn call<'a>(direction: &str, from: &'a str, to: &'a str) -> Parties<'a> {
        Parties { incoming: direction == "incoming", from, to, caller_name: "" }
    }

    #[test]
    fn variables_fill_the_instructions_greeting_and_tools_request_values_first() {
        let body = json!({
            "greeting": "Hello {{ customer_name }}, you called {{telnyx_agent_target}}.",
            "assistant": {
                "instructions": "Today is {{telnyx_current_time}}; the caller is {{telnyx_end_user_target}} on a {{telnyx_conversation_channel}}. Age {{age}}, VIP {{vip}}.",
                "dynamic_variables": { "customer_name": "Jane", "age": 29, "vip": true },
                "tools": [{ "type": "transfer", "transfer": { "targets": [{ "name": "desk", "to": "{{desk}}" }] } }],
            },
        });
        let mut with_desk = body.clone();
        with_desk["assistant"]["dynamic_variables"]["desk"] = json!("+15550001111");
        let filled =
            resolve_for(&with_desk, &call("incoming", "+15551230000", "+15559870000"), now()).unwrap();
        assert_eq!(filled["greeting"], "Hello Jane, you called +15559870000.");
        assert_eq!(
            filled["assistant"]["instructions"],
            "Today is Monday, February 24 2025 04:04:15 PM UTC; the caller is +15551230000 on a phone_call. Age 29, VIP true."
        );
        assert_eq!(filled["assistant"]["tools"][0]["transfer"]["targets"][0]["to"], "+15550001111");
        // Outgoing, the end user is the called party.
        let filled = resolve_for(&with_desk, &call("outgoing", "+15559870000", "agent:dana"), now()).unwrap();
        assert_eq!(filled["greeting"], "Hello Jane, you called +15559870000.");
        assert!(filled["assistant"]["instructions"].as_str().unwrap().contains("agent:dana on a web_call"));
        // A variable with no value is refused where it is named.
        match resolve_for(&body, &call("incoming", "a", "b"), now()) {
            Err(CallError::Invalid { code: "10002", pointer, detail }) => {
                assert_eq!(pointer, "/assistant/tools/0/transfer/targets/0/to");
                assert!(detail.contains("desk"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_transfer_targets_variable_becomes_its_list_and_braces_that_are_not_names_stay() {
        let targets = r#"[{"name": "Support", "to": "sip:support@pbx.example"}]"#;
        let body = json!({ "assistant": {
            "dynamic_variables": { "targets": targets },
            "instructions": "Answer in JSON like {{\"a\": 1}}.",
            "tools": [{ "type": "transfer", "transfer": { "targets": "{{targets}}" } }],
        } });
        let filled = resolve_for(&body, &call("incoming", "a", "b"), now()).unwrap();
        assert_eq!(
            filled["assistant"]["tools"][0]["transfer"]["targets"],
            json!([{ "name": "Support", "to": "sip:support@pbx.example" }])
        );
        assert_eq!(filled["assistant"]["instructions"], "Answer in JSON like {{\"a\": 1}}.");
    }

    #[test]
    fn a_value_named_too_often_is_refused_not_multiplied() {
        let body = json!({ "assistant": {
            "dynamic_variables": { "big": "x".repeat(1_000) },
            "instructions": "{{big}}".repeat(100),
        } });
        match resolve_for(&body, &call("incoming", "a", "b"), now()) {
            Err(CallError::Invalid { code: "10002", pointer, detail }) => {
                assert_eq!(pointer, "/assistant/instructions");
                assert!(detail.contains("longer than"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_variables_are_refused_at_their_pointer() {
        for (variables, pointer) in [
            (json!("x"), "/assistant/dynamic_variables"),
            (json!({ "list": [1] }), "/assistant/dynamic_variables/list"),
        ] {
            let body = json!({ "assistant": { "dynamic_variables": variables } });
            match resolve_for(&body, &call("incoming", "a", "b"), now()) {
                Err(CallError::Invalid { code: "10002", pointer: p, .. }) => assert_eq!(p, pointer),
                other => panic!("{other:?}"),
            }
        }
    }
}
