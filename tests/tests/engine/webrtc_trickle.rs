//! Trickle ICE (RFC 8838): a browser sends its offer before it has gathered
//! its candidates and hands each one over as it comes. Bond's leg pairs a
//! trickled candidate with its own and checks it; what is no candidate is
//! refused and the leg goes on.

use crate::webrtc_sim::*;

/// The browser's offer with its candidates taken out, as a browser sends it
/// the moment its local description is set.
fn offer_without_candidates(now: Instant) -> String {
    let (_, offer, _) = Browser::offer(now, None);
    let kept: Vec<&str> =
        offer.split("\r\n").filter(|line| !line.starts_with("a=candidate") && !line.is_empty()).collect();
    assert!(kept.len() < offer.split("\r\n").count() - 1, "the offer had a candidate to take out");
    kept.join("\r\n") + "\r\n"
}

/// Run the engine's timers for `duration` from `now`; the datagrams it sent, by destination.
fn run(engine: &mut Engine, now: &mut Instant, duration: Duration) -> Vec<(SocketAddr, Vec<u8>)> {
    let end = *now + duration;
    let mut sent = Vec::new();
    loop {
        while let Some(output) = engine.poll_output() {
            if let EngineOutput::Datagram { to, data, .. } = output {
                sent.push((to, data.to_vec()));
            }
        }
        match engine.poll_timeout() {
            Some(at) if at <= end => {
                *now = at.max(*now);
                engine.handle_timeout(*now);
            }
            _ => return sent,
        }
    }
}

/// A STUN Binding request (RFC 8489: type 0x0001, magic cookie).
fn is_binding_request(data: &[u8]) -> bool {
    data.len() >= 20 && data[..2] == [0x00, 0x01] && data[4..8] == [0x21, 0x12, 0xa4, 0x42]
}

#[test]
fn a_candidate_trickled_after_a_bare_offer_gets_bonds_connectivity_checks() {
    let mut now = bond_media_engine::sim::epoch();
    let mut engine = Engine::new(1);
    let (leg, _) =
        engine.add_webrtc_leg(now, &offer_without_candidates(now), &at_bond(), credentials(1)).unwrap();
    // No candidate yet: Bond has nowhere to check.
    assert!(run(&mut engine, &mut now, Duration::from_secs(1)).is_empty());

    let browser = addr(BROWSER);
    let line =
        format!("candidate:1 1 udp 2122260223 {} {} typ host generation 0", browser.ip(), browser.port());
    engine.add_ice_candidate(now, leg, &line).unwrap();
    let sent = run(&mut engine, &mut now, Duration::from_secs(1));
    assert!(
        sent.iter().any(|(to, data)| *to == addr(BROWSER) && is_binding_request(data)),
        "no check went to the trickled candidate: {:?}",
        sent.iter().map(|(to, _)| to).collect::<Vec<_>>()
    );
    // The same candidate again changes nothing and is no error.
    engine.add_ice_candidate(now, leg, &line).unwrap();
}

#[test]
fn what_is_no_candidate_is_refused_and_the_leg_goes_on() {
    let now = bond_media_engine::sim::epoch();
    let mut engine = Engine::new(1);
    let (leg, _) =
        engine.add_webrtc_leg(now, &offer_without_candidates(now), &at_bond(), credentials(1)).unwrap();
    for bad in [
        "",
        "candidate:",
        "candidate:1 1 udp 1 10.0.0.2 notaport typ host",
        "candidate:1 1 udp 2122260223 4f1c-9a.local 50000 typ host",
        "candidate:1 1 sctp 1 10.0.0.2 5000 typ host",
        "candidate:1 1 udp 1 10.0.0.2 5000 typ unheard",
        &"x".repeat(100_000),
    ] {
        let err = engine.add_ice_candidate(now, leg, bad).unwrap_err();
        assert!(matches!(err, EngineError::WebRtc(_)), "{bad:.40}: {err}");
    }
    // `a=` is the attribute's own prefix in SDP: taken.
    engine.add_ice_candidate(now, leg, "a=candidate:1 1 udp 2122260223 10.0.0.2 50000 typ host").unwrap();

    // A page cannot make Bond check an unbounded list of addresses.
    for port in 1..32u16 {
        let line = format!("candidate:{port} 1 udp 2122260223 10.0.0.3 {port} typ host");
        engine.add_ice_candidate(now, leg, &line).unwrap();
    }
    let err = engine.add_ice_candidate(now, leg, "candidate:9 1 udp 1 10.0.0.4 9 typ host").unwrap_err();
    assert!(err.to_string().contains("at most 32"), "{err}");

    // Only a live WebRTC leg takes one.
    let tone = engine.add_local_leg(now, SampleRate::Hz8000, MediaSource::Silence);
    let line = "candidate:1 1 udp 2122260223 10.0.0.2 50000 typ host";
    assert!(matches!(engine.add_ice_candidate(now, tone, line), Err(EngineError::WebRtc(_))));
    engine.hangup(leg, HangupCause::NormalClearing).unwrap();
    assert!(engine.add_ice_candidate(now, leg, line).is_err());
}
