//! Steady single tones (voicemail beeps, fax CNG/CED) in 5 ms blocks.
//!
//! A pure sinusoid obeys `x[n] + x[n-2d] = 2 cos(ωd) x[n-d]` exactly. Each block
//! fits that one coefficient by least squares; the fit's residual, relative to
//! the block's energy, is ~0 for one tone and large for noise, speech, or two
//! tones far apart. Its coefficient gives the frequency. (Two tones as close as
//! a DTMF pair can pass for one in a noisy block; the detector rules those out
//! with a DTMF detector.) This is the
//! idea behind FreeSWITCH's DESA-2 beep detector, reduced to three running sums
//! per block, so a 20 ms frame costs a few hundred multiply-adds.
//!
//! Consecutive tonal blocks at one frequency form a segment. A segment is
//! *steady* when its level stays within a few dB (two close tones such as
//! ringback 440+480 Hz beat at 40 Hz and are not) and *isolated* when no other
//! tone sits right before or after it (SIT sequences are three tones in a row).
//! Segments are reported once 40 ms of no tone have followed them.

use std::collections::VecDeque;

/// Block length: 5 ms.
const BLOCK_MS: u32 = 5;
/// A block is tonal when the one-tone fit leaves less than this share of its energy.
const MAX_RESIDUAL: f64 = 0.2;
/// Share of a block's energy that must sit at the fitted frequency.
const MIN_SHARE: f64 = 0.85;
/// Samples in a 5 ms block at 48 kHz.
const MAX_BLOCK: usize = 240;
/// Quieter blocks are never tonal (about -50 dBm0).
const MIN_BLOCK_POWER: f64 = 1.5e4;
/// Frequencies a beep or fax tone can have.
const MIN_HZ: f64 = 290.0;
const MAX_HZ: f64 = 2_700.0;
/// A block belongs to a segment when its frequency is this close to the segment's.
const MATCH_SHARE: f64 = 0.02;
const MATCH_MIN_HZ: f64 = 20.0;
/// Non-tonal blocks a segment may skip (G.711 noise, an ANSam phase reversal).
const MAX_GAP_BLOCKS: u32 = 2;
/// Blocks a segment needs before it counts (15 ms).
const MIN_SEGMENT_BLOCKS: u32 = 3;
/// Quiet after a segment before it is reported, and the distance within which
/// two segments count as one sequence (40 ms).
const CLEARANCE_BLOCKS: u64 = 8;
/// A neighbouring tone this long (50 ms) makes a sequence; shorter ones are noise.
const MIN_NEIGHBOUR_BLOCKS: u32 = 10;
/// Level spread (dB) of a steady tone, first and last blocks excluded.
const STEADY_SPREAD_DB: f64 = 3.0;
/// Real beeps fade in and out to spare the ear a click (Asterisk's over 15-20
/// ms), and some swell past their fade-in (one set's by 6 dB over 150 ms): a
/// tone at least `FADED_MIN_MS` long is steady too when, leaving out
/// `FADE_BLOCKS` at each end (20 ms), its level never falls `STEADY_SPREAD_DB`
/// below the loudest before (beating tones fall back every beat). Shorter tones
/// get no such allowance, since speech makes short ones.
const FADE_BLOCKS: u32 = 4;
const FADED_MIN_MS: u32 = 200;
/// Blocks (60 ms) past the fade-in over which a tone's start must be level,
/// how far below that a later block dips deeply (dB), and how rare such dips
/// must be (one block in this many).
const HEAD_BLOCKS: u32 = 12;
/// The first block past that head (interior block n is block n).
const HEAD_END_BLOCK: u32 = FADE_BLOCKS + HEAD_BLOCKS;
const DEEP_DIP_DB: f64 = 10.0;
const MAX_DIP_SHARE: u32 = 10;
/// A chime's beep is struck, not held: its partials beat gently (a few dB)
/// while it holds, then it dies away. A tone that holds within
/// `RING_HOLD_SPREAD_DB` for `RING_HOLD_BLOCKS` past its fade-in, is never
/// louder after that than while holding, and falls `DEEP_DIP_DB` below its
/// hold rings out. Two tones beating dip deeply while holding; a vowel held
/// as a tone fades sooner, and a voice swells again.
const RING_HOLD_BLOCKS: u32 = 20;
const RING_HOLD_END_BLOCK: u32 = FADE_BLOCKS + RING_HOLD_BLOCKS;
const RING_HOLD_SPREAD_DB: f64 = 8.0;

