//! SRTP (RFC 3711) for SIP legs, keyed by SDES (RFC 4568): the `a=crypto`
//! attribute that carries a key in the SDP, and the session that protects what
//! a leg sends and checks what it receives.
//!
//! Two suites: `AES_CM_128_HMAC_SHA1_80` and `AES_CM_128_HMAC_SHA1_32` (RFC 4568
//! section 6.2; 16-byte key, 14-byte salt). The cipher is webrtc-rs's
//! `webrtc-srtp`. A packet whose authentication tag does not verify, or that
//! replays one already seen, is refused here and never reaches a decoder.
//! Keys come from the caller (the SIP adapter draws them from the operating
//! system's generator): this module reads no clock and makes no randomness.

use base64::Engine as _;
use bytes::Bytes;
use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

/// Key and salt of one direction: 16 bytes of AES key, then 14 of salt.
pub const KEY_MATERIAL: usize = 30;
/// Packets a replayed index is still recognised within (libsrtp's default).
const REPLAY_WINDOW: usize = 128;
/// The shortest SRTCP packet: header and SSRC, the SRTCP index, and the tag
/// (80 bits in both suites: RFC 4568 cuts only SRTP's to 32). webrtc-srtp
/// reads the index from the end before it checks the length (it panicked on
/// an 8-byte datagram: `fuzz/seeds/srtp/short_srtcp`).
const MIN_SRTCP: usize = 8 + 4 + 10;

/// An SRTP crypto suite Bond speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl SrtpSuite {
    /// Bond's order of preference when it offers.
    pub const ALL: [SrtpSuite; 2] = [SrtpSuite::AesCm128HmacSha1_80, SrtpSuite::AesCm128HmacSha1_32];

    /// The suite's name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|suite| suite.name().eq_ignore_ascii_case(name))
    }

    fn profile(self) -> ProtectionProfile {
        match self {
            Self::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            Self::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        }
    }
}

/// One direction's master key and salt, in a suite.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SrtpKey {
    pub suite: SrtpSuite,
    pub material: [u8; KEY_MATERIAL],
}

impl std::fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never a key in a log line.
        f.debug_struct("SrtpKey").field("suite", &self.suite).finish_non_exhaustive()
    }
}

/// What SRTP does on a leg.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Srtp {
    /// Plain RTP.
    #[default]
    Off,
    /// SRTP offered and required, no answer yet: whatever arrives is refused
    /// (the peer's key is not known), never decoded.
    Awaiting,
    On(SrtpKeys),
}

/// A leg's SRTP keys: Bond's, for what it sends, and the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrtpKeys {
    pub local: SrtpKey,
    pub remote: SrtpKey,
}

/// One `a=crypto` attribute: `<tag> <suite> inline:<key||salt base64>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub key: SrtpKey,
}

impl Crypto {
    /// The attribute's value (after `a=crypto:`).
    pub fn value(&self) -> String {
        let inline = base64::engine::general_purpose::STANDARD.encode(self.key.material);
        format!("{} {} inline:{inline}", self.tag, self.key.suite.name())
    }

    /// Read an attribute's value. `Ok(None)` for a suite Bond does not speak (a
    /// peer may offer several); an error for one it speaks but cannot use:
    /// a bad key, several keys, or a master key identifier (MKI), which Bond
    /// does not take. A lifetime (`|2^31`) is accepted and left to the cipher's
    /// own limit.
    pub fn parse(value: &str) -> Result<Option<Self>, String> {
        let mut fields = value.split_ascii_whitespace();
        let (Some(tag), Some(suite), Some(params)) = (fields.next(), fields.next(), fields.next()) else {
            return Err("a=crypto needs a tag, a suite and key parameters".into());
        };
        let tag: u32 =
            tag.parse().ok().filter(|t| *t < 1_000_000_000).ok_or("a=crypto tag is not 1-9 digits")?;
        let Some(suite) = SrtpSuite::from_name(suite) else { return Ok(None) };
        if params.contains(';') {
            return Err("a=crypto with several keys is not supported".into());
        }
        let inline = params.strip_prefix("inline:").ok_or("a=crypto key is not inline:")?;
        let mut parts = inline.split('|');
        let key = parts.next().unwrap_or_default();
        for part in parts {
            if part.contains(':') {
                return Err("a=crypto with a master key identifier (MKI) is not supported".into());
            }
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key)
            .map_err(|_| "a=crypto key is not base64")?;
        let material: [u8; KEY_MATERIAL] =
            bytes.try_into().map_err(|_| format!("a=crypto key is not {KEY_MATERIAL} bytes"))?;
        Ok(Some(Self { tag, key: SrtpKey { suite, material } }))
    }
}

