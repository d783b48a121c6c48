//! What a peer asks of the Opus it receives: the `a=fmtp` parameters of RFC
//! 7587 section 6.1, and the encoder settings that follow from them.
//!
//! They are the receiver's preferences about what it is sent. Bond keeps them
//! when coding for that peer: nothing above the band of `maxplaybackrate`
//! (RFC 7587: "an encoder SHOULD NOT encode frequencies above" it; a narrower
//! band also costs less to code), no more than `maxaveragebitrate`, in-band
//! FEC only for a decoder that says it uses it (`useinbandfec`, 0 when not
//! said), DTX and constant bitrate when asked (`usedtx`, `cbr`).

use crate::opus_codec::OpusConfig;
use crate::SampleRate;

/// The lowest and highest `maxaveragebitrate` RFC 7587 allows, in bit/s.
const BITRATE_RANGE: (u32, u32) = (6_000, 510_000);

/// A peer's Opus preferences; [`Default`] is what RFC 7587 assumes of a
/// peer that says nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusPeer {
    /// `maxplaybackrate`, in Hz (8,000-48,000).
    pub max_playback_rate: u32,
    /// `maxaveragebitrate`, in bit/s (6,000-510,000), when given.
    pub max_average_bitrate: Option<u32>,
    /// `useinbandfec=1`: its decoder takes in-band FEC.
    pub inband_fec: bool,
    /// `usedtx=1`: it prefers discontinuous transmission.
    pub dtx: bool,
    /// `cbr=1`: it prefers a constant bitrate.
    pub cbr: bool,
}

impl Default for OpusPeer {
    fn default() -> Self {
        Self {
            max_playback_rate: 48_000,
            max_average_bitrate: None,
            inband_fec: false,
            dtx: false,
            cbr: false,
        }
    }
}

impl OpusPeer {
    /// Read an `a=fmtp` parameter list (`maxplaybackrate=16000;useinbandfec=1`).
    /// Parameters Bond does not act on (`stereo`, `sprop-*`, `minptime`) and
    /// values it cannot read are left at their defaults; a value out of range
    /// is taken at the nearest end of it.
    pub fn from_fmtp(params: &str) -> Self {
        let mut peer = Self::default();
        for (name, value) in params.split(';').filter_map(|p| p.split_once('=')) {
            let Ok(value) = value.trim().parse::<u32>() else { continue };
            match name.trim().to_ascii_lowercase().as_str() {
                "maxplaybackrate" => peer.max_playback_rate = value.clamp(8_000, 48_000),
                "maxaveragebitrate" => {
                    peer.max_average_bitrate = Some(value.clamp(BITRATE_RANGE.0, BITRATE_RANGE.1))
                }
                "useinbandfec" => peer.inband_fec = value == 1,
                "usedtx" => peer.dtx = value == 1,
                "cbr" => peer.cbr = value == 1,
                _ => {}
            }
        }
        peer
    }

    /// The narrowest of Bond's rates whose band holds what the peer plays back
    /// (a `maxplaybackrate` of 12,000, Opus's medium band, codes wideband).
    pub fn playback_band(&self) -> SampleRate {
        SampleRate::ALL.into_iter().find(|r| r.hz() >= self.max_playback_rate).unwrap_or(SampleRate::Hz48000)
    }
}