/// A finished tone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneSegment {
    pub hz: f64,
    /// Start and end, in ms since the tracker started.
    pub start_ms: u32,
    pub end_ms: u32,
    /// Mean level of its blocks, in dB on the scale of [`super::activity::FrameLevel::power_db`].
    pub level_db: f64,
    /// Its level stayed within a few dB.
    pub steady: bool,
    /// No other tone directly before or after it.
    pub isolated: bool,
    /// Steady only as a chime is, which rings on faintly past its end.
    pub rings_out: bool,
}

impl ToneSegment {
    pub fn duration_ms(&self) -> u32 {
        self.end_ms - self.start_ms
    }
}

#[derive(Debug, Clone, Copy)]
struct Open {
    start_block: u64,
    last_tonal: u64,
    tonal_blocks: u32,
    hz_sum: f64,
    db_sum: f64,
    /// Level range over the interior blocks, in dB.
    min_db: f64,
    max_db: f64,
    /// Interior blocks; the level range of the `HEAD_BLOCKS` past the fade-in;
    /// and the later ones far below that (a lost packet concealed mid-beep).
    interior: u32,
    head_min_db: f64,
    head_max_db: f64,
    deep_dips: u32,
    /// The level range of the `RING_HOLD_BLOCKS` past the fade-in; the lowest
    /// level of the interior blocks after them, and whether any of those was
    /// louder than the hold's loudest.
    hold_min_db: f64,
    hold_max_db: f64,
    tail_min_db: f64,
    tail_louder: bool,
    /// Level range over the blocks past the fades (`FADE_BLOCKS` at each end).
    faded_min_db: f64,
    faded_max_db: f64,
    /// A block past the fades fell well below the loudest before it.
    faded_fell: bool,
    /// The last `FADE_BLOCKS` tonal blocks' levels (block `k` at `k % FADE_BLOCKS`),
    /// each folded in once the blocks after it show where it lies.
    recent_db: [f64; FADE_BLOCKS as usize],
    /// Another tone sits directly before this one.
    adjacent: bool,
}

impl Open {
    fn hz(&self) -> f64 {
        self.hz_sum / f64::from(self.tonal_blocks)
    }

    /// From its first block to its last tonal one.
    fn duration_ms(&self) -> u32 {
        (self.last_tonal + 1 - self.start_block) as u32 * BLOCK_MS
    }

    fn matches(&self, hz: f64) -> bool {
        let mean = self.hz();
        (hz - mean).abs() <= (mean * MATCH_SHARE).max(MATCH_MIN_HZ)
    }

