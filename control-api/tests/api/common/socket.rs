//! A test's WebSocket client of Bond's router: the router on a loopback port,
//! signing in, and reading frames by type.

use std::time::Duration;

use bond_control_api::state::AppState;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Bond's router on a loopback port; the server stops when the handle drops.
pub async fn serve(state: &AppState) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app =
        bond_control_api::app(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, server)
}

/// Open `path`, send `first`, and read until a frame of type `until` arrives.
pub async fn signed_in(addr: std::net::SocketAddr, path: &str, first: Value, until: &str) -> Socket {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{path}")).await.unwrap();
    ws.send(Message::text(first.to_string())).await.unwrap();
    frame_of_type(&mut ws, until).await;
    ws
}

/// The next text frame of type `wanted` (others are skipped); panics after 10 s without one.
pub async fn frame_of_type(ws: &mut Socket, wanted: &str) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let frame: Value = serde_json::from_str(&t).unwrap();
                if frame["type"] == wanted {
                    return frame;
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no {wanted} frame: {other:?}"),
        }
    }
}
