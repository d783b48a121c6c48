//! A one-way simulated network path with seeded delay, jitter and loss.

use std::time::Duration;

use bond_codecs::signals::SplitMix64;

/// How a simulated path treats packets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkProfile {
    pub delay: Duration,
    /// Each packet gets an extra delay uniform in `0..=jitter` (so packets can reorder).
    pub jitter: Duration,
    /// Probability of dropping each packet, 0.0..=1.0.
    pub loss: f64,
    pub seed: u64,
}

impl LinkProfile {
    /// A perfect path: fixed 1 ms, no jitter, no loss.
    pub fn clean() -> Self {
        Self { delay: Duration::from_millis(1), jitter: Duration::ZERO, loss: 0.0, seed: 0 }
    }

    pub fn lossy(delay_ms: u64, jitter_ms: u64, loss: f64, seed: u64) -> Self {
        Self { delay: Duration::from_millis(delay_ms), jitter: Duration::from_millis(jitter_ms), loss, seed }
    }
}

#[derive(Debug)]
pub(super) struct Link {
    profile: LinkProfile,
    rng: SplitMix64,
}

impl Link {
    pub fn new(profile: LinkProfile) -> Self {
        Self { rng: SplitMix64::new(profile.seed), profile }
    }

    /// The delay this packet sees, or `None` if the path drops it.
    pub fn transit(&mut self) -> Option<Duration> {
        let lost = self.rng.next_f64() < self.profile.loss;
        let jitter = self.profile.jitter.mul_f64(self.rng.next_f64());
        (!lost).then_some(self.profile.delay + jitter)
    }
}
