//! `bond serve`: start everything, run until SIGINT/SIGTERM, stop in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bond_codecs::opus_codec::OpusConfig;
use bond_media_engine::runtime::{self, EngineHandle, PortRange, RuntimeConfig, WebRtcPort};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use bond_agents::turn::TurnServers;
use bond_calls::recording_storage::RecordingStorage;
use bond_calls::{CallFiles, CallService, RecordingLinks};
use bond_control_api::http::app;
use bond_control_api::http::forward::Forwarder;
use bond_control_api::http::guard::RateLimiter;
use bond_control_api::http::listener::TlsAcceptor;
use bond_control_api::http::shared_limit::SharedLimit;
use bond_control_api::revocation::Revocations;
use bond_control_api::state::{prometheus, AppState};
use bond_speech::assemblyai::AssemblyAi;
use bond_speech::chat::{ChatChain, ChatModel};
use bond_speech::deepgram::Deepgram;
use bond_speech::elevenlabs::ElevenLabs;
use bond_speech::mt::{Apertium, MtChain, Translator};
use bond_speech::openai::ChatTranslator;
use bond_speech::tts::Espeak;
use bond_speech::{SpeechEngines, SpeechToText, SttChain, TextToSpeech, TtsChain};
use bond_store::db::Database;
use bond_store::webhooks::{worker, OrgSigners, WebhookNotifier, WebhookSigner};
use bond_store::Store;

