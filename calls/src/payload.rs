//! Telnyx webhook payloads for call events.

use bond_media_engine::rtp::RtpStats;
use serde_json::{json, Map, Value};

use bond_store::CallRecord;

/// Event fields from name-value pairs.
pub(crate) fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A duration in whole milliseconds, as the events give latencies.
pub(crate) fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

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

pub fn hangup(call: &CallRecord, cause: &str, source: &str, ended_at: &str, stats: &RtpStats) -> Value {
    let mut p = base(call);
    p.insert("hangup_cause".into(), json!(cause));
    p.insert("hangup_source".into(), json!(source));
    p.insert("sip_hangup_cause".into(), json!(sip_cause(cause, call.answered_at.is_some())));
    p.insert("start_time".into(), json!(call.created_at));
    p.insert("end_time".into(), json!(ended_at));
    p.insert("call_quality_stats".into(), quality(stats));
    if let Some(usage) = &call.assistant_usage {
        // Bond's own: what the call's voice agents used and cost (docs/voice-agents.md).
        p.insert("bond_assistant_usage".into(), usage.clone());
    }
    Value::Object(p)
}

/// Telnyx's `call_quality_stats`: counters as strings, an E-model MOS estimate.
/// `outbound` is what the peer's RTCP reports said of Bond's stream (SIP legs),
/// with the round trip they measured (`rtt_ms`); without reports, only the count sent.
pub fn quality(s: &RtpStats) -> Value {
    let mut outbound = json!({
        "packet_count": s.packets_sent.to_string(),
        "skip_packet_count": s.remote.packets_lost.unwrap_or(0).max(0).to_string(),
        "rtcp_report_count": s.remote.reports.to_string(),
    });
    if let Some(lost) = s.remote.packets_lost {
        let seen = RtpStats {
            packets_received: s.packets_sent.saturating_sub(lost.max(0) as u64),
            packets_lost: lost,
            jitter_ms: s.remote.jitter_ms.unwrap_or(0.0),
            ..RtpStats::default()
        };
        outbound["mos"] = json!(format!("{:.2}", seen.mos()));
        outbound["jitter_max_variance"] = json!(format!("{:.2}", seen.jitter_ms));
    }
    if let Some(rtt) = s.remote.rtt_ms {
        outbound["rtt_ms"] = json!(format!("{rtt:.1}"));
    }
    json!({
        "inbound": {
            "mos": format!("{:.2}", s.mos()),
            "jitter_max_variance": format!("{:.2}", s.jitter_ms),
            "jitter_packet_count": s.packets_late.to_string(),
            "packet_count": s.packets_received.to_string(),
            "skip_packet_count": s.packets_lost.max(0).to_string(),
        },
        "outbound": outbound,
    })
}

/// The ended leg's quality in `/metrics`, for legs that received RTP: MOS and
/// jitter as histograms, packets received and lost as counters, and the RTCP
/// round trip when the peer reported one.
pub fn record_quality(s: &RtpStats) {
    if s.packets_received == 0 {
        return;
    }
    metrics::histogram!("bond_call_mos").record(s.mos());
    metrics::histogram!("bond_call_jitter_seconds").record(s.jitter_ms / 1000.0);
    metrics::counter!("bond_call_packets_received_total").increment(s.packets_received);
    metrics::counter!("bond_call_packets_lost_total").increment(s.packets_lost.max(0) as u64);
    if let Some(rtt) = s.remote.rtt_ms {
        metrics::histogram!("bond_call_rtt_seconds").record(rtt / 1000.0);
    }
}

/// The SIP status Telnyx would report for a cause.
/// The final SIP status of the call's INVITE: 200 once answered.
fn sip_cause(cause: &str, answered: bool) -> &'static str {
    if answered {
        return "200";
    }
    match cause {
        "user_busy" => "486",
        "call_rejected" => "603",
        "not_found" => "404",
        "timeout" | "no_answer" => "480",
        "originator_cancel" => "487",
        _ => "200",
    }
}
