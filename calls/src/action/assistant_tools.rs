//! `assistant.tools` of `ai_assistant_start`, checked: Telnyx's `webhook`,
//! `hangup`, `transfer`, `invite` and `skip_turn` tools. Its other kinds (`retrieval`, calendars)
//! answer 10015 by name.

use std::time::Duration;

use serde_json::Value;

use crate::assistant::{AiGather, OnVoicemail, Tool, TransferTool, Webhook};
use crate::error::CallError;

/// The most tools one agent is offered.
const MAX_TOOLS: usize = 32;
/// What `skip_turn` is offered as, unless its `description` says otherwise.
const SKIP_TURN: &str =
    "Say nothing this turn: call this when the people on the call are talking to each other, not to you.";
/// A webhook tool's wait for the application, unless `timeout_ms` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

fn invalid(detail: impl Into<String>, pointer: &str) -> CallError {
    CallError::invalid("10002", detail, pointer)
}

/// The tools, checked; names are unique and none is `gather_using_ai`'s own.
pub fn tools(values: &[Value]) -> Result<Vec<Tool>, CallError> {
    if values.len() > MAX_TOOLS {
        return Err(invalid(format!("at most {MAX_TOOLS} tools"), "/assistant/tools"));
    }
    let mut tools: Vec<Tool> = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let at = format!("/assistant/tools/{i}");
        let tool = match value["type"].as_str() {
            Some("webhook") => Tool::Webhook(Box::new(webhook(value, &at)?)),
            Some("hangup") => {
                let description = value["hangup"]["description"].as_str().unwrap_or("Hang up the call.");
                Tool::Hangup { description: description.to_owned() }
            }
            Some("skip_turn") => {
                let description = value["skip_turn"]["description"].as_str().unwrap_or(SKIP_TURN);
                Tool::SkipTurn { description: description.to_owned() }
            }
            Some(kind @ ("transfer" | "invite")) => {
                let spec = &value[kind];
                let mut tool = targets(spec, kind, &format!("{at}/{kind}"))?;
                let detection = &spec["voicemail_detection"];
                tool.voicemail = voicemail_detection(detection, &format!("{at}/{kind}/voicemail_detection"))?;
                match kind {
                    "transfer" => Tool::Transfer(Box::new(tool)),
                    _ => Tool::Invite(Box::new(tool)),
                }
            }
            Some(other @ ("retrieval" | "book_appointment" | "check_availability" | "handoff")) => {
                let detail = format!("The {other} tool is not available in Bond yet.");
                return Err(CallError::invalid("10015", detail, format!("{at}/type")));
            }
            _ => {
                let detail = "type must be webhook, hangup, transfer, invite or skip_turn";
                return Err(invalid(detail, &format!("{at}/type")));
            }
        };
        if tool.name() == AiGather::FUNCTION || tools.iter().any(|t| t.name() == tool.name()) {
            let detail = format!("the tool name {} is taken", tool.name());
            return Err(invalid(detail, &at));
        }
        tools.push(tool);
    }
    Ok(tools)
}

