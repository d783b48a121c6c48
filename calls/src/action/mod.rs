//! Telnyx call-control actions as one type. `POST /v2/calls/{id}/actions/{name}`
//! is parsed once, at the edge, into a [`Command`]: an [`Action`]
//! ([`Action::parse`]: the name picks the variant, the JSON body fills it, a
//! wrong field is a [`CallError::Invalid`] pointing at it) with the fields every
//! action's body may carry. [`CallService::act`](super::CallService::act)
//! (`act.rs`) carries it out. A new action is one variant here, its body in
//! `fields.rs`, and one arm in `act.rs` calling a core method.

mod act;
pub use act::Acted;
mod assistant_fields;
mod assistant_join;
mod assistant_tools;
mod assistant_variables;
pub mod fields;
mod gather_fields;

use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::ringtone::Ringtone;
use bond_media_engine::leg::DtmfTiming;
use bond_media_engine::SupervisorRole;
use bond_store::{CallId, CallRecord};
use serde_json::Value;
use time::OffsetDateTime;

use super::assistant::{AssistantJoin, AssistantStart, Message};
use super::error::CallError;
use super::gather::{GatherSpec, GatherUsing};
use super::playback::{playback_request, speak_request, stop_all, PlaybackRequest};
use super::queue::Enqueue;
use super::recording::RecordOptions;
use super::service::{BridgeOptions, Hold};
use super::speech::TranscriptionRequest;
use super::streaming::stream_request;
use super::transfer::{transfer_request, Transfer};
use bond_streams::fork::StreamRequest;

/// One call-control request: the action, and what any action's body may add.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub action: Action,
    /// Telnyx `client_state`: stored on the call before the action runs, so the
    /// webhooks the action causes, and every later one, carry it.
    pub client_state: Option<String>,
    /// Telnyx `command_id`: a repeat with the same id is answered as the first
    /// was, not carried out again.
    pub command_id: Option<String>,
}

impl Command {
    /// The action `name` with its `body` for `call`, at `now` (UTC): an agent's
    /// dynamic variables (`{{name}}`, `assistant_variables.rs`) are filled from
    /// the request and the call first; then as [`Command::parse`].
    pub fn parse_for(
        name: &str,
        body: &Value,
        call: &CallRecord,
        now: OffsetDateTime,
    ) -> Result<Self, CallError> {
        match name {
            "ai_assistant_start" | "gather_using_ai" => {
                Self::parse(name, &assistant_variables::resolve(body, call, now)?)
            }
            _ => Self::parse(name, body),
        }
    }

    /// The action `name` with its `body` (see [`Action::parse`]); a
    /// `client_state` that is not base64 is [`CallError::Invalid`].
    pub fn parse(name: &str, body: &Value) -> Result<Self, CallError> {
        let action = Action::parse(name, body)?;
        let command_id = body.get("command_id").and_then(Value::as_str).filter(|s| !s.is_empty());
        Ok(Self {
            action,
            client_state: fields::client_state(body)?,
            command_id: command_id.map(str::to_owned),
        })
    }
}

