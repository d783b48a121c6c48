//! `bond.toml` plus `BOND_*` environment overrides.
//!
//! Loading order: built-in defaults, then the file (if given), then the
//! environment. Every problem is reported as one line naming the key.

pub use bond_calls::recording_storage::StorageConfig;
pub use bond_sip::SipConfig;
mod assistant;
mod browsers;
mod cluster;
mod env;
pub use assistant::AssistantConfig;
pub use browsers::{TurnConfig, WebRtcConfig};
pub use cluster::ClusterConfig;
pub use env::ENV_OVERRIDES;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use bond_codecs::Codec;
use serde::{Deserialize, Serialize};

/// A configuration problem: which key, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config error: {key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { key: key.into(), problem: problem.into() }
    }
}

/// More engines than this is a typo, not a machine.
const MAX_ENGINE_SHARDS: usize = 256;

/// Bond's whole configuration. See README "Configuration" for each key.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; empty means `sqlite://<data_dir>/bond.db`.
    pub database_url: String,
    /// Empty means `<data_dir>/recordings`.
    pub recordings_dir: PathBuf,
    /// How long a recording's signed download link works.
    pub recording_link_secs: i64,
    pub shutdown_grace_secs: u64,
    /// On an empty database, create the first organization with this admin key.
    #[serde(skip_serializing)]
    pub bootstrap_api_key: Option<String>,
    /// Certificate authorities (PEM) Bond trusts for its own TLS connections
    /// (`https://` and `wss://` requests, speech providers, SIP trunks over TLS), besides the
    /// public roots; empty: the public roots only.
    pub trusted_ca: PathBuf,
    pub rate_limit: RateLimitConfig,
    pub webhooks: WebhooksConfig,
    pub http: HttpConfig,
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub webrtc: WebRtcConfig,
    pub turn: TurnConfig,
    pub speech: SpeechConfig,
    pub assistant: AssistantConfig,
    pub storage: StorageConfig,
    pub cluster: ClusterConfig,
    pub log: LogConfig,
}

/// The speech engines (transcription and translation).
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpeechConfig {
    /// whisper.cpp's ggml model; empty means `<data_dir>/models/ggml-tiny.en-q8_0.bin` (made by scripts/whisper-model).
    pub whisper_model: PathBuf,
    /// whisper.cpp's multilingual model, for every language but English; empty means
    /// `<data_dir>/models/ggml-base-q8_0.bin`. Missing: the English model hears every language.
    pub whisper_multilingual_model: PathBuf,
    /// Cores whisper.cpp computes on, all its workers together.
    pub whisper_threads: usize,
    /// Utterances whisper.cpp transcribes at once (each on a share of the cores).
    pub whisper_workers: usize,
    /// AssemblyAI's streaming v3, tried before whisper (after Deepgram) when a key is set.
    #[serde(skip_serializing)]
    pub assemblyai_api_key: String,
    pub assemblyai_url: String,
    /// Deepgram's live API, tried before whisper when a key is set.
    #[serde(skip_serializing)]
    pub deepgram_api_key: String,
    pub deepgram_url: String,
    pub deepgram_model: String,
    /// An OpenAI-compatible chat-completions API to translate with first
    /// (Apertium takes over when it fails); empty: Apertium only.
    pub openai_base_url: String,
    #[serde(skip_serializing)]
    pub openai_api_key: String,
    pub openai_model: String,
    /// An ElevenLabs-compatible API to speak translations with first (espeak-ng takes over when it fails).
    #[serde(skip_serializing)]
    pub elevenlabs_api_key: String,
    pub elevenlabs_url: String,
    pub elevenlabs_voice_id: String,
    pub elevenlabs_model: String,
}

/// Like the derived one, with the providers' keys left out (`bond check-config` prints it).
impl std::fmt::Debug for SpeechConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |key: &str| if key.is_empty() { "(unset)" } else { "(set)" };
        f.debug_struct("SpeechConfig")
            .field("whisper_model", &self.whisper_model)
            .field("whisper_multilingual_model", &self.whisper_multilingual_model)
            .field("whisper_threads", &self.whisper_threads)
            .field("whisper_workers", &self.whisper_workers)
            .field("assemblyai_api_key", &secret(&self.assemblyai_api_key))
            .field("assemblyai_url", &self.assemblyai_url)
            .field("deepgram_api_key", &secret(&self.deepgram_api_key))
            .field("deepgram_url", &self.deepgram_url)
            .field("deepgram_model", &self.deepgram_model)
            .field("openai_base_url", &self.openai_base_url)
            .field("openai_api_key", &secret(&self.openai_api_key))
            .field("openai_model", &self.openai_model)
            .field("elevenlabs_api_key", &secret(&self.elevenlabs_api_key))
            .field("elevenlabs_url", &self.elevenlabs_url)
            .field("elevenlabs_voice_id", &self.elevenlabs_voice_id)
            .field("elevenlabs_model", &self.elevenlabs_model)
            .finish()
    }
}

