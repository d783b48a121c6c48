//! The engine's WebRTC legs: made from a browser's offer, fed datagrams from
//! the shared WebRTC port, and given the candidates the browser trickles
//! after its offer (RFC 8838).

use std::net::SocketAddr;
use std::time::Instant;

use bond_codecs::Codec;

use super::member::Member;
use super::Engine;
use crate::ids::LegId;
use crate::leg::LegConfig;
use crate::webrtc::{self, IceCreds, WebRtcAnswer, WebRtcLeg};
use crate::EngineError;

impl Engine {
    /// Add a WebRTC leg answering a browser's SDP `offer`, reachable at `candidates`
    /// (the shared WebRTC port's addresses, see `webrtc/leg.rs`). Feed it with [`Engine::handle_webrtc_datagram`];
    /// it outputs [`EngineOutput::Datagram`]. Bad SDP is an error, not a leg.
    /// Its codec and passthrough follow [`Engine::set_webrtc_options`].
    pub fn add_webrtc_leg(
        &mut self,
        now: Instant,
        offer: &str,
        candidates: &crate::webrtc::HostCandidates,
        credentials: IceCreds,
    ) -> Result<(LegId, WebRtcAnswer), EngineError> {
        if self.webrtc_ufrags.contains_key(&credentials.ufrag) {
            return Err(EngineError::WebRtc("ICE username fragment already in use".into()));
        }
        let id = self.next_id();
        let config = LegConfig { passthrough: self.webrtc.passthrough, ..self.leg_config(Codec::Opus) };
        let codecs = &self.webrtc.codecs;
        let (leg, answer) = WebRtcLeg::accept(id, offer, candidates, credentials, config, codecs, now)?;
        self.webrtc_ufrags.insert(answer.ufrag.clone(), id);
        self.insert(id, Member::WebRtc(Box::new(leg)));
        Ok((id, answer))
    }

    /// A datagram on the shared WebRTC port. A STUN request names its leg by
    /// Bond's ICE username fragment; everything else goes by the address that
    /// leg's checks came from. Datagrams for no leg are refused.
    pub fn handle_webrtc_datagram(
        &mut self,
        now: Instant,
        transport: crate::webrtc::Transport,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) -> Result<LegId, EngineError> {
        let by_ufrag = webrtc::stun::local_ufrag(datagram).and_then(|u| self.webrtc_ufrags.get(u)).copied();
        let id = by_ufrag
            .or_else(|| self.webrtc_peers.get(&source).copied())
            .ok_or(EngineError::WebRtc(format!("no WebRTC leg for a datagram from {source}")))?;
        let Some(Member::WebRtc(leg)) = self.legs.get_mut(&id) else {
            return Err(EngineError::UnknownLeg(id));
        };
        let result = leg.handle_datagram(now, transport, source, destination, datagram);
        if by_ufrag.is_some() && result.is_ok() && leg.learn_peer(source) {
            self.webrtc_peers.insert(source, id);
        }
        self.forward_received(now, id);
        self.after_leg_changed(id);
        result.map(|()| id)
    }

    /// A candidate the browser gathered after its offer: an SDP `candidate:`
    /// attribute (see [`WebRtcLeg::add_remote_candidate`]).
    pub fn add_ice_candidate(
        &mut self,
        now: Instant,
        leg: LegId,
        candidate: &str,
    ) -> Result<(), EngineError> {
        let Some(member) = self.legs.get_mut(&leg) else {
            return Err(EngineError::UnknownLeg(leg));
        };
        let Member::WebRtc(webrtc) = member else {
            return Err(EngineError::WebRtc(format!("leg {leg} is not a WebRTC leg")));
        };
        let result = webrtc.add_remote_candidate(now, candidate);
        self.after_leg_changed(leg);
        result
    }
}
