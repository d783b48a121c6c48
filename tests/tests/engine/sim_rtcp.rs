//! RTCP between two SIP-style legs in simulated time: each sends SR/RR reports,
//! reads the other's, and learns what happened to its own stream (loss, jitter)
//! and the round trip from the echoed LSR/DLSR.

use std::time::Duration;

use bond_codecs::Codec;
use bond_media_engine::leg::{MediaSource, RtcpSetup};
use bond_media_engine::sim::{LinkProfile, SimNetwork};

#[test]
fn each_leg_learns_its_streams_loss_and_the_round_trip_from_the_others_reports() {
    let mut net = SimNetwork::new(9);
    let now = net.now();
    let mut legs = Vec::new();
    for (name, source) in [("a", MediaSource::Tone { hz: 1000.0, dbm0: -10.0 }), ("b", MediaSource::Echo)] {
        let mut config = net.engine.leg_config(Codec::Pcmu);
        config.rtcp = Some(RtcpSetup {
            cname: format!("{name}@sim"),
            unix_time_at_start: Duration::from_secs(1_700_000_000),
        });
        legs.push(net.engine.add_leg(now, config, source).unwrap());
    }
    let (a, b) = (legs[0], legs[1]);
    // 40 ms each way; a's stream to b loses 5 % of its packets (RTCP included).
    net.connect(a, b, LinkProfile::lossy(40, 0, 0.05, 3), LinkProfile::lossy(40, 0, 0.0, 4));
    net.run_for(Duration::from_secs(60));

    let (sa, sb) = (net.engine.stats(a).unwrap(), net.engine.stats(b).unwrap());
    assert!(sa.remote.reports >= 8 && sb.remote.reports >= 7, "a report every 2.5-7.5 s: {sa:?} {sb:?}");
    let rtt = sa.remote.rtt_ms.expect("b echoed a's SR");
    assert!((rtt - 80.0).abs() < 1.0, "40 ms each way: {rtt}");
    assert!((sb.remote.rtt_ms.unwrap() - 80.0).abs() < 1.0);
    // b's last report on a's stream lags b's own count by at most one interval's worth.
    let reported = sa.remote.packets_lost.unwrap();
    assert!(
        reported > 50 && reported <= sb.packets_lost,
        "a's loss as b saw it: {reported} of {}",
        sb.packets_lost
    );
    assert_eq!(sb.remote.packets_lost, Some(0), "nothing lost from b to a");
    assert_eq!(sa.remote.jitter_ms, Some(0.0), "a fixed-delay path has no jitter");
}
