//! Supervisors in simulated time: three phones over clean links to Bond's PCMU
//! legs; the customer says 700 Hz, the agent 1,100 Hz, the supervisor 1,500 Hz.
//! The customer and agent are bridged; the supervisor supervises the agent's leg
//! as `monitor` (hears both, heard by nobody), `whisper` (heard by the agent
//! only) and `barge` (heard by both), then stops.

use std::time::Duration;

use bond_codecs::Codec;
use bond_media_engine::leg::MediaSource;
use bond_media_engine::sim::{LinkProfile, SimNetwork};
use bond_media_engine::{HangupCause, LegId, SupervisorRole};
use bond_tests::tone_share;

/// A phone saying `hz` (or nothing) on Bond's leg; returns (phone, Bond's leg).
fn phone(net: &mut SimNetwork, hz: f64) -> (LegId, LegId) {
    let now = net.now();
    let mut cfg = net.engine.leg_config(Codec::Pcmu);
    cfg.emit_heard = true;
    let phone = net.engine.add_leg(now, cfg, MediaSource::Tone { hz, dbm0: -16.0 }).unwrap();
    let cfg = net.engine.leg_config(Codec::Pcmu);
    let bond = net.engine.add_leg(now, cfg, MediaSource::Silence).unwrap();
    net.connect(phone, bond, LinkProfile::clean(), LinkProfile::clean());
    (phone, bond)
}

/// What `phone` heard over the last second, as shares of each party's tone.
fn heard(net: &SimNetwork, phone: LegId) -> [f64; 3] {
    let samples = net.heard_samples(phone);
    let last = &samples[samples.len() - 6_400..];
    [700.0, 1100.0, 1500.0].map(|hz| tone_share(last, hz, 8000))
}

#[test]
fn a_supervisor_monitors_whispers_to_the_agent_and_barges_in() {
    let mut net = SimNetwork::new(77);
    let (customer, customer_leg) = phone(&mut net, 700.0);
    let (agent, agent_leg) = phone(&mut net, 1100.0);
    let (supervisor, supervisor_leg) = phone(&mut net, 1500.0);
    net.engine.bridge(customer_leg, agent_leg).unwrap();
    net.run_for(Duration::from_secs(1));
    let [_, _, s] = heard(&net, customer);
    assert!(s < 0.01, "nobody hears the supervisor yet");

    net.engine.supervise(supervisor_leg, agent_leg, Some(SupervisorRole::Monitor)).unwrap();
    net.run_for(Duration::from_secs(1));
    let [c, a, _] = heard(&net, supervisor);
    assert!(c > 0.3 && a > 0.3 && c + a > 0.9, "the supervisor hears both parties: {c:.2} {a:.2}");
    assert!(heard(&net, customer)[2] < 0.01 && heard(&net, agent)[2] < 0.01, "monitoring is silent");
    assert!(heard(&net, customer)[1] > 0.9 && heard(&net, agent)[0] > 0.9, "the call goes on");

    net.engine.supervise(supervisor_leg, agent_leg, Some(SupervisorRole::Whisper)).unwrap();
    net.run_for(Duration::from_secs(1));
    let [c, a, s] = heard(&net, agent);
    assert!(c > 0.3 && s > 0.3 && a < 0.01, "the agent hears the customer and the whisper: {c:.2} {s:.2}");
    assert!(heard(&net, customer)[2] < 0.01, "the customer does not hear the whisper");
    let [c, a, _] = heard(&net, supervisor);
    assert!(c + a > 0.9, "and the supervisor still hears both");

    net.engine.supervise(supervisor_leg, agent_leg, Some(SupervisorRole::Barge)).unwrap();
    net.run_for(Duration::from_secs(1));
    assert!(heard(&net, customer)[2] > 0.3, "barging: the customer hears the supervisor");
    assert!(heard(&net, agent)[2] > 0.3, "and so does the agent");

    net.engine.supervise(supervisor_leg, agent_leg, None).unwrap();
    net.run_for(Duration::from_secs(1));
    assert!(heard(&net, customer)[2] < 0.01 && heard(&net, agent)[2] < 0.01);
    let samples = net.heard_samples(supervisor);
    let last = &samples[samples.len() - 6_400..];
    assert!(last.iter().all(|s| s.unsigned_abs() < 200), "the supervisor hears nothing once it stops");
}

#[test]
fn a_supervisor_whose_call_ends_is_taken_off_it() {
    let mut net = SimNetwork::new(78);
    let (customer, customer_leg) = phone(&mut net, 700.0);
    let (_, agent_leg) = phone(&mut net, 1100.0);
    let (_, supervisor_leg) = phone(&mut net, 1500.0);
    net.engine.bridge(customer_leg, agent_leg).unwrap();
    net.engine.supervise(supervisor_leg, agent_leg, Some(SupervisorRole::Barge)).unwrap();
    net.run_for(Duration::from_secs(1));
    assert!(heard(&net, customer)[2] > 0.3);
    net.engine.hangup(supervisor_leg, HangupCause::NormalClearing).unwrap();
    net.run_for(Duration::from_secs(1));
    assert!(heard(&net, customer)[2] < 0.01 && heard(&net, customer)[1] > 0.9, "the call goes on without it");
    assert!(net.engine.supervise(agent_leg, agent_leg, Some(SupervisorRole::Monitor)).is_err());
}
