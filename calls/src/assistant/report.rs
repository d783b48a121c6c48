//! What one agent's conversation used and how fast it answered, kept as it
//! goes (the call's task writes, the hang-up path may read) and reported in
//! `call.conversation.ended`: Telnyx's fields, and Bond's own `bond_usage`
//! (audio seconds to speech-to-text, tokens in and out, characters to
//! text-to-speech) and `bond_latency_ms` (p50/p95/p99 of each stage of an
//! answer, from the end of the party's speech).

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bond_store::clock::monotonic;

use crate::payload::millis;
use serde_json::{json, Map, Value};

use super::conversation::{Latency, Message};
use super::AssistantStart;

#[derive(Debug)]
pub(crate) struct Report {
    pub conversation_id: String,
    assistant_id: String,
    started: Instant,
    pub history: Vec<Message>,
    latencies: Vec<Latency>,
    pub caller_turns: u32,
    pub interruptions: u32,
    /// Answers asked ahead of the turn's end (`Output::Prepare`): taken, and dropped.
    pub early_answers_used: u32,
    pub early_answers_dropped: u32,
    pub usage: Usage,
    /// The model that answered last.
    pub llm_model: String,
    ended: bool,
}

/// What usage costs, per unit, in one currency (the operator's rate table;
/// all zero: no cost is reported).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prices {
    pub currency: String,
    pub stt_per_minute: f64,
    pub llm_per_million_prompt_tokens: f64,
    pub llm_per_million_completion_tokens: f64,
    pub tts_per_million_characters: f64,
}

impl Prices {
    fn is_set(&self) -> bool {
        [
            self.stt_per_minute,
            self.llm_per_million_prompt_tokens,
            self.llm_per_million_completion_tokens,
            self.tts_per_million_characters,
        ]
        .iter()
        .any(|p| *p > 0.0)
    }

    /// `usage` priced: each part and the total, to a millionth.
    fn cost(&self, usage: &Usage) -> Value {
        let round = |x: f64| (x * 1e6).round() / 1e6;
        let stt = usage.stt_audio.as_secs_f64() / 60.0 * self.stt_per_minute;
        let prompt = usage.prompt_tokens as f64 / 1e6 * self.llm_per_million_prompt_tokens;
        let completion = usage.completion_tokens as f64 / 1e6 * self.llm_per_million_completion_tokens;
        let tts = usage.tts_characters as f64 / 1e6 * self.tts_per_million_characters;
        json!({
            "currency": self.currency,
            "stt": round(stt),
            "llm": round(prompt + completion),
            "tts": round(tts),
            "total": round(stt + prompt + completion + tts),
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub stt_audio: Duration,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub tts_characters: u64,
}

impl Usage {
    /// A model's token counts for one answer, added.
    pub fn add_tokens(&mut self, chat: bond_speech::chat::Usage) {
        self.prompt_tokens += chat.prompt_tokens;
        self.completion_tokens += chat.completion_tokens;
    }
}

impl Report {
    pub fn new(start: &AssistantStart) -> Self {
        Self {
            conversation_id: uuid::Uuid::new_v4().to_string(),
            assistant_id: start.assistant_id.clone(),
            started: monotonic(),
            history: Vec::new(),
            latencies: Vec::new(),
            caller_turns: 0,
            interruptions: 0,
            early_answers_used: 0,
            early_answers_dropped: 0,
            usage: Usage::default(),
            llm_model: start.model.clone().unwrap_or_default(),
            ended: false,
        }
    }

    pub fn answered(&mut self, latency: Latency) {
        if latency.first_audio.is_some() {
            self.latencies.push(latency);
        }
    }

    /// `call.conversation.ended`'s fields, once: `None` if it was already reported.
    pub fn end(&mut self, reason: &str, prices: &Prices) -> Option<Map<String, Value>> {
        if std::mem::replace(&mut self.ended, true) {
            return None;
        }
        // Each stage's percentiles over the answers, under the stage's own name.
        let names = Latency::default().stages().map(|(name, _)| name);
        let stages: Map<String, Value> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut ms: Vec<u64> =
                    self.latencies.iter().filter_map(|l| l.stages()[i].1).map(millis).collect();
                ms.sort_unstable();
                let ps = json!({ "p50": percentile(&ms, 50), "p95": percentile(&ms, 95), "p99": percentile(&ms, 99) });
                ((*name).to_owned(), ps)
            })
            .collect();
        let fields = json!({
            "assistant_id": self.assistant_id,
            "conversation_id": self.conversation_id,
            "duration_sec": self.started.elapsed().as_secs(),
            "llm_model": self.llm_model,
            "reason": reason,
            "message_history": history(&self.history),
            "bond_turns": {
                "caller": self.caller_turns,
                "answered": self.latencies.len(),
                "interrupted": self.interruptions,
                "early_answers": { "used": self.early_answers_used, "dropped": self.early_answers_dropped },
            },
            "bond_usage": {
                "stt_audio_seconds": (self.usage.stt_audio.as_secs_f64() * 10.0).round() / 10.0,
                "llm_prompt_tokens": self.usage.prompt_tokens,
                "llm_completion_tokens": self.usage.completion_tokens,
                "tts_characters": self.usage.tts_characters,
            },
            "bond_latency_ms": stages,
        });
        let Value::Object(mut fields) = fields else { return None };
        if prices.is_set() {
            fields.insert("bond_cost".into(), prices.cost(&self.usage));
        }
        Some(fields)
    }
}

/// Messages in OpenAI's and Telnyx's shape (`role`, `content`).
pub(super) use super::message::history;

/// What a call's agents used, added up (`bond_assistant_usage`): `earlier`,
/// the call's total so far, plus one ended conversation's `bond_usage` and
/// `bond_cost` (`end`'s fields).
pub(super) fn add_up(earlier: Option<&Value>, ended: &Map<String, Value>) -> Value {
    let mut total =
        earlier.filter(|t| t.is_object()).cloned().unwrap_or_else(|| json!({ "conversations": 0 }));
    total["conversations"] = json!(total["conversations"].as_u64().unwrap_or(0) + 1);
    for (from, to) in [("bond_usage", "usage"), ("bond_cost", "cost")] {
        let Some(Value::Object(part)) = ended.get(from) else { continue };
        if !total[to].is_object() {
            total[to] = json!({});
        }
        for (key, value) in part {
            let sum = match (&total[to][key], value) {
                (a, b) if a.is_u64() && b.is_u64() => {
                    json!(a.as_u64().unwrap_or(0) + b.as_u64().unwrap_or(0))
                }
                (a, b) if a.is_number() && b.is_number() => {
                    let sum = a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0);
                    json!((sum * 1e6).round() / 1e6)
                }
                // The first of a kind, or text (the currency): as the conversation gave it.
                _ => value.clone(),
            };
            total[to][key] = sum;
        }
    }
    total
}