fn webhook(value: &Value, at: &str) -> Result<Webhook, CallError> {
    let hook = &value["webhook"];
    let text = |field: &str| hook[field].as_str().map(str::trim).filter(|s| !s.is_empty());
    let name =
        text("name").ok_or_else(|| invalid("webhook.name is required", &format!("{at}/webhook/name")))?;
    if name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        let detail = "webhook.name must be 1 to 64 letters, digits, _ or -";
        return Err(invalid(detail, &format!("{at}/webhook/name")));
    }
    let description = text("description").unwrap_or_default();
    let url = text("url").ok_or_else(|| invalid("webhook.url is required", &format!("{at}/webhook/url")))?;
    let url = bond_store::egress::http_url(url)
        .map_err(|refused| invalid(refused, &format!("{at}/webhook/url")))?;
    let method = match text("method").unwrap_or("POST").to_ascii_uppercase().as_str() {
        "GET" => reqwest::Method::GET,
        "POST" => reqwest::Method::POST,
        "PUT" => reqwest::Method::PUT,
        "PATCH" => reqwest::Method::PATCH,
        "DELETE" => reqwest::Method::DELETE,
        _ => {
            return Err(invalid(
                "webhook.method must be GET, POST, PUT, PATCH or DELETE",
                &format!("{at}/webhook/method"),
            ))
        }
    };
    for field in ["path_parameters", "query_parameters"] {
        if !hook[field].is_null() {
            let detail = format!("webhook.{field} is not available in Bond yet (body_parameters are sent as the query of a GET or DELETE)");
            return Err(CallError::invalid("10015", detail, format!("{at}/webhook/{field}")));
        }
    }
    let parameters = match &hook["body_parameters"] {
        Value::Null => serde_json::json!({"type": "object", "properties": {}}),
        schema @ Value::Object(_) if schema["type"] == "object" => schema.clone(),
        _ => {
            let detail = "webhook.body_parameters must be a JSON Schema object (type: object)";
            return Err(invalid(detail, &format!("{at}/webhook/body_parameters")));
        }
    };
    let headers = headers(&hook["headers"], &format!("{at}/webhook/headers"))?;
    let timeout = match value["timeout_ms"].as_u64() {
        None if value["timeout_ms"].is_null() => DEFAULT_TIMEOUT,
        Some(ms) if (100..=30_000).contains(&ms) => Duration::from_millis(ms),
        _ => return Err(invalid("timeout_ms must be 100 to 30000", &format!("{at}/timeout_ms"))),
    };
    Ok(Webhook {
        name: name.to_owned(),
        description: description.to_owned(),
        url,
        method,
        headers,
        parameters,
        timeout,
    })
}

/// A `transfer` or `invite` tool's targets (`kind` names it): Telnyx's
/// `targets` [{`to`, `name`}] (each `to` any destination a transfer takes)
/// and `from`, each checked as the `transfer` action checks them. Bond's own
/// `timeout_secs` on a target is how long it may ring, as on the action
/// (5-600 s; 30 when not given); Bond's own `ringtone` is what the caller
/// hears while a transfer's target rings.
fn targets(spec: &Value, kind: &str, at: &str) -> Result<TransferTool, CallError> {
    let pointer = format!("{at}/targets");
    // A variable naming the list was filled in before (`assistant_variables.rs`).
    let Some(listed) = spec["targets"].as_array() else {
        let detail = format!(
            "{kind}.targets must be a list of {{to, name}}, or a dynamic variable holding one as JSON"
        );
        return Err(invalid(detail, &pointer));
    };
    if listed.is_empty() || listed.len() > MAX_TOOLS {
        return Err(invalid(format!("{kind}.targets must hold 1 to {MAX_TOOLS} targets"), &pointer));
    }
    let mut targets: Vec<(String, crate::transfer::Transfer)> = Vec::with_capacity(listed.len());
    for (i, target) in listed.iter().enumerate() {
        let at = format!("{pointer}/{i}");
        let to =
            target["to"].as_str().ok_or_else(|| invalid("each target needs a to", &format!("{at}/to")))?;
        let name = target["name"].as_str().map(str::trim).filter(|n| !n.is_empty()).unwrap_or(to);
        let mut body = serde_json::json!({ "to": to });
        if let Some(from) = spec["from"].as_str() {
            body["from"] = Value::from(from);
        }
        if !target["timeout_secs"].is_null() {
            body["timeout_secs"] = target["timeout_secs"].clone();
        }
        // Checked now as the transfer action checks them, at this target's field.
        let checked = crate::transfer::transfer_request(&body).map_err(|e| match e {
            CallError::Invalid { code, detail, pointer } => {
                CallError::invalid(code, detail, format!("{at}{pointer}"))
            }
            other => other,
        })?;
        if targets.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(invalid(format!("two targets are named {name}"), &at));
        }
        targets.push((name.to_owned(), checked));
    }
    let ringtone = super::fields::ringtone(&spec["ringtone"], &format!("{at}/ringtone"))?;
    Ok(TransferTool { targets, voicemail: None, ringtone })
}

