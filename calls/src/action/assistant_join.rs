//! The body of `ai_assistant_join` (Telnyx Call Control): which running
//! conversation, and the call leg that joins it as a participant; and a
//! participant as `ai_assistant_start`'s `participants` lists them.

use bond_store::CallId;
use serde::Deserialize;
use serde_json::Value;

use super::fields::parse;
use crate::assistant::{AssistantJoin, Joining, OnHangup};
use crate::error::CallError;

/// The longest participant name taken.
const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Deserialize)]
struct Join {
    conversation_id: Option<String>,
    participant: Option<Participant>,
}

/// Telnyx's participant object, as sent.
#[derive(Debug, Deserialize)]
pub(super) struct Participant {
    id: Option<String>,
    role: Option<String>,
    name: Option<String>,
    on_hangup: Option<String>,
}

fn invalid(detail: &str, pointer: &str) -> CallError {
    CallError::invalid("10002", detail, pointer)
}

fn invalid_at(detail: &str, at: &str, field: &str) -> CallError {
    CallError::invalid("10002", detail, format!("{at}/{field}"))
}

/// `ai_assistant_join`'s body, checked.
pub fn join(body: &Value) -> Result<AssistantJoin, CallError> {
    let asked: Join = parse(body)?;
    let conversation_id = asked
        .conversation_id
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| invalid("conversation_id is required", "/conversation_id"))?;
    let participant = asked.participant.ok_or_else(|| invalid("participant is required", "/participant"))?;
    Ok(AssistantJoin { conversation_id, participant: participant_at(participant, "/participant")? })
}

/// A participant, checked; `at` points at it in the request.
pub(super) fn participant_at(participant: Participant, at: &str) -> Result<Joining, CallError> {
    let call = participant
        .id
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| invalid_at("participant.id (a call_control_id) is required", at, "id"))?;
    match participant.role.as_deref() {
        Some("user") => {}
        Some("assistant") => {
            let detail = "A participant with the assistant role is not available in Bond yet.";
            return Err(CallError::invalid("10015", detail, format!("{at}/role")));
        }
        _ => return Err(invalid_at("participant.role must be user", at, "role")),
    }
    let name = participant.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > MAX_NAME_CHARS || n.contains(['\n', '\r'])) {
        return Err(invalid_at("participant.name must be one line of at most 100 characters", at, "name"));
    }
    let on_hangup = match participant.on_hangup.as_deref() {
        None | Some("continue_conversation") => OnHangup::ContinueConversation,
        Some("end_conversation") => OnHangup::EndConversation,
        Some(_) => {
            let detail = "participant.on_hangup must be continue_conversation or end_conversation";
            return Err(invalid_at(detail, at, "on_hangup"));
        }
    };
    Ok(Joining { call: CallId::from(call), name, on_hangup })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pointer(body: Value) -> (String, &'static str) {
        match join(&body) {
            Err(CallError::Invalid { pointer, code, .. }) => (pointer, code),
            other => panic!("{body} was taken: {other:?}"),
        }
    }

    #[test]
    fn a_join_names_the_conversation_and_the_participant_leg() {
        let body = json!({"conversation_id": "c1", "participant":
            {"id": "v3:leg", "role": "user", "name": "Dana", "on_hangup": "end_conversation"}});
        let joined = join(&body).unwrap();
        assert_eq!(joined.conversation_id, "c1");
        let joining = joined.participant;
        assert_eq!(joining.call, CallId::from("v3:leg"));
        assert_eq!(joining.name.as_deref(), Some("Dana"));
        assert_eq!(joining.on_hangup, OnHangup::EndConversation);
        let plain = join(&json!({"conversation_id": "c1", "participant": {"id": "v3:leg", "role": "user"}}));
        let plain = plain.unwrap().participant;
        assert_eq!((plain.name, plain.on_hangup), (None, OnHangup::ContinueConversation));
    }

    #[test]
    fn a_join_missing_or_misnaming_a_field_points_at_it() {
        assert_eq!(pointer(json!({"participant": {"id": "l", "role": "user"}})).0, "/conversation_id");
        assert_eq!(pointer(json!({"conversation_id": "c"})).0, "/participant");
        assert_eq!(
            pointer(json!({"conversation_id": "c", "participant": {"role": "user"}})).0,
            "/participant/id"
        );
        assert_eq!(
            pointer(json!({"conversation_id": "c", "participant": {"id": "l"}})).0,
            "/participant/role"
        );
        let hangup =
            json!({"conversation_id": "c", "participant": {"id": "l", "role": "user", "on_hangup": "x"}});
        assert_eq!(pointer(hangup).0, "/participant/on_hangup");
        let long = json!({"conversation_id": "c", "participant": {"id": "l", "role": "user", "name": "x".repeat(101)}});
        assert_eq!(pointer(long).0, "/participant/name");
        assert_eq!(pointer(json!({"conversation_id": 5})).0, "/conversation_id");
    }

    #[test]
    fn an_assistant_participant_is_not_in_bond_yet() {
        let body = json!({"conversation_id": "c", "participant": {"id": "l", "role": "assistant"}});
        assert_eq!(pointer(body), ("/participant/role".to_owned(), "10015"));
    }
}
