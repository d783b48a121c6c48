//! SIP final responses in Telnyx's hangup causes, and back.

/// The Telnyx `hangup_cause` for a failed outgoing INVITE's final status.
pub fn cause_of_status(status: u16) -> &'static str {
    match status {
        486 | 600 => "user_busy",
        404 | 484 | 604 => "not_found",
        408 => "timeout",
        480 => "no_answer",
        487 => "originator_cancel",
        403 | 603 => "call_rejected",
        _ => "unspecified",
    }
}

/// The SIP status a `reject` action answers with, by its Telnyx `cause`.
pub fn status_of_reject_cause(cause: &str) -> Option<u16> {
    match cause {
        "CALL_REJECTED" | "call_rejected" => Some(603),
        "USER_BUSY" | "user_busy" => Some(486),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_telnyx_causes() {
        assert_eq!(cause_of_status(486), "user_busy");
        assert_eq!(cause_of_status(404), "not_found");
        assert_eq!(cause_of_status(408), "timeout");
        assert_eq!(cause_of_status(480), "no_answer");
        assert_eq!(cause_of_status(603), "call_rejected");
        assert_eq!(cause_of_status(500), "unspecified");
        assert_eq!(status_of_reject_cause("USER_BUSY"), Some(486));
        assert_eq!(status_of_reject_cause("nope"), None);
    }
}