impl Default for SpeechConfig {
    fn default() -> Self {
        Self {
            whisper_model: PathBuf::new(),
            whisper_multilingual_model: PathBuf::new(),
            whisper_threads: 2,
            whisper_workers: 2,
            assemblyai_api_key: String::new(),
            assemblyai_url: "wss://streaming.assemblyai.com/v3/ws".to_owned(),
            deepgram_api_key: String::new(),
            deepgram_url: "wss://api.deepgram.com/v1/listen".to_owned(),
            deepgram_model: "nova-2".to_owned(),
            openai_base_url: String::new(),
            openai_api_key: String::new(),
            openai_model: "gpt-4o-mini".to_owned(),
            elevenlabs_api_key: String::new(),
            elevenlabs_url: "https://api.elevenlabs.io".to_owned(),
            elevenlabs_voice_id: "21m00Tcm4TlvDq8ikWAM".to_owned(),
            elevenlabs_model: "eleven_multilingual_v2".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    /// Base URL clients reach Bond at, for links Bond hands out; empty means
    /// `http://<listen>`, or `https://<listen>` with TLS.
    pub public_url: String,
    /// Serve HTTPS and WSS with this certificate chain (PEM); empty: plain HTTP.
    pub tls_cert: PathBuf,
    /// The private key of `tls_cert` (PEM).
    pub tls_key: PathBuf,
}

impl HttpConfig {
    /// Whether Bond serves HTTPS.
    pub fn tls(&self) -> bool {
        !self.tls_cert.as_os_str().is_empty()
    }
}

/// Webhook retry timing: the delay doubles from `retry_initial_ms` up to `retry_max_ms`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self { retry_initial_ms: 1_000, retry_max_ms: 60_000 }
    }
}

/// Requests per API key (or per address without a key) to `/v2`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { per_second: 50, burst: 100 }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtpConfig {
    pub bind_ip: IpAddr,
    /// Address written into SDP when Bond sits behind 1:1 NAT.
    pub public_ip: Option<IpAddr>,
    pub port_min: u16,
    pub port_max: u16,
    /// Opus encoder complexity, 0 (cheapest) to 10; BENCHMARKS.md has the cost of each.
    pub opus_complexity: i32,
    /// Media engines (one task each) legs are spread over; 0: one per core.
    pub engine_shards: usize,
    /// Bridged SIP legs with the same codec (and RFC 4733 on both) forward packets
    /// without decoding while nothing needs their audio.
    pub passthrough: bool,
    /// SIP legs send and read RTCP reports on their RTP port + 1.
    pub rtcp: bool,
    /// Each engine shard's driver on a thread of its own (see BENCHMARKS.md).
    pub driver_threads: bool,
    /// After a SIP leg latches onto its peer, drop RTP and RTCP from anyone else.
    pub strict_source: bool,
    /// Relay passthrough bridges of plain RTP legs in the kernel (a tc eBPF
    /// program on every interface). Off by default: it needs root (CAP_BPF and
    /// CAP_NET_ADMIN) and puts a program on the host's interfaces.
    pub kernel_relay: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter: `info`, `bond=debug,sqlx=warn`, ...
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            database_url: String::new(),
            recordings_dir: PathBuf::new(),
            recording_link_secs: 3600,
            shutdown_grace_secs: 10,
            bootstrap_api_key: None,
            trusted_ca: PathBuf::new(),
            rate_limit: RateLimitConfig::default(),
            webhooks: WebhooksConfig::default(),
            http: HttpConfig::default(),
            sip: SipConfig::default(),
            rtp: RtpConfig::default(),
            webrtc: WebRtcConfig::default(),
            turn: TurnConfig::default(),
            speech: SpeechConfig::default(),
            assistant: AssistantConfig::default(),
            storage: StorageConfig::default(),
            cluster: ClusterConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1024 * 1024,
            public_url: String::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
        }
    }
}

impl Default for RtpConfig {
    fn default() -> Self {
        Self {
            bind_ip: IpAddr::from([0, 0, 0, 0]),
            public_ip: None,
            port_min: 20_000,
            port_max: 30_000,
            opus_complexity: 5,
            engine_shards: 0,
            passthrough: true,
            rtcp: true,
            driver_threads: true,
            strict_source: true,
            kernel_relay: false,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Text, level: "info".to_owned() }
    }
}

