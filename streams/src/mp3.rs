//! A whole MP3 file (Telnyx's default bidirectional mode) to mono 16 kHz
//! samples, with symphonia's pure-Rust decoder: channels are averaged, the
//! file's rate resampled. Untrusted input: any failure is an error, never a panic.

use bond_codecs::resample::resample_clip;
use bond_codecs::SampleRate;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// The rate decoded MP3 is handed on at.
pub const MP3_RATE: SampleRate = SampleRate::Hz16000;
/// Longest file taken (Telnyx: one file per second; this bounds the work and memory of one).
const MAX_SECONDS: usize = 60;

/// Decode `bytes` (a complete MP3 file) to mono samples at [`MP3_RATE`].
pub fn decode(bytes: Vec<u8>) -> Result<Vec<i16>, String> {
    let source = MediaSourceStream::new(Box::new(std::io::Cursor::new(bytes)), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let probed = symphonia::default::get_probe()
        .format(&hint, source, &FormatOptions::default(), &MetadataOptions::default())
        .map_err(|e| format!("not an MP3 file: {e}"))?;
    let mut format = probed.format;
    let track = format.default_track().ok_or("the MP3 file has no audio track")?;
    let (track_id, params) = (track.id, track.codec_params.clone());
    let rate = params.sample_rate.ok_or("the MP3 file gives no sample rate")?;
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| format!("no MP3 decoder: {e}"))?;
    let mut mono: Vec<i16> = Vec::new();
    let limit = MAX_SECONDS * rate as usize;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(format!("unreadable MP3: {e}")),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A damaged frame is skipped, as players do.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(format!("unreadable MP3: {e}")),
        };
        let channels = decoded.spec().channels.count().max(1);
        let mut buffer = SampleBuffer::<i16>::new(decoded.capacity() as u64, *decoded.spec());
        buffer.copy_interleaved_ref(decoded);
        mono.extend(
            buffer
                .samples()
                .chunks(channels)
                .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / c.len() as i32) as i16),
        );
        if mono.len() > limit {
            return Err(format!("the MP3 file is longer than {MAX_SECONDS} s"));
        }
    }
    if mono.is_empty() {
        return Err("the MP3 file holds no audio".into());
    }
    resample_clip(&mono, rate, MP3_RATE).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_empty_input_are_errors_not_panics() {
        assert!(decode(Vec::new()).is_err());
        assert!(decode(b"ID3 definitely not audio".to_vec()).is_err());
        let mut seed = 7u64;
        for len in [1usize, 17, 400, 4000] {
            let noise: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (seed >> 56) as u8
                })
                .collect();
            let mut framed = noise.clone();
            if framed.len() > 4 {
                framed[..2].copy_from_slice(&[0xFF, 0xFB]); // an MPEG-1 Layer III sync word
            }
            let _ = decode(noise);
            let _ = decode(framed);
        }
    }
}
