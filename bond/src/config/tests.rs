//! Loading `bond.toml` and `BOND_*`: defaults, overrides, and the one-line errors.

use super::*;
use bond_media_engine::webrtc::DEFAULT_CODECS;

fn load_str(toml_text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bond.toml");
    std::fs::write(&path, toml_text).unwrap();
    Config::load(Some(&path), env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

#[test]
fn check_config_prints_toml_that_loads_back_to_the_same_settings() {
    let env = [
        ("BOND_SIP_UDP_LISTEN", "127.0.0.1:5070"),
        ("BOND_WEBRTC_CODECS", "PCMU,opus"),
        ("BOND_BOOTSTRAP_API_KEY", "KEYsecret-bootstrap-0001"),
        ("BOND_DEEPGRAM_API_KEY", "dg-secret"),
    ];
    let config = Config::load(None, env.map(|(k, v)| (k.to_owned(), v.to_owned()))).unwrap();
    let text = config.to_toml().unwrap();
    assert!(!text.contains("KEYsecret") && !text.contains("dg-secret"), "{text}");
    assert!(text.contains("bootstrap_api_key, speech.deepgram_api_key"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bond.toml");
    std::fs::write(&path, &text).unwrap();
    let again = Config::load(Some(&path), []).unwrap();
    let without_secrets = Config {
        bootstrap_api_key: None,
        speech: SpeechConfig { deepgram_api_key: String::new(), ..config.speech.clone() },
        ..config
    };
    assert_eq!(again, without_secrets);
}

#[test]
fn defaults_need_nothing_and_derive_paths_from_data_dir() {
    let config = Config::load(None, []).unwrap();
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.sip.udp_listen.port(), 5060);
    assert_eq!(config.sip.rtp_timeout_secs, 30);
    assert_eq!(config.database_url, "sqlite://data/bond.db?mode=rwc");
    assert_eq!(config.recordings_dir, PathBuf::from("data/recordings"));
}

#[test]
fn the_default_ports_lie_below_the_ports_outgoing_connections_are_given() {
    // Linux gives outgoing connections ports from 32768-60999: one holding a
    // listening port would stop Bond starting.
    let config = Config::load(None, []).unwrap();
    let listening = [config.webrtc.listen.port(), config.sip.udp_listen.port(), config.rtp.port_max];
    assert!(listening.iter().all(|&port| port < 32_768), "{listening:?}");
    let rtp = config.rtp.port_min..=config.rtp.port_max;
    assert!(!rtp.contains(&config.webrtc.listen.port()), "{rtp:?}");
}

#[test]
fn file_then_environment() {
    let config = load_str(
        "data_dir = \"/tmp/x\"\n[rtp]\nport_min = 40000\nport_max = 40100\n",
        &[("BOND_RTP_PORT_MAX", "40200"), ("BOND_LOG_FORMAT", "json"), ("UNRELATED", "1")],
    )
    .unwrap();
    assert_eq!(config.rtp.port_min, 40000);
    assert_eq!(config.rtp.port_max, 40200);
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.database_url, "sqlite:///tmp/x/bond.db?mode=rwc");
}

#[test]
fn a_wrong_type_names_its_key() {
    let err = load_str("[rtp]\nport_min = \"lots\"\n", &[]).unwrap_err();
    assert_eq!(err.key, "rtp.port_min", "{err}");
    let err = load_str("", &[("BOND_HTTP_LISTEN", "not-an-address")]).unwrap_err();
    assert_eq!(err.key, "http.listen", "{err}");
}

#[test]
fn the_speech_providers_keys_are_not_printed() {
    let config =
        load_str("", &[("BOND_DEEPGRAM_API_KEY", "dg-secret"), ("BOND_MT_OPENAI_API_KEY", "sk-secret")])
            .unwrap();
    assert_eq!(config.speech.deepgram_api_key, "dg-secret");
    let printed = format!("{config:#?}");
    assert!(!printed.contains("dg-secret") && !printed.contains("sk-secret"), "{printed}");
    assert!(printed.contains("(set)"));
}

#[test]
fn unknown_keys_are_refused() {
    let err = load_str("[http]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n", &[]).unwrap_err();
    assert_eq!(err.key, "http.lisen", "{err}");
    let err = load_str("colour = 3\n", &[]).unwrap_err();
    assert_eq!(err.key, "colour", "{err}");
}

#[test]
fn semantic_errors_name_the_key() {
    let err = load_str("[rtp]\nport_min = 30000\nport_max = 20000\n", &[]).unwrap_err();
    assert_eq!(err.key, "rtp.port_min");
    let err = load_str("", &[("BOND_OPUS_COMPLEXITY", "11")]).unwrap_err();
    assert_eq!(err.key, "rtp.opus_complexity");
    assert_eq!(load_str("", &[("BOND_OPUS_COMPLEXITY", "2")]).unwrap().rtp.opus_complexity, 2);
    assert_eq!(load_str("", &[("BOND_ENGINE_SHARDS", "3")]).unwrap().rtp.engine_shards, 3);
    assert_eq!(load_str("", &[("BOND_ENGINE_SHARDS", "1000")]).unwrap_err().key, "rtp.engine_shards");
    let err = load_str("database_url = \"mysql://x\"\n", &[]).unwrap_err();
    assert_eq!(err.key, "database_url");
    let err = load_str("[log]\nlevel = \"[[[\"\n", &[]).unwrap_err();
    assert_eq!(err.key, "log.level");
    let err = load_str("[log]\nformat = \"xml\"\n", &[]).unwrap_err();
    assert_eq!(err.key, "log.format", "{err}");
}

#[test]
fn webrtc_codecs_come_as_a_list_or_a_comma_separated_string_in_preference_order() {
    let engine = |c: Config| c.webrtc.engine_codecs();
    assert_eq!(engine(Config::load(None, []).unwrap()), DEFAULT_CODECS);
    let listed = load_str("[webrtc]\ncodecs = [\"PCMU\", \"opus\"]\n", &[]).unwrap();
    assert_eq!(engine(listed), [Codec::Pcmu, Codec::Opus]);
    let from_env = load_str("", &[("BOND_WEBRTC_CODECS", "pcma, G722")]).unwrap();
    assert_eq!(engine(from_env), [Codec::Pcma, Codec::G722]);
    assert_eq!(load_str("", &[("BOND_WEBRTC_CODECS", "PCMU,G729")]).unwrap_err().key, "webrtc.codecs");
    assert_eq!(load_str("[webrtc]\ncodecs = []\n", &[]).unwrap_err().key, "webrtc.codecs");
}

#[test]
fn an_unreadable_or_invalid_file_is_one_line() {
    let err = Config::load(Some(Path::new("/nonexistent/bond.toml")), []).unwrap_err();
    assert_eq!(err.key, "--config");
    let err = load_str("this is not toml", &[]).unwrap_err();
    assert!(!err.to_string().contains('\n'), "{err}");
}

#[test]
fn a_tls_certificate_without_its_key_is_refused_and_both_turn_https_on() {
    let alone = Config::load(None, [("BOND_HTTP_TLS_CERT".to_owned(), "cert.pem".to_owned())]);
    assert_eq!(alone.unwrap_err().key, "http.tls_key");
    let config = load_str("[http]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n", &[]).unwrap();
    assert!(config.http.tls());
    assert!(!Config::load(None, []).unwrap().http.tls());
}

#[test]
fn the_assistant_section_takes_its_models_and_prices_from_the_environment() {
    let env = [
        ("BOND_ASSISTANT_LLM_BASE_URL", "http://127.0.0.1:9000/v1"),
        ("BOND_ASSISTANT_LLM_API_KEY", "sk-secret"),
        ("BOND_ASSISTANT_PRICE_STT_PER_MINUTE", "0.006"),
        ("BOND_ASSISTANT_PRICE_TTS_PER_MILLION_CHARACTERS", "15"),
    ];
    let config = load_str("", &env).unwrap();
    assert_eq!(config.assistant.llm_base_url, "http://127.0.0.1:9000/v1");
    assert_eq!(config.assistant.prices().tts_per_million_characters, 15.0);
    let text = config.to_toml().unwrap();
    assert!(!text.contains("sk-secret") && text.contains("assistant.llm_api_key"), "{text}");
    let bad = load_str("[assistant]\nprice_stt_per_minute = -1.0\n", &[]).unwrap_err();
    assert!(bad.to_string().contains("assistant.price_stt_per_minute"), "{bad}");
    let bad = load_str("[assistant]\nllm_base_url = \"ftp://x\"\n", &[]).unwrap_err();
    assert!(bad.to_string().contains("assistant.llm_base_url"), "{bad}");
}

#[test]
fn a_control_node_needs_the_bus_and_the_role_comes_from_the_environment() {
    let err = load_str("", &[("BOND_CLUSTER_ROLE", "control")]).unwrap_err();
    assert_eq!(err.key, "cluster.role");
    let nats = ("BOND_CLUSTER_NATS_URL", "nats://127.0.0.1:4222");
    let config = load_str("", &[("BOND_CLUSTER_ROLE", "control"), nats]).unwrap();
    assert_eq!(config.cluster.role, bond_calls::NodeRole::Control);
    assert_eq!(load_str("", &[]).unwrap().cluster.role, bond_calls::NodeRole::All);
    assert_eq!(load_str("[cluster]\nrole = \"relay\"\n", &[]).unwrap_err().key, "cluster.role");
}
