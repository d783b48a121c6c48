//! A call-control action's name and JSON body as `Command::parse` reads them
//! (no router, no call: thousands of bodies a second where `api_action` runs
//! a few dozen). The first byte picks the action, the rest is the body.
#![no_main]

use bond_calls::Command;
use libfuzzer_sys::fuzz_target;

const NAMES: &[&str] = &[
    "answer", "reject", "hangup", "bridge", "send_dtmf", "record_start", "record_stop", "record_pause",
    "record_resume", "hold", "unhold", "mute", "unmute", "streaming_start", "streaming_stop",
    "playback_start", "playback_stop", "speak", "transcription_start", "transcription_stop",
    "translation_start", "translation_stop", "switch_supervisor_role", "client_state_update", "transfer",
    "no_such_action",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(body) else { return };
    let _ = Command::parse(NAMES[usize::from(pick) % NAMES.len()], &body);
});
