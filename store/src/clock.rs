//! Wall-clock time for records and events (the control plane is runtime, not core).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Now, as RFC 3339 UTC with microseconds (the shape Telnyx uses in `occurred_at`).
pub fn rfc3339_now() -> String {
    let now = utc_now();
    let now = now.replace_nanosecond(now.microsecond() * 1000).unwrap_or(now);
    now.format(&Rfc3339).unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// Now, UTC: the one read of the wall clock (records, events, an agent's `telnyx_current_time`).
pub fn utc_now() -> OffsetDateTime {
    #[allow(clippy::disallowed_methods)] // wall-clock for records, outside the media core
    OffsetDateTime::now_utc()
}

/// `secs` seconds ago, as [`rfc3339_now`] writes it (for comparing stored times).
pub fn rfc3339_secs_ago(secs: i64) -> String {
    let then = utc_now() - time::Duration::seconds(secs);
    then.format(&Rfc3339).unwrap_or_else(|_| then.unix_timestamp().to_string())
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis() -> i64 {
    (utc_now().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The monotonic clock, for deadlines and latencies measured in the control plane.
pub fn monotonic() -> std::time::Instant {
    #[allow(clippy::disallowed_methods)] // timing outside the media core
    std::time::Instant::now()
}

/// Seconds since the Unix epoch (webhook `telnyx-timestamp`).
pub fn unix_seconds() -> i64 {
    unix_millis() / 1000
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_rfc3339_utc() {
        let s = super::rfc3339_now();
        assert!(s.ends_with('Z') && s.contains('T'), "{s}");
    }
}