/// Telnyx's `voicemail_detection` of a target (`detection_mode`,
/// `on_voicemail_detected`): what a voicemail that answers gets, when the
/// call is screened (`premium`).
fn voicemail_detection(value: &Value, at: &str) -> Result<Option<OnVoicemail>, CallError> {
    if value.is_null() {
        return Ok(None);
    }
    let screen = match value["detection_mode"].as_str() {
        None | Some("disabled") => false,
        Some("premium") => true,
        Some(_) => {
            return Err(invalid(
                "detection_mode must be disabled or premium",
                &format!("{at}/detection_mode"),
            ))
        }
    };
    let on = &value["on_voicemail_detected"];
    let action = match on["action"].as_str() {
        _ if on["action"].is_null() => OnVoicemail::Stop,
        Some("stop_transfer") => OnVoicemail::Stop,
        Some("leave_message_and_stop_transfer") => OnVoicemail::LeaveMessage(voicemail_message(
            &on["voicemail_message"],
            &format!("{at}/on_voicemail_detected/voicemail_message"),
        )?),
        _ => {
            return Err(invalid(
                "on_voicemail_detected.action must be stop_transfer or leave_message_and_stop_transfer",
                &format!("{at}/on_voicemail_detected/action"),
            ))
        }
    };
    Ok(screen.then_some(action))
}

/// `voicemail_message` of `leave_message_and_stop_transfer`: the text to
/// speak (`type: message`). The warm transfer's instructions are refused
/// (10015): Bond's transfer tool has none.
fn voicemail_message(value: &Value, at: &str) -> Result<String, CallError> {
    match value["type"].as_str() {
        None | Some("message") => {}
        Some("warm_transfer_instructions") => {
            let detail = "A voicemail message from warm transfer instructions is not available in Bond yet.";
            return Err(CallError::invalid("10015", detail, format!("{at}/type")));
        }
        Some(_) => {
            return Err(invalid("type must be message or warm_transfer_instructions", &format!("{at}/type")))
        }
    }
    value["message"]
        .as_str()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| invalid("leaving a message needs its message", &format!("{at}/message")))
}