/// The nearest-rank percentile of sorted values; `None` for none.
fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

pub(crate) fn lock(report: &Mutex<Report>) -> MutexGuard<'_, Report> {
    // Plain counters and a list: nothing a panicking holder could leave half-done.
    report.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calls_agents_usage_and_cost_add_up_over_its_conversations() {
        let ended = |tokens: u64, seconds: f64, total: f64| {
            let fields = json!({
                "bond_usage": { "stt_audio_seconds": seconds, "llm_prompt_tokens": tokens, "tts_characters": 10 },
                "bond_cost": { "currency": "USD", "total": total },
            });
            fields.as_object().cloned().unwrap()
        };
        let first = add_up(None, &ended(100, 1.5, 0.000_2));
        assert_eq!(first["conversations"], 1);
        let both = add_up(Some(&first), &ended(50, 2.25, 0.000_15));
        assert_eq!(both["conversations"], 2);
        assert_eq!(both["usage"]["llm_prompt_tokens"], 150);
        assert_eq!(both["usage"]["stt_audio_seconds"], 3.75);
        assert_eq!(both["cost"], json!({ "currency": "USD", "total": 0.000_35 }));
        // No rate table: no cost, and the usage still adds up.
        let unpriced =
            add_up(None, &Map::from_iter([("bond_usage".to_owned(), json!({ "tts_characters": 3 }))]));
        assert_eq!(unpriced, json!({ "conversations": 1, "usage": { "tts_characters": 3 } }));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let ms: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&ms, 50), Some(50));
        assert_eq!(percentile(&ms, 99), Some(99));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn usage_is_priced_per_unit_from_the_rate_table() {
        let prices = Prices {
            currency: "USD".into(),
            stt_per_minute: 0.006,
            llm_per_million_prompt_tokens: 0.15,
            llm_per_million_completion_tokens: 0.6,
            tts_per_million_characters: 15.0,
        };
        let usage = Usage {
            stt_audio: Duration::from_secs(90),
            prompt_tokens: 2_000,
            completion_tokens: 500,
            tts_characters: 1_000,
        };
        let cost = prices.cost(&usage);
        assert_eq!(cost["stt"], json!(0.009));
        assert_eq!(cost["llm"], json!(0.0006));
        assert_eq!(cost["tts"], json!(0.015));
        assert_eq!(cost["total"], json!(0.0246));
        assert!(!Prices::default().is_set(), "no table: no cost");
    }
}