/// Why a packet was not protected or not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SRTP: {0}")]
pub struct SrtpError(String);

impl SrtpError {
    /// A packet on a leg with SRTP and no usable keys (none agreed yet).
    pub(crate) fn no_keys_yet() -> Self {
        Self("no keys agreed yet".into())
    }
}

/// A leg's SRTP: what it sends protected with its own key, what it receives
/// checked and decrypted with the peer's. RTCP goes as SRTCP (RFC 3711
/// section 3.4) with the same keys.
pub struct SrtpSession {
    send: Context,
    receive: Context,
    /// Bond's key and the peer's, to tell a renegotiation that changes them.
    keys: (SrtpKey, SrtpKey),
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSession").field("suite", &self.keys.0.suite).finish_non_exhaustive()
    }
}

impl SrtpSession {
    /// Sending with `local`, receiving with `remote`.
    pub fn new(local: &SrtpKey, remote: &SrtpKey) -> Result<Self, SrtpError> {
        Ok(Self { send: context(local)?, receive: context(remote)?, keys: (*local, *remote) })
    }

    /// Whether it was made with these keys.
    pub fn has_keys(&self, local: &SrtpKey, remote: &SrtpKey) -> bool {
        self.keys.0 == *local && self.keys.1 == *remote
    }

    /// An RTP or RTCP packet, protected for the peer.
    pub fn protect(&mut self, packet: &[u8]) -> Result<Bytes, SrtpError> {
        let protected = match super::rtcp::is_rtcp(packet) {
            true => self.send.encrypt_rtcp(packet),
            false => self.send.encrypt_rtp(packet),
        };
        protected.map_err(|e| SrtpError(e.to_string()))
    }

    /// A protected packet from the peer, checked and decrypted.
    pub fn unprotect(&mut self, packet: &[u8]) -> Result<Bytes, SrtpError> {
        let plain = match super::rtcp::is_rtcp(packet) {
            true if packet.len() < MIN_SRTCP => {
                return Err(SrtpError(format!("SRTCP of {} bytes", packet.len())))
            }
            true => self.receive.decrypt_rtcp(packet),
            false => self.receive.decrypt_rtp(packet),
        };
        plain.map_err(|e| SrtpError(e.to_string()))
    }
}

