//! Bond's HTTP server: the accept loop, TLS when it is configured, HTTP/1.1
//! with upgrades on each connection, and graceful shutdown.
//!
//! Bond runs its own loop rather than `axum::serve` for one reason: so that
//! the TCP socket under an upgraded connection can be taken back out of hyper
//! ([`take_tcp`]) and registered on another runtime. A carrier stream's socket
//! moves to its leg's media-driver thread that way. `axum::serve` wraps every
//! connection in a private type of hyper-util's, which cannot be unwrapped.
//! HTTP/2 is not served: nothing that talks to Bond needs it over plain TCP.
//! Over TLS the upgraded connection stays a TLS stream on this runtime
//! ([`UpgradedSocket::Other`]): its bytes are encrypted, so the socket alone
//! would be of no use to the media driver.

pub use bond_streams::UpgradedSocket;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
pub use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How long a client has to send a request's headers, counted from the end of
/// the last response on a kept-alive connection: a connection that sends
/// nothing, or a byte at a time, is closed then instead of held forever.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve `router` on `listener` (over TLS with `tls`) until `shutdown`
/// resolves; then stop accepting, let each connection finish the request it is
/// on, and return once all have closed. Upgraded connections are no longer the
/// server's and do not hold it up.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with(listener, router, tls, shutdown, HEADER_TIMEOUT).await
}

async fn serve_with(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
    header_timeout: Duration,
) -> std::io::Result<()> {
    let (stopping, stop) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                let (router, tls, stop) = (router.clone(), tls.clone(), stop.clone());
                tokio::spawn(connection(tcp, peer, router, tls, header_timeout, stop));
            }
            Err(e) => {
                // Out of file descriptors, say: wait rather than spin; a
                // connection reset before it was accepted is nothing.
                tracing::warn!(error = %e, "could not accept an HTTP connection");
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    drop(listener);
    drop(stop);
    let _ = stopping.send(());
    stopping.closed().await;
    Ok(())
}

/// Serve one connection, after its TLS handshake when there is TLS; stop it
/// gracefully when `stop` changes. A handshake gets as long as a request's
/// headers do, and is dropped when the server stops.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    tls: Option<TlsAcceptor>,
    header_timeout: Duration,
    mut stop: watch::Receiver<()>,
) {
    let Some(acceptor) = tls else {
        return http(TokioIo::new(tcp), peer, router, header_timeout, stop).await;
    };
    let handshake = tokio::time::timeout(header_timeout, async {
        if !starts_tls(&tcp).await {
            refuse_plain_http(tcp).await;
            return Err(std::io::Error::other("plain HTTP on the HTTPS port"));
        }
        acceptor.accept(tcp).await
    });
    tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => http(TokioIo::new(stream), peer, router, header_timeout, stop).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "no TLS session"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        },
        _ = stop.changed() => {}
    }
}

/// Whether the client's first byte opens a TLS handshake (a handshake record, 22).
async fn starts_tls(tcp: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    matches!(tcp.peek(&mut first).await, Ok(1) if first[0] == 22)
}

/// Answer a plain HTTP request on the HTTPS port with a 400 saying so, as
/// Telnyx's JSON error, and close.
async fn refuse_plain_http(mut tcp: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let body = r#"{"errors":[{"code":"10001","title":"Bad Request","detail":"This port serves HTTPS: use https:// (or wss://)."}]}"#;
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.write_all(response.as_bytes()).await;
    let _ = tcp.shutdown().await;
}

