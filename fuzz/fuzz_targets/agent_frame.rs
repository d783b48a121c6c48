//! A frame on the agent signaling WebSocket from a registered agent, handled
//! by Bond's real state (SQLite in a scratch directory, the media engine running).
#![no_main]

use std::sync::OnceLock;

use bond_control_api::agent_token::AgentClaims;
use bond_control_api::state::AppState;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    state: AppState,
    claims: AgentClaims,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let dir = tempfile::tempdir().expect("a scratch directory");
        let env = [
            ("BOND_DATA_DIR", dir.path().display().to_string()),
            ("BOND_BOOTSTRAP_API_KEY", "KEYFUZZ0000000000000000000000000001".to_owned()),
            ("BOND_WEBRTC_LISTEN", "0.0.0.0:0".to_owned()),
        ];
        let config = bond::Config::load(None, env.map(|(k, v)| (k.to_owned(), v))).expect("a config");
        let state = runtime.block_on(bond::serve::build_state(&config)).expect("a state");
        let claims = AgentClaims {
            organization_id: "org".into(),
            agent: "fuzz".into(),
            expires: i64::MAX,
            connection_id: Some("no-such-connection".into()),
            id: "t".into(),
            role: Default::default(),
        };
        Fixture { runtime, state, claims, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let f = fixture();
    f.runtime.block_on(bond_control_api::http::signaling_frame(&f.state, &f.claims, text));
});
