//! G.722 at 64 kbit/s (ITU-T G.722 mode 1): 16 kHz audio, one byte per pair of samples.
//!
//! Sub-band ADPCM after the ITU-T reference structure (block numbers in the
//! comments follow the recommendation's figures). Tables are the recommendation's.
//! RTP quirk (RFC 3551): the RTP clock is 8000 Hz although the audio is 16 kHz.

mod band;
mod decoder;
mod encoder;

pub use decoder::G722Decoder;
pub use encoder::G722Encoder;

/// QMF coefficients (G.722 Table 11), shared by the transmit and receive filters.
const QMF_COEFFS: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];

/// Shift the 24-sample QMF history by two and append `a`, `b`.
fn qmf_push(x: &mut [i32; 24], a: i32, b: i32) {
    x.copy_within(2.., 0);
    x[22] = a;
    x[23] = b;
}

/// The two polyphase sums of the QMF over the history.
fn qmf_sums(x: &[i32; 24]) -> (i32, i32) {
    let mut even = 0;
    let mut odd = 0;
    for i in 0..12 {
        odd += x[2 * i] * QMF_COEFFS[i];
        even += x[2 * i + 1] * QMF_COEFFS[11 - i];
    }
    (even, odd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_signals::{sine, snr_db_aligned};

    #[test]
    fn round_trip_keeps_a_1khz_tone_above_20db_snr() {
        let input = sine(1000.0, 16_000, 16_000, 10_000.0);
        let mut enc = G722Encoder::new();
        let mut dec = G722Decoder::new();
        let mut output = Vec::new();
        let mut bytes = [0u8; 160];
        let mut pcm = [0i16; 320];
        for chunk in input.chunks(320) {
            let n = enc.encode(chunk, &mut bytes).unwrap();
            assert_eq!(n, 160);
            dec.decode(&bytes, &mut pcm).unwrap();
            output.extend_from_slice(&pcm);
        }
        let snr = snr_db_aligned(&input, &output, 64);
        assert!(snr >= 20.0, "G.722 SNR {snr:.1} dB");
    }

    #[test]
    fn silence_decodes_to_near_silence() {
        let mut enc = G722Encoder::new();
        let mut dec = G722Decoder::new();
        let mut bytes = [0u8; 160];
        let mut pcm = [0i16; 320];
        for _ in 0..10 {
            enc.encode(&[0; 320], &mut bytes).unwrap();
            dec.decode(&bytes, &mut pcm).unwrap();
        }
        assert!(pcm.iter().all(|s| s.abs() < 64), "{:?}", &pcm[..16]);
    }

    #[test]
    fn odd_input_and_small_output_are_errors() {
        let mut enc = G722Encoder::new();
        let mut bytes = [0u8; 4];
        assert!(enc.encode(&[0; 3], &mut bytes).is_err());
        assert!(enc.encode(&[0; 20], &mut bytes).is_err());
        let mut dec = G722Decoder::new();
        let mut pcm = [0i16; 2];
        assert!(dec.decode(&[0; 4], &mut pcm).is_err());
    }
}
