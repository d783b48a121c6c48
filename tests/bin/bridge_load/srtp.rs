//! `--srtp`: both legs of each pair SRTP (SDES), so Bond checks and decrypts
//! what one side sends and protects it again for the other, passthrough and
//! all. The generator protects what it sends with one key per side (each
//! sender has its own SSRC, so no two packets share a keystream); it does not
//! decrypt what comes back (the marks are encrypted, so latency is not
//! measured), and Bond's count of refused SRTP packets says whether every
//! packet verified.

use bond_media_engine::rtp::srtp::{Crypto, SrtpKey, SrtpSession, SrtpSuite, KEY_MATERIAL};

/// The generator's key for side `side` (0: the customers, 1: the agents).
fn key(side: usize) -> SrtpKey {
    SrtpKey { suite: SrtpSuite::AesCm128HmacSha1_80, material: [0x40 + side as u8; KEY_MATERIAL] }
}

/// `sdp` (as `sip_lite::sdp` writes it) as an SRTP offer or answer from
/// `side`: `RTP/SAVP` and the side's key, on tag 1 (Bond offers its 80-bit
/// suite first, on tag 1).
pub(super) fn secure(sdp: &str, side: usize) -> String {
    let crypto = Crypto { tag: 1, key: key(side) };
    format!("{}a=crypto:{}\r\n", sdp.replace(" RTP/AVP ", " RTP/SAVP "), crypto.value())
}

/// What protects side `side`'s packets.
pub(super) fn sender(side: usize) -> SrtpSession {
    SrtpSession::new(&key(side), &key(side)).expect("a 30-byte key in a suite it speaks")
}
