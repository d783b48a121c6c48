//! A driver that runs a leg's ticks late (a busy or stalled machine), in
//! simulated time: the frames sent must keep their timestamps' time.

use std::time::Duration;

use bond_codecs::Codec;
use bond_media_engine::sim::{LinkProfile, SimNetwork};
use bond_media_engine::LegId;
use bond_tests::tone_and_echo;

/// A PCMU tone leg wired to an echo leg, run 1 s, stalled, then run 1 s more.
fn stalled_tone_leg(stall: Duration) -> (SimNetwork, LegId) {
    let mut net = SimNetwork::new(11);
    let (tone, _) = tone_and_echo(&mut net, Codec::Pcmu, LinkProfile::clean(), LinkProfile::clean());
    net.run_for(Duration::from_secs(1));
    net.stall(stall);
    net.run_for(Duration::from_secs(1));
    (net, tone)
}

/// Each packet's send time minus its timestamp's time (ms) after the first packet's.
fn lateness_ms(sent: &[(Duration, u32)]) -> Vec<i64> {
    let (t0, ts0) = sent[0];
    sent.iter().map(|&(at, ts)| (at - t0).as_millis() as i64 - i64::from(ts.wrapping_sub(ts0) / 8)).collect()
}

#[test]
fn ticks_run_late_are_caught_up_so_every_frame_keeps_its_timestamps_time() {
    let stall = Duration::from_millis(50);
    let (net, tone) = stalled_tone_leg(stall);
    let sent = net.sent_timestamps(tone);
    // A tick every 20 ms from 0 to 2.04 s, none missed.
    assert_eq!(sent.len(), 103);
    let late = lateness_ms(sent);
    // The ticks due in the stall go out when it ends (at most its length late), then on time again.
    assert!(late.iter().all(|&ms| (0..=50).contains(&ms)), "{late:?}");
    assert!(late.iter().filter(|&&ms| ms > 0).count() <= 3, "{late:?}");
    assert_eq!(late.last(), Some(&0));
}

#[test]
fn a_leg_stalled_past_the_catch_up_limit_leaves_a_gap_in_its_timestamps_not_a_burst() {
    let (net, tone) = stalled_tone_leg(Duration::from_millis(500));
    let sent = net.sent_timestamps(tone);
    // Of the 126 ticks from 0 to 2.5 s, the 24 due from 1.02 s to 1.48 s are not sent...
    assert_eq!(sent.len(), 126 - 24);
    // ...but their time passes: what follows is on time.
    let late = lateness_ms(sent);
    assert!(late.iter().all(|&ms| (0..20).contains(&ms)), "{late:?}");
    assert_eq!(late.last(), Some(&0));
}