/// One call-control action with its validated fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Answer an incoming call; with `stream_url`, stream it from then on.
    Answer {
        stream: Option<StreamRequest>,
    },
    /// Refuse an incoming call (`cause`: CALL_REJECTED, USER_BUSY).
    Reject {
        cause: Option<String>,
    },
    Hangup,
    /// Join this call with another (`call_control_id_to_bridge_with`).
    Bridge {
        with: CallId,
        options: BridgeOptions,
        record: Option<RecordOptions>,
        /// `play_ringtone`: this call hears it while the other rings.
        ringtone: Option<&'static Ringtone>,
    },
    SendDtmf {
        digits: Vec<DtmfDigit>,
        timing: DtmfTiming,
    },
    RecordStart(RecordOptions),
    RecordStop,
    /// `record_pause` (true) and `record_resume` (false).
    RecordPause(bool),
    /// `hold` (silence, or `audio_file` looped) and `unhold`.
    Hold(HoldWith),
    /// `mute` and `unmute`: what the party says (`inbound`) and hears (`outbound`); `None` leaves it.
    Mute {
        inbound: Option<bool>,
        outbound: Option<bool>,
    },
    StreamingStart(StreamRequest),
    StreamingStop {
        stream_id: Option<String>,
    },
    PlaybackStart(PlaybackRequest),
    PlaybackStop {
        overlay: bool,
        all: bool,
    },
    Speak(PlaybackRequest),
    TranscriptionStart(TranscriptionRequest),
    TranscriptionStop,
    /// Languages left out come from the organization's voice config.
    TranslationStart(fields::Translation),
    TranslationStop,
    SwitchSupervisorRole(SupervisorRole),
    /// Only set the `client_state` (the command's, required here) every later
    /// webhook of the call carries.
    ClientStateUpdate,
    /// Collect the digits the party presses (`call.gather.ended`).
    Gather(GatherSpec),
    /// `gather_using_audio` and `gather_using_speak`: a prompt first, tried again.
    GatherUsing(Box<GatherUsing>),
    GatherStop,
    /// Dial a new party and bridge it with this call when it answers.
    Transfer(Box<Transfer>),
    /// Wait in queue `name` (made if new) until picked, removed or timed out.
    Enqueue {
        name: String,
        ask: Enqueue,
    },
    LeaveQueue,
    /// Ask the call's SIP peer to call `sip_address` itself (REFER).
    Refer(super::refer::Refer),
    /// A voice agent talks with the call's party (`ai_assistant_start`).
    AssistantStart(Box<AssistantStart>),
    AssistantStop,
    /// Another call leg joins a running agent's conversation (`ai_assistant_join`).
    AssistantJoin(Box<AssistantJoin>),
    /// Messages into the agent's conversation; with `respond`, it answers now.
    AssistantAddMessages {
        messages: Vec<Message>,
        respond: bool,
    },
}

/// What a held call's party hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldWith {
    Off,
    Silence,
    /// A WAV file from the data directory, looped.
    Music(String),
}

impl HoldWith {
    pub fn as_hold(&self) -> Hold<'_> {
        match self {
            Self::Off => Hold::Off,
            Self::Silence => Hold::Silence,
            Self::Music(file) => Hold::Music(file),
        }
    }
}

/// Telnyx call-control actions Bond does not implement yet (known names, so they get 422, not 404).
const LATER: &[&str] = &[
    "fork_start",
    "fork_stop",
    "send_sip_info",
    "suppression_start",
    "suppression_stop",
    "siprec_start",
    "siprec_stop",
];

