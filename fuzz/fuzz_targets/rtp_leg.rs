//! Datagrams into a live engine leg, with time passing between them: the
//! playout buffer, concealment, the decoder, the DTMF taps and (for datagrams
//! typed as RTCP) the RTCP reader all see them.
//! The input is a list of datagrams, each a length byte then its bytes; the
//! first byte picks the leg's codec.
#![no_main]

use std::time::{Duration, Instant};

use bond_codecs::Codec;
use bond_media_engine::leg::{MediaSource, RtcpSetup};
use bond_media_engine::Engine;
use libfuzzer_sys::fuzz_target;

const CODECS: [Codec; 4] = [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else { return };
    let mut engine = Engine::new(7);
    // The starting point only: from here time moves by the input.
    #[allow(clippy::disallowed_methods)]
    let mut now = Instant::now();
    let mut config = engine.leg_config(CODECS[usize::from(pick) % CODECS.len()]);
    config.rtcp = Some(RtcpSetup { cname: "fuzz".into(), unix_time_at_start: Duration::from_secs(1) });
    let Ok(leg) = engine.add_leg(now, config, MediaSource::Echo) else { return };
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (datagram, tail) = tail.split_at(len);
        rest = tail;
        let _ = engine.handle_receive(now, leg, datagram);
        now += Duration::from_millis(7);
        engine.handle_timeout(now);
        while engine.poll_output().is_some() {}
    }
});