fn context(key: &SrtpKey) -> Result<Context, SrtpError> {
    let (master_key, master_salt) = key.material.split_at(16);
    Context::new(
        master_key,
        master_salt,
        key.suite.profile(),
        Some(srtp_replay_protection(REPLAY_WINDOW)),
        Some(srtcp_replay_protection(REPLAY_WINDOW)),
    )
    .map_err(|e| SrtpError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::{plain_packet, PLAIN_HEADER};

    fn key(suite: SrtpSuite, fill: u8) -> SrtpKey {
        SrtpKey { suite, material: [fill; KEY_MATERIAL] }
    }

    fn rtp(sequence: u16) -> Vec<u8> {
        let mut packet = Vec::new();
        plain_packet(&mut packet, false, 0, sequence, u32::from(sequence) * 160, 0x1234_5678, &[0x55; 160]);
        packet
    }

    /// Bond's session and the peer's: each one's sending key is the other's receiving key.
    fn pair(suite: SrtpSuite) -> (SrtpSession, SrtpSession) {
        let (a, b) = (key(suite, 1), key(suite, 2));
        (SrtpSession::new(&a, &b).unwrap(), SrtpSession::new(&b, &a).unwrap())
    }

    #[test]
    fn what_one_side_protects_the_other_reads_back_in_both_suites() {
        for (suite, tag) in [(SrtpSuite::AesCm128HmacSha1_80, 10), (SrtpSuite::AesCm128HmacSha1_32, 4)] {
            let (mut bond, mut peer) = pair(suite);
            for sequence in 0..5 {
                let plain = rtp(sequence);
                let protected = bond.protect(&plain).unwrap();
                assert_eq!(protected.len(), plain.len() + tag, "{suite:?}");
                assert_ne!(
                    &protected[PLAIN_HEADER..plain.len()],
                    &plain[PLAIN_HEADER..],
                    "payload encrypted"
                );
                assert_eq!(peer.unprotect(&protected).unwrap(), plain);
            }
        }
    }

    #[test]
    fn a_packet_with_a_bad_tag_or_seen_before_is_refused() {
        let (mut bond, mut peer) = pair(SrtpSuite::AesCm128HmacSha1_80);
        let protected = peer.protect(&rtp(7)).unwrap();
        let mut tampered = protected.to_vec();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(bond.unprotect(&tampered).is_err(), "bad tag");
        let mut payload_changed = protected.to_vec();
        payload_changed[PLAIN_HEADER] ^= 1;
        assert!(bond.unprotect(&payload_changed).is_err(), "changed payload");
        assert!(bond.unprotect(&protected).is_ok());
        assert!(bond.unprotect(&protected).is_err(), "replayed");
        assert!(bond.unprotect(&rtp(8)).is_err(), "plain RTP");
    }

    #[test]
    fn rtcp_goes_as_srtcp() {
        let (mut bond, mut peer) = pair(SrtpSuite::AesCm128HmacSha1_32);
        // An empty receiver report: V=2, RC=0, PT=201, length 1, SSRC.
        let report = [0x80, 201, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        let protected = bond.protect(&report).unwrap();
        // The SRTCP index (4 bytes, E flag set) and a 10-byte tag: RTCP's tag is never cut to 32 bits.
        assert_eq!(protected.len(), report.len() + 4 + 10);
        assert_eq!(peer.unprotect(&protected).unwrap().as_ref(), report);
    }

    #[test]
    fn an_srtcp_packet_too_short_for_its_index_and_tag_is_refused() {
        let (mut bond, _) = pair(SrtpSuite::AesCm128HmacSha1_80);
        let report = [0x80, 201, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        for len in 0..=report.len() {
            assert!(bond.unprotect(&report[..len]).is_err());
        }
        assert!(bond.unprotect(&[0x80, 201, 0, 1, 0xde, 0xad, 0xbe, 0xef, 0x80, 0, 0, 1, 9, 9, 9]).is_err());
    }

    #[test]
    fn a_crypto_attribute_reads_back_as_written() {
        let crypto = Crypto { tag: 1, key: key(SrtpSuite::AesCm128HmacSha1_80, 7) };
        let value = crypto.value();
        assert!(value.starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:"), "{value}");
        assert_eq!(Crypto::parse(&value), Ok(Some(crypto)));
    }

    #[test]
    fn crypto_attributes_from_other_implementations_are_read_or_refused_plainly() {
        // RFC 4568 section 4's example, with a lifetime: the key is taken.
        let rfc = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20";
        let parsed = Crypto::parse(rfc).unwrap().unwrap();
        assert_eq!((parsed.tag, parsed.key.suite), (1, SrtpSuite::AesCm128HmacSha1_80));
        assert_eq!(
            Crypto::parse("2 F8_128_HMAC_SHA1_80 inline:AAAA"),
            Ok(None),
            "a suite Bond does not speak"
        );
        for refused in [
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4",
            "1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=",
            "1 AES_CM_128_HMAC_SHA1_80 inline:%%%",
            "1 AES_CM_128_HMAC_SHA1_80",
            "x AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
        ] {
            assert!(Crypto::parse(refused).is_err(), "{refused}");
        }
    }
}
