//! An Opus leg bridged to G.711 codes at 8 kHz whether its peer is in its
//! shard's engine or another's, and a clip or hold music made for the rate it
//! had before still plays: the runtime's handle makes it again at the leg's
//! new rate.

use std::sync::Arc;
use std::time::Duration;

use bond_codecs::{Codec, SampleRate};
use bond_media_engine::leg::{Clip, MediaSource, RtpMedia};
use bond_media_engine::runtime::{self, LegSpec};
use bond_media_engine::{DtmfPassing, EngineEvent, LegId};

use super::runtime_echo_over_udp::config;

fn leg(codec: Codec) -> LegSpec {
    LegSpec { media: RtpMedia::new(codec), source: MediaSource::Silence, remote: None, media_timeout: None }
}

/// Which of two shards a leg lives in (the runtime numbers legs round the shards).
fn shard(leg: LegId) -> u64 {
    (leg.0 - 1) % 2
}

#[tokio::test]
async fn a_clip_made_before_an_opus_leg_was_bridged_to_g711_plays_at_its_new_rate() {
    for (same_shard, ports) in [(true, 41600), (false, 41630)] {
        let (engine, _task) = runtime::spawn(config(ports));
        let mut events = engine.subscribe();
        let agent = engine.create_leg(leg(Codec::Opus)).await.unwrap().id;
        let near = if same_shard { engine.near(agent) } else { engine.clone() };
        let caller = near.create_leg(leg(Codec::Pcmu)).await.unwrap().id;
        assert_eq!(shard(agent) == shard(caller), same_shard);
        let rate = engine.leg_rate(agent).await.unwrap().unwrap();
        assert_eq!(rate, SampleRate::Hz48000);
        let clip =
            Clip { id: 7, rate, samples: Arc::from(vec![1000i16; 48_000]), plays: Some(1), duck: false };

        engine.bridge(agent, caller, DtmfPassing::Both).await.unwrap();
        assert_eq!(
            engine.leg_rate(agent).await.unwrap(),
            Some(SampleRate::Hz8000),
            "same shard: {same_shard}"
        );
        engine.play(agent, clip, false).await.unwrap();
        let started = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match events.recv().await {
                    Ok(EngineEvent::PlaybackStarted { leg, id }) if leg == agent => return id,
                    Ok(_) => {}
                    Err(e) => panic!("events: {e}"),
                }
            }
        })
        .await
        .expect("the clip starts");
        assert_eq!(started, 7);
        // Hold music made for 48 kHz too: made again at 8 kHz, and the leg keeps that while held.
        let music = Arc::from(vec![1000i16; 48_000]);
        let held = MediaSource::Play { samples: music, rate: SampleRate::Hz48000, repeat: true };
        engine.hold(agent, Some(held)).await.unwrap();
        engine.hold(agent, None).await.unwrap();
        // Out of the bridge, with nothing playing, it codes at 48 kHz again.
        engine.stop_playback(agent, false, true).await.unwrap();
        engine.unbridge(agent).await.unwrap();
        assert_eq!(
            engine.leg_rate(agent).await.unwrap(),
            Some(SampleRate::Hz48000),
            "same shard: {same_shard}"
        );
    }
}
