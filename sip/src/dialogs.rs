//! What happens inside a dialog, as rsipstack reports it: the far end hangs up
//! or cancels, changes the session (re-INVITE/UPDATE: hold, resume, codec),
//! sends DTMF (INFO), asks whether Bond is there (OPTIONS), or refers the
//! call elsewhere (REFER, and NOTIFYs of Bond's own: `refer.rs`).

use std::sync::Arc;

use bond_codecs::dtmf::DtmfDigit;
use bond_media_engine::runtime::{EngineHandle, StreamInput};
use bond_media_engine::sdp::{self, SessionDescription};
use bond_store::Ending;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TerminatedReason, TransactionHandle};
use rsipstack::sip::{Header, Request, StatusCode};

use super::control::CallControl;
use super::media;
use super::refer;
use super::registry::SipCalls;
use super::SipStack;

pub async fn run<C: CallControl>(
    stack: Arc<SipStack>,
    calls: SipCalls,
    control: C,
    mut states: DialogStateReceiver,
) {
    while let Some(state) = states.recv().await {
        let (calls, engine) = (calls.clone(), stack.engine.clone());
        match state {
            DialogState::Terminated(id, reason) => {
                stack.dialogs.remove_dialog(&id);
                let control = control.clone();
                tokio::spawn(async move { terminated(&calls, control, &id.call_id, &reason).await });
            }
            DialogState::Early(id, response) => {
                let control = control.clone();
                tokio::spawn(async move {
                    if let Some(call) = calls.early_media(&engine, &id.call_id, &response.body).await {
                        control.early_media(&call).await;
                    }
                });
            }
            DialogState::Updated(id, request, handle) => {
                tokio::spawn(
                    async move { session_update(&calls, &engine, &id.call_id, &request, handle).await },
                );
            }
            DialogState::Info(id, request, handle) => {
                tokio::spawn(async move { info(&calls, &engine, &id.call_id, &request, handle).await });
            }
            DialogState::Options(_, _, handle) => {
                tokio::spawn(async move { handle.reply(StatusCode::OK).await });
            }
            DialogState::Refer(id, request, handle) => {
                let control = control.clone();
                tokio::spawn(async move {
                    refer::referred(&calls, control, &id.call_id, &request, handle).await;
                });
            }
            DialogState::Notify(id, request, handle) => {
                let control = control.clone();
                tokio::spawn(async move {
                    refer::notified(&calls, control, &id.call_id, &request, handle).await;
                });
            }
            DialogState::Message(_, _, handle) | DialogState::Publish(_, _, handle) => {
                tokio::spawn(async move { handle.reply(StatusCode::NotImplemented).await });
            }
            _ => {}
        }
    }
}

/// The far end ended the dialog (BYE, CANCEL, no ACK).
async fn terminated<C: CallControl>(
    calls: &SipCalls,
    control: C,
    sip_call_id: &str,
    reason: &TerminatedReason,
) {
    let Some(id) = calls.by_sip_call_id(sip_call_id) else { return };
    // An unanswered outgoing call ends with its INVITE's final response.
    if calls.get(&id).is_some_and(|c| !c.incoming && !c.answered) {
        return;
    }
    let Some(sip_call) = calls.remove(&id) else { return };
    let far_end = if sip_call.incoming { "caller" } else { "callee" };
    let ending = match reason {
        TerminatedReason::UacCancel => Ending { cause: "originator_cancel", source: "caller" },
        TerminatedReason::Timeout => Ending::UNSPECIFIED,
        _ => Ending { cause: "normal_clearing", source: far_end },
    };
    control.ended(&id, ending).await;
}

/// A re-INVITE or UPDATE: answer its offer (or repeat Bond's SDP when it has none).
async fn session_update(
    calls: &SipCalls,
    engine: &EngineHandle,
    sip_call_id: &str,
    request: &Request,
    handle: TransactionHandle,
) {
    let (status, body) = match reanswer(calls, engine, sip_call_id, &request.body).await {
        Ok(sdp) => (StatusCode::OK, Some(sdp.into_bytes())),
        Err(status) => (status, None),
    };
    let headers = body.as_ref().map(|_| vec![Header::ContentType("application/sdp".into())]);
    let _ = handle.respond(status, headers, body).await;
}

/// Bond's new SDP for a re-INVITE's or UPDATE's offer, or the status refusing it.
async fn reanswer(
    calls: &SipCalls,
    engine: &EngineHandle,
    sip_call_id: &str,
    body: &[u8],
) -> Result<String, StatusCode> {
    let id = calls.by_sip_call_id(sip_call_id).ok_or(StatusCode::CallTransactionDoesNotExist)?;
    let sip_call = calls.get(&id).ok_or(StatusCode::CallTransactionDoesNotExist)?;
    if body.is_empty() {
        return Ok(sdp::write(&sip_call.media.local));
    }
    let offer = SessionDescription::parse(body).map_err(|_| StatusCode::BadRequest)?;
    let mut media = sip_call.media.clone();
    let plan =
        media::reanswer(&mut media, &offer, &sip_call.codecs).map_err(|_| StatusCode::NotAcceptableHere)?;
    let rtp = media::rtp_media(&plan, sip_call.answered || !sip_call.incoming, &media.local.crypto);
    engine.update_rtp(media.leg, rtp, plan.remote).await.map_err(|_| StatusCode::NotAcceptableHere)?;
    let answer = sdp::write(&media.local);
    calls.update(&id, |c| c.media = media);
    Ok(answer)
}

/// SIP INFO with `application/dtmf-relay` (`Signal=5`) or `application/dtmf` (`5`).
async fn info(
    calls: &SipCalls,
    engine: &EngineHandle,
    sip_call_id: &str,
    request: &Request,
    handle: TransactionHandle,
) {
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
            let leg = calls.by_sip_call_id(sip_call_id).and_then(|id| calls.get(&id)).map(|c| c.media.leg);
            if let Some(leg) = leg {
                engine.stream_input(leg, StreamInput::Dtmf(digit));
            }
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
