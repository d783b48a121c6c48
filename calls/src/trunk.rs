//! Bridges across nodes (docs/cluster.md). When the two calls of a bridge are
//! carried by two nodes, each node bridges its call with a trunk leg: an
//! ordinary RTP leg whose peer is the other node's trunk leg. The node the
//! bridge action reached creates its trunk leg and offers its address and
//! codec ([`TrunkOffer`]); the other node bridges its call with a trunk leg
//! of its own sending there, and answers with that leg's address. The codec
//! is the offering call's when that is an RTP leg, so two calls sharing a
//! codec pass their packets through undecoded on both nodes; else it is
//! 16-bit PCM at the call's rate.
//!
//! Each node's book has its call's partner as the other node's call, which is
//! not in its book. When a call of such a bridge ends, or is bridged
//! elsewhere, its node hangs up its trunk leg and tells the other node
//! ([`PartnerLeft`]); that node ends its call with it (unless it is parked)
//! or leaves it up, unbridged. A node whose lease lapses counts as its calls
//! ending: every second the others look whether their trunks' nodes still
//! hold a lease (`membership.rs`).

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use bond_codecs::l16::ByteOrder;
use bond_codecs::{Codec, SampleRate};
use bond_media_engine::leg::{MediaSource, RtpMedia};
use bond_media_engine::runtime::LegSpec;
use bond_media_engine::{DtmfPassing, LegId};
use bond_store::db::DbError;
use bond_store::{CallId, CallRecord};
use serde::{Deserialize, Serialize};

use super::payload;
use super::service::{BridgeOptions, CallService};
use crate::CallError;

/// How often a notice the bus could not carry is sent again, and how many times.
const NOTICE_RETRY_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
const NOTICE_RETRIES: u32 = 300;

/// A boxed future, as [`Peers`] returns.
pub type PeerFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How this node reaches the other nodes (the cluster's bus implements it).
pub trait Peers: Send + Sync + std::fmt::Debug {
    /// Ask `node` to bridge its call with a trunk to this node's; the address
    /// its trunk leg listens on.
    fn offer_trunk(
        &self,
        node: String,
        offer: TrunkOffer,
    ) -> PeerFuture<'_, Result<SocketAddr, TrunkRefusal>>;
    /// Tell `node` that the partner of its call left the bridge: `Ok` once
    /// told, or when `node` is gone (its calls end anyway); `Unreachable`
    /// when the bus is down or `node` did not answer in time.
    fn partner_left(&self, node: String, notice: PartnerLeft) -> PeerFuture<'_, Result<(), TrunkRefusal>>;
}

/// One node asking another to bridge its call with a trunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrunkOffer {
    /// Names this bridge in the notices about it, so a late notice about an
    /// earlier bridge of the same calls is told apart.
    pub trunk: u64,
    pub organization_id: String,
    /// The call on the node asked.
    pub call: CallId,
    /// The call on the offering node, and that node.
    pub partner: CallId,
    pub partner_node: String,
    pub codec: TrunkCodec,
    /// Where the offering node's trunk leg listens.
    pub address: SocketAddr,
    /// Refuse when the call asked is bridged already.
    pub prevent_double_bridge: bool,
}

/// The partner of `call` (on another node) left bridge `trunk`: it `ended`,
/// or was bridged elsewhere.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartnerLeft {
    pub trunk: u64,
    pub call: CallId,
    pub partner: CallId,
    pub ended: bool,
}

/// A trunk's codec, as nodes tell each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrunkCodec {
    Pcmu,
    Pcma,
    G722,
    Opus,
    L16 { hz: u32 },
}

/// Why the other node did not bridge its call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum TrunkRefusal {
    #[error("the call has already ended")]
    Ended,
    /// It is bridged already (and the bridge asked not to break that), or in a conference.
    #[error("{0}")]
    Refused(String),
    /// The other node could not be reached, or did not answer.
    #[error("node {0} is not answering")]
    Unreachable(String),
    #[error("{0}")]
    Failed(String),
}

impl From<TrunkRefusal> for CallError {
    fn from(refusal: TrunkRefusal) -> Self {
        match refusal {
            TrunkRefusal::Ended => Self::Ended,
            TrunkRefusal::Refused(detail) => {
                Self::invalid("90034", detail, "/call_control_id_to_bridge_with")
            }
            TrunkRefusal::Unreachable(node_id) => Self::NodeUnavailable { node_id },
            TrunkRefusal::Failed(detail) => Self::Internal(detail),
        }
    }
}

