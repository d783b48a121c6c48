//! REFER (RFC 3515), both ways.
//!
//! - Bond refers a peer (the `refer` action): a REFER with `Refer-To` in the
//!   call's dialog; the peer's answer and its NOTIFYs (a `message/sipfrag`
//!   status line each) go to call control as [`ReferProgress`].
//! - A peer refers Bond (a blind transfer from a phone or a PBX): call control
//!   decides ([`CallControl::referred`](crate::CallControl::referred)); Bond
//!   answers `202 Accepted` and `NOTIFY`s `100 Trying`, then the outcome once
//!   call control reports it ([`SipCalls::notify_refer`]).
//!
//! NOTIFYs of one call go out in order: each takes the call's refer lane first.

use bond_store::CallId;
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::sip::event_packages::parse_refer_to;
use rsipstack::sip::{Header, Request, StatusCode};

use super::control::CallControl;
use super::headers::ExtraHeader;
use super::registry::{SipCall, SipCalls};

/// How long the first NOTIFY waits after the `202 Accepted`.
const NOTIFY_AFTER_ACCEPTED: std::time::Duration = std::time::Duration::from_millis(20);

/// What became of a REFER Bond sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferProgress {
    /// The peer took it (`202 Accepted`).
    Accepted,
    /// The peer refused it, or never answered (`status`).
    Refused(u16),
    /// The peer's final NOTIFY: how its call to the target ended.
    Finished(u16),
}

/// Why Bond declines a peer's REFER: the status it answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {reason}")]
pub struct ReferRefusal {
    pub status: u16,
    pub reason: String,
}

impl ReferRefusal {
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Self { status, reason: reason.into() }
    }
}

impl SipCalls {
    /// Send a REFER to `target` in `call`'s dialog; what the peer answers and
    /// NOTIFYs goes to `control`. An error when `call` is not an answered SIP
    /// call or `target` not a SIP URI.
    pub fn refer<C: CallControl>(
        &self,
        call: &CallId,
        target: &str,
        headers: Vec<ExtraHeader>,
        control: C,
    ) -> Result<(), String> {
        let sip_call = self.get(call).filter(|c| c.answered).ok_or("the call has no answered SIP dialog")?;
        let refer_to =
            rsipstack::sip::Uri::try_from(target).map_err(|_| format!("{target} is not a SIP URI"))?;
        let extra: Vec<Header> = headers.iter().map(ExtraHeader::header).collect();
        let call = call.clone();
        tokio::spawn(async move {
            let progress = match sip_call.dialog.refer(refer_to, Some(extra), None).await {
                Ok(Some(response))
                    if response.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful =>
                {
                    ReferProgress::Accepted
                }
                Ok(Some(response)) => ReferProgress::Refused(response.status_code.code()),
                Ok(None) => ReferProgress::Refused(481),
                Err(e) => {
                    tracing::debug!(%call, error = %e, "REFER got no answer");
                    ReferProgress::Refused(408)
                }
            };
            control.refer_progress(&call, progress).await;
        });
        Ok(())
    }

    /// Tell the peer that referred `call` how Bond's call to its target went
    /// (`status`: 100 while it runs, then the final one).
    pub async fn notify_refer(&self, call: &CallId, status: u16) {
        let Some(sip_call) = self.get(call) else { return };
        let _in_order = sip_call.refer_lane.lock().await;
        notify(&sip_call, status).await;
    }
}

/// One NOTIFY of a REFER's progress (the caller holds the refer lane).
async fn notify(sip_call: &SipCall, status: u16) {
    let state = if status < 200 { "active;expires=60" } else { "terminated;reason=noresource" };
    let headers = vec![
        Header::Event("refer".into()),
        Header::SubscriptionState(state.into()),
        Header::ContentType("message/sipfrag;version=2.0".into()),
    ];
    let body = format!("SIP/2.0 {status} {}\r\n", StatusCode::from(status).text()).into_bytes();
    if let Err(e) = sip_call.dialog.notify(Some(headers), Some(body)).await {
        tracing::debug!(call = %sip_call.call_control_id, error = %e, "could not NOTIFY a REFER's progress");
    }
}