/// `[{name, value}]`, each a valid HTTP header.
fn headers(value: &Value, pointer: &str) -> Result<Vec<(String, String)>, CallError> {
    let Some(list) = value.as_array() else {
        return if value.is_null() {
            Ok(Vec::new())
        } else {
            Err(invalid("headers must be a list", pointer))
        };
    };
    list.iter()
        .enumerate()
        .map(|(i, header)| {
            let (Some(name), Some(value)) = (header["name"].as_str(), header["value"].as_str()) else {
                return Err(invalid("each header needs a name and a value", &format!("{pointer}/{i}")));
            };
            let valid = reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && reqwest::header::HeaderValue::from_str(value).is_ok();
            if !valid {
                return Err(invalid(
                    format!("header {name} is not a valid HTTP header"),
                    &format!("{pointer}/{i}"),
                ));
            }
            Ok((name.to_owned(), value.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order_status() -> Value {
        json!({"type": "webhook", "timeout_ms": 2000, "webhook": {
            "name": "order_status", "description": "Look up an order.",
            "url": "https://shop.example/orders", "method": "post",
            "headers": [{"name": "Authorization", "value": "Bearer s"}],
            "body_parameters": {"type": "object", "properties": {"order": {"type": "string"}}}}})
    }

    #[test]
    fn telnyx_webhook_and_hangup_tools_become_functions_the_model_is_offered() {
        let hangup = json!({"type": "hangup", "hangup": {"description": "End the call."}});
        let tools = tools(&[order_status(), hangup]).unwrap();
        let Tool::Webhook(webhook) = &tools[0] else { panic!("{tools:?}") };
        assert_eq!(webhook.method, reqwest::Method::POST);
        assert_eq!(webhook.timeout, Duration::from_millis(2000));
        assert_eq!(webhook.headers, vec![("Authorization".to_owned(), "Bearer s".to_owned())]);
        assert_eq!(tools[0].definition()["function"]["parameters"]["properties"]["order"]["type"], "string");
        assert_eq!(tools[1].definition()["function"]["name"], "hangup");
        let invite =
            json!({"type": "invite", "invite": {"targets": [{"name": "Specialist", "to": "loop:echo"}]}});
        let invite = &super::tools(&[invite]).unwrap()[0];
        assert_eq!(invite.definition()["function"]["name"], "invite");
        assert_eq!(
            invite.definition()["function"]["parameters"]["properties"]["target"]["enum"],
            json!(["Specialist"])
        );
        let detect = |detection: Value| {
            super::tools(&[
                json!({"type": "invite", "invite": {"targets": [{"to": "loop:echo"}], "voicemail_detection": detection}}),
            ])
        };
        let screened = |tools: Vec<Tool>| matches!(&tools[0], Tool::Invite(t) if t.voicemail.is_some());
        assert!(screened(detect(json!({"detection_mode": "premium"})).unwrap()));
        let stop = json!({"detection_mode": "premium", "on_voicemail_detected": {"action": "stop_transfer"}});
        assert!(screened(detect(stop).unwrap()));
        assert!(!screened(detect(json!({"detection_mode": "disabled"})).unwrap()));
        let leave = |message: Value| {
            let on = json!({"action": "leave_message_and_stop_transfer", "voicemail_message": message});
            detect(json!({"detection_mode": "premium", "on_voicemail_detected": on}))
        };
        let Tool::Invite(left) = &leave(json!({"type": "message", "message": "Call us back."})).unwrap()[0]
        else {
            panic!()
        };
        assert_eq!(left.voicemail, Some(OnVoicemail::LeaveMessage("Call us back.".into())));
        let at = "/assistant/tools/0/invite/voicemail_detection/on_voicemail_detected/voicemail_message";
        let Err(CallError::Invalid { code: "10002", pointer, .. }) = leave(json!({"type": "message"})) else {
            panic!()
        };
        assert_eq!(pointer, format!("{at}/message"));
        let Err(CallError::Invalid { code: "10015", pointer, .. }) =
            leave(json!({"type": "warm_transfer_instructions"}))
        else {
            panic!()
        };
        assert_eq!(pointer, format!("{at}/type"));
        let Err(CallError::Invalid { code: "10002", pointer, .. }) =
            detect(json!({"detection_mode": "psychic"}))
        else {
            panic!()
        };
        assert_eq!(pointer, "/assistant/tools/0/invite/voicemail_detection/detection_mode");
        let transfer = json!({"type": "transfer", "transfer": {"targets": [{"to": "loop:echo"}],
            "voicemail_detection": {"detection_mode": "premium"}}});
        let Tool::Transfer(transfer) = &super::tools(&[transfer]).unwrap()[0] else { panic!() };
        assert_eq!(transfer.voicemail, Some(OnVoicemail::Stop), "a transfer is screened as an invite is");
        let skip = super::tools(&[json!({"type": "skip_turn", "skip_turn": {}})]).unwrap();
        assert_eq!(skip[0].definition()["function"]["name"], "skip_turn");
        assert!(skip[0].definition()["function"]["description"].as_str().unwrap().contains("each other"));
        assert_eq!(tools[1].definition()["function"]["description"], "End the call.");
    }

    #[test]
    fn bad_tools_are_refused_at_their_field() {
        let with = |change: &dyn Fn(&mut Value)| {
            let mut tool = order_status();
            change(&mut tool);
            tools(&[tool]).unwrap_err().to_string()
        };
        assert!(with(&|t| t["webhook"]["url"] = json!("ftp://x")).contains("http(s)"));
        assert!(with(&|t| t["webhook"]["url"] = json!("http://169.254.169.254/latest")).contains("169.254"));
        assert!(with(&|t| t["webhook"]["name"] = json!("no spaces")).contains("letters"));
        assert!(with(&|t| t["webhook"]["method"] = json!("TRACE")).contains("method"));
        assert!(with(&|t| t["timeout_ms"] = json!(60_000)).contains("timeout_ms"));
        assert!(with(&|t| t["webhook"]["headers"] = json!([{"name": "Bad Header", "value": "x"}]))
            .contains("header"));
        assert!(
            with(&|t| t["webhook"]["body_parameters"] = json!({"type": "string"})).contains("JSON Schema")
        );
        assert!(
            with(&|t| t["webhook"]["query_parameters"] = json!({"type": "object"})).contains("not available")
        );
        assert!(with(&|t| t["type"] = json!("retrieval")).contains("not available"));
        assert!(
            with(&|t| t["type"] = json!("dance")).contains("webhook, hangup, transfer, invite or skip_turn")
        );
        let twice = tools(&[order_status(), order_status()]).unwrap_err().to_string();
        assert!(twice.contains("taken"), "{twice}");
        let mut gather = order_status();
        gather["webhook"]["name"] = json!(AiGather::FUNCTION);
        assert!(tools(&[gather]).unwrap_err().to_string().contains("taken"));
        assert!(tools(&vec![json!({"type": "hangup"}); 33]).is_err());
    }

    #[test]
    fn a_transfer_tools_targets_are_checked_as_transfers_and_offered_by_name() {
        let tool = json!({"type": "transfer", "transfer": {"from": "+15550001111", "targets": [
            {"name": "Support", "to": "sip:support@pbx.example", "timeout_secs": 15}, {"to": "+15550002222"}]}});
        let made = tools(&[tool]).unwrap();
        let Tool::Transfer(transfer) = &made[0] else { panic!("{made:?}") };
        let offered = made[0].definition();
        assert_eq!(
            offered["function"]["parameters"]["properties"]["target"]["enum"],
            json!(["Support", "+15550002222"])
        );
        let support = transfer.pick(r#"{"target": "support"}"#).unwrap();
        assert_eq!(
            (support.to.as_str(), support.from.as_deref()),
            ("sip:support@pbx.example", Some("+15550001111"))
        );
        assert_eq!(support.timeout_secs, Some(15), "Bond's own: how long the target may ring");
        assert_eq!(transfer.pick(r#"{"target": "+15550002222"}"#).unwrap().timeout_secs, None);
        assert!(transfer.pick(r#"{"target": "Sales"}"#).unwrap_err().contains("Support, +15550002222"));
        assert_eq!(transfer.ringtone.name, "us", "what the caller hears while a target rings");
        let uk =
            json!({"type": "transfer", "transfer": {"targets": [{"to": "loop:echo"}], "ringtone": "uk"}});
        let Tool::Transfer(uk) = &tools(&[uk]).unwrap()[0] else { panic!() };
        assert_eq!(uk.ringtone.name, "uk");

        let refused = |targets: Value| {
            tools(&[json!({"type": "transfer", "transfer": {"targets": targets}})]).unwrap_err()
        };
        let CallError::Invalid { pointer, .. } = refused(json!([{"to": "not a number"}])) else { panic!() };
        assert_eq!(pointer, "/assistant/tools/0/transfer/targets/0/to");
        let CallError::Invalid { pointer, .. } = refused(json!([{"to": "+15550002222", "timeout_secs": 2}]))
        else {
            panic!()
        };
        assert_eq!(pointer, "/assistant/tools/0/transfer/targets/0/timeout_secs");
        for ringtone in [json!("atlantis"), json!(7)] {
            let tool = json!({"type": "transfer", "transfer": {"targets": [{"to": "loop:echo"}], "ringtone": ringtone}});
            let CallError::Invalid { pointer, .. } = tools(&[tool]).unwrap_err() else { panic!() };
            assert_eq!(pointer, "/assistant/tools/0/transfer/ringtone");
        }
        assert!(refused(json!([])).to_string().contains("1 to"));
        assert!(refused(json!("Support")).to_string().contains("dynamic variable holding one"));
        assert!(refused(json!([{"to": "+15550002222"}, {"to": "+15550002222"}]))
            .to_string()
            .contains("two targets"));
    }
}
