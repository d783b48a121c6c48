//! Which leg a datagram on the shared WebRTC port is for, so the reader can hand
//! it to the driver whose engine holds that leg (a leg id names its shard).
//!
//! A connectivity check names the leg by Bond's ICE username fragment; everything
//! else (DTLS, SRTP) goes by the address the leg's accepted checks came from. The
//! drivers keep the table: a leg's ufrag when it is created, a peer address once
//! the engine has accepted a check from it, and nothing of the leg once it ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use crate::ids::LegId;
use crate::webrtc::stun;

#[derive(Debug, Default)]
pub(super) struct WebRtcRoutes {
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    by_ufrag: HashMap<String, LegId>,
    by_peer: HashMap<SocketAddr, LegId>,
}

impl WebRtcRoutes {
    /// The leg `datagram` from `from` is for, if any.
    pub fn route(&self, from: SocketAddr, datagram: &[u8]) -> Option<LegId> {
        let table = self.lock();
        match stun::local_ufrag(datagram) {
            Some(ufrag) => table.by_ufrag.get(ufrag).copied(),
            None => table.by_peer.get(&from).copied(),
        }
    }

    /// A new leg answers checks naming `ufrag`.
    pub fn add_leg(&self, ufrag: &str, leg: LegId) {
        self.lock().by_ufrag.insert(ufrag.to_owned(), leg);
    }

    /// The leg accepted a check from `peer`: its other datagrams come from there.
    pub fn learn_peer(&self, peer: SocketAddr, leg: LegId) {
        self.lock().by_peer.insert(peer, leg);
    }

    pub fn remove_leg(&self, leg: LegId) {
        let mut table = self.lock();
        table.by_ufrag.retain(|_, l| *l != leg);
        table.by_peer.retain(|_, l| *l != leg);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table holds no invariant a panicking holder could break half-way.
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_naming(ufrag: &str) -> Vec<u8> {
        let username = format!("{ufrag}:peer");
        let padded = username.len().div_ceil(4) * 4;
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&[0x00, 0x06]);
        m.extend_from_slice(&(username.len() as u16).to_be_bytes());
        m.extend_from_slice(username.as_bytes());
        m.resize(20 + 4 + padded, 0);
        m
    }

    #[test]
    fn checks_go_by_ufrag_and_media_by_the_learned_peer_until_the_leg_ends() {
        let routes = WebRtcRoutes::default();
        let peer: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        routes.add_leg("abcd", LegId(3));
        assert_eq!(routes.route(peer, &check_naming("abcd")), Some(LegId(3)));
        assert_eq!(routes.route(peer, &check_naming("zzzz")), None);
        let srtp = [0x80, 0x6f, 0, 1];
        assert_eq!(routes.route(peer, &srtp), None, "not learned yet");
        routes.learn_peer(peer, LegId(3));
        assert_eq!(routes.route(peer, &srtp), Some(LegId(3)));
        routes.remove_leg(LegId(3));
        assert_eq!(routes.route(peer, &srtp), None);
        assert_eq!(routes.route(peer, &check_naming("abcd")), None);
    }
}