    fn add(&mut self, block: u64, hz: f64, db: f64) {
        let k = self.tonal_blocks;
        let level_of = |block: u32| self.recent_db[(block % FADE_BLOCKS) as usize];
        if k >= 2 * FADE_BLOCKS {
            // Block k - FADE_BLOCKS is past both fades.
            let faded = level_of(k);
            self.faded_fell |= faded < self.faded_max_db - STEADY_SPREAD_DB;
            self.faded_min_db = self.faded_min_db.min(faded);
            self.faded_max_db = self.faded_max_db.max(faded);
        }
        if k >= 2 {
            // Block k - 1 is interior: neither the first nor the last.
            let prev = level_of(k - 1);
            self.interior += 1;
            // Interior block n is block n; blocks 0 to FADE_BLOCKS - 1 fade in.
            if (FADE_BLOCKS..HEAD_END_BLOCK).contains(&self.interior) {
                self.head_min_db = self.head_min_db.min(prev);
                self.head_max_db = self.head_max_db.max(prev);
            } else if self.interior >= HEAD_END_BLOCK {
                self.deep_dips += u32::from(prev < self.head_min_db - DEEP_DIP_DB);
            }
            if (FADE_BLOCKS..RING_HOLD_END_BLOCK).contains(&self.interior) {
                self.hold_min_db = self.hold_min_db.min(prev);
                self.hold_max_db = self.hold_max_db.max(prev);
            } else if self.interior >= RING_HOLD_END_BLOCK {
                self.tail_louder |= prev > self.hold_max_db;
                self.tail_min_db = self.tail_min_db.min(prev);
            }
            self.min_db = self.min_db.min(prev);
            self.max_db = self.max_db.max(prev);
        }
        self.recent_db[(k % FADE_BLOCKS) as usize] = db;
        self.last_tonal = block;
        self.tonal_blocks += 1;
        self.hz_sum += hz;
        self.db_sum += db;
    }

    /// Take in `later`, a piece of the same tone.
    fn absorb(&mut self, later: &Open) {
        self.last_tonal = later.last_tonal;
        self.tonal_blocks += later.tonal_blocks;
        self.hz_sum += later.hz_sum;
        self.db_sum += later.db_sum;
        self.min_db = self.min_db.min(later.min_db);
        self.max_db = self.max_db.max(later.max_db);
        self.faded_fell |= later.faded_fell || later.faded_min_db < self.faded_max_db - STEADY_SPREAD_DB;
        self.faded_min_db = self.faded_min_db.min(later.faded_min_db);
        self.faded_max_db = self.faded_max_db.max(later.faded_max_db);
        self.interior += later.interior;
        self.deep_dips += later.deep_dips;
        self.tail_louder |= later.tail_louder || later.max_db > self.hold_max_db;
        self.tail_min_db = self.tail_min_db.min(later.min_db);
    }

    fn close(&self, followed: bool) -> ToneSegment {
        let spread = if self.max_db >= self.min_db { self.max_db - self.min_db } else { 0.0 };
        // Two tones beating dip deeply every few blocks from the start. A tone
        // level at its start whose later level wanders, dipping deeply in at most
        // one block in MAX_DIP_SHARE, is one tone over a lossy line: a lost packet
        // concealed by the decoder, which takes a few hundred ms to settle again.
        let level_start =
            self.interior >= HEAD_END_BLOCK && self.head_max_db - self.head_min_db <= STEADY_SPREAD_DB;
        let dipped_but_level = level_start && self.deep_dips * MAX_DIP_SHARE <= self.interior;
        // A beep that rings out, as a chime does: holding while its partials
        // beat gently, then only dying away.
        let rings_out = self.interior >= RING_HOLD_END_BLOCK
            && self.hold_max_db - self.hold_min_db <= RING_HOLD_SPREAD_DB
            && !self.tail_louder
            && self.tail_min_db < self.hold_min_db - DEEP_DIP_DB;
        let long = self.duration_ms() >= FADED_MIN_MS;
        let level_between_fades = long && self.faded_max_db.is_finite() && !self.faded_fell;
        let held = spread <= STEADY_SPREAD_DB || dipped_but_level || level_between_fades;
        ToneSegment {
            hz: self.hz(),
            start_ms: (self.start_block as u32) * BLOCK_MS,
            end_ms: (self.last_tonal as u32 + 1) * BLOCK_MS,
            level_db: self.db_sum / f64::from(self.tonal_blocks),
            steady: held || rings_out,
            isolated: !self.adjacent && !followed,
            rings_out: rings_out && !held,
        }
    }
}

