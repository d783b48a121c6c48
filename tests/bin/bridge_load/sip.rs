//! The generator's SIP: the customers' way into Bond (a trunk connection and
//! their INVITEs) and the agent side's answers to Bond's INVITEs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bond_tests::bond_process::BondProcess;
use bond_tests::load::clock;
use bond_tests::sip_lite::{self, Message};
use serde_json::json;
use tokio::net::UdpSocket;

use super::{srtp, Targets, PCMU};

/// Bond's side of the SIP: acknowledge 200s to the customers' INVITEs, answer
/// Bond's INVITEs to the agent side, and say 200 to anything else (BYE).
pub(super) async fn sip_peer(
    sip: Arc<UdpSocket>,
    b_media: Vec<SocketAddr>,
    (opus, srtp, fmtp): (bool, bool, Option<String>),
    targets: Arc<Mutex<Targets>>,
) {
    let local = sip.local_addr().expect("bound");
    let mut buf = vec![0u8; 65_536];
    while let Ok((n, from)) = sip.recv_from(&mut buf).await {
        let Some(msg) = Message::parse(&buf[..n]) else { continue };
        let reply = match (msg.status(), msg.method()) {
            (Some(200), _) if msg.header("cseq").is_some_and(|c| c.ends_with("INVITE")) => {
                let pair = msg.header("call-id").and_then(|c| c.strip_prefix("la-")?.parse::<usize>().ok());
                if let (Some(i), Some(addr)) = (pair, sip_lite::media_addr(&msg.body)) {
                    let mut t = targets.lock().expect("lock");
                    t.a[i] = Some(addr);
                    t.answered[i].get_or_insert_with(clock);
                }
                Some(sip_lite::ack(local, from, &msg))
            }
            (None, Some("INVITE")) => {
                let pair = msg.request_user().and_then(|u| u.strip_prefix('b')?.parse::<usize>().ok());
                let Some(i) = pair.filter(|&i| i < b_media.len()) else { continue };
                let mut t = targets.lock().expect("lock");
                t.b[i] = sip_lite::media_addr(&msg.body);
                let sdp = if opus {
                    let pt = sip_lite::payload_type(&msg.body, "opus/48000").unwrap_or(111);
                    t.opus_pt = Some(pt);
                    let sdp = sip_lite::sdp(b_media[i], &[(pt, "opus/48000/2")]);
                    match &fmtp {
                        Some(params) => format!("{sdp}a=fmtp:{pt} {params}\r\n"),
                        None => sdp,
                    }
                } else {
                    let te = sip_lite::payload_type(&msg.body, "telephone-event/8000").unwrap_or(101);
                    sip_lite::sdp(b_media[i], &[(0, "PCMU/8000"), (te, "telephone-event/8000")])
                };
                let sdp = if srtp { srtp::secure(&sdp, 1) } else { sdp };
                Some(msg.response("200 OK", &format!("b{i}"), local, Some(&sdp)))
            }
            (None, Some("ACK")) | (Some(_), _) => None,
            (None, _) => Some(msg.response("200 OK", "load", local, None)),
        };
        if let Some(reply) = reply {
            let _ = sip.send_to(reply.as_bytes(), from).await;
        }
    }
}

/// The A side's way in: a connection allowing the generator, and Bond's SIP address.
pub(super) struct Trunk {
    pub(super) connection: String,
    pub(super) bond_sip: SocketAddr,
    pub(super) sip: Arc<UdpSocket>,
    srtp: bool,
}

impl Trunk {
    pub(super) async fn new(bond: &BondProcess, sip: Arc<UdpSocket>, srtp: bool) -> Result<Self, String> {
        let mode = if srtp { "offered" } else { "off" };
        let connection =
            bond.connection(json!({ "sip": { "allowed_ips": ["127.0.0.1"], "srtp": mode } })).await?;
        Ok(Self { connection, bond_sip: SocketAddr::from(([127, 0, 0, 1], bond.sip_port)), sip, srtp })
    }

    /// Pair `i`'s INVITE (PCMU + telephone-event, media to `a_media`), sent.
    pub(super) async fn invite(&self, i: usize, a_media: SocketAddr) -> Result<(), String> {
        let local = self.sip.local_addr().map_err(|e| e.to_string())?;
        let sdp = sip_lite::sdp(a_media, PCMU);
        let sdp = if self.srtp { srtp::secure(&sdp, 0) } else { sdp };
        let invite = sip_lite::invite(local, self.bond_sip, &number(i), &format!("la-{i}"), &sdp);
        self.sip.send_to(invite.as_bytes(), self.bond_sip).await.map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// The customer's number of pair `pair` (the `to` of its INVITE).
fn number(pair: usize) -> String {
    format!("+1555{pair:07}")
}