impl Action {
    /// The action `name` with its `body`. An unknown name is
    /// [`CallError::UnknownAction`]; a Telnyx action Bond does not have yet is
    /// 10015; a wrong field is [`CallError::Invalid`] with its pointer.
    pub fn parse(name: &str, body: &Value) -> Result<Self, CallError> {
        let action = match name {
            "answer" => Self::Answer {
                stream: match body.get("stream_url") {
                    Some(url) if !url.is_null() => Some(stream_request(body)?),
                    _ => None,
                },
            },
            "reject" => Self::Reject { cause: fields::parse::<fields::Reject>(body)?.cause },
            "hangup" => Self::Hangup,
            "bridge" => fields::bridge(body)?,
            "send_dtmf" => {
                let (digits, timing) = fields::dtmf(body)?;
                Self::SendDtmf { digits, timing }
            }
            "record_start" => Self::RecordStart(fields::record_start(body)?),
            "record_stop" => Self::RecordStop,
            "record_pause" => Self::RecordPause(true),
            "record_resume" => Self::RecordPause(false),
            "hold" => Self::Hold(fields::hold(body)?),
            "unhold" => Self::Hold(HoldWith::Off),
            "mute" | "unmute" => fields::mute(body, name == "mute")?,
            "streaming_start" => Self::StreamingStart(stream_request(body)?),
            "streaming_stop" => {
                Self::StreamingStop { stream_id: fields::parse::<fields::StreamingStop>(body)?.stream_id }
            }
            "playback_start" => Self::PlaybackStart(playback_request(body)?),
            "playback_stop" => Self::PlaybackStop {
                overlay: fields::parse::<fields::PlaybackStop>(body)?.overlay.unwrap_or(false),
                all: stop_all(body)?.unwrap_or(true),
            },
            "speak" => Self::Speak(speak_request(body)?),
            "transcription_start" => Self::TranscriptionStart(fields::transcription(body)?),
            "transcription_stop" => Self::TranscriptionStop,
            "translation_start" => Self::TranslationStart(fields::translation(body)?),
            "translation_stop" => Self::TranslationStop,
            "switch_supervisor_role" => Self::SwitchSupervisorRole(fields::supervisor_role(body)?),
            "client_state_update" => fields::client_state_update(body)?,
            "gather" => gather_fields::gather(body)?,
            "gather_using_audio" => gather_fields::gather_using(body, false)?,
            "gather_using_speak" => gather_fields::gather_using(body, true)?,
            "gather_stop" => Self::GatherStop,
            "transfer" => Self::Transfer(Box::new(transfer_request(body)?)),
            "enqueue" => fields::enqueue(body)?,
            "leave_queue" => Self::LeaveQueue,
            "refer" => Self::Refer(super::refer::refer_request(body)?),
            "ai_assistant_start" => Self::AssistantStart(Box::new(assistant_fields::start(body)?)),
            "gather_using_ai" => Self::AssistantStart(Box::new(assistant_fields::gather_using_ai(body)?)),
            "ai_assistant_stop" => Self::AssistantStop,
            "ai_assistant_join" => Self::AssistantJoin(Box::new(assistant_join::join(body)?)),
            "ai_assistant_add_messages" => {
                let (messages, respond) = assistant_fields::add_messages(body)?;
                Self::AssistantAddMessages { messages, respond }
            }
            later if LATER.contains(&later) => {
                return Err(CallError::invalid(
                    "10015",
                    format!("The {later} action is not available in Bond yet."),
                    "/action",
                ))
            }
            unknown => return Err(CallError::UnknownAction(unknown.to_owned())),
        };
        Ok(action)
    }