/// A REFER from the peer of `sip_call_id`: call control decides; `202` and a
/// `100 Trying` NOTIFY when it goes ahead, its refusal's status when not.
pub(super) async fn referred<C: CallControl>(
    calls: &SipCalls,
    control: C,
    sip_call_id: &str,
    request: &Request,
    handle: TransactionHandle,
) {
    let Some(sip_call) = calls.by_sip_call_id(sip_call_id).and_then(|id| calls.get(&id)) else {
        let _ = handle.reply(StatusCode::CallTransactionDoesNotExist).await;
        return;
    };
    let target = match refer_target(request) {
        Ok(target) => target,
        Err(status) => {
            let _ = handle.reply(status).await;
            return;
        }
    };
    // Held until 202 and its first NOTIFY are out: the outcome's NOTIFY waits for it.
    let _in_order = sip_call.refer_lane.lock().await;
    let id = &sip_call.call_control_id;
    match control.referred(id, target).await {
        Ok(()) => {
            let _ = handle.reply(StatusCode::Accepted).await;
            // The 202 leaves from rsipstack's transaction task: let it go first,
            // as peers expect (RFC 6665 allows either order; not every peer does).
            tokio::time::sleep(NOTIFY_AFTER_ACCEPTED).await;
            notify(&sip_call, 100).await;
        }
        Err(refusal) => {
            tracing::info!(call = %id, %refusal, "a REFER was declined");
            let _ = handle.respond(StatusCode::from(refusal.status), None, None).await;
        }
    }
}

/// The URI a REFER names (`Refer-To`), without header parameters. `400`
/// when it names none; `501` when it asks to replace a dialog (an attended
/// transfer with `Replaces`, which Bond does not do).
fn refer_target(request: &Request) -> Result<String, StatusCode> {
    let value = request.headers.iter().find_map(|h| match h {
        Header::ReferTo(refer_to) => Some(refer_to.value().to_owned()),
        Header::Other(name, value) if name.eq_ignore_ascii_case("refer-to") => Some(value.clone()),
        _ => None,
    });
    let target = parse_refer_to(&value.ok_or(StatusCode::BadRequest)?);
    match target {
        _ if target.replaces.is_some() => Err(StatusCode::NotImplemented),
        _ if target.uri.is_empty() => Err(StatusCode::BadRequest),
        _ => Ok(target.uri),
    }
}

/// A peer's NOTIFY in `sip_call_id`'s dialog: a REFER's final status goes to
/// call control; every NOTIFY is answered `200` (RFC 6665: a subscriber
/// accepts the notifications of its subscription).
pub(super) async fn notified<C: CallControl>(
    calls: &SipCalls,
    control: C,
    sip_call_id: &str,
    request: &Request,
    handle: TransactionHandle,
) {
    let call = calls.by_sip_call_id(sip_call_id);
    let _ = handle
        .reply(if call.is_some() { StatusCode::OK } else { StatusCode::CallTransactionDoesNotExist })
        .await;
    let (Some(call), Some(status)) = (call, sipfrag_status(&request.body)) else { return };
    if status >= 200 {
        control.refer_progress(&call, ReferProgress::Finished(status)).await;
    }
}

/// `SIP/2.0 200 OK` (a `message/sipfrag` body) -> 200.
fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(body).ok()?.lines().find(|l| !l.trim().is_empty())?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    parts.next()?.parse().ok().filter(|s| (100..700).contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sipfrag_status_line_is_read() {
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(sipfrag_status(b"\r\nSIP/2.0 486 Busy Here"), Some(486));
        assert_eq!(sipfrag_status(b"SIP/2.0 100"), Some(100));
        assert_eq!(sipfrag_status(b"HTTP/1.1 200 OK"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 99 Low"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 abc"), None);
        assert_eq!(sipfrag_status(&[0xff, 0xfe]), None);
        assert_eq!(sipfrag_status(b""), None);
    }
}
