//! Repairing recordings a crash cut short.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::recorder::RecordingSummary;

/// Fix every `*.wav.partial` under `dir` (a crash cut them short): set the WAV
/// sizes from the file length, drop a torn last sample frame, rename to `.wav`.
pub fn repair_partials(dir: &Path) -> Vec<Result<RecordingSummary, String>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut repaired = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            repaired.extend(repair_partials(&path));
        } else if path.to_string_lossy().ends_with(".wav.partial") {
            repaired.push(repair(&path));
        }
    }
    repaired
}

fn repair(partial: &Path) -> Result<RecordingSummary, String> {
    let fail = |e: std::io::Error| format!("{}: {e}", partial.display());
    let mut file = OpenOptions::new().read(true).write(true).open(partial).map_err(fail)?;
    let mut header = [0u8; 512];
    let n = file.read(&mut header).map_err(fail)?;
    let header = &header[..n];
    if n < 12 || &header[..4] != b"RIFF" || &header[8..12] != b"WAVE" {
        return Err(format!("{}: not a WAV file", partial.display()));
    }
    // Walk the chunks to `fmt ` (channels, rate, block size) and `data`.
    let (mut pos, mut fmt, mut data_at) = (12usize, None, None);
    while pos + 8 <= header.len() {
        let id = &header[pos..pos + 4];
        let size =
            u32::from_le_bytes([header[pos + 4], header[pos + 5], header[pos + 6], header[pos + 7]]) as usize;
        if id == b"fmt " && pos + 8 + 16 <= header.len() {
            let f = &header[pos + 8..];
            fmt = Some((
                u16::from_le_bytes([f[2], f[3]]),
                u32::from_le_bytes([f[4], f[5], f[6], f[7]]),
                u16::from_le_bytes([f[12], f[13]]),
            ));
        }
        if id == b"data" {
            data_at = Some(pos + 8);
            break;
        }
        pos += 8 + size + size % 2;
    }
    let (Some((channels, rate, block)), Some(data_at)) = (fmt, data_at) else {
        return Err(format!("{}: no fmt or data chunk", partial.display()));
    };
    let length = file.metadata().map_err(fail)?.len();
    let block = u64::from(block.max(1));
    let data_len = (length.saturating_sub(data_at as u64) / block) * block;
    file.set_len(data_at as u64 + data_len).map_err(fail)?;
    file.seek(SeekFrom::Start(4)).map_err(fail)?;
    file.write_all(&((data_at as u64 + data_len - 8) as u32).to_le_bytes()).map_err(fail)?;
    file.seek(SeekFrom::Start(data_at as u64 - 4)).map_err(fail)?;
    file.write_all(&(data_len as u32).to_le_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    let finished = PathBuf::from(partial.to_string_lossy().trim_end_matches(".partial"));
    std::fs::rename(partial, &finished).map_err(fail)?;
    let frames = data_len / block;
    Ok(RecordingSummary {
        path: finished,
        channels,
        rate,
        duration_ms: frames * 1000 / u64::from(rate.max(1)),
        frames_dropped: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::recorder::partial_path;

    #[test]
    fn a_cut_short_file_is_repaired_with_all_its_audio() {
        let dir = tempfile_dir();
        let path = dir.join("call.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let partial = partial_path(&path);
        let mut writer = hound::WavWriter::create(&partial, spec).unwrap();
        for n in 0..8000i16 {
            writer.write_sample(n).unwrap();
            writer.write_sample(-n).unwrap();
        }
        writer.flush().unwrap();
        // A crash: the process dies (nothing more from the writer) after the OS got
        // 400 more stereo frames and half of another, past the last header update.
        std::mem::forget(writer);
        let mut file = OpenOptions::new().append(true).open(&partial).unwrap();
        file.write_all(&vec![7u8; 400 * 4 + 2]).unwrap();
        drop(file);
        let results = repair_partials(&dir);
        let summary = results[0].as_ref().unwrap();
        assert_eq!(summary.path, path);
        let mut reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.spec().channels, 2);
        assert_eq!(reader.duration(), 8000 + 400);
        assert_eq!(summary.duration_ms, 1050);
        let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(&samples[..4], &[0, 0, 1, -1]);
        assert_eq!(samples[2 * 7999 + 1], -7999);
        assert!(!partial.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bond-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