/// Finds steady single tones in a stream of samples at any rate.
#[derive(Debug, Clone)]
pub struct ToneTracker {
    /// Lag `d` in samples: one 8 kHz sample, so the fit is as well conditioned at 48 kHz.
    lag: usize,
    block_len: usize,
    rate_hz: f64,
    /// The last `2 * lag` samples of the previous call.
    history: [i16; 12],
    pos: usize,
    /// The current block's samples, for the purity check.
    block_samples: [f64; MAX_BLOCK],
    /// Σx[n-d]², Σx[n-d](x[n]+x[n-2d]), Σ(x[n]+x[n-2d])².
    sums: [f64; 3],
    block: u64,
    open: Option<Open>,
    /// A closed segment waiting for its clearance.
    closing: Option<(Open, u64)>,
    done: VecDeque<ToneSegment>,
    tonal_in_frame: u32,
}

impl ToneTracker {
    pub fn new(rate_hz: u32) -> Self {
        let lag = (rate_hz / 8_000).clamp(1, 6) as usize;
        Self {
            lag,
            block_len: (rate_hz * BLOCK_MS / 1000) as usize,
            rate_hz: f64::from(rate_hz),
            history: [0; 12],
            pos: 0,
            block_samples: [0.0; MAX_BLOCK],
            sums: [0.0; 3],
            block: 0,
            open: None,
            closing: None,
            done: VecDeque::with_capacity(4),
            tonal_in_frame: 0,
        }
    }

    /// Feed samples (a 20 ms frame, usually).
    pub fn push(&mut self, samples: &[i16]) {
        self.tonal_in_frame = 0;
        let d = self.lag;
        let keep = 2 * d;
        let at = |n: isize, history: &[i16; 12]| -> f64 {
            if n >= 0 {
                f64::from(samples[n as usize])
            } else {
                f64::from(history[(keep as isize + n) as usize])
            }
        };
        let d = d as isize;
        for n in 0..samples.len() as isize {
            let centre = at(n - d, &self.history);
            let sides = f64::from(samples[n as usize]) + at(n - 2 * d, &self.history);
            self.sums[0] += centre * centre;
            self.sums[1] += centre * sides;
            self.sums[2] += sides * sides;
            self.block_samples[self.pos] = f64::from(samples[n as usize]);
            self.pos += 1;
            if self.pos == self.block_len {
                self.end_block();
            }
        }
        if samples.len() >= keep {
            self.history[..keep].copy_from_slice(&samples[samples.len() - keep..]);
        } else {
            self.history.copy_within(samples.len()..keep, 0);
            self.history[keep - samples.len()..keep].copy_from_slice(samples);
        }
    }

    /// How many 5 ms blocks of the last frame belonged to a tone.
    pub fn tonal_blocks_in_frame(&self) -> u32 {
        self.tonal_in_frame
    }

    /// The tone sounding now, if any: its frequency and how long it has lasted (ms).
    pub fn sounding(&self) -> Option<(f64, u32)> {
        let open = self.open.filter(|o| o.tonal_blocks >= MIN_SEGMENT_BLOCKS)?;
        Some((open.hz(), open.duration_ms()))
    }

    /// A tone is sounding or waiting to be reported: a verdict should wait for it.
    pub fn is_busy(&self) -> bool {
        self.sounding().is_some() || self.closing.is_some() || !self.done.is_empty()
    }

    /// A finished tone, once it has cleared.
    pub fn poll_segment(&mut self) -> Option<ToneSegment> {
        self.done.pop_front()
    }

