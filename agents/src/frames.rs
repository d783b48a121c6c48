//! What each frame from a registered agent's browser means: the request
//! made of call control, and the frame answered (if any). A bad frame gets
//! an `error` frame and the session goes on.

use bond_codecs::dtmf::DtmfDigit;
use bond_media_engine::runtime::IceCreds;
use bond_store::clock::monotonic;
use bond_store::{CallId, Ending};

use crate::control::AgentControl;
use crate::protocol::{AgentMessage, ClientMessage};
use crate::registry::SignedIn;

/// The most digits one `dtmf` frame may carry.
const MAX_DIGITS: usize = 32;

/// Handle one text frame from `who`'s browser: what to answer it, if anything.
pub async fn handle<C: AgentControl>(control: &C, who: &SignedIn, text: &str) -> Option<AgentMessage> {
    let message = match serde_json::from_str::<ClientMessage>(text) {
        Ok(m) => m,
        Err(e) => return Some(AgentMessage::error("malformed_message", e.to_string())),
    };
    let org = who.organization_id.as_str();
    let result = match message {
        ClientMessage::Register { .. } => Err("already registered".into()),
        ClientMessage::Ping => return Some(AgentMessage::Pong),
        ClientMessage::Availability { available } => {
            // The registry tells the browser (the answer), then queues may offer it a call.
            control.agents().set_available(org, &who.agent, available, monotonic());
            control.availability_changed(org).await;
            return None;
        }
        ClientMessage::Call { sdp, to } => {
            return Some(match place(control, who, to, sdp).await {
                Ok((call_control_id, sdp)) => AgentMessage::Outgoing { call_control_id, sdp },
                Err(detail) => AgentMessage::error("call_failed", detail),
            });
        }
        ClientMessage::Accept { call_control_id, sdp } => {
            return Some(match accept(control, who, &call_control_id, sdp).await {
                Ok(sdp) => AgentMessage::Answer { call_control_id, sdp },
                Err(detail) => AgentMessage::error("accept_failed", detail),
            });
        }
        ClientMessage::Candidate { call_control_id, candidate } => {
            let added = match control.agents().on_agent(who, &call_control_id) {
                Ok(_) => control.add_ice_candidate(&call_control_id, candidate).await,
                Err(e) => Err(e),
            };
            return added.err().map(|detail| AgentMessage::error("candidate_refused", detail));
        }
        ClientMessage::Reject { call_control_id } | ClientMessage::Hangup { call_control_id } => {
            hang_up(control, who, &call_control_id).await
        }
        ClientMessage::Mute { call_control_id, muted } => {
            match control.agents().on_agent(who, &call_control_id) {
                Ok(_) => control.mute(org, &call_control_id, muted).await,
                Err(e) => Err(e),
            }
        }
        ClientMessage::Hold { call_control_id, held } => {
            match control.agents().on_agent(who, &call_control_id) {
                Ok(_) => control.hold(org, &call_control_id, held).await,
                Err(e) => Err(e),
            }
        }
        ClientMessage::Dtmf { call_control_id, digits } => match parse_digits(&digits) {
            Ok(digits) => match control.agents().on_agent(who, &call_control_id) {
                Ok(_) => control.digits_to_partner(org, &call_control_id, digits).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
    };
    result.err().map(|detail| AgentMessage::error("request_failed", detail))
}

/// `who`'s socket closed: unless a newer registration replaced it, its calls end.
pub async fn signed_out<C: AgentControl>(control: &C, who: &SignedIn, session: u64) {
    for (call, ending) in control.agents().unregister(who, session) {
        control.ended(&call, ending).await;
    }
}

/// The agent accepts ringing `call` with its browser's SDP offer: Bond's answer.
async fn accept<C: AgentControl>(
    control: &C,
    who: &SignedIn,
    call: &CallId,
    offer: String,
) -> Result<String, String> {
    control.agents().claim(who, call)?;
    let engine = control.engine_for(call);
    let (leg, answer) = match engine.create_webrtc_leg(offer, fresh_credentials()).await {
        Ok(created) => created,
        Err(e) => {
            control.agents().unclaim(call);
            return Err(e.to_string());
        }
    };
    control.accepted(call, leg, answer.codec).await?;
    Ok(answer.sdp)
}

/// The agent places a call: its browser's offer becomes the agent's own leg,
/// parked until the page dials the customer with `link_to` it.
async fn place<C: AgentControl>(
    control: &C,
    who: &SignedIn,
    to: Option<String>,
    offer: String,
) -> Result<(CallId, String), String> {
    let Some(connection_id) = &who.connection_id else {
        return Err("this agent's token names no connection to place calls on".into());
    };
    let connection = control.connection(&who.organization_id, connection_id).await?;
    let call = CallId::generate();
    let engine = control.engine_for(&call);
    let (leg, answer) =
        engine.create_webrtc_leg(offer, fresh_credentials()).await.map_err(|e| e.to_string())?;
    let from = format!("agent:{}", who.agent);
    let to = to.unwrap_or_else(|| from.clone());
    control.agents().placing(who, &call);
    if let Err(e) = control.placed(&connection, &call, from, to, leg, answer.codec).await {
        control.agents().forget(&call);
        return Err(e);
    }
    Ok((call, answer.sdp))
}

/// The agent rejects a ringing call, or hangs up an accepted or placed one.
async fn hang_up<C: AgentControl>(control: &C, who: &SignedIn, call: &CallId) -> Result<(), String> {
    let on_agent = control.agents().on_agent(who, call)?;
    let ending = match (on_agent.accepted, on_agent.placed) {
        (_, true) => Ending::HUNG_UP,
        (true, false) => Ending { cause: "normal_clearing", source: "callee" },
        (false, false) => Ending { cause: "call_rejected", source: "callee" },
    };
    control.ended(call, ending).await;
    Ok(())
}

fn parse_digits(digits: &str) -> Result<Vec<DtmfDigit>, String> {
    let digits: Vec<DtmfDigit> =
        digits.chars().map(DtmfDigit::from_char).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    if digits.is_empty() || digits.len() > MAX_DIGITS {
        return Err(format!("digits must hold 1 to {MAX_DIGITS} of 0-9 * # A-D"));
    }
    Ok(digits)
}

/// Random ICE credentials for a leg (the password keys STUN message integrity).
fn fresh_credentials() -> IceCreds {
    let ufrag = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let pass = uuid::Uuid::new_v4().simple().to_string();
    IceCreds { ufrag, pass }
}
