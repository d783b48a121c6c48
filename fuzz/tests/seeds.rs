//! Every fuzz target on its committed seeds and on a fixed set of mutants of
//! them, in every test run: a crash a campaign found stays fixed, and the
//! small changes that found the first ones (a length one too long, a byte
//! flipped, two inputs spliced) are tried on each target every time.
//!
//! The mutants come from a fixed seed, so a run is repeatable; exploring
//! further is a campaign's job (`scripts/fuzz`, docs/fuzzing.md).

use std::path::Path;

use bond_fuzz::Target;

/// Mutants per target: cheap parsers get many, targets that build an engine
/// leg or go through the router and the database get fewer.
const MANY: usize = 20_000;
const SOME: usize = 2_000;
const FEW: usize = 200;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    let seeds: Vec<_> = files.iter().map(|f| std::fs::read(f).expect("a seed")).collect();
    assert!(!seeds.is_empty(), "{} holds no seeds", dir.display());
    seeds
}

/// xorshift64*: a small, fixed-seed generator for the mutants.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One to four of libFuzzer's simplest changes to a seed.
fn mutant(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    const INTERESTING: [u8; 8] = [0, 1, 0x7f, 0x80, 0xff, b'"', b'\n', b':'];
    let mut input = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(6) {
            0 if at < input.len() => input[at] ^= 1 << rng.below(8),
            1 if at < input.len() => input[at] = INTERESTING[rng.below(INTERESTING.len())],
            2 => {
                let bytes: Vec<u8> = (0..=rng.below(8)).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            3 => {
                let end = (at + 1 + rng.below(16)).min(input.len());
                input.drain(at.min(end)..end);
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            _ => input.truncate(at),
        }
    }
    input
}

fn survives(name: &str, target: Target, mutants: usize) {
    let seeds = seeds(name);
    let mut rng = Rng(0x0B0D_F022 ^ name.len() as u64);
    let inputs = seeds.clone().into_iter().chain((0..mutants).map(|_| mutant(&mut rng, &seeds)));
    for input in inputs {
        if std::panic::catch_unwind(|| target(&input)).is_err() {
            panic!("{name} panicked on this input (save it as a seed and a unit test): {input:02x?}");
        }
    }
}

#[test]
fn every_target_has_a_test_here() {
    let tested = [
        "sdp",
        "rtp_packet",
        "rfc4733",
        "stun",
        "rtp_leg",
        "rtcp",
        "srtp",
        "stream_frame",
        "sip_request",
        "action_body",
        "api_action",
        "agent_frame",
    ];
    let names: Vec<_> = bond_fuzz::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, tested);
}

#[test]
fn sdp_survives_its_seeds_and_their_mutants() {
    survives("sdp", bond_fuzz::sdp, MANY);
}

#[test]
fn rtp_packet_survives_its_seeds_and_their_mutants() {
    survives("rtp_packet", bond_fuzz::rtp_packet, MANY);
}

#[test]
fn rfc4733_survives_its_seeds_and_their_mutants() {
    survives("rfc4733", bond_fuzz::rfc4733, MANY);
}

#[test]
fn stun_survives_its_seeds_and_their_mutants() {
    survives("stun", bond_fuzz::stun, MANY);
}

#[test]
fn rtp_leg_survives_its_seeds_and_their_mutants() {
    survives("rtp_leg", bond_fuzz::rtp_leg, SOME);
}

#[test]
fn rtcp_survives_its_seeds_and_their_mutants() {
    survives("rtcp", bond_fuzz::rtcp, MANY);
}

#[test]
fn srtp_survives_its_seeds_and_their_mutants() {
    survives("srtp", bond_fuzz::srtp, MANY);
}

#[test]
fn stream_frame_survives_its_seeds_and_their_mutants() {
    survives("stream_frame", bond_fuzz::stream_frame, MANY);
}

#[test]
fn sip_request_survives_its_seeds_and_their_mutants() {
    survives("sip_request", bond_fuzz::sip_request, SOME);
}

#[test]
fn action_body_survives_its_seeds_and_their_mutants() {
    survives("action_body", bond_fuzz::action_body, MANY);
}

#[test]
fn api_action_survives_its_seeds_and_their_mutants() {
    survives("api_action", bond_fuzz::api_action, FEW);
}

#[test]
fn agent_frame_survives_its_seeds_and_their_mutants() {
    survives("agent_frame", bond_fuzz::agent_frame, SOME);
}
