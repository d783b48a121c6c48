//! Where a recording's audio goes in its file.
//!
//! Audio reaches the writer with its place on the leg's timeline (8 kHz samples
//! since the leg started): a tick's two frames together, or passthrough packets
//! one direction at a time, reordered or with gaps. The timeline holds the last
//! [`WINDOW_MS`] of both channels at the recording's rate, as (inbound,
//! outbound) sample pairs in a ring, and writes out what is older: gaps become
//! silence, audio placed twice keeps the later copy, and audio arriving for a
//! place already written is dropped and counted. What is written out goes to
//! `out` as runs of pairs, in place, so the audio held is never moved.

use std::collections::VecDeque;

/// How far behind the newest audio the file is written.
const WINDOW_MS: u64 = 300;
/// Gaps are written out from this.
static SILENCE: [[i16; 2]; 512] = [[0; 2]; 512];

#[derive(Debug)]
pub(super) struct Timeline {
    rate: u64,
    /// The file position (in samples at `rate`) of `pairs[0]`; `None` until
    /// the first audio, which starts the file.
    written: Option<u64>,
    /// (inbound, outbound) from `written` on.
    pairs: VecDeque<[i16; 2]>,
    /// Samples that arrived after their place was written.
    late: u64,
}

impl Timeline {
    pub fn new(rate: u32) -> Self {
        Self { rate: u64::from(rate), written: None, pairs: VecDeque::new(), late: 0 }
    }

    /// Put `samples` (at the recording's rate) into channel 0 (inbound) or 1
    /// (outbound) from `at`, in 8 kHz samples on the leg's timeline; what falls
    /// out of the window goes to `out`. The samples are taken one by one as they
    /// are placed, so G.711 codes are decoded straight into the ring.
    pub fn place(
        &mut self,
        channel: usize,
        at: u64,
        mut samples: impl ExactSizeIterator<Item = i16>,
        out: &mut impl FnMut(&[[i16; 2]]),
    ) {
        let pos = at * self.rate / 8000;
        let start = *self.written.get_or_insert(pos);
        let skip = usize::try_from(start.saturating_sub(pos)).unwrap_or(usize::MAX).min(samples.len());
        self.late += skip as u64;
        if skip > 0 {
            samples.nth(skip - 1);
        }
        if samples.len() == 0 {
            return;
        }
        let pos = pos.max(start);
        let end = pos + samples.len() as u64;
        let window = WINDOW_MS * self.rate / 1000;
        if end > start + window {
            self.write_until(end - window, out);
        }
        let start = self.written.unwrap_or(pos);
        let (from, to) = ((pos - start) as usize, (end - start) as usize);
        if self.pairs.len() < to {
            self.pairs.resize(to, [0; 2]);
        }
        // The ring's two runs, from `from`: the samples fill the first, then the second.
        let (front, back) = self.pairs.as_mut_slices();
        let (front, back) = if from <= front.len() {
            (&mut front[from..], back)
        } else {
            (&mut [][..], &mut back[from - front.len()..])
        };
        for run in [front, back] {
            for (pair, sample) in run.iter_mut().zip(&mut samples) {
                pair[channel] = sample;
            }
        }
    }

    /// Write out everything held.
    pub fn finish(&mut self, out: &mut impl FnMut(&[[i16; 2]])) {
        if let Some(written) = self.written {
            self.write_until(written + self.pairs.len() as u64, out);
        }
    }

    /// Write out everything held and start again: the next audio follows in the
    /// file, the time between left out (a paused recording).
    pub fn restart(&mut self, out: &mut impl FnMut(&[[i16; 2]])) {
        self.finish(out);
        self.written = None;
    }

    pub fn late_samples(&self) -> u64 {
        self.late
    }