impl Config {
    /// The effective settings as TOML that `--config` takes back. Secrets (the
    /// bootstrap key, S3 and speech-provider keys) are left out; a comment
    /// says which are set, so they can come from the environment again.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        let secrets = [
            ("bootstrap_api_key", self.bootstrap_api_key.is_some()),
            ("storage.s3_secret_access_key", !self.storage.s3_secret_access_key.is_empty()),
            ("speech.assemblyai_api_key", !self.speech.assemblyai_api_key.is_empty()),
            ("speech.deepgram_api_key", !self.speech.deepgram_api_key.is_empty()),
            ("speech.openai_api_key", !self.speech.openai_api_key.is_empty()),
            ("speech.elevenlabs_api_key", !self.speech.elevenlabs_api_key.is_empty()),
            ("turn.secret", !self.turn.secret.is_empty()),
        ]
        .into_iter()
        .chain(self.assistant.secrets());
        let set: Vec<&str> = secrets.filter(|(_, set)| *set).map(|(key, _)| key).collect();
        let mut text = String::from("# Bond's effective configuration (bond check-config).\n");
        if !set.is_empty() {
            text.push_str(&format!("# Set but not printed (secrets): {}.\n", set.join(", ")));
        }
        text.push_str(&toml::to_string(self)?);
        Ok(text)
    }

    /// Defaults, then `path` (if any), then the environment `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new("--config", format!("cannot read {}: {e}", path.display()))
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::new(path.display().to_string(), one_line(&e)))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            if let Some((_, key)) = ENV_OVERRIDES.iter().find(|(var, _)| *var == name) {
                set_key(&mut table, key, &value);
            }
        }
        let config: Config = Config::deserialize(toml::Value::Table(table)).map_err(|e| from_serde(&e))?;
        config.validate()?;
        Ok(config.resolved())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.rtp.port_min == 0 || self.rtp.port_min > self.rtp.port_max {
            return Err(ConfigError::new(
                "rtp.port_min",
                format!("must be between 1 and rtp.port_max ({})", self.rtp.port_max),
            ));
        }
        if self.sip.tcp_idle_timeout_secs == 0 {
            return Err(ConfigError::new("sip.tcp_idle_timeout_secs", "must be at least 1"));
        }
        if self.sip.tcp_max_connections_per_address == 0 || self.sip.tcp_max_connections == Some(0) {
            return Err(ConfigError::new("sip.tcp_max_connections", "SIP-TCP needs room for one connection"));
        }
        if self.sip.ring_timeout_secs == 0 {
            return Err(ConfigError::new(
                "sip.ring_timeout_secs",
                "must be at least 1 (an unanswered call must end)",
            ));
        }
        if self.rtp.port_max - self.rtp.port_min < 2 {
            return Err(ConfigError::new("rtp.port_max", "the RTP range must hold at least two ports"));
        }
        for (key, url) in [
            ("speech.deepgram_url", &self.speech.deepgram_url),
            ("speech.assemblyai_url", &self.speech.assemblyai_url),
        ] {
            if !url.starts_with("ws://") && !url.starts_with("wss://") {
                return Err(ConfigError::new(key, "must start with ws:// or wss://"));
            }
        }
        for (key, url) in [
            ("speech.openai_base_url", &self.speech.openai_base_url),
            ("speech.elevenlabs_url", &self.speech.elevenlabs_url),
        ] {
            if !url.is_empty() && !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(ConfigError::new(key, "must start with http:// or https://"));
            }
        }
        self.assistant.validate()?;
        self.cluster.validate()?;
        if !(1..=16).contains(&self.speech.whisper_threads) {
            return Err(ConfigError::new("speech.whisper_threads", "must be 1 to 16"));
        }
        if !(1..=16).contains(&self.speech.whisper_workers) {
            return Err(ConfigError::new("speech.whisper_workers", "must be 1 to 16"));
        }
        if !(0..=10).contains(&self.rtp.opus_complexity) {
            return Err(ConfigError::new("rtp.opus_complexity", "must be 0 (cheapest) to 10 (best)"));
        }
        if self.webrtc.codecs.is_empty() {
            return Err(ConfigError::new("webrtc.codecs", "must name at least one codec"));
        }
        if let Some(name) = self.webrtc.codecs.iter().find(|n| Codec::from_encoding_name(n).is_none()) {
            return Err(ConfigError::new(
                "webrtc.codecs",
                format!("'{name}' is not one of opus, G722, PCMU, PCMA"),
            ));
        }
        if self.rtp.engine_shards > MAX_ENGINE_SHARDS {
            return Err(ConfigError::new(
                "rtp.engine_shards",
                format!("must be 0 (one per core) to {MAX_ENGINE_SHARDS}"),
            ));
        }
        let url = &self.database_url;
        if !url.is_empty()
            && !url.starts_with("sqlite:")
            && !url.starts_with("postgres://")
            && !url.starts_with("postgresql://")
        {
            return Err(ConfigError::new("database_url", "must start with sqlite: or postgres://"));
        }
        if self.recording_link_secs <= 0 {
            return Err(ConfigError::new("recording_link_secs", "must be greater than zero"));
        }
        if !self.http.public_url.is_empty()
            && !self.http.public_url.starts_with("http://")
            && !self.http.public_url.starts_with("https://")
        {
            return Err(ConfigError::new("http.public_url", "must start with http:// or https://"));
        }
        if self.rate_limit.per_second == 0 || self.rate_limit.burst == 0 {
            return Err(ConfigError::new("rate_limit.per_second", "rate limits must be greater than zero"));
        }
        if self.webhooks.retry_initial_ms == 0 || self.webhooks.retry_max_ms < self.webhooks.retry_initial_ms
        {
            return Err(ConfigError::new(
                "webhooks.retry_max_ms",
                "must be at least webhooks.retry_initial_ms (> 0)",
            ));
        }
        if self.bootstrap_api_key.as_deref().is_some_and(|k| k.len() < 16) {
            return Err(ConfigError::new("bootstrap_api_key", "must be at least 16 characters"));
        }
        if self.http.tls_cert.as_os_str().is_empty() != self.http.tls_key.as_os_str().is_empty() {
            return Err(ConfigError::new("http.tls_key", "http.tls_cert and http.tls_key are set together"));
        }
        if self.sip.tls_cert.as_os_str().is_empty() != self.sip.tls_key.as_os_str().is_empty() {
            return Err(ConfigError::new("sip.tls_key", "sip.tls_cert and sip.tls_key are set together"));
        }
        if !self.turn.urls.is_empty() && self.turn.secret.is_empty() {
            return Err(ConfigError::new("turn.secret", "must be set with turn.urls"));
        }
        if let Some(url) = self.turn.urls.iter().find(|u| !u.starts_with("turn:") && !u.starts_with("turns:"))
        {
            return Err(ConfigError::new("turn.urls", format!("{url} must start with turn: or turns:")));
        }
        if self.turn.ttl_secs <= 0 {
            return Err(ConfigError::new("turn.ttl_secs", "must be greater than zero"));
        }
        if self.http.max_body_bytes == 0 {
            return Err(ConfigError::new("http.max_body_bytes", "must be greater than zero"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| ConfigError::new("log.level", format!("not a tracing filter: {e}")))?;
        Ok(())
    }

    /// Fill the keys whose defaults derive from `data_dir`.
    fn resolved(mut self) -> Self {
        if self.database_url.is_empty() {
            self.database_url = format!("sqlite://{}?mode=rwc", self.data_dir.join("bond.db").display());
        }
        if self.recordings_dir.as_os_str().is_empty() {
            self.recordings_dir = self.data_dir.join("recordings");
        }
        if self.speech.whisper_model.as_os_str().is_empty() {
            self.speech.whisper_model = self.data_dir.join("models").join("ggml-tiny.en-q8_0.bin");
        }
        if self.speech.whisper_multilingual_model.as_os_str().is_empty() {
            self.speech.whisper_multilingual_model = self.data_dir.join("models").join("ggml-base-q8_0.bin");
        }
        self
    }
}

/// Set `a.b.c` in `table`; the value is read as TOML (numbers, booleans) or else kept as a string.
fn set_key(table: &mut toml::Table, key: &str, raw: &str) {
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !v.is_table())
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    let mut current = table;
    for part in parts {
        let entry = current.entry(part).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = entry else { unreachable!("just made a table") };
        current = next;
    }
    // Strings that look like numbers are still strings where the key wants one (e.g. a password).
    current.insert(last.to_owned(), value);
}

fn from_serde(e: &toml::de::Error) -> ConfigError {
    let message = one_line(e);
    let unknown = message.split("unknown field `").nth(1).and_then(|rest| rest.split('`').next());
    // toml ends with "in `a.b`" when it knows where the problem sits.
    match (message.rsplit_once(" in `"), unknown) {
        (Some((problem, table)), Some(field)) => {
            ConfigError::new(format!("{}.{field}", table.trim_end_matches('`')), problem)
        }
        (Some((problem, key)), None) => ConfigError::new(key.trim_end_matches('`'), problem),
        (None, Some(field)) => ConfigError::new(field, &message),
        (None, None) => ConfigError::new("config", &message),
    }
}

fn one_line(e: &impl std::fmt::Display) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
