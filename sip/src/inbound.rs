//! Requests that arrive outside a known transaction: new INVITEs, in-dialog
//! requests (handed to their dialog), OPTIONS keep-alives, and the rest.

use std::net::IpAddr;
use std::sync::Arc;

use bond_media_engine::sdp::{self, SessionDescription};
use bond_store::CallId;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, StatusCode, ToTypedHeader};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;

use super::control::{CallControl, IncomingCall, IncomingRefused};
use super::digest::Verdict;
use super::media::{self, CallMedia};
use super::registry::{SipCall, SipCalls};
use super::source::source_ip;
use super::{SipSettings, SipStack, ALLOW};
use bond_store::clock::unix_seconds;
use bond_store::{Connection, Ending};

/// What a new INVITE reaches: the stack, the live SIP calls, call control.
#[derive(Clone)]
pub struct Inbound<C> {
    pub stack: Arc<SipStack>,
    pub calls: SipCalls,
    pub control: C,
}

/// Take every new server transaction; each is handled in its own task.
pub async fn run<C: CallControl>(inbound: Inbound<C>, mut incoming: TransactionReceiver) {
    while let Some(tx) = incoming.recv().await {
        let inbound = inbound.clone();
        tokio::spawn(async move { inbound.handle(tx).await });
    }
}

impl<C: CallControl> Inbound<C> {
    async fn handle(self, mut tx: Transaction) {
        let stack = &self.stack;
        let in_dialog = tx.original.to_header().ok().and_then(|t| t.tag().ok().flatten()).is_some();
        if in_dialog {
            match stack.dialogs.match_dialog(&tx) {
                Some(mut dialog) => {
                    if let Err(e) = dialog.handle(&mut tx).await {
                        tracing::debug!(error = %e, "in-dialog request failed");
                    }
                }
                None if tx.original.method == Method::Ack => {}
                None => reply(&mut tx, StatusCode::CallTransactionDoesNotExist).await,
            }
            return;
        }
        match tx.original.method {
            Method::Invite => self.invite(tx).await,
            Method::Options => {
                let allow = vec![Header::Allow(ALLOW.into()), Header::Accept("application/sdp".into())];
                let _ = tx.reply_with(StatusCode::OK, allow, None).await;
            }
            Method::Ack => {}
            Method::Bye | Method::Info | Method::Update | Method::PRack | Method::Cancel => {
                reply(&mut tx, StatusCode::CallTransactionDoesNotExist).await
            }
            _ => {
                let _ = tx
                    .reply_with(StatusCode::MethodNotAllowed, vec![Header::Allow(ALLOW.into())], None)
                    .await;
            }
        }
    }

