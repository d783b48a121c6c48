//! The real `bond` binary: starts on embedded defaults, answers, stops cleanly on
//! SIGTERM and SIGINT, keeps its instance id, and refuses bad configuration in one line.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// A port free now, and never one handed to another test of this binary: the
/// tests run side by side, and the kernel may give a port just dropped to the
/// next bind, so two Bonds could otherwise be started on one port.
fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

fn start(data_dir: &Path, port: u16, extra_env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_bond"))
        .arg("serve")
        .env_clear()
        .env("BOND_DATA_DIR", data_dir)
        .env("BOND_HTTP_LISTEN", format!("127.0.0.1:{port}"))
        .env("BOND_RTP_BIND_IP", "127.0.0.1")
        .env("BOND_RTP_PORT_MIN", "43000")
        .env("BOND_RTP_PORT_MAX", "43100")
        .env("BOND_SIP_UDP_LISTEN", "127.0.0.1:0")
        .env("BOND_WEBRTC_LISTEN", "127.0.0.1:0")
        .env("BOND_SIP_TCP_LISTEN", "127.0.0.1:0")
        .envs(extra_env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn wait_healthy(port: u16) -> serde_json::Value {
    let url = format!("http://127.0.0.1:{port}/health");
    for _ in 0..200 {
        if let Ok(response) = reqwest::get(&url).await {
            return response.json().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("bond did not answer /health on port {port}");
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args(["-s", name, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

fn wait_exit(mut child: Child) -> (std::process::ExitStatus, String) {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            return (status, stderr);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    panic!("bond did not exit");
}

#[tokio::test]
async fn serves_on_defaults_and_stops_cleanly_on_sigterm_and_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = start(dir.path(), port, &[]);
    let health = wait_healthy(port).await;
    assert_eq!(health["status"], "ok");
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(dir.path().join("bond.db").exists(), "SQLite file in the data directory");
    assert!(dir.path().join("recordings").is_dir());
    signal(&child, "TERM");
    let (status, stderr) = wait_exit(child);
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert!(stderr.contains("bond stopped"), "{stderr}");

    // Same data directory: same instance, and SIGINT works too.
    let child = start(dir.path(), port, &[]);
    let again = wait_healthy(port).await;
    assert_eq!(again["instance_id"], health["instance_id"]);
    signal(&child, "INT");
    let (status, _) = wait_exit(child);
    assert!(status.success());
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = start(dir.path(), port, &[("BOND_LOG_FORMAT", "json")]);
    wait_healthy(port).await;
    signal(&child, "TERM");
    let (status, stderr) = wait_exit(child);
    assert!(status.success());
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
}

#[tokio::test]
async fn the_info_log_tells_each_calls_story_in_one_line_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let key = "KEYlog-story-0000000000000000000001";
    let child = start(dir.path(), port, &[("BOND_BOOTSTRAP_API_KEY", key)]);
    wait_healthy(port).await;
    let client = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        let request = client.post(format!("http://127.0.0.1:{port}/v2{path}")).bearer_auth(key).json(&body);
        async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let app = post(
        "/call_control_applications",
        serde_json::json!({
        "application_name": "log", "webhook_event_url": "http://127.0.0.1:9/hooks" }),
    )
    .await;
    let conn = app["data"]["id"].as_str().unwrap().to_owned();
    let dial = |to: &'static str| {
        post("/calls", serde_json::json!({ "connection_id": conn, "to": to, "from": "+13125550100" }))
    };
    let a = dial("loop:tone").await["data"]["call_control_id"].as_str().unwrap().to_owned();
    let b = dial("loop:echo").await["data"]["call_control_id"].as_str().unwrap().to_owned();
    post(&format!("/calls/{a}/actions/bridge"), serde_json::json!({ "call_control_id_to_bridge_with": b }))
        .await;
    post(&format!("/calls/{a}/actions/hangup"), serde_json::json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&child, "TERM");
    let (status, stderr) = wait_exit(child);
    assert!(status.success());
    let story: Vec<&str> = stderr.lines().filter(|l| l.contains(&format!("call={a}"))).collect();
    for step in ["call created", "call answered", "call bridged", "call ended"] {
        assert_eq!(story.iter().filter(|l| l.contains(step)).count(), 1, "{step}:\n{}", story.join("\n"));
    }
    let ended = story.iter().find(|l| l.contains("call ended")).unwrap();
    assert!(ended.contains("cause=normal_clearing") && ended.contains("INFO"), "{ended}");
}

#[test]
fn bad_configuration_is_one_line_naming_the_key_and_a_nonzero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let child = start(dir.path(), free_port(), &[("BOND_RTP_PORT_MIN", "not-a-port")]);
    let (status, stderr) = wait_exit(child);
    assert_eq!(status.code(), Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("rtp.port_min"), "{stderr}");

    let config = dir.path().join("bond.toml");
    std::fs::write(&config, "[rtp]\nport_min = 5000\nport_max = 4000\n").unwrap();
    let output =
        Command::new(env!("CARGO_BIN_EXE_bond")).args(["serve", "--config"]).arg(&config).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("bond: config error: rtp.port_min:"), "{stderr}");
}

#[tokio::test]
async fn a_taken_http_port_is_a_clear_failure() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let child = start(dir.path(), port, &[]);
    let (status, stderr) = wait_exit(child);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("http.listen"), "{stderr}");
}

