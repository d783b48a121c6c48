//! What happens inside a dialog, as rsipstack reports it: the far end hangs up
//! or cancels, changes the session (re-INVITE/UPDATE: hold, resume, codec),
//! sends DTMF (INFO), or asks whether Bond is there (OPTIONS).

use std::sync::Arc;

use bond_codecs::dtmf::DtmfDigit;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TransactionHandle};
use rsipstack::sip::{Header, Request, StatusCode};

use super::SipStack;
use crate::CallService;

pub async fn run(stack: Arc<SipStack>, calls: CallService, mut states: DialogStateReceiver) {
    while let Some(state) = states.recv().await {
        let calls = calls.clone();
        match state {
            DialogState::Terminated(id, reason) => {
                stack.dialogs.remove_dialog(&id);
                tokio::spawn(async move { calls.sip_terminated(&id.call_id, &reason).await });
            }
            DialogState::Early(id, response) => {
                tokio::spawn(async move { calls.sip_early_media(&id.call_id, &response.body).await });
            }
            DialogState::Updated(id, request, handle) => {
                tokio::spawn(async move { session_update(&calls, &id.call_id, &request, handle).await });
            }
            DialogState::Info(id, request, handle) => {
                tokio::spawn(async move { info(&calls, &id.call_id, &request, handle).await });
            }
            DialogState::Options(_, _, handle) => {
                tokio::spawn(async move { handle.reply(StatusCode::OK).await });
            }
            DialogState::Refer(_, _, handle)
            | DialogState::Message(_, _, handle)
            | DialogState::Notify(_, _, handle)
            | DialogState::Publish(_, _, handle) => {
                tokio::spawn(async move { handle.reply(StatusCode::NotImplemented).await });
            }
            _ => {}
        }
    }
}

/// A re-INVITE or UPDATE: answer its offer (or repeat Bond's SDP when it has none).
async fn session_update(
    calls: &CallService,
    sip_call_id: &str,
    request: &Request,
    handle: TransactionHandle,
) {
    let (status, body) = match calls.sip_session_update(sip_call_id, &request.body).await {
        Ok(sdp) => (StatusCode::OK, Some(sdp.into_bytes())),
        Err(status) => (status, None),
    };
    let headers = body.as_ref().map(|_| vec![Header::ContentType("application/sdp".into())]);
    let _ = handle.respond(status, headers, body).await;
}

/// SIP INFO with `application/dtmf-relay` (`Signal=5`) or `application/dtmf` (`5`).
async fn info(calls: &CallService, sip_call_id: &str, request: &Request, handle: TransactionHandle) {
    let content_type = request.headers.iter().find_map(|h| match h {
        Header::ContentType(c) => Some(c.to_string().to_ascii_lowercase()),
        _ => None,
    });
    let digit = match content_type.as_deref().map(|c| c.split(';').next().unwrap_or(c).trim()) {
        Some("application/dtmf-relay") => relay_digit(&request.body),
        Some("application/dtmf") => std::str::from_utf8(&request.body)
            .ok()
            .and_then(|s| s.trim().chars().next())
            .and_then(|c| DtmfDigit::from_char(c).ok()),
        _ => {
            let _ = handle.reply(StatusCode::OK).await; // INFO for something else: acknowledged, ignored
            return;
        }
    };
    match digit {
        Some(digit) => {
            calls.sip_dtmf(sip_call_id, digit).await;
            let _ = handle.reply(StatusCode::OK).await;
        }
        None => {
            let _ = handle.reply(StatusCode::BadRequest).await;
        }
    }
}

/// `Signal=5\r\nDuration=160` -> 5.
pub(super) fn relay_digit(body: &[u8]) -> Option<DtmfDigit> {
    let text = std::str::from_utf8(body).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("signal") {
            return None;
        }
        DtmfDigit::from_char(value.trim().chars().next()?).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_relay_bodies_are_read() {
        assert_eq!(relay_digit(b"Signal=5\r\nDuration=160\r\n"), DtmfDigit::from_char('5').ok());
        assert_eq!(relay_digit(b"signal= #\r\n"), DtmfDigit::from_char('#').ok());
        assert_eq!(relay_digit(b"Duration=160\r\n"), None);
        assert_eq!(relay_digit(b"Signal=x\r\n"), None);
        assert_eq!(relay_digit(&[0xff]), None);
    }
}
