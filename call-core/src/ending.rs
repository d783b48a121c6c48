//! How a call ended, in Telnyx's words.

/// A call's `hangup_cause` and `hangup_source`, as Telnyx names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub cause: &'static str,
    pub source: &'static str,
}

impl Ending {
    /// The application or Bond hung up (`normal_clearing`, from the caller).
    pub const HUNG_UP: Self = Self { cause: "normal_clearing", source: "caller" };
    /// The other side of the call went (`normal_clearing`, source unknown).
    pub const WITH_ITS_PARTNER: Self = Self { cause: "normal_clearing", source: "unknown" };
    /// The call a dial was linked to ended before the dial was answered.
    pub const ORIGINATOR_CANCEL: Self = Self { cause: "originator_cancel", source: "caller" };
    /// Bond could not go on with the call (a failure, or Bond stopping).
    pub const UNSPECIFIED: Self = Self { cause: "unspecified", source: "unknown" };
    /// The call's `time_limit_secs` ran out.
    pub const TIME_LIMIT: Self = Self { cause: "time_limit", source: "unknown" };
}
