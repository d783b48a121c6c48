//! Answering-machine detection over the API: `answering_machine_detection` on
//! dial (and the organization's default) runs the detector on a `loop:play`
//! leg, and its verdicts arrive as Telnyx's machine-detection webhooks.

use std::time::Duration;

use crate::common::{call, ADMIN_KEY};
use axum::http::StatusCode;
use bond_codecs::level::{rms_for_dbm0, sine_amplitude_for_dbm0};
use bond_codecs::signals::{sine, syllables};
use bond_control_api::state::AppState;
use serde_json::{json, Value};

/// Noise shaped into syllables: what the detector takes for speech.
fn talk(ms: usize, seed: u64) -> Vec<i16> {
    syllables(seed, 8_000, ms * 8, rms_for_dbm0(-18.0) * 1.6)
}

fn write_wav(dir: &std::path::Path, name: &str, parts: &[Vec<i16>]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(dir.join(name), spec).unwrap();
    for s in parts.concat() {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

async fn dial(state: &AppState, conn: &str, file: &str, amd: Option<Value>) -> String {
    let mut body =
        json!({ "connection_id": conn, "to": format!("loop:play?file={file}"), "from": "+13125550100" });
    if let Some(amd) = amd {
        body.as_object_mut().unwrap().extend(amd.as_object().unwrap().clone());
    }
    let (status, _, json) = call(state, "POST", "/v2/calls", Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    json["data"]["call_control_id"].as_str().unwrap().to_owned()
}

/// The machine-detection webhooks queued for `id`, waiting up to `within` for `count` of them.
async fn amd_events(state: &AppState, id: &str, count: usize, within: Duration) -> Vec<Value> {
    crate::common::queued_events(state, id, "call.machine.", count, within).await
}

#[tokio::test]
async fn a_person_and_a_machine_with_a_beep_are_told_apart_in_premium_mode() {
    let dir = tempfile::tempdir().unwrap();
    for url in crate::common::database_urls(dir.path()).await {
        let sub = tempfile::tempdir_in(dir.path()).unwrap();
        let state = crate::common::state(sub.path(), &url, &[]).await;
        write_wav(sub.path(), "hello.wav", &[vec![0; 2_400], talk(500, 1), vec![0; 16_000]]);
        let beep = sine(1_000.0, 8_000, 2_400, sine_amplitude_for_dbm0(-15.0));
        write_wav(
            sub.path(),
            "greeting.wav",
            &[vec![0; 2_400], talk(2_500, 2), vec![0; 3_200], beep, vec![0; 8_000]],
        );
        let conn = {
            let body = json!({ "application_name": "amd", "webhook_event_url": "http://127.0.0.1:9/hooks" });
            let (_, _, json) =
                call(&state, "POST", "/v2/call_control_applications", Some(ADMIN_KEY), Some(body)).await;
            json["data"]["id"].as_str().unwrap().to_owned()
        };
        let premium = json!({ "answering_machine_detection": "premium" });
        let person = dial(&state, &conn, "hello.wav", Some(premium.clone())).await;
        let machine = dial(&state, &conn, "greeting.wav", Some(premium)).await;

        let person_events = amd_events(&state, &person, 1, Duration::from_secs(10)).await;
        assert_eq!(person_events.len(), 1, "{person_events:?}");
        let p = &person_events[0];
        assert_eq!(p["event_type"], "call.machine.premium.detection.ended");
        assert_eq!(p["payload"]["result"], "human_residence");
        assert_eq!(p["payload"]["call_control_id"], person.as_str());
        // Speech ends at 800 ms; 900 ms of quiet later it is a person.
        let at = p["payload"]["decision_time_millis"].as_u64().unwrap();
        assert!((1_650..=1_800).contains(&at), "decided at {at} ms");

        let machine_events = amd_events(&state, &machine, 2, Duration::from_secs(15)).await;
        let kinds: Vec<(&str, &str)> = machine_events
            .iter()
            .map(|e| (e["event_type"].as_str().unwrap(), e["payload"]["result"].as_str().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("call.machine.premium.detection.ended", "machine"),
                ("call.machine.premium.greeting.ended", "beep_detected")
            ]
        );
        // The beep ends at 3,500 ms (300 quiet, 2,500 talk, 400 quiet, 300 beep).
        let beep_at = machine_events[1]["payload"]["decision_time_millis"].as_u64().unwrap();
        assert!((3_500..=3_600).contains(&beep_at), "beep reported at {beep_at} ms");
        assert_eq!(machine_events[1]["payload"]["beep_frequency_hz"], 1_000.0);
    }
}

#[tokio::test]
async fn the_organizations_default_applies_when_a_dial_does_not_say() {
    let dir = tempfile::tempdir().unwrap();
    let state =
        crate::common::state(dir.path(), &crate::common::database_urls(dir.path()).await[0], &[]).await;
    write_wav(dir.path(), "hello.wav", &[talk(400, 3), vec![0; 16_000]]);
    let patch = json!({ "answering_machine_detection": "detect",
        "answering_machine_detection_config": { "after_greeting_silence_millis": 500 } });
    let (status, _, json) = call(&state, "PATCH", "/v2/voice_config", Some(ADMIN_KEY), Some(patch)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let body = json!({ "application_name": "amd", "webhook_event_url": "http://127.0.0.1:9/hooks" });
    let (_, _, json) =
        call(&state, "POST", "/v2/call_control_applications", Some(ADMIN_KEY), Some(body)).await;
    let conn = json["data"]["id"].as_str().unwrap().to_owned();

    let defaulted = dial(&state, &conn, "hello.wav", None).await;
    let disabled =
        dial(&state, &conn, "hello.wav", Some(json!({ "answering_machine_detection": "disabled" }))).await;
    let events = amd_events(&state, &defaulted, 1, Duration::from_secs(10)).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event_type"], "call.machine.detection.ended");
    assert_eq!(events[0]["payload"]["result"], "human");
    // The configured 500 ms pause, not the default 900 ms, decided it.
    let at = events[0]["payload"]["decision_time_millis"].as_u64().unwrap();
    assert!((880..=960).contains(&at), "decided at {at} ms");
    assert!(amd_events(&state, &disabled, 1, Duration::from_millis(300)).await.is_empty());
}

/// A stand-in recognizer: hears `Ok(text)` in every greeting, or fails as a
/// full queue does, after the given time.
struct Hears(Result<&'static str, ()>, Duration);

impl bond_speech::SpeechToText for Hears {
    fn name(&self) -> &'static str {
        "hears"
    }
    fn transcribe(
        &self,
        _: Vec<i16>,
        _: &str,
    ) -> futures_util::future::BoxFuture<'static, Result<bond_speech::Transcript, bond_speech::SttError>>
    {
        let answer = match self.0 {
            Ok(text) => Ok(bond_speech::Transcript { text: text.into(), confidence: 0.9, engine: "hears" }),
            Err(()) => Err(bond_speech::SttError::Busy("hears")),
        };
        let after = self.1;
        Box::pin(async move {
            tokio::time::sleep(after).await;
            answer
        })
    }
}

/// A state whose speech-to-text is `hears`, a connection, and a short greeting
/// that timing alone takes for a person's (1.5 s of speech, then quiet).
async fn with_recognizer(dir: &std::path::Path, hears: Hears) -> (AppState, String) {
    let url = format!("sqlite://{}?mode=rwc", dir.join("bond.db").display());
    let engines = bond_speech::SpeechEngines {
        stt: std::sync::Arc::new(bond_speech::SttChain::new(vec![Box::new(hears)])),
        mt: std::sync::Arc::new(bond_speech::MtChain::new(Vec::new())),
        tts: std::sync::Arc::new(bond_speech::TtsChain::new(Vec::new())),
        llm: std::sync::Arc::default(),
    };
    // The engine events are followed with these engines from the start.
    let config = crate::common::config(dir, &url, &[]);
    let state = bond::serve::build_state_with_speech(&config, Ok(engines)).await.expect("state");
    write_wav(dir, "short.wav", &[vec![0; 2_400], talk(1_500, 4), vec![0; 40_000]]);
    let body = json!({ "application_name": "amd", "webhook_event_url": "http://127.0.0.1:9/hooks" });
    let (_, _, json) =
        call(&state, "POST", "/v2/call_control_applications", Some(ADMIN_KEY), Some(body)).await;
    (state, json["data"]["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_short_greeting_saying_leave_a_message_in_the_callees_language_is_a_machine() {
    let dir = tempfile::tempdir().unwrap();
    let (state, conn) =
        with_recognizer(dir.path(), Hears(Ok("Hola, soy Ana. Deje su mensaje."), Duration::ZERO)).await;
    let amd = json!({ "answering_machine_detection": "premium",
        "answering_machine_detection_config": { "language": "es-MX" } });
    let id = dial(&state, &conn, "short.wav", Some(amd)).await;
    let events = amd_events(&state, &id, 1, Duration::from_secs(10)).await;
    assert_eq!(events[0]["payload"]["result"], "machine", "{events:?}");
    // Speech ends at 1,800 ms; asked 200 ms into the pause, before timing's 900 ms.
    let at = events[0]["payload"]["decision_time_millis"].as_u64().unwrap();
    assert!((2_000..2_700).contains(&at), "decided at {at} ms");
}

#[tokio::test]
async fn a_greeting_whose_words_are_a_persons_or_cannot_be_heard_in_time_is_left_to_timing() {
    let stalls = Hears(Ok("Please leave a message."), Duration::from_secs(30));
    for hears in
        [Hears(Ok("Hello, this is Sam speaking."), Duration::ZERO), Hears(Err(()), Duration::ZERO), stalls]
    {
        let dir = tempfile::tempdir().unwrap();
        let (state, conn) = with_recognizer(dir.path(), hears).await;
        let id =
            dial(&state, &conn, "short.wav", Some(json!({ "answering_machine_detection": "detect" }))).await;
        let events = amd_events(&state, &id, 1, Duration::from_secs(10)).await;
        assert_eq!(events[0]["payload"]["result"], "human", "{events:?}");
        let at = events[0]["payload"]["decision_time_millis"].as_u64().unwrap();
        assert!((2_650..=2_800).contains(&at), "decided at {at} ms");
    }
}

#[tokio::test]
async fn a_language_bond_has_no_phrases_for_is_refused_with_a_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let (state, conn) = with_recognizer(dir.path(), Hears(Ok(""), Duration::ZERO)).await;
    let body = json!({ "connection_id": conn, "to": "loop:play?file=short.wav", "from": "+13125550100",
        "answering_machine_detection": "detect", "answering_machine_detection_config": { "language": "de" } });
    let (status, _, json) = call(&state, "POST", "/v2/calls", Some(ADMIN_KEY), Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert_eq!(json["errors"][0]["source"]["pointer"], "/answering_machine_detection_config/language");
}