#[tokio::test]
async fn bond_admin_creates_organizations_and_keys_that_the_api_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let admin = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_bond"))
            .arg("admin")
            .args(args)
            .env_clear()
            .env("BOND_DATA_DIR", dir.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let field = |text: &str, name: &str| {
        text.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).unwrap().to_owned()
    };
    let org = field(&admin(&["create-org", "Acme"]), "organization_id");
    let key = field(&admin(&["create-key", "--org", &org, "--role", "supervisor"]), "api_key");
    assert!(admin(&["list-orgs"]).contains("Acme"));
    let public_key = admin(&["public-key", "--org", &org]).trim().to_owned();

    let port = free_port();
    let child = start(dir.path(), port, &[]);
    wait_healthy(port).await;
    let client = reqwest::Client::new();
    let served: serde_json::Value = client
        .get(format!("http://127.0.0.1:{port}/v2/webhook_public_key"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        served["data"]["public_key"],
        public_key.as_str(),
        "the organization's key, kept in the database"
    );
    let other = field(&admin(&["create-org", "Other"]), "organization_id");
    assert_ne!(
        admin(&["public-key", "--org", &other]).trim(),
        public_key,
        "each organization signs with its own key"
    );
    let forbidden = client
        .post(format!("http://127.0.0.1:{port}/v2/call_control_applications"))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "application_name": "x", "webhook_event_url": "http://127.0.0.1:9/" }))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403, "a supervisor key may not create connections");
    signal(&child, "TERM");
    assert!(wait_exit(child).0.success());

    // Tokens for the softphone and the supervisors' page, from the shell.
    let agent = admin(&["agent-token", "--org", &org, "--agent", "dana"]);
    assert!(field(&agent, "token").starts_with("bat_"), "{agent}");
    let supervisor = field(&admin(&["supervisor-token", "--org", &org, "--name", "sam"]), "token");
    let child = start(dir.path(), port, &[]);
    wait_healthy(port).await;
    let listed = client
        .get(format!("http://127.0.0.1:{port}/v2/calls"))
        .bearer_auth(&supervisor)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200, "a supervisor token lists the calls");
    signal(&child, "TERM");
    assert!(wait_exit(child).0.success());

    // A key listed, revoked, and refused from then on.
    let key_id =
        admin(&["list-keys", "--org", &org]).lines().next().unwrap().split('\t').next().unwrap().to_owned();
    assert!(admin(&["revoke-key", &key_id]).contains("revoked="));
    assert!(admin(&["list-keys", "--org", &org]).contains("revoked=20"), "the revocation time is listed");
    let child = start(dir.path(), port, &[]);
    wait_healthy(port).await;
    let refused =
        client.get(format!("http://127.0.0.1:{port}/v2/calls")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(refused.status(), 401, "a revoked key");
    signal(&child, "TERM");
    assert!(wait_exit(child).0.success());

    let unknown = Command::new(env!("CARGO_BIN_EXE_bond"))
        .args(["admin", "create-key", "--org", "nope"])
        .env_clear()
        .env("BOND_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no organization"));
}

#[tokio::test]
async fn a_recording_cut_by_sigkill_is_repaired_and_announced_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let key = "KEYCRASHTEST00000000000000000000001";
    let env = [("BOND_BOOTSTRAP_API_KEY", key)];
    let mut child = start(dir.path(), port, &env);
    wait_healthy(port).await;
    let api = format!("http://127.0.0.1:{port}/v2");
    let client = reqwest::Client::new();
    let post = |path: String, body: serde_json::Value| {
        let request = client.post(format!("{api}{path}")).bearer_auth(key).json(&body);
        async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let conn = post(
        "/call_control_applications".into(),
        serde_json::json!({ "application_name": "crash", "webhook_event_url": "http://127.0.0.1:9/" }),
    )
    .await;
    let conn = conn["data"]["id"].as_str().unwrap().to_owned();
    let dial = serde_json::json!({ "connection_id": conn, "to": "loop:tone?hz=900", "from": "+13125550100",
        "record": "record-from-answer", "record_channels": "dual" });
    let call = post("/calls".into(), dial).await;
    let call = call["data"]["call_control_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap(); // SIGKILL: no chance to finish the file
    child.wait().unwrap();
    let partials: Vec<_> =
        walk(dir.path()).into_iter().filter(|p| p.to_string_lossy().ends_with(".wav.partial")).collect();
    assert_eq!(partials.len(), 1, "the recording was cut short");

    let child = start(dir.path(), port, &env);
    wait_healthy(port).await;
    let list: serde_json::Value =
        client.get(format!("{api}/recordings")).bearer_auth(key).send().await.unwrap().json().await.unwrap();
    let recording = &list["data"][0];
    assert_eq!(recording["status"], "repaired");
    assert_eq!(recording["call_control_id"], call.as_str());
    let duration = recording["duration_millis"].as_i64().unwrap();
    // Up to the kill, less what had not reached the disk yet: up to 300 ms on
    // the writer's timeline and 400 ms in the media side's batch.
    assert!(duration >= 500, "the audio up to the kill is kept: {duration} ms of ~1500");
    let url = recording["download_urls"]["wav"].as_str().unwrap();
    let wav = client.get(url).send().await.unwrap().bytes().await.unwrap();
    let mut reader = hound::WavReader::new(std::io::Cursor::new(wav.to_vec())).unwrap();
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    assert_eq!(samples.len() as i64 / 2 * 1000 / 8000, duration, "a valid file of the reported length");
    assert!(samples.iter().step_by(2).any(|&s| s.abs() > 1000), "the tone is in it");
    let status: serde_json::Value = client
        .get(format!("{api}/calls/{call}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["data"]["is_alive"], false, "the call the crash left alive was ended");
    signal(&child, "TERM");
    assert!(wait_exit(child).0.success());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
