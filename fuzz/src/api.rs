//! Bond's real state behind the router and the agent socket: SQLite in a
//! scratch directory, the media engine running, built as `bond serve` builds
//! it. One state serves every input of a run.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::Request;
use bond_control_api::agent_token::AgentClaims;
use bond_control_api::state::AppState;
use tower::ServiceExt;

use crate::signalling::ACTION_NAMES;

const KEY: &str = "KEYFUZZ0000000000000000000000000001";
/// The actions `api_action` applies: all but the last two names.
const ACTIONS: &[&str] = ACTION_NAMES.split_at(ACTION_NAMES.len() - 2).0;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    state: AppState,
    /// A call-control application the dialled calls are placed on.
    connection: String,
    /// A registered agent whose frames `agent_frame` hands in.
    agent: AgentClaims,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let dir = tempfile::tempdir().expect("a scratch directory");
        let env = [
            ("BOND_DATA_DIR", dir.path().display().to_string()),
            ("BOND_BOOTSTRAP_API_KEY", KEY.to_owned()),
            // Any free port: a campaign runs beside a Bond on the default one.
            ("BOND_WEBRTC_LISTEN", "0.0.0.0:0".to_owned()),
            ("BOND_RATE_LIMIT_PER_SECOND", "1000000".to_owned()),
            ("BOND_RATE_LIMIT_BURST", "1000000".to_owned()),
        ];
        let config = bond::Config::load(None, env.map(|(k, v)| (k.to_owned(), v))).expect("a config");
        let state = runtime.block_on(bond::serve::build_state(&config)).expect("a state");
        let body = r#"{"application_name":"fuzz","webhook_event_url":"http://127.0.0.1:9/hooks"}"#;
        let created = runtime.block_on(send(&state, "POST", "/v2/call_control_applications", body));
        let connection = created["data"]["id"].as_str().expect("a connection").to_owned();
        let agent = AgentClaims {
            organization_id: "org".into(),
            agent: "fuzz".into(),
            expires: i64::MAX,
            connection_id: Some("no-such-connection".into()),
            id: "t".into(),
            role: Default::default(),
        };
        Fixture { runtime, state, connection, agent, _dir: dir }
    })
}

async fn send(state: &AppState, method: &str, path: &str, body: &str) -> serde_json::Value {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .expect("a request");
    let response = bond_control_api::app(state.clone()).oneshot(request).await.expect("an answer");
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.expect("a body").to_bytes();
    serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
}

/// A call-control action's JSON body through Bond's real router: the first
/// byte picks the action, the rest is the body. A `loop:silence` call is
/// dialled, the action applied, the call hung up.
pub fn api_action(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let Ok(body) = std::str::from_utf8(body) else { return };
    let f = fixture();
    let action = ACTIONS[usize::from(pick) % ACTIONS.len()];
    f.runtime.block_on(async {
        let dial =
            format!(r#"{{"connection_id":"{}","to":"loop:silence","from":"+13125550100"}}"#, f.connection);
        let call = send(&f.state, "POST", "/v2/calls", &dial).await;
        let Some(id) = call["data"]["call_control_id"].as_str() else { return };
        send(&f.state, "POST", &format!("/v2/calls/{id}/actions/{action}"), body).await;
        send(&f.state, "POST", &format!("/v2/calls/{id}/actions/hangup"), "{}").await;
    });
}

/// A frame on the agent signaling WebSocket from a registered agent.
pub fn agent_frame(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let f = fixture();
    f.runtime.block_on(bond_control_api::http::signaling_frame(&f.state, &f.agent, text));
}