impl OpusConfig {
    /// Bond's settings as coding for `peer`: its band and bitrate at most,
    /// FEC only if both want it, DTX and CBR as it prefers.
    pub fn for_peer(self, peer: &OpusPeer) -> Self {
        Self {
            bitrate: peer.max_average_bitrate.map_or(self.bitrate, |cap| self.bitrate.min(cap as i32)),
            inband_fec: self.inband_fec && peer.inband_fec,
            dtx: peer.dtx,
            cbr: peer.cbr,
            max_band: peer.playback_band().min(self.max_band),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opus_codec::{carries_fec, OpusEncoder, MAX_OPUS_PACKET};
    use crate::signals::Oscillator;
    use crate::AudioFrame;

    #[test]
    fn fmtp_parameters_are_read_with_spaces_and_any_case_and_unknown_ones_are_skipped() {
        let peer =
            OpusPeer::from_fmtp("minptime=10; MaxPlaybackRate=16000 ;useinbandfec=1;stereo=1;usedtx=1");
        assert_eq!(
            peer,
            OpusPeer { max_playback_rate: 16_000, inband_fec: true, dtx: true, ..OpusPeer::default() }
        );
        assert_eq!(OpusPeer::from_fmtp("maxaveragebitrate=20000;cbr=1").max_average_bitrate, Some(20_000));
        assert!(OpusPeer::from_fmtp("maxaveragebitrate=20000;cbr=1").cbr);
    }

    #[test]
    fn a_peer_that_says_nothing_gets_rfc_7587s_defaults_and_no_fec() {
        assert_eq!(OpusPeer::from_fmtp(""), OpusPeer::default());
        assert!(!OpusPeer::default().inband_fec);
        assert_eq!(OpusPeer::default().playback_band(), SampleRate::Hz48000);
    }

    #[test]
    fn values_out_of_range_are_clamped_and_unreadable_ones_ignored() {
        let peer = OpusPeer::from_fmtp("maxplaybackrate=4000;maxaveragebitrate=99999999;useinbandfec=yes");
        assert_eq!(
            (peer.max_playback_rate, peer.max_average_bitrate, peer.inband_fec),
            (8_000, Some(510_000), false)
        );
        let peer = OpusPeer::from_fmtp("maxplaybackrate=-1;maxaveragebitrate=1;=;;useinbandfec");
        assert_eq!((peer.max_playback_rate, peer.max_average_bitrate), (48_000, Some(6_000)));
    }

    #[test]
    fn a_playback_rate_maps_to_the_narrowest_band_that_holds_it() {
        let band = |hz| OpusPeer { max_playback_rate: hz, ..OpusPeer::default() }.playback_band();
        assert_eq!(
            [band(8_000), band(12_000), band(16_000), band(24_000), band(32_000)],
            [
                SampleRate::Hz8000,
                SampleRate::Hz16000,
                SampleRate::Hz16000,
                SampleRate::Hz24000,
                SampleRate::Hz48000
            ]
        );
    }

    #[test]
    fn bonds_settings_are_narrowed_to_the_peer_and_never_widened() {
        let bond = OpusConfig { bitrate: 24_000, inband_fec: false, ..OpusConfig::default() };
        let peer =
            OpusPeer::from_fmtp("maxplaybackrate=16000;maxaveragebitrate=64000;useinbandfec=1;usedtx=1");
        let coded = bond.for_peer(&peer);
        assert_eq!((coded.bitrate, coded.inband_fec, coded.dtx), (24_000, false, true));
        assert_eq!(coded.max_band, SampleRate::Hz16000);
        let capped =
            OpusConfig::default().for_peer(&OpusPeer::from_fmtp("maxaveragebitrate=12000;useinbandfec=1"));
        assert_eq!((capped.bitrate, capped.inband_fec, capped.max_band), (12_000, true, SampleRate::Hz48000));
    }

    /// Packets from 50 frames (a second) coded for `peer` of a 1 kHz tone that
    /// comes and goes as syllables do (250 ms on, 50 off): a steady tone would
    /// soon be taken for background by SILK's voice activity detector, which
    /// then sends no FEC.
    fn packets_for(peer: &str) -> Vec<Vec<u8>> {
        let config = OpusConfig::default().for_peer(&OpusPeer::from_fmtp(peer));
        let mut enc = OpusEncoder::new(config).unwrap();
        let mut tone = Oscillator::new(1000.0, 48_000, 8000.0);
        let mut frame = AudioFrame::silent(SampleRate::Hz48000, 0);
        let mut p = [0u8; MAX_OPUS_PACKET];
        (0..50)
            .map(|i| {
                tone.fill(frame.samples_mut());
                if i % 15 >= 12 {
                    frame.samples_mut().fill(0);
                }
                let n = enc.encode(&frame, &mut p).unwrap();
                p[..n].to_vec()
            })
            .collect()
    }

    #[test]
    fn a_peer_that_plays_back_at_8_or_16_khz_is_sent_that_band_from_the_first_packet() {
        for (fmtp, band) in [
            ("maxplaybackrate=8000", opus::Bandwidth::Narrowband),
            ("maxplaybackrate=16000", opus::Bandwidth::Wideband),
        ] {
            for packet in packets_for(fmtp) {
                assert_eq!(opus::packet::get_bandwidth(&packet).ok(), Some(band), "{fmtp}");
            }
        }
        let wide = packets_for("");
        assert_eq!(opus::packet::get_bandwidth(&wide[49]).ok(), Some(opus::Bandwidth::Fullband));
    }

    #[test]
    fn in_band_fec_is_sent_only_to_a_peer_that_takes_it() {
        // Narrowband SILK packets, where the LBRR flag sits in the first byte.
        assert!(packets_for("maxplaybackrate=8000;useinbandfec=1").iter().skip(1).any(|p| carries_fec(p)));
        assert!(!packets_for("maxplaybackrate=8000").iter().any(|p| carries_fec(p)));
    }

    #[test]
    fn a_capped_average_bitrate_makes_smaller_packets() {
        let bytes = |fmtp| packets_for(fmtp).iter().map(Vec::len).sum::<usize>();
        let (capped, free) = (bytes("maxaveragebitrate=12000"), bytes(""));
        // 12 kbit/s for a second is 1,500 bytes; Bond's own 32 kbit/s is 4,000.
        assert!(capped <= 1_800 && free >= 3_000, "capped {capped} bytes, uncapped {free}");
    }
}