    fn end_block(&mut self) {
        let [s0, s1, s2] = std::mem::take(&mut self.sums);
        self.pos = 0;
        let block = self.block;
        self.block += 1;
        let power = s0 / self.block_len as f64;
        let tone = (power >= MIN_BLOCK_POWER)
            .then(|| {
                let residual = (s2 - s1 * s1 / s0) / s0;
                let cos = (s1 / (2.0 * s0)).clamp(-1.0, 1.0);
                let hz = cos.acos() / self.lag as f64 * self.rate_hz / std::f64::consts::TAU;
                let single = residual < MAX_RESIDUAL && (MIN_HZ..=MAX_HZ).contains(&hz);
                (single && self.share_at(hz, s0) >= MIN_SHARE).then_some(hz)
            })
            .flatten();
        let db = 10.0 * power.max(1.0).log10();
        match (tone, self.open.as_mut()) {
            (Some(hz), Some(open)) if open.matches(hz) => {
                open.add(block, hz, db);
                if open.tonal_blocks >= MIN_SEGMENT_BLOCKS {
                    self.tonal_in_frame += 1;
                }
            }
            (Some(hz), _) => {
                self.close_open();
                let resumed =
                    self.closing.filter(|&(seg, end)| block - end <= CLEARANCE_BLOCKS && seg.matches(hz));
                let mut open = match resumed {
                    // The same tone again after a short dropout (noise): carry on with it.
                    Some((seg, _)) => {
                        self.closing = None;
                        seg
                    }
                    None => Open {
                        start_block: block,
                        last_tonal: block,
                        tonal_blocks: 0,
                        hz_sum: 0.0,
                        db_sum: 0.0,
                        min_db: f64::INFINITY,
                        max_db: f64::NEG_INFINITY,
                        interior: 0,
                        head_min_db: f64::INFINITY,
                        head_max_db: f64::NEG_INFINITY,
                        deep_dips: 0,
                        hold_min_db: f64::INFINITY,
                        hold_max_db: f64::NEG_INFINITY,
                        tail_min_db: f64::INFINITY,
                        tail_louder: false,
                        faded_min_db: f64::INFINITY,
                        faded_max_db: f64::NEG_INFINITY,
                        faded_fell: false,
                        recent_db: [0.0; FADE_BLOCKS as usize],
                        adjacent: false,
                    },
                };
                open.add(block, hz, db);
                self.open = Some(open);
            }
            (None, Some(open)) if block - open.last_tonal > u64::from(MAX_GAP_BLOCKS) => {
                self.close_open();
            }
            (None, _) => {}
        }
        if let Some((seg, end)) = self.closing {
            // A tone starting within the clearance decides adjacency when it closes.
            let next_started = self.open.is_some_and(|o| o.start_block - end <= CLEARANCE_BLOCKS);
            if !next_started && block - end >= CLEARANCE_BLOCKS {
                self.closing = None;
                self.done.push_back(seg.close(false));
            }
        }
    }

    /// Share of the block's energy at `hz` (Goertzel over the block): near 1 for
    /// one tone, far less for a hummed note whose harmonics the fit averages into one.
    fn share_at(&self, hz: f64, energy: f64) -> f64 {
        let coeff = 2.0 * (std::f64::consts::TAU * hz / self.rate_hz).cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &x in &self.block_samples[..self.block_len] {
            let s0 = x + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        2.0 * power / (self.block_len as f64 * energy.max(1.0))
    }

    /// End the open segment. A segment waiting for its clearance learns whether
    /// a real tone (not a blip of noise) followed it; the new one, whether one preceded it.
    fn close_open(&mut self) {
        let Some(mut open) = self.open.take() else { return };
        if open.tonal_blocks < MIN_SEGMENT_BLOCKS {
            return;
        }
        if let Some((mut prev, prev_end)) = self.closing.take() {
            let touching = open.start_block - prev_end <= CLEARANCE_BLOCKS;
            if touching && prev.matches(open.hz()) {
                // One tone cut in two by a stray block: put it back together.
                prev.absorb(&open);
                self.closing = Some((prev, prev.last_tonal + 1));
                return;
            }
            self.done.push_back(prev.close(touching && open.tonal_blocks >= MIN_NEIGHBOUR_BLOCKS));
            open.adjacent |= touching && prev.tonal_blocks >= MIN_NEIGHBOUR_BLOCKS;
        }
        self.closing = Some((open, open.last_tonal + 1));
    }
}

#[cfg(test)]
#[path = "tone_tests.rs"]
mod tests;
