//! Translated calls beside a load run (`bridge-load --translate N`): a
//! `loop:play` customer speaking English sentences (espeak-ng) every few seconds,
//! or Spanish ones (`--translate-from es`), bridged to a `loop:silence` agent,
//! with `translation_start` (`voice_to_voice`) into the other language on the
//! customer; then the latency of each hop from the `call.translation` webhooks.

use std::path::Path;
use std::process::Command;

use bond_codecs::resample::resample_clip;
use bond_codecs::SampleRate;
use serde_json::json;

use crate::bond_process::BondProcess;
use crate::load::percentile;

/// The language the customers speak; they are translated into the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spoken {
    English,
    Spanish,
}

impl Spoken {
    /// `en` or `es`, as `--translate-from` takes it.
    pub fn parse(code: &str) -> Result<Self, String> {
        match code {
            "en" => Ok(Self::English),
            "es" => Ok(Self::Spanish),
            _ => Err(format!("--translate-from takes en or es, not {code}")),
        }
    }

    /// The espeak-ng voice, the sentences, and `translate_from` / `translate_to`.
    fn voice(self) -> (&'static str, &'static [&'static str], [&'static str; 2]) {
        match self {
            Self::English => ("en-us", ENGLISH, ["en", "es"]),
            Self::Spanish => ("es", SPANISH, ["es", "en"]),
        }
    }
}

const ENGLISH: &[&str] = &[
    "Hello, thank you for calling.",
    "I would like to pay my bill.",
    "My account number is four five six.",
    "Can you help me with my order?",
];
const SPANISH: &[&str] = &[
    "Hola, gracias por llamar.",
    "Quiero pagar mi factura.",
    "Mi número de cuenta es cuatro cinco seis.",
    "¿Puede ayudarme con mi pedido?",
];
/// The file every customer plays, in Bond's data directory.
pub const FILE: &str = "translated-customer.wav";

/// Write `FILE` into `dir`: the sentences in turn, 2 s apart, for at least `seconds`.
pub fn write_customer(dir: &Path, seconds: u64, language: Spoken) -> Result<(), String> {
    let (voice, sentences, _) = language.voice();
    let mut spoken = Vec::new();
    for sentence in sentences {
        let wav = dir.join("sentence.wav");
        let status =
            Command::new("espeak-ng").arg("-v").arg(voice).arg("-w").arg(&wav).arg(sentence).status();
        if !status.is_ok_and(|s| s.success()) {
            return Err("espeak-ng failed (Debian package espeak-ng)".into());
        }
        let mut reader = hound::WavReader::open(&wav).map_err(|e| e.to_string())?;
        let rate = reader.spec().sample_rate;
        let samples: Vec<i16> =
            reader.samples::<i16>().collect::<Result<_, _>>().map_err(|e| e.to_string())?;
        spoken.push(resample_clip(&samples, rate, SampleRate::Hz8000).map_err(|e| e.to_string())?);
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = hound::WavWriter::create(dir.join(FILE), spec).map_err(|e| e.to_string())?;
    let pause = vec![0i16; 16_000];
    let mut written = 0u64;
    for sentence in spoken.iter().cycle() {
        for &s in pause.iter().chain(sentence) {
            out.write_sample(s).map_err(|e| e.to_string())?;
        }
        written += (pause.len() + sentence.len()) as u64;
        if written >= (seconds + 10) * 8_000 {
            break;
        }
    }
    out.finalize().map_err(|e| e.to_string())
}

/// Dial `count` customer/agent pairs, bridge them and translate each customer.
pub async fn start(bond: &BondProcess, count: usize, language: Spoken) -> Result<(), String> {
    let (_, _, [from, to]) = language.voice();
    let connection = bond.connection(json!({})).await?;
    for _ in 0..count {
        let mut ids = Vec::new();
        for to in ["loop:silence".to_owned(), format!("loop:play?file={FILE}")] {
            let call = bond
                .post("/v2/calls", json!({ "connection_id": connection, "to": to, "from": "+15550000001" }))
                .await?;
            ids.push(call["data"]["call_control_id"].as_str().ok_or(format!("dial: {call}"))?.to_owned());
        }
        let (agent, customer) = (&ids[0], &ids[1]);
        bond.post(
            &format!("/v2/calls/{customer}/actions/bridge"),
            json!({ "call_control_id_to_bridge_with": agent }),
        )
        .await?;
        let body = json!({ "translate_from": from, "translate_to": to, "voice_to_voice": true });
        let answer = bond.post(&format!("/v2/calls/{customer}/actions/translation_start"), body).await?;
        if answer.get("errors").is_some() {
            return Err(format!("translation_start: {answer}"));
        }
    }
    Ok(())
}

/// Each hop's latency (ms, from the end of the speech) over every `call.translation` so far.
pub fn report(bond: &BondProcess) -> String {
    let hops = ["endpointing", "recognizer", "transcription", "translation", "total", "overhead"];
    let mut values: Vec<Vec<u64>> = vec![Vec::new(); hops.len()];
    for (kind, payload) in bond.inbox.all() {
        if kind == "call.translation" {
            let latency = &payload["translation_data"]["latency_ms"];
            for (hop, list) in hops.iter().zip(&mut values) {
                list.push(latency[*hop].as_u64().unwrap_or(0));
            }
        }
    }
    let mut out = format!("translated segments={} latency ms p50/p90/max:", values[0].len());
    for (hop, list) in hops.iter().zip(&mut values) {
        list.sort_unstable();
        let max = list.last().copied().unwrap_or(0);
        out.push_str(&format!(" {hop} {}/{}/{max};", percentile(list, 50.0), percentile(list, 90.0)));
    }
    out
}