    /// Write out up to file position `until`: held audio, then silence.
    fn write_until(&mut self, until: u64, out: &mut impl FnMut(&[[i16; 2]])) {
        let Some(written) = self.written else { return };
        let count = until.saturating_sub(written) as usize;
        let held = count.min(self.pairs.len());
        let (front, back) = self.pairs.as_slices();
        let from_front = held.min(front.len());
        for run in [&front[..from_front], &back[..held - from_front]] {
            if !run.is_empty() {
                out(run);
            }
        }
        let mut silence = count - held;
        while silence > 0 {
            let n = silence.min(SILENCE.len());
            out(&SILENCE[..n]);
            silence -= n;
        }
        self.pairs.drain(..held);
        self.written = Some(written + count as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rate: u32, placements: &[(usize, u64, Vec<i16>)]) -> (Vec<(i16, i16)>, u64) {
        let mut timeline = Timeline::new(rate);
        let mut file = Vec::new();
        let mut out = |pairs: &[[i16; 2]]| file.extend(pairs.iter().map(|&[i, o]| (i, o)));
        for (channel, at, samples) in placements {
            timeline.place(*channel, *at, samples.iter().copied(), &mut out);
        }
        timeline.finish(&mut out);
        (file, timeline.late_samples())
    }

    #[test]
    fn the_file_starts_with_the_first_audio_and_gaps_become_silence() {
        let (file, late) =
            run(8000, &[(0, 800, vec![1; 160]), (1, 800, vec![2; 160]), (0, 1120, vec![3; 160])]);
        assert_eq!(file.len(), 480);
        assert_eq!(file[0], (1, 2));
        assert_eq!(file[200], (0, 0));
        assert_eq!(file[479], (3, 0));
        assert_eq!(late, 0);
    }

    #[test]
    fn reordered_audio_lands_in_its_place_and_audio_behind_the_window_is_dropped() {
        let mut placements = vec![(0, 0, vec![1; 160]), (0, 320, vec![3; 160]), (0, 160, vec![2; 160])];
        // 400 ms later: the first 100 ms fall out of the window and are written ...
        placements.push((0, 3200, vec![4; 160]));
        // ... so a packet for them is late; one for 200 ms is not.
        placements.push((0, 480, vec![9; 160]));
        placements.push((0, 1600, vec![5; 160]));
        let (file, late) = run(8000, &placements);
        assert_eq!(file.len(), 3360);
        assert_eq!((file[0].0, file[160].0, file[320].0, file[480].0), (1, 2, 3, 0));
        assert_eq!(file[1600].0, 5);
        assert_eq!(file[3200].0, 4);
        assert_eq!(late, 160);
    }

    #[test]
    fn places_scale_to_the_recording_rate() {
        let (file, _) = run(16000, &[(1, 80, vec![7; 320]), (1, 240, vec![8; 320])]);
        assert_eq!(file.len(), 640);
        assert_eq!((file[0].1, file[319].1, file[320].1), (7, 7, 8));
    }

    #[test]
    fn after_a_restart_the_next_audio_follows_on_wherever_its_place() {
        let mut timeline = Timeline::new(8000);
        let mut file = Vec::new();
        let mut out = |pairs: &[[i16; 2]]| file.extend(pairs.iter().map(|pair| pair[0]));
        timeline.place(0, 1000, [1; 160].into_iter(), &mut out);
        timeline.restart(&mut out);
        timeline.place(0, 9000, [2; 160].into_iter(), &mut out);
        timeline.finish(&mut out);
        assert_eq!(file.len(), 320);
        assert_eq!((file[159], file[160]), (1, 2));
    }

    #[test]
    fn ten_seconds_of_packets_come_out_whole_and_in_order_through_the_ring() {
        // Each direction its own ramp; after the first, every fifth inbound packet comes after the next.
        let ramp = |n: u64| (n % 30_000) as i16;
        let mut placements = Vec::new();
        for p in 0..500u64 {
            let packet = |offset: u64| (p * 160..p * 160 + 160).map(|n| ramp(n + offset)).collect::<Vec<_>>();
            placements.push((0, p * 160, packet(0)));
            placements.push((1, p * 160, packet(7)));
        }
        for pair in placements.chunks_mut(4).skip(1).step_by(5) {
            pair.swap(0, 2);
        }
        let (file, late) = run(8000, &placements);
        assert_eq!(late, 0);
        assert_eq!(file.len(), 80_000);
        assert!(file.iter().enumerate().all(|(n, &(i, o))| (i, o) == (ramp(n as u64), ramp(n as u64 + 7))));
    }

    #[test]
    fn a_long_silence_is_written_without_holding_it() {
        let mut timeline = Timeline::new(8000);
        let mut written = 0u64;
        let mut out = |pairs: &[[i16; 2]]| written += pairs.len() as u64;
        timeline.place(0, 0, [1; 160].into_iter(), &mut out);
        // Ten minutes later.
        timeline.place(0, 4_800_000, [1; 160].into_iter(), &mut out);
        assert!(timeline.pairs.len() <= 2400);
        timeline.finish(&mut out);
        assert_eq!(written, 4_800_160);
    }
}