impl From<CallError> for TrunkRefusal {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Ended => Self::Ended,
            CallError::Invalid { detail, .. } => Self::Refused(detail),
            other => Self::Failed(other.to_string()),
        }
    }
}

impl TrunkCodec {
    /// The trunk codec for a call leg: its own when it has one, else PCM at its rate.
    fn for_leg(codec: Option<Codec>, rate: SampleRate) -> Self {
        match codec {
            Some(Codec::Pcmu) => Self::Pcmu,
            Some(Codec::Pcma) => Self::Pcma,
            Some(Codec::G722) => Self::G722,
            Some(Codec::Opus) => Self::Opus,
            _ => Self::L16 { hz: rate.hz() },
        }
    }

    fn codec(self) -> Result<Codec, TrunkRefusal> {
        Ok(match self {
            Self::Pcmu => Codec::Pcmu,
            Self::Pcma => Codec::Pcma,
            Self::G722 => Codec::G722,
            Self::Opus => Codec::Opus,
            Self::L16 { hz } => Codec::L16 {
                rate: SampleRate::from_hz(hz)
                    .map_err(|e| TrunkRefusal::Failed(format!("a trunk at {hz} Hz: {e}")))?,
                order: ByteOrder::BigEndian,
            },
        })
    }
}

/// A call of this node bridged with a call of another.
#[derive(Debug, Clone)]
pub(crate) struct Trunk {
    id: u64,
    /// This side's trunk leg.
    leg: LegId,
    partner: CallId,
    node: String,
}

impl CallService {
    /// Bridge `a` (carried here) with `b`, carried by another node.
    pub(super) async fn bridge_across(
        &self,
        a: &CallRecord,
        b: &CallRecord,
        options: BridgeOptions,
    ) -> Result<(), CallError> {
        let node = b.node_id.clone().unwrap_or_default();
        let Some(peers) = self.peers.clone() else {
            let detail = format!(
                "Call {} is carried by node {node}: bridging calls on two nodes needs cluster.nats_url.",
                b.call_control_id
            );
            return Err(CallError::invalid("10015", detail, "/call_control_id_to_bridge_with"));
        };
        let id = &a.call_control_id;
        let leg = self.prepare_bridge(a, options.prevent_double_bridge).await?;
        let (trunk, codec, address) = self.trunk_leg(leg, None, None).await?;
        let trunk_id = rand::random();
        let offer = TrunkOffer {
            trunk: trunk_id,
            organization_id: a.organization_id.clone(),
            call: b.call_control_id.clone(),
            partner: id.clone(),
            partner_node: self.store.node_id().to_owned(),
            codec,
            address,
            prevent_double_bridge: options.prevent_double_bridge,
        };
        let joined = match peers.offer_trunk(node.clone(), offer).await {
            Ok(remote) => self.join_trunk(leg, trunk, codec, remote, options.dtmf).await,
            Err(refusal) => {
                let _ = self.engine.hangup(trunk).await;
                if matches!(refusal, TrunkRefusal::Unreachable(_)) {
                    // It may have bridged its call before its answer was lost.
                    self.tell_partner_left(trunk_id, &node, &b.call_control_id, id, false);
                }
                return Err(refusal.into());
            }
        };
        if let Err(e) = joined {
            let _ = self.engine.hangup(trunk).await;
            self.tell_partner_left(trunk_id, &node, &b.call_control_id, id, false);
            return Err(e);
        }
        let trunk = Trunk { id: trunk_id, leg: trunk, partner: b.call_control_id.clone(), node };
        self.trunked(a, trunk, options.park_after_unbridge).await
    }

    /// Another node's offer: bridge its call here with a trunk to it; the
    /// address of this side's trunk leg.
    pub async fn accept_trunk(&self, offer: TrunkOffer) -> Result<SocketAddr, TrunkRefusal> {
        let call = self.store.get_call(&offer.organization_id, &offer.call).await.map_err(CallError::from)?;
        let call = call.filter(CallRecord::is_alive).ok_or(TrunkRefusal::Ended)?;
        let leg = self.prepare_bridge(&call, offer.prevent_double_bridge).await?;
        let codec = offer.codec.codec()?;
        let (trunk, _, address) = self.trunk_leg(leg, Some(codec), Some(offer.address)).await?;
        if let Err(e) = self.engine.bridge(leg, trunk, DtmfPassing::Both).await {
            let _ = self.engine.hangup(trunk).await;
            return Err(CallError::from(e).into());
        }
        let trunk = Trunk { id: offer.trunk, leg: trunk, partner: offer.partner, node: offer.partner_node };
        self.trunked(&call, trunk, false).await?;
        Ok(address)
    }