/// Why `bond serve` could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Database(#[from] bond_store::db::DbError),
    #[error("cannot create {path}: {source}")]
    Directory { path: String, source: std::io::Error },
    #[error("cannot keep this node's name in {path} (or set cluster.node_id): {source}")]
    NodeId { path: String, source: std::io::Error },
    #[error("cannot listen on {addr} ({key}): {source}{hint}")]
    Listen { addr: SocketAddr, key: &'static str, source: std::io::Error, hint: String },
    #[error(transparent)]
    Sip(#[from] bond_sip::SipStartError),
    #[error("HTTP server failed: {0}")]
    Http(std::io::Error),
    #[error("recording storage: {0}")]
    Storage(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0}")]
    Cluster(String),
    #[error("trusted_ca: {0}")]
    Trust(#[from] bond_store::trust::TrustError),
}

impl ServeError {
    /// `addr` (the setting `key`) could not be bound; a port taken that an
    /// outgoing connection may hold says so.
    fn listen(addr: SocketAddr, key: &'static str, source: std::io::Error) -> Self {
        let hint = match source.kind() {
            std::io::ErrorKind::AddrInUse => crate::outgoing_ports::in_use_hint(addr.port()),
            _ => String::new(),
        };
        Self::Listen { addr, key, source, hint }
    }
}

/// A started Bond: where it listens and how to stop it.
#[derive(Debug)]
pub struct Running {
    pub http_addr: SocketAddr,
    pub state: AppState,
    server: tokio::task::JoinHandle<Result<(), std::io::Error>>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    webhooks: tokio::task::JoinHandle<()>,
    membership: tokio::task::JoinHandle<()>,
    /// Stops the webhook worker and the node's membership.
    stop_webhooks: watch::Sender<bool>,
    /// `None` on a control node (`cluster.role`).
    pub sip: Option<std::sync::Arc<bond_sip::SipStack>>,
    grace: Duration,
}

/// Everything but the HTTP listener: database, signing key, engine, call service.
pub async fn build_state(config: &Config) -> Result<AppState, ServeError> {
    build_state_with_speech(config, speech_engines(&config.speech, &config.assistant)).await
}

/// As [`build_state`], with these speech engines instead of the configured ones
/// (tests stand in for a recognizer with them).
pub async fn build_state_with_speech(
    config: &Config,
    speech: Result<SpeechEngines, String>,
) -> Result<AppState, ServeError> {
    for dir in [&config.data_dir, &config.recordings_dir] {
        std::fs::create_dir_all(dir)
            .map_err(|source| ServeError::Directory { path: dir.display().to_string(), source })?;
    }
    if !config.trusted_ca.as_os_str().is_empty() {
        bond_store::trust::trust_file(&config.trusted_ca)?;
    }
    let db = Database::connect(&config.database_url).await?;
    let instance_id =
        db.instance_id(&uuid::Uuid::new_v4().to_string(), &bond_store::clock::rfc3339_now()).await?;
    let node_id = node_id(config)?;
    let store = Store::new(db).await?.for_node(&node_id);
    if let Some(key) = &config.bootstrap_api_key {
        if let Some(org) = store.bootstrap(key).await? {
            tracing::info!(organization = %org.id, "bootstrap: created the first organization and its admin key");
        }
    }
    let signer = WebhookSigner::load_or_create(store.db()).await?;
    let engine = start_engine(config)?;
    let notifier = WebhookNotifier::default();
    let files = CallFiles {
        data_dir: config.data_dir.clone(),
        recordings_dir: config.recordings_dir.clone(),
        links: RecordingLinks::new(
            recording_link_secret(&store).await?,
            &public_url(config),
            config.recording_link_secs,
        ),
        public_url: public_url(config),
        storage: None,
    };
    let storage = RecordingStorage::from_config(&config.storage).map_err(ServeError::Storage)?;
    let forwarder = match config.cluster.nats_url.as_str() {
        "" => None,
        url => Some(Forwarder::connect(url, &instance_id, store.clone()).await.map_err(ServeError::Cluster)?),
    };
    let mut calls = CallService::new(store.clone(), engine.clone(), notifier.clone(), files)
        .with_speech(speech)
        .with_assistant_prices(config.assistant.prices())
        .with_assistant_early_transcripts(config.assistant.early_look())
        .with_assistant_early_answers(config.assistant.early_answers);
    if let Some(forwarder) = &forwarder {
        calls = calls.with_peers(Arc::new(forwarder.clone()), trunk_ip(config));
    }
    let repaired = calls.repair_recordings().await?;
    let calls = calls.with_recording_storage(storage, Duration::from_secs(1));
    if repaired > 0 {
        tracing::warn!(recordings = repaired, "repaired recordings cut short by the previous run");
    }
    let orphans = calls.end_orphaned_calls().await?;
    if orphans > 0 {
        tracing::warn!(calls = orphans, "ended calls left alive by the previous run");
    }
    tokio::spawn(calls.clone().run_engine_events());
    tokio::spawn(calls.clone().run_time_limits());
    let shared_limit = match config.cluster.redis_url.as_str() {
        "" => None,
        url => Some(
            SharedLimit::new(url, &instance_id, config.rate_limit.per_second, config.rate_limit.burst)
                .map_err(ServeError::Cluster)?,
        ),
    };
    Ok(AppState {
        forwarder,
        shared_limit,
        placement: Default::default(),
        role: config.cluster.role,
        signers: OrgSigners::new(store.clone(), signer.clone()),
        store,
        engine,
        calls,
        signer,
        notifier,
        rate_limiter: RateLimiter::new(config.rate_limit.per_second, config.rate_limit.burst),
        revocations: Revocations::default(),
        prometheus: prometheus(),
        instance_id,
        max_body_bytes: config.http.max_body_bytes,
        public_url: config.http.public_url.clone(),
        turn: TurnServers::new(config.turn.urls.clone(), config.turn.secret.clone(), config.turn.ttl_secs),
    })
}

/// The address other nodes send this node's trunk legs RTP to: `cluster.media_ip`,
/// else `rtp.bind_ip`, else (Bond listening on every address) the host's own.
fn trunk_ip(config: &Config) -> std::net::IpAddr {
    let bind_ip = Some(config.rtp.bind_ip).filter(|ip| !ip.is_unspecified());
    config.cluster.media_ip.or(bind_ip).unwrap_or_else(bond_sip::default_route_ip)
}

/// whisper.cpp, when Bond is built with it (the `whisper` feature, on by default;
/// the fuzz targets build without it, to skip compiling whisper.cpp).
#[cfg(feature = "whisper")]
fn embedded_recognizer(config: &crate::config::SpeechConfig) -> Result<Box<dyn SpeechToText>, String> {
    let multilingual = Some(config.whisper_multilingual_model.as_path());
    let (threads, workers) = (config.whisper_threads, config.whisper_workers);
    bond_speech::whisper::Whisper::new(&config.whisper_model, multilingual, threads, workers)
        .map(|w| Box::new(w) as Box<dyn SpeechToText>)
}

#[cfg(not(feature = "whisper"))]
fn embedded_recognizer(_: &crate::config::SpeechConfig) -> Result<Box<dyn SpeechToText>, String> {
    Err("no embedded recognizer: Bond was built without the whisper feature".into())
}

/// The speech engines: whisper.cpp for speech-to-text (after Deepgram, when a key
/// is set) and Apertium for translation (after an OpenAI-compatible endpoint, when set);
/// the voice agents' language models, if configured.
fn speech_engines(
    config: &crate::config::SpeechConfig,
    assistant: &crate::config::AssistantConfig,
) -> Result<SpeechEngines, String> {
    // The providers trust what Bond's other outgoing connections do (`trusted_ca`).
    let tls = bond_store::trust::client_config();
    let mut recognizers: Vec<Box<dyn SpeechToText>> = Vec::new();
    if !config.deepgram_api_key.is_empty() {
        let deepgram = Deepgram::new(&config.deepgram_url, &config.deepgram_api_key, &config.deepgram_model);
        recognizers.push(Box::new(deepgram.trusting(tls.clone())));
    }
    if !config.assemblyai_api_key.is_empty() {
        let assemblyai = AssemblyAi::new(&config.assemblyai_url, &config.assemblyai_api_key);
        recognizers.push(Box::new(assemblyai.trusting(tls.clone())));
    }
    match embedded_recognizer(config) {
        Ok(whisper) => recognizers.push(whisper),
        Err(e) if recognizers.is_empty() => {
            tracing::warn!(error = %e, "speech-to-text is off: no whisper model");
            return Err(format!("speech-to-text has {e}"));
        }
        Err(e) => tracing::warn!(error = %e, "no whisper model: the providers have no embedded fallback"),
    }
    let mut translators: Vec<Box<dyn Translator>> = Vec::new();
    if !config.openai_base_url.is_empty() {
        let chat = ChatTranslator::new(&config.openai_base_url, &config.openai_api_key, &config.openai_model);
        translators.push(Box::new(chat.trusting(tls.clone())));
    }
    translators.push(Box::new(Apertium));
    let mut voices: Vec<Box<dyn TextToSpeech>> = Vec::new();
    if !config.elevenlabs_api_key.is_empty() {
        let voice = ElevenLabs::new(
            &config.elevenlabs_url,
            &config.elevenlabs_api_key,
            &config.elevenlabs_voice_id,
            &config.elevenlabs_model,
        );
        voices.push(Box::new(voice.trusting(tls.clone())));
    }
    voices.push(Box::new(Espeak));
    let models = [
        ("primary", &assistant.llm_base_url, &assistant.llm_api_key, &assistant.llm_model),
        ("fallback", &assistant.fallback_base_url, &assistant.fallback_api_key, &assistant.fallback_model),
    ];
    let models = models
        .into_iter()
        .filter(|(_, url, _, _)| !url.is_empty())
        .map(|(name, url, key, model)| ChatModel::new(name, url, key, model).trusting(tls.clone()))
        .collect();
    let first_token = Duration::from_millis(assistant.first_token_timeout_ms);
    Ok(SpeechEngines {
        stt: Arc::new(SttChain::new(recognizers)),
        mt: Arc::new(MtChain::new(translators)),
        tts: Arc::new(TtsChain::new(voices)),
        llm: Arc::new(ChatChain::new(models, first_token)),
    })
}

/// Start the database, engine, webhook worker and HTTP server.
pub async fn start(config: &Config) -> Result<Running, ServeError> {
    // Two rustls providers are linked in (ring, and aws-lc-rs through str0m);
    // TLS set up without naming one (rsipstack's) takes this process default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let state = build_state(config).await?;
    let (stop_webhooks, stopped_webhooks) = watch::channel(false);
    let backoff = worker::Backoff {
        initial: Duration::from_millis(config.webhooks.retry_initial_ms),
        max: Duration::from_millis(config.webhooks.retry_max_ms),
    };
    let webhooks = tokio::spawn(worker::run(
        state.store.clone(),
        state.signers.clone(),
        state.notifier.clone(),
        backoff,
        stopped_webhooks.clone(),
    ));
    if let Some(forwarder) = state.forwarder.clone() {
        // Listening before the node registers: no request sent to it finds nobody.
        if let Some(requests) = forwarder.take_requests(&state).await {
            tokio::spawn(forwarder.clone().answer(requests, state.clone()));
        }
        tokio::spawn(forwarder.clone().follow_agent_registrations(state.clone()));
        tokio::spawn(forwarder.fan_out_segments(state.clone()));
    }
    let membership = tokio::spawn(state.calls.clone().run_membership(
        config.cluster.role,
        public_url(config),
        stopped_webhooks,
    ));
    // A control node carries no calls: no SIP listener.
    let sip = match config.cluster.role.carries_calls() {
        true => Some(
            bond_sip::start(
                &config.sip,
                config.rtp.public_ip.or(Some(config.rtp.bind_ip)),
                state.calls.engine().clone(),
                sip_tls(config)?,
                state.calls.sip().clone(),
                state.calls.clone(),
                state.shared_limit.clone().map(|s| Arc::new(s) as Arc<dyn bond_sip::digest::SharedFailures>),
            )
            .await?,
        ),
        false => None,
    };
    let listener = TcpListener::bind(config.http.listen)
        .await
        .map_err(|source| ServeError::listen(config.http.listen, "http.listen", source))?;
    let http_addr = listener.local_addr().map_err(ServeError::Http)?;
    crate::outgoing_ports::warn_if_exposed("http.listen", config.http.listen.port());
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = app(state.clone());
    let tls = tls_acceptor(config)?;
    let server = tokio::spawn(bond_control_api::http::listener::serve(listener, router, tls, async {
        let _ = stopped.await;
    }));
    tracing::info!(
        %http_addr,
        sip_udp = ?sip.as_ref().map(|s| s.udp_addr),
        sip_tcp = ?sip.as_ref().map(|s| s.tcp_addr),
        role = config.cluster.role.as_str(),
        database = ?state.store.db().backend(),
        node_id = %state.store.node_id(),
        instance_id = %state.instance_id,
        "bond is up"
    );
    Ok(Running {
        http_addr,
        state,
        server,
        shutdown,
        webhooks,
        membership,
        stop_webhooks,
        sip,
        grace: Duration::from_secs(config.shutdown_grace_secs),
    })
}

/// This node's name: `cluster.node_id`, else the one made on its first start
/// and kept in `<data_dir>/node_id` (so a restarted node finds its own calls).
fn node_id(config: &Config) -> Result<String, ServeError> {
    if !config.cluster.node_id.is_empty() {
        return Ok(config.cluster.node_id.clone());
    }
    let path = config.data_dir.join("node_id");
    let failed = |source| ServeError::NodeId { path: path.display().to_string(), source };
    match std::fs::read_to_string(&path) {
        Ok(kept) if !kept.trim().is_empty() => Ok(kept.trim().to_owned()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(failed(e)),
        _ => {
            let fresh = format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            std::fs::write(&path, format!("{fresh}\n")).map_err(failed)?;
            Ok(fresh)
        }
    }
}

/// The key that signs recording links: made on first start, then kept.
async fn recording_link_secret(store: &Store) -> Result<Vec<u8>, bond_store::db::DbError> {
    let fresh: String = (0..4).map(|_| uuid::Uuid::new_v4().simple().to_string()).collect();
    let secret = store
        .db()
        .setting_or_insert("recording_link_secret", &fresh, &bond_store::clock::rfc3339_now())
        .await?;
    Ok(secret.into_bytes())
}

fn public_url(config: &Config) -> String {
    if config.http.public_url.is_empty() {
        let scheme = if config.http.tls() { "https" } else { "http" };
        format!("{scheme}://{}", config.http.listen)
    } else {
        config.http.public_url.clone()
    }
}

/// The listener's TLS, when `http.tls_cert` is set.
fn tls_acceptor(config: &Config) -> Result<Option<TlsAcceptor>, ServeError> {
    if !config.http.tls() {
        return Ok(None);
    }
    Ok(Some(crate::tls::acceptor(crate::tls::Listener::Http, &config.http.tls_cert, &config.http.tls_key)?))
}

/// SIP over TLS: served with `sip.tls_cert`; trunks checked against the
/// system's roots and `trusted_ca`.
fn sip_tls(config: &Config) -> Result<bond_sip::SipTls, ServeError> {
    let acceptor = match config.sip.tls() {
        true => {
            Some(crate::tls::acceptor(crate::tls::Listener::Sip, &config.sip.tls_cert, &config.sip.tls_key)?)
        }
        false => None,
    };
    // `trusted_ca` was read (and trusted) by `build_state`.
    let mut trusted_pem = std::fs::read(crate::tls::SYSTEM_ROOTS).unwrap_or_default();
    trusted_pem.push(b'\n');
    trusted_pem.extend_from_slice(bond_store::trust::extra_roots_pem());
    Ok(bond_sip::SipTls { acceptor, trusted_pem })
}

fn start_engine(config: &Config) -> Result<EngineHandle, ServeError> {
    let ports = PortRange::new(config.rtp.port_min, config.rtp.port_max)
        .expect("validated in Config::load: port_min <= port_max");
    let seed = u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().expect("8 of 16 bytes"));
    let webrtc = webrtc_port(config)?;
    let (engine, _task) = runtime::spawn(RuntimeConfig {
        bind_ip: config.rtp.bind_ip,
        rtp_ports: ports,
        seed,
        webrtc: Some(webrtc),
        opus: OpusConfig { complexity: config.rtp.opus_complexity, ..OpusConfig::default() },
        shards: config.rtp.engine_shards,
        passthrough: config.rtp.passthrough,
        rtcp: config.rtp.rtcp,
        driver_threads: config.rtp.driver_threads,
        strict_source: config.rtp.strict_source,
        kernel_relay: config.rtp.kernel_relay,
    });
    tracing::info!(shards = engine.shards(), "media engine started");
    Ok(engine)
}

/// Bind the shared WebRTC port; which addresses it announces is the runtime's
/// (`webrtc.public_ip`, else `rtp.public_ip`, else the host's own).
fn webrtc_port(config: &Config) -> Result<WebRtcPort, ServeError> {
    let addr = config.webrtc.listen;
    let (socket, tcp) = webrtc_sockets(addr, config.webrtc.tcp)?;
    crate::outgoing_ports::warn_if_exposed("webrtc.listen", addr.port());
    let public_ip = config.webrtc.public_ip.or(config.rtp.public_ip);
    let codecs = config.webrtc.engine_codecs();
    Ok(WebRtcPort { socket: std::sync::Arc::new(socket), public_ip, tcp, codecs })
}

/// Times a port the system picks (`:0`) is tried for TCP too before giving up.
const WEBRTC_PORT_TRIES: usize = 16;

/// The WebRTC port's UDP socket and, with `tcp`, a TCP listener on the same
/// address and port. A port the system picks for UDP may be taken for TCP:
/// then another is picked. A configured port taken for either is an error.
fn webrtc_sockets(
    addr: std::net::SocketAddr,
    tcp: bool,
) -> Result<(std::net::UdpSocket, Option<std::sync::Arc<std::net::TcpListener>>), ServeError> {
    let failed = |addr, source| ServeError::listen(addr, "webrtc.listen", source);
    let tries = if addr.port() == 0 { WEBRTC_PORT_TRIES } else { 1 };
    let mut attempt = 1;
    loop {
        let socket = std::net::UdpSocket::bind(addr).map_err(|e| failed(addr, e))?;
        if !tcp {
            return Ok((socket, None));
        }
        let bound = socket.local_addr().map_err(|e| failed(addr, e))?;
        match std::net::TcpListener::bind(bound) {
            Ok(listener) => return Ok((socket, Some(std::sync::Arc::new(listener)))),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempt < tries => attempt += 1,
            Err(e) => return Err(failed(bound, e)),
        }
    }
}

impl Running {
    /// Stop taking requests, let in-flight ones finish (up to the grace period),
    /// end every call (each gets its `call.hangup` in the outbox), stop the engine,
    /// the speech workers and the webhook worker, close the database. Undelivered webhooks go out on the next start.
    pub async fn stop(self) -> Result<(), ServeError> {
        let _ = self.shutdown.send(());
        let result = match tokio::time::timeout(self.grace, self.server).await {
            Ok(Ok(result)) => result.map_err(ServeError::Http),
            Ok(Err(join)) => Err(ServeError::Http(std::io::Error::other(join))),
            Err(_) => {
                tracing::warn!("grace period over; dropping open connections");
                Ok(())
            }
        };
        self.state.calls.end_all().await;
        // Let the BYEs of the calls just ended go out before the transports close.
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(sip) = &self.sip {
            sip.stop();
        }
        let _ = self.state.engine.shutdown().await;
        self.state.calls.stop_speech_engines().await;
        let _ = self.stop_webhooks.send(true);
        let _ = self.webhooks.await;
        let _ = self.membership.await;
        self.state.store.db().close().await;
        tracing::info!("bond stopped");
        result
    }
}

/// Run until SIGINT or SIGTERM. Both are taken over before anything answers:
/// a signal sent the moment `/health` first answers is a clean stop, not the
/// default kill.
pub async fn run(config: Config) -> Result<(), ServeError> {
    let stop = StopSignals::take_over().map_err(ServeError::Http)?;
    let running = start(&config).await?;
    stop.wait().await;
    tracing::info!("shutting down");
    running.stop().await
}

/// SIGINT and SIGTERM, handled by Bond from the moment this is made.
#[cfg(unix)]
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl StopSignals {
    fn take_over() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
        }
    }
}

#[cfg(not(unix))]
struct StopSignals;

#[cfg(not(unix))]
impl StopSignals {
    fn take_over() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn wait(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picked_webrtc_port_is_the_same_for_udp_and_tcp() {
        let (udp, tcp) = webrtc_sockets("127.0.0.1:0".parse().unwrap(), true).unwrap();
        assert_eq!(udp.local_addr().unwrap(), tcp.unwrap().local_addr().unwrap());
    }

    #[test]
    fn a_configured_webrtc_port_taken_for_tcp_is_an_error_naming_it() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        match webrtc_sockets(addr, true) {
            Err(ServeError::Listen { addr: named, key, .. }) => {
                assert_eq!((named, key), (addr, "webrtc.listen"))
            }
            other => panic!("expected a listen error, got {other:?}"),
        }
        assert!(webrtc_sockets(addr, false).is_ok(), "UDP alone does not need the TCP port");
    }
}
