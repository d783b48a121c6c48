//! Telnyx webhook payloads for call events.

use bond_media_engine::rtp::RtpStats;
use serde_json::{json, Map, Value};

use crate::store::CallRecord;

/// The fields every call event carries.
pub fn base(call: &CallRecord) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("call_control_id".into(), json!(call.call_control_id));
    p.insert("call_leg_id".into(), json!(call.call_leg_id));
    p.insert("call_session_id".into(), json!(call.call_session_id));
    p.insert("connection_id".into(), json!(call.connection_id));
    p.insert("client_state".into(), json!(call.client_state));
    p.insert("from".into(), json!(call.from));
    p.insert("to".into(), json!(call.to));
    p
}

pub fn initiated(call: &CallRecord) -> Value {
    let mut p = base(call);
    p.insert("direction".into(), json!(if call.direction == "incoming" { "incoming" } else { "outgoing" }));
    p.insert("state".into(), json!(if call.direction == "incoming" { "parked" } else { "bridging" }));
    p.insert(
        "caller_id_name".into(),
        json!(call.from_display_name.clone().unwrap_or_else(|| call.from.clone())),
    );
    p.insert("start_time".into(), json!(call.created_at));
    Value::Object(p)
}

pub fn answered(call: &CallRecord, codec: &str, sampling_rate: u32) -> Value {
    let mut p = base(call);
    p.insert("state".into(), json!("answered"));
    p.insert("start_time".into(), json!(call.created_at));
    p.insert("codec".into(), json!(codec));
    p.insert("sampling_rate".into(), json!(sampling_rate));
    Value::Object(p)
}

pub fn bridged(call: &CallRecord) -> Value {
    Value::Object(base(call))
}

pub fn dtmf(call: &CallRecord, digit: char) -> Value {
    let mut p = base(call);
    p.insert("digit".into(), json!(digit.to_string()));
    Value::Object(p)
}

pub fn hangup(call: &CallRecord, cause: &str, source: &str, ended_at: &str, stats: &RtpStats) -> Value {
    let mut p = base(call);
    p.insert("hangup_cause".into(), json!(cause));
    p.insert("hangup_source".into(), json!(source));
    p.insert("sip_hangup_cause".into(), json!(sip_cause(cause)));
    p.insert("start_time".into(), json!(call.created_at));
    p.insert("end_time".into(), json!(ended_at));
    p.insert("call_quality_stats".into(), quality(stats));
    Value::Object(p)
}

/// Telnyx's `call_quality_stats`: counters as strings, an E-model MOS estimate.
pub fn quality(s: &RtpStats) -> Value {
    json!({
        "inbound": {
            "mos": format!("{:.2}", s.mos()),
            "jitter_max_variance": format!("{:.2}", s.jitter_ms),
            "jitter_packet_count": s.packets_late.to_string(),
            "packet_count": s.packets_received.to_string(),
            "skip_packet_count": s.packets_lost.max(0).to_string(),
        },
        "outbound": {
            "packet_count": s.packets_sent.to_string(),
            "skip_packet_count": "0",
        }
    })
}

/// The SIP status Telnyx would report for a cause.
fn sip_cause(cause: &str) -> &'static str {
    match cause {
        "user_busy" => "486",
        "call_rejected" => "603",
        "not_found" => "404",
        "timeout" | "no_answer" => "480",
        "originator_cancel" => "487",
        _ => "200",
    }
}