    /// The other node's call left the bridge with this node's `call`.
    pub async fn remote_partner_left(&self, notice: PartnerLeft) {
        let PartnerLeft { trunk, call, partner, ended } = notice;
        let Some((_, trunk)) = self.trunks.remove_if(&call, |_, t| t.id == trunk) else { return };
        let _ = self.engine.hangup(trunk.leg).await;
        if let Err(e) = self.unbridged_in_store(&call).await {
            tracing::warn!(%call, error = %e, "could not record the end of a bridge across nodes");
        }
        self.in_book(|book| book.remote_partner_left(&call, &partner, ended)).await;
    }

    /// `call` ended or left its bridge here: hang up its trunk leg, if it
    /// has one, and tell the other node.
    pub(super) async fn drop_trunk(&self, call: &CallId, ended: bool) {
        let Some((_, trunk)) = self.trunks.remove(call) else { return };
        let _ = self.engine.hangup(trunk.leg).await;
        self.tell_partner_left(trunk.id, &trunk.node, &trunk.partner, call, ended);
    }

    /// End the bridges whose other node no longer holds a lease (it died):
    /// as if each partner had ended.
    pub(super) async fn drop_trunks_to_dead_nodes(&self) {
        if self.trunks.is_empty() {
            return;
        }
        let live: HashSet<String> = match self.store.live_node_loads().await {
            Ok(loads) => loads.into_iter().map(|(node, _)| node).collect(),
            Err(e) => return tracing::warn!(error = %e, "cannot read the cluster's nodes"),
        };
        let lost: Vec<PartnerLeft> = self
            .trunks
            .iter()
            .filter(|t| !live.contains(&t.node))
            .map(|t| PartnerLeft {
                trunk: t.id,
                call: t.key().clone(),
                partner: t.partner.clone(),
                ended: true,
            })
            .collect();
        for notice in lost {
            tracing::warn!(call = %notice.call, "the node carrying this call's bridge partner died");
            self.remote_partner_left(notice).await;
        }
    }

    /// What bridging `call` here takes first: its leg, out of any queue and
    /// any earlier bridge.
    async fn prepare_bridge(
        &self,
        call: &CallRecord,
        prevent_double_bridge: bool,
    ) -> Result<LegId, CallError> {
        let id = &call.call_control_id;
        let leg = self.live_leg(call)?;
        if prevent_double_bridge && self.book().partner(id).is_some() {
            return Err(bond_call_core::Refusal::AlreadyBridged(id.clone()).into());
        }
        if self.conferences().of_call(id).is_some() {
            let detail = format!("Call {id} is in a conference: it must leave it first.");
            return Err(CallError::invalid("90034", detail, "/call_control_id"));
        }
        self.left_queue(id, super::queue::LeftBecause::Bridged).await?;
        self.unbridge(id).await?;
        Ok(leg)
    }

    /// A trunk leg beside `leg`, in `codec` (else one for `leg`), sending to
    /// `remote` once known; with its codec and the address other nodes reach it on.
    async fn trunk_leg(
        &self,
        leg: LegId,
        codec: Option<Codec>,
        remote: Option<SocketAddr>,
    ) -> Result<(LegId, TrunkCodec, SocketAddr), CallError> {
        let codec = match codec {
            Some(codec) => codec,
            None => {
                let rate = self.engine.leg_rate(leg).await?.ok_or(CallError::Ended)?;
                TrunkCodec::for_leg(self.engine.leg_codec(leg).await?, rate).codec()?
            }
        };
        let spec = LegSpec {
            media: RtpMedia::new(codec),
            source: MediaSource::Silence,
            remote,
            media_timeout: None,
        };
        let info = self.engine.near(leg).create_leg(spec).await?;
        let address = SocketAddr::new(self.trunk_ip, info.local_addr.port());
        Ok((info.id, TrunkCodec::for_leg(Some(codec), codec.sample_rate()), address))
    }