    /// Actions that send a call's audio elsewhere or change who hears whom:
    /// not an agent's, even on its own calls.
    pub fn needs_supervisor(&self) -> bool {
        matches!(self, Self::StreamingStart(_) | Self::StreamingStop { .. } | Self::SwitchSupervisorRole(_))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn invalid_pointer(name: &str, body: Value) -> String {
        match Command::parse(name, &body) {
            Err(CallError::Invalid { pointer, .. }) => pointer,
            other => panic!("{name} {body}: {other:?}"),
        }
    }

    #[test]
    fn names_pick_the_variant_and_bodies_fill_it() {
        assert_eq!(Action::parse("hangup", &json!({})).unwrap(), Action::Hangup);
        assert_eq!(Action::parse("record_resume", &json!({})).unwrap(), Action::RecordPause(false));
        assert_eq!(
            Action::parse("unmute", &json!({ "direction": "inbound" })).unwrap(),
            Action::Mute { inbound: Some(false), outbound: None }
        );
        assert_eq!(
            Action::parse("hold", &json!({ "audio_file": "moh.wav" })).unwrap(),
            Action::Hold(HoldWith::Music("moh.wav".into()))
        );
        assert_eq!(
            Action::parse("client_state_update", &json!({ "client_state": "aGk=" })).unwrap(),
            Action::ClientStateUpdate
        );
    }

    #[test]
    fn enqueue_names_its_queue_and_limits_and_refuses_keeping_a_hung_up_call() {
        let body = json!({ "queue_name": " support ", "max_size": 5, "max_wait_time_secs": 90 });
        let ask = Enqueue { max_size: Some(5), max_wait: Some(std::time::Duration::from_secs(90)) };
        assert_eq!(Action::parse("enqueue", &body).unwrap(), Action::Enqueue { name: "support".into(), ask });
        assert_eq!(invalid_pointer("enqueue", json!({})), "/queue_name");
        assert_eq!(invalid_pointer("enqueue", json!({ "queue_name": "" })), "/queue_name");
        assert_eq!(invalid_pointer("enqueue", json!({ "queue_name": "q", "max_size": 0 })), "/max_size");
        let forever = json!({ "queue_name": "q", "max_wait_time_secs": -1 });
        assert_eq!(invalid_pointer("enqueue", forever), "/max_wait_time_secs");
        let kept = json!({ "queue_name": "q", "keep_after_hangup": true });
        assert_eq!(invalid_pointer("enqueue", kept), "/keep_after_hangup");
        assert_eq!(Action::parse("leave_queue", &json!({})).unwrap(), Action::LeaveQueue);
    }

    #[test]
    fn bonds_speech_gather_is_asked_with_bond_input() {
        let body = json!({ "bond_input": "dtmf speech", "bond_speech_language": "en-GB" });
        let Action::Gather(spec) = Action::parse("gather", &body).unwrap() else { panic!() };
        assert_eq!(spec.speech.as_deref(), Some("en-GB"));
        let Action::Gather(spec) = Action::parse("gather", &json!({ "bond_input": "dtmf" })).unwrap() else {
            panic!()
        };
        assert_eq!(spec.speech, None);
        assert_eq!(invalid_pointer("gather", json!({ "bond_input": "speech" })), "/bond_input");
        let prompted = json!({ "payload": "Say yes", "bond_input": "speech dtmf" });
        let Action::GatherUsing(using) = Action::parse("gather_using_speak", &prompted).unwrap() else {
            panic!()
        };
        assert_eq!(using.spec.gather.speech.as_deref(), Some("en"));
    }

    #[test]
    fn a_gather_takes_telnyxs_defaults_and_the_fields_given() {
        let Action::Gather(spec) = Action::parse("gather", &json!({})).unwrap() else { panic!() };
        assert_eq!(spec, GatherSpec::default());
        let body = json!({ "minimum_digits": 3, "maximum_digits": 3, "terminating_digit": "*",
            "valid_digits": "123*", "inter_digit_timeout_millis": 2500, "gather_id": "pin" });
        let Action::Gather(spec) = Action::parse("gather", &body).unwrap() else { panic!() };
        assert_eq!((spec.minimum_digits, spec.maximum_digits, spec.terminating_digit), (3, 3, Some('*')));
        assert_eq!(spec.valid_digits, "123*");
        assert_eq!(spec.inter_digit_timeout, std::time::Duration::from_millis(2500));
        assert_eq!(spec.gather_id.as_deref(), Some("pin"));
        let none = Action::parse("gather", &json!({ "terminating_digit": "" })).unwrap();
        assert!(matches!(none, Action::Gather(GatherSpec { terminating_digit: None, .. })));
        assert_eq!(Action::parse("gather_stop", &json!({})).unwrap(), Action::GatherStop);
    }

    #[test]
    fn a_prompted_gather_waits_timeout_millis_after_each_prompt_for_maximum_tries() {
        let body = json!({ "payload": "Press one", "invalid_payload": "No", "maximum_tries": 2,
            "timeout_millis": 4000, "maximum_digits": 1 });
        let Action::GatherUsing(using) = Action::parse("gather_using_speak", &body).unwrap() else {
            panic!()
        };
        assert_eq!(using.spec.maximum_tries, 2);
        assert_eq!(using.spec.gather.initial_timeout, std::time::Duration::from_millis(4000));
        assert_eq!(using.spec.gather.maximum_digits, 1);
        assert!(using.spec.has_invalid_prompt && using.invalid.is_some());
        let body = json!({ "audio_url": "https://example.com/menu.wav" });
        let Action::GatherUsing(using) = Action::parse("gather_using_audio", &body).unwrap() else {
            panic!()
        };
        assert_eq!((using.spec.maximum_tries, using.spec.has_invalid_prompt), (3, false));
        assert_eq!(using.prompt, crate::AudioSource::Url("https://example.com/menu.wav".into()));
    }

    #[test]
    fn unknown_names_and_later_telnyx_actions_are_told_apart() {
        // An unknown name is 404 whatever its body holds.
        let body = json!({ "client_state": "%%%" });
        assert!(matches!(Action::parse("dance", &body), Err(CallError::UnknownAction(n)) if n == "dance"));
        assert!(matches!(
            Action::parse("fork_start", &json!({})),
            Err(CallError::Invalid { code: "10015", .. })
        ));
    }

    #[test]
    fn a_wrong_field_points_at_itself() {
        assert_eq!(
            invalid_pointer("bridge", json!({ "call_control_id_to_bridge_with": 7 })),
            "/call_control_id_to_bridge_with"
        );
        assert_eq!(
            invalid_pointer("bridge", json!({ "call_control_id": "v3:a", "prevent_double_bridge": "yes" })),
            "/prevent_double_bridge"
        );
        assert_eq!(
            invalid_pointer("bridge", json!({ "call_control_id": "v3:a", "ringtone": "atlantis" })),
            "/ringtone"
        );
        assert_eq!(invalid_pointer("mute", json!({ "direction": "sideways" })), "/direction");
        assert_eq!(invalid_pointer("send_dtmf", json!({ "digits": "12x" })), "/digits");
        assert_eq!(
            invalid_pointer("send_dtmf", json!({ "digits": "1", "duration_millis": 50 })),
            "/duration_millis"
        );
        assert_eq!(invalid_pointer("hold", json!({ "audio_file": "../etc/passwd" })), "/audio_file");
        assert_eq!(invalid_pointer("switch_supervisor_role", json!({ "role": "boss" })), "/role");
        assert_eq!(invalid_pointer("client_state_update", json!({})), "/client_state");
        assert_eq!(
            invalid_pointer("client_state_update", json!({ "client_state": "not base64!" })),
            "/client_state"
        );
        assert_eq!(invalid_pointer("hangup", json!({ "client_state": "%%%" })), "/client_state");
        assert_eq!(invalid_pointer("gather", json!({ "maximum_digits": 129 })), "/maximum_digits");
        assert_eq!(
            invalid_pointer("gather", json!({ "minimum_digits": 5, "maximum_digits": 4 })),
            "/minimum_digits"
        );
        assert_eq!(invalid_pointer("gather", json!({ "timeout_millis": 0 })), "/timeout_millis");
        assert_eq!(invalid_pointer("gather", json!({ "terminating_digit": "##" })), "/terminating_digit");
        assert_eq!(invalid_pointer("gather", json!({ "valid_digits": "12x" })), "/valid_digits");
        assert_eq!(invalid_pointer("gather", json!({ "minimum_digits": "two" })), "/minimum_digits");
        assert_eq!(invalid_pointer("gather_using_audio", json!({})), "/audio_url");
        assert_eq!(invalid_pointer("gather_using_audio", json!({ "media_name": "menu" })), "/media_name");
        assert_eq!(invalid_pointer("gather_using_speak", json!({ "payload": "" })), "/payload");
        assert_eq!(
            invalid_pointer("gather_using_speak", json!({ "payload": "Hi", "invalid_payload": " " })),
            "/invalid_payload"
        );
        assert_eq!(
            invalid_pointer("gather_using_speak", json!({ "payload": "Hi", "maximum_tries": 0 })),
            "/maximum_tries"
        );
    }

    #[test]
    fn a_bridge_plays_a_ringtone_only_when_asked_and_the_us_one_unless_named() {
        let ringtone = |body: Value| match Action::parse("bridge", &body) {
            Ok(Action::Bridge { ringtone, .. }) => ringtone.map(|r| r.name),
            other => panic!("{other:?}"),
        };
        assert_eq!(ringtone(json!({ "call_control_id": "v3:a" })), None);
        assert_eq!(ringtone(json!({ "call_control_id": "v3:a", "ringtone": "uk" })), None);
        assert_eq!(ringtone(json!({ "call_control_id": "v3:a", "play_ringtone": true })), Some("us"));
        let body = json!({ "call_control_id": "v3:a", "play_ringtone": true, "ringtone": "de" });
        assert_eq!(ringtone(body), Some("de"));
    }

    #[test]
    fn only_streaming_and_role_switches_need_a_supervisor() {
        let stream =
            Action::parse("streaming_start", &json!({ "stream_url": "wss://example.com/s" })).unwrap();
        assert!(stream.needs_supervisor());
        assert!(!Action::Hangup.needs_supervisor());
    }
}