    /// A new call from a trunk.
    async fn invite(self, mut tx: Transaction) {
        let stack = &self.stack;
        let Some(source) = source_ip(&tx.original) else {
            return reply(&mut tx, StatusCode::BadRequest).await;
        };
        let Some((connection, settings)) = self.connection_for(&mut tx, source).await else { return };
        if settings.max_concurrent_calls.is_some_and(|max| self.calls.active_on(&connection.id) >= max) {
            return reply(&mut tx, StatusCode::ServiceUnavailable).await;
        }
        let (Ok(from), Ok(to)) = (tx.original.from_header(), tx.original.to_header()) else {
            return reply(&mut tx, StatusCode::BadRequest).await;
        };
        let (from_uri, display_name) = match from.typed() {
            Ok(f) => (f.uri.clone(), f.display_name.clone()),
            Err(_) => return reply(&mut tx, StatusCode::BadRequest).await,
        };
        let to_user = tx.original.uri.auth.as_ref().map(|a| a.user.clone());
        let to_uri = to.uri().ok();
        if tx.original.body.is_empty() {
            // An INVITE without an offer wants Bond to offer in its 200; not supported.
            return reply(&mut tx, StatusCode::NotAcceptableHere).await;
        }
        let offer = match SessionDescription::parse(&tx.original.body) {
            Ok(offer) => offer,
            Err(e) => {
                tracing::info!(%source, error = %e, "INVITE with unreadable SDP");
                return reply(&mut tx, StatusCode::BadRequest).await;
            }
        };
        let plan = match sdp::answer(&offer, &settings.codecs) {
            Ok(plan) => plan,
            Err(e) => {
                tracing::info!(%source, error = %e, "no common media");
                return reply(&mut tx, StatusCode::NotAcceptableHere).await;
            }
        };
        let crypto = match media::answer_crypto(&plan, settings.srtp) {
            Ok(crypto) => crypto,
            Err(reason) => {
                tracing::info!(%source, %reason, "SRTP not agreed");
                return reply(&mut tx, StatusCode::NotAcceptableHere).await;
            }
        };
        let leg = media::rtp_media(&plan, false, &crypto);
        let leg = media::open_leg(&stack.engine, leg, plan.remote, stack.rtp_timeout).await;
        let (leg, port) = match leg {
            Ok(leg) => leg,
            Err(e) => {
                tracing::warn!(error = %e, "no RTP leg for an incoming call");
                return reply(&mut tx, StatusCode::ServiceUnavailable).await;
            }
        };
        let contact = stack.contact("bond", transport_of(&tx));
        let dialog =
            match stack.dialogs.get_or_create_server_invite(&tx, stack.states.clone(), None, Some(contact)) {
                Ok(d) => d,
                Err(e) => {
                    tracing::info!(error = %e, "INVITE refused by the dialog layer");
                    let _ = stack.engine.hangup(leg).await;
                    return reply(&mut tx, StatusCode::BadRequest).await;
                }
            };
        let offered_codecs = offer
            .media
            .iter()
            .find(|m| m.media == "audio")
            .map(|m| {
                m.formats
                    .iter()
                    .filter_map(|pt| m.rtpmap(*pt))
                    .map(|r| r.encoding)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let id = CallId::generate();
        self.calls.insert(SipCall {
            call_control_id: id.clone(),
            connection_id: connection.id.clone(),
            dialog: dialog.clone(),
            incoming: true,
            answered: false,
            media: CallMedia {
                leg,
                local: media::answer_media(&plan, stack.media_ip, port, crypto),
                plan: Some(plan),
            },
            codecs: settings.codecs.clone(),
            refer_lane: Default::default(),
            ring_timer: None,
        });
        // 100 Trying goes out at once; the task then waits for CANCEL or the ACK.
        let mut dialog_task = dialog.clone();
        tokio::spawn(async move {
            if let Err(e) = dialog_task.handle(&mut tx).await {
                tracing::debug!(error = %e, "INVITE transaction ended with an error");
            }
        });
        let incoming = IncomingCall {
            call_control_id: id.clone(),
            leg,
            from: user_or_uri(&from_uri),
            from_display_name: display_name.filter(|d| !d.is_empty()),
            to: to_user.or_else(|| to_uri.as_ref().map(user_or_uri)).unwrap_or_default(),
            offered_codecs,
        };
        match self.control.incoming(&connection, incoming, settings.max_concurrent_calls).await {
            Ok(()) => {
                let _ = dialog.ringing(None, None);
                tracing::info!(call = %id, %source, "incoming SIP call ringing (180)");
                let ring = stack.ring_timeout;
                let calls = self.calls.clone();
                let call = id.clone();
                let timer = tokio::spawn(async move {
                    tokio::time::sleep(ring).await;
                    // Fired: removing the call must not abort the ending it reports.
                    self.calls.update(&id, |c| c.ring_timer = None);
                    self.expire_unanswered(&id).await;
                })
                .abort_handle();
                // Answered already (a quick application)? Then nothing is left to time out.
                let answered = calls.update(&call, |c| {
                    if !c.answered {
                        c.ring_timer = Some(timer.clone());
                    }
                    c.answered
                });
                if answered == Some(true) {
                    timer.abort();
                }
            }
            Err(e) => {
                let status = match e {
                    IncomingRefused::AtCapacity => {
                        tracing::info!(%source, "connection full across the cluster: 503");
                        StatusCode::ServiceUnavailable
                    }
                    IncomingRefused::Store(e) => {
                        tracing::error!(error = %e, "could not record an incoming SIP call");
                        StatusCode::ServerInternalError
                    }
                };
                self.calls.remove(&id);
                let _ = dialog.reject(Some(status), None);
                let _ = stack.engine.hangup(leg).await;
            }
        }
    }

    /// An incoming call still waiting for `answer` or `reject` when its ring
    /// timeout passes: 480 to the caller, and the call ends as `timeout`.
    async fn expire_unanswered(&self, id: &CallId) {
        if self.calls.reject(id, 480) {
            tracing::info!(call = %id, "incoming call not answered in time: 480, ended");
            self.control.ended(id, Ending { cause: "timeout", source: "unknown" }).await;
        }
    }

    /// The connection an INVITE from `source` lands on: by its address, or by the
    /// credentials it answered Bond's challenge with. When there is none, the
    /// INVITE has been answered (403, 401 with a challenge, or 503).
    async fn connection_for(
        &self,
        tx: &mut Transaction,
        source: IpAddr,
    ) -> Option<(Connection, SipSettings)> {
        let stack = &self.stack;
        let candidates = match self.control.sip_connections().await.map(|all| candidates(all, source)) {
            Ok(Candidates::Allowed(found)) => return Some(*found),
            Ok(Candidates::Authenticate(candidates)) => candidates,
            Err(e) => {
                tracing::error!(error = %e, "could not look up SIP connections");
                reply(tx, StatusCode::ServiceUnavailable).await;
                return None;
            }
        };
        if candidates.is_empty() {
            tracing::info!(%source, "INVITE from an address no connection allows");
            reply(tx, StatusCode::Forbidden).await;
            return None;
        }
        let users: Vec<_> = candidates.iter().filter_map(|(_, s)| s.inbound_auth.as_ref()).collect();
        let now = unix_seconds();
        let shared = stack.shared_failures.as_ref();
        let verdict = match shared {
            Some(shared) if shared.throttled(source).await => Verdict::Throttled,
            _ => stack.digest.check(&tx.original, &users, now, source),
        };
        let stale = match verdict {
            Verdict::Accepted(i) => return candidates.into_iter().nth(i),
            Verdict::Refused => {
                if let Some(shared) = shared {
                    shared.failed(source).await;
                }
                tracing::info!(%source, "INVITE with credentials no connection accepts");
                reply(tx, StatusCode::Forbidden).await;
                return None;
            }
            Verdict::Throttled => {
                tracing::debug!(%source, "INVITE from an address that keeps failing digest: refused");
                reply(tx, StatusCode::Forbidden).await;
                return None;
            }
            Verdict::Missing => false,
            Verdict::Stale => true,
        };
        let challenge = vec![stack.digest.challenge(&tx.original, now, stale)];
        if let Err(e) = tx.reply_with(StatusCode::Unauthorized, challenge, None).await {
            tracing::debug!(error = %e, "could not send a SIP response");
        }
        None
    }
}

/// Where an incoming INVITE may land.
#[derive(Debug)]
enum Candidates {
    /// The connection allowing the source address.
    Allowed(Box<(Connection, SipSettings)>),
    /// The connections whose credentials the caller may answer a challenge with.
    Authenticate(Vec<(Connection, SipSettings)>),
}

/// Of `connections`, the one whose `bond.sip.allowed_ips` holds `source`
/// alone, else those with `inbound_auth`.
fn candidates(connections: Vec<Connection>, source: IpAddr) -> Candidates {
    let mut all: Vec<_> =
        connections.into_iter().filter_map(|c| SipSettings::of(&c).map(|s| (c, s))).collect();
    let claimed: Vec<usize> = (0..all.len()).filter(|&i| all[i].1.allowed_ips.contains(&source)).collect();
    // Oldest first; an address two organizations claim (kept from before
    // that was refused) lands on neither.
    let orgs = |i: &usize| all[*i].0.organization_id.as_str();
    if claimed.iter().any(|i| orgs(i) != orgs(&claimed[0])) {
        tracing::warn!(%source, "INVITE from an address two organizations claim: refused");
        return Candidates::Authenticate(Vec::new());
    }
    match claimed.first() {
        Some(&i) => Candidates::Allowed(Box::new(all.swap_remove(i))),
        None => {
            all.retain(|(_, s)| s.inbound_auth.is_some());
            Candidates::Authenticate(all)
        }
    }
}

/// The transport `tx` came in over.
fn transport_of(tx: &Transaction) -> rsipstack::sip::Transport {
    use rsipstack::sip::Transport;
    match tx.connection.as_ref() {
        Some(c) if c.get_addr().r#type == Some(Transport::Tls) => Transport::Tls,
        Some(c) if c.is_reliable() => Transport::Tcp,
        _ => Transport::Udp,
    }
}

/// `+15551234567` from `sip:+15551234567@host`, else the whole URI.
pub(super) fn user_or_uri(uri: &rsipstack::sip::Uri) -> String {
    match &uri.auth {
        Some(auth) if !auth.user.is_empty() => auth.user.clone(),
        _ => uri.to_string(),
    }
}

async fn reply(tx: &mut Transaction, status: StatusCode) {
    if let Err(e) = tx.reply(status).await {
        tracing::debug!(error = %e, "could not send a SIP response");
    }
}