    /// Point this side's trunk at the other's and bridge it with the call's leg.
    async fn join_trunk(
        &self,
        leg: LegId,
        trunk: LegId,
        codec: TrunkCodec,
        remote: SocketAddr,
        dtmf: DtmfPassing,
    ) -> Result<(), CallError> {
        self.engine.update_rtp(trunk, RtpMedia::new(codec.codec()?), Some(remote)).await?;
        self.engine.bridge(leg, trunk, dtmf).await?;
        Ok(())
    }

    /// `call` is bridged with `trunk`'s partner now: in the book, the store and its `call.bridged`.
    async fn trunked(
        &self,
        call: &CallRecord,
        trunk: Trunk,
        park_after_unbridge: bool,
    ) -> Result<(), CallError> {
        let id = &call.call_control_id;
        let partner = trunk.partner.clone();
        self.trunks.insert(id.clone(), trunk);
        self.book().bridged(id, &partner, park_after_unbridge);
        if self.book().partner(id) != Some(&partner) {
            // It ended meanwhile: its end did not see the trunk.
            self.drop_trunk(id, true).await;
            return Err(CallError::Ended);
        }
        let result: Result<(), DbError> = async {
            let mut tx = self.store.begin().await?;
            if let Some(fresh) = self.store.set_bridged(&mut tx, id, Some(&partner)).await? {
                self.enqueue(&mut tx, &fresh, "call.bridged", payload::bridged(&fresh)).await?;
            }
            self.store.commit(tx).await
        }
        .await;
        result?;
        self.notifier.notify();
        Ok(())
    }

    async fn unbridged_in_store(&self, call: &CallId) -> Result<(), DbError> {
        let mut tx = self.store.begin().await?;
        self.store.set_bridged(&mut tx, call, None).await?;
        self.store.commit(tx).await
    }

    /// Tell `node` (in the background) that `partner`, its call's partner
    /// here, left `trunk`; while the bus is down, again every
    /// [`NOTICE_RETRY_EVERY`] for [`NOTICE_RETRIES`] tries, so a bridge torn
    /// down during a NATS outage ends on both sides once it is back.
    fn tell_partner_left(&self, trunk: u64, node: &str, call: &CallId, partner: &CallId, ended: bool) {
        let Some(peers) = self.peers.clone() else { return };
        let notice = PartnerLeft { trunk, call: call.clone(), partner: partner.clone(), ended };
        let node = node.to_owned();
        tokio::spawn(async move {
            for _ in 0..NOTICE_RETRIES {
                match peers.partner_left(node.clone(), notice.clone()).await {
                    Ok(()) => return,
                    Err(_) => tokio::time::sleep(NOTICE_RETRY_EVERY).await,
                }
            }
            tracing::warn!(call = %notice.call, %node, "gave up telling a node its call's partner left");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trunk_takes_the_calls_codec_or_pcm_at_its_rate() {
        assert_eq!(TrunkCodec::for_leg(Some(Codec::Pcma), SampleRate::Hz8000), TrunkCodec::Pcma);
        assert_eq!(TrunkCodec::for_leg(None, SampleRate::Hz16000), TrunkCodec::L16 { hz: 16000 });
        let pcm = TrunkCodec::L16 { hz: 16000 }.codec().unwrap();
        assert_eq!(pcm, Codec::L16 { rate: SampleRate::Hz16000, order: ByteOrder::BigEndian });
        assert!(TrunkCodec::L16 { hz: 11025 }.codec().is_err());
    }

    #[test]
    fn a_refusal_crosses_the_bus_and_comes_back_as_the_same_call_error() {
        let refusal: TrunkRefusal =
            CallError::invalid("90034", "Call x is already bridged.", "/call_control_id").into();
        let carried: TrunkRefusal = serde_json::from_str(&serde_json::to_string(&refusal).unwrap()).unwrap();
        assert!(matches!(CallError::from(carried), CallError::Invalid { code: "90034", .. }));
        assert!(matches!(CallError::from(TrunkRefusal::from(CallError::Ended)), CallError::Ended));
        let unreachable = CallError::from(TrunkRefusal::Unreachable("node2".into()));
        assert!(matches!(unreachable, CallError::NodeUnavailable { node_id } if node_id == "node2"));
    }
}
