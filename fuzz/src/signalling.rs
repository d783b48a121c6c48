//! What the control plane reads without the router: SIP requests, carrier
//! media-stream frames, and call-control action bodies.

use bond_calls::Command;
use bond_streams::frames;

/// Every call-control action Bond takes, then one Telnyx has that Bond does not
/// (`refer`) and one nobody has: `action_body` picks from all of them,
/// `api_action` from the ones Bond takes.
pub(crate) const ACTION_NAMES: &[&str] = &[
    "answer",
    "reject",
    "hangup",
    "bridge",
    "send_dtmf",
    "record_start",
    "record_stop",
    "record_pause",
    "record_resume",
    "hold",
    "unhold",
    "mute",
    "unmute",
    "streaming_start",
    "streaming_stop",
    "playback_start",
    "playback_stop",
    "speak",
    "transcription_start",
    "transcription_stop",
    "translation_start",
    "translation_stop",
    "switch_supervisor_role",
    "client_state_update",
    "gather",
    "gather_using_audio",
    "gather_using_speak",
    "gather_stop",
    "transfer",
    "enqueue",
    "leave_queue",
    "refer",
    "no_such_action",
];

/// A SIP request as Bond's own code reads it after the stack has parsed it:
/// the source stamp, From/To, digest answers, INFO digits, the SDP offer.
pub fn sip_request(datagram: &[u8]) {
    let from = std::net::SocketAddr::from(([192, 0, 2, 1], 5060));
    bond_sip::examine(datagram, from);
}

/// A text frame from a carrier's media-stream WebSocket (Telnyx or Twilio JSON).
pub fn stream_frame(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = frames::parse(text);
    }
}

/// A call-control action's name and JSON body as `Command::parse` reads them
/// (no router, no call: thousands of bodies a second where `api_action` runs
/// a few dozen). The first byte picks the action, the rest is the body.
pub fn action_body(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(body) else { return };
    let _ = Command::parse(ACTION_NAMES[usize::from(pick) % ACTION_NAMES.len()], &body);
}