/// HTTP/1.1 with upgrades on `io` until the client is done or `stop` changes.
async fn http<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    header_timeout: Duration,
    mut stop: watch::Receiver<()>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = router.map_request(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.map(Body::new)
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(io, TowerToHyperService::new(service))
        .with_upgrades();
    let mut served = std::pin::pin!(served);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(%peer, error = %e, "HTTP connection ended with an error");
                }
                break;
            }
            // Changed, or the server is gone.
            _ = stop.changed(), if !stopping => {
                stopping = true;
                served.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The socket under `upgraded`.
pub fn take_tcp(upgraded: Upgraded) -> std::io::Result<UpgradedSocket> {
    match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => {
            Ok(UpgradedSocket::Tcp { socket: parts.io.into_inner().into_std()?, read: parts.read_buf })
        }
        Err(other) => Ok(UpgradedSocket::Other(other)),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{mpsc, oneshot};

    use super::*;
    use crate::http::ws_handshake::WebSocketRequest;

    /// The example handshake of RFC 6455 section 1.3, and bytes sent right behind it.
    const OPENING: &[u8] = b"GET /ws HTTP/1.1\r\nHost: bond\r\nConnection: keep-alive, Upgrade\r\n\
        Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nEARLY";

    /// A server whose `/ws` hands each upgraded socket to the receiver; and its shutdown.
    async fn server(
    ) -> (SocketAddr, mpsc::Receiver<UpgradedSocket>, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        server_with(HEADER_TIMEOUT).await
    }

    async fn server_with(
        header_timeout: Duration,
    ) -> (SocketAddr, mpsc::Receiver<UpgradedSocket>, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let (sockets, upgraded) = mpsc::channel(1);
        let router = Router::new().route(
            "/ws",
            get(move |ws: WebSocketRequest| async move {
                ws.accept(move |connection| async move {
                    let _ = sockets.send(take_tcp(connection).unwrap()).await;
                })
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            let stopping = async {
                let _ = stopped.await;
            };
            serve_with(listener, router, None, stopping, header_timeout).await.unwrap();
        });
        (addr, upgraded, stop, served)
    }

    async fn response_head(client: &mut TcpStream) -> String {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            client.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        String::from_utf8(head).unwrap()
    }

    #[tokio::test]
    async fn an_upgraded_connection_hands_over_its_tcp_socket_with_what_was_read_past_the_request() {
        let (addr, mut upgraded, _stop, _served) = server().await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(OPENING).await.unwrap();
        let head = response_head(&mut client).await;
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        assert!(head.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "{head}");

        let Some(UpgradedSocket::Tcp { socket: mut server_side, read }) = upgraded.recv().await else {
            panic!("the connection did not come back as its TCP socket");
        };
        // Registered nowhere now: used here as a blocking socket.
        server_side.set_nonblocking(false).unwrap();
        let mut early = read.to_vec();
        while early.len() < 5 {
            let mut byte = [0u8];
            server_side.read_exact(&mut byte).unwrap();
            early.push(byte[0]);
        }
        assert_eq!(early, b"EARLY");
        server_side.write_all(b"back").unwrap();
        let mut back = [0u8; 4];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"back");
    }

    #[tokio::test]
    async fn a_client_that_sends_no_whole_request_in_time_is_closed_and_others_are_served() {
        let (addr, _upgraded, _stop, _served) = server_with(Duration::from_millis(300)).await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /nothing HTTP/1.1\r\nHost: bo").await.unwrap();
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the slow client is still connected");
        let closed = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the silent client is still connected");
        let response = reqwest::get(format!("http://{addr}/nothing")).await.unwrap();
        assert_eq!(response.status(), 404);
    }

    #[tokio::test]
    async fn a_request_that_is_not_a_websocket_handshake_gets_a_json_400() {
        let (addr, _upgraded, _stop, _served) = server().await;
        let response = reqwest::get(format!("http://{addr}/ws")).await.unwrap();
        assert_eq!(response.status(), 400);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "10001", "{body}");
    }

    #[tokio::test]
    async fn shutdown_closes_idle_connections_and_does_not_wait_for_upgraded_ones() {
        let (addr, mut upgraded, stop, served) = server().await;
        let mut websocket = TcpStream::connect(addr).await.unwrap();
        websocket.write_all(OPENING).await.unwrap();
        response_head(&mut websocket).await;
        let _kept = upgraded.recv().await.unwrap();
        // A kept-alive connection between requests.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /nothing HTTP/1.1\r\nHost: bond\r\n\r\n").await.unwrap();
        assert!(response_head(&mut idle).await.starts_with("HTTP/1.1 404 "));

        stop.send(()).unwrap();
        served.await.unwrap();
        let mut rest = Vec::new();
        idle.read_to_end(&mut rest).await.unwrap();
        assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    }
}
