//! A call-quality estimate from RTP statistics: the ITU-T G.107 E-model with
//! its default parameters, no echo and negligible delay, G.711 with PLC.

use super::RtpStats;

/// Packet-loss robustness of G.711 with concealment (G.113 Appendix I).
const BPL: f64 = 25.1;
/// R with no impairments (G.107 defaults).
const R0: f64 = 93.2;

impl RtpStats {
    /// Estimated MOS (1.0 to 4.5) from loss and jitter.
    pub fn mos(&self) -> f64 {
        let expected = self.packets_received as f64 + self.packets_lost.max(0) as f64;
        let loss_percent =
            if expected > 0.0 { 100.0 * self.packets_lost.max(0) as f64 / expected } else { 0.0 };
        // Late packets count as lost; jitter beyond the 40 ms playout delay adds delay impairment.
        let ie_eff = 95.0 * loss_percent / (loss_percent + BPL);
        let id = ((self.jitter_ms - 40.0).max(0.0)) * 0.1;
        mos_from_r(R0 - ie_eff - id)
    }
}

/// G.107 Annex B: R factor to MOS.
pub fn mos_from_r(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_stream_scores_high_and_loss_lowers_it() {
        let clean = RtpStats { packets_received: 1000, ..RtpStats::default() };
        let lossy = RtpStats { packets_received: 900, packets_lost: 100, ..RtpStats::default() };
        assert!((clean.mos() - 4.41).abs() < 0.02, "{}", clean.mos());
        assert!((lossy.mos() - 3.41).abs() < 0.02, "{}", lossy.mos());
        assert!(lossy.mos() > 1.0);
        assert_eq!(mos_from_r(-5.0), 1.0);
    }
}
