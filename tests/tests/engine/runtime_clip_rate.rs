//! A clip made for an Opus leg's rate before the leg was bridged to G.711 (its
//! rate then follows the bridge) still plays: the runtime's handle makes it
//! again at the leg's new rate.

use std::sync::Arc;
use std::time::Duration;

use bond_codecs::{Codec, SampleRate};
use bond_media_engine::leg::{Clip, MediaSource, RtpMedia};
use bond_media_engine::runtime::{self, LegSpec};
use bond_media_engine::{DtmfPassing, EngineEvent};

use super::runtime_echo_over_udp::config;

fn leg(codec: Codec) -> LegSpec {
    LegSpec { media: RtpMedia::new(codec), source: MediaSource::Silence, remote: None, media_timeout: None }
}

#[tokio::test]
async fn a_clip_made_before_an_opus_leg_was_bridged_to_g711_plays_at_its_new_rate() {
    let (engine, _task) = runtime::spawn(config(41600));
    let mut events = engine.subscribe();
    let agent = engine.create_leg(leg(Codec::Opus)).await.unwrap().id;
    let caller = engine.near(agent).create_leg(leg(Codec::Pcmu)).await.unwrap().id;
    let rate = engine.leg_rate(agent).await.unwrap().unwrap();
    assert_eq!(rate, SampleRate::Hz48000);
    let clip = Clip { id: 7, rate, samples: Arc::from(vec![1000i16; 48_000]), plays: Some(1), duck: false };

    engine.bridge(agent, caller, DtmfPassing::Both).await.unwrap();
    assert_eq!(engine.leg_rate(agent).await.unwrap(), Some(SampleRate::Hz8000));
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
}
