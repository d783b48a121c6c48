//! Speech providers served over TLS under a certificate authority the public
//! roots do not hold (a self-hosted recognizer or translator): refused with
//! the verifier's reason until the provider is told to trust it, then heard.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use bond_speech::deepgram::Deepgram;
use bond_speech::openai::ChatTranslator;
use bond_speech::tls::TlsConfig;
use bond_speech::{SpeechToText, Translator};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;

/// A certificate for `localhost` that signs itself: the private authority.
struct PrivateCa {
    cert: CertificateDer<'static>,
    acceptor: TlsAcceptor,
}

fn private_ca() -> PrivateCa {
    // What `bond serve` installs: ring as the process's TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = made.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    PrivateCa { cert, acceptor: TlsAcceptor::from(Arc::new(config)) }
}

/// A client configuration trusting the public roots and `ca`, as Bond builds
/// one from `trusted_ca`.
fn trusting(ca: &PrivateCa) -> TlsConfig {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    roots.add(ca.cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// TLS connections on a TCP listener; a handshake the client gives up on is skipped.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl TlsListener {
    async fn bind(acceptor: TlsAcceptor) -> Self {
        Self { tcp: TcpListener::bind("127.0.0.1:0").await.unwrap(), acceptor }
    }

    fn port(&self) -> u16 {
        self.tcp.local_addr().unwrap().port()
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, from)) = self.tcp.accept().await else { continue };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, from);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Deepgram's `/v1/listen` over TLS: binary audio until `CloseStream`, then one final result.
async fn deepgram_over_tls(acceptor: TlsAcceptor) -> String {
    let mut listener = TlsListener::bind(acceptor).await;
    let url = format!("wss://localhost:{}/v1/listen", listener.port());
    tokio::spawn(async move {
        loop {
            let (tls, _) = axum::serve::Listener::accept(&mut listener).await;
            let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else { continue };
            while let Some(Ok(message)) = ws.next().await {
                if matches!(&message, Message::Text(t) if t.contains("CloseStream")) {
                    break;
                }
            }
            let result = json!({ "type": "Results", "is_final": true, "speech_final": true,
                "channel": { "alternatives": [{ "transcript": "heard over tls", "confidence": 0.9 }] } });
            let _ = ws.send(Message::text(result.to_string())).await;
            let _ = ws.close(None).await;
        }
    });
    url
}

/// An OpenAI-compatible `/v1/chat/completions` over TLS answering `hola`.
async fn chat_over_tls(acceptor: TlsAcceptor) -> String {
    let listener = TlsListener::bind(acceptor).await;
    let url = format!("https://localhost:{}/v1", listener.port());
    let complete = || async {
        let answer = json!({ "choices": [{ "message": { "role": "assistant", "content": "hola" } }] });
        (StatusCode::OK, axum::Json(answer))
    };
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(complete));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_deepgram_under_a_private_ca_is_refused_until_trusted_then_heard() {
    let ca = private_ca();
    let url = deepgram_over_tls(ca.acceptor.clone()).await;

    let untrusted = Deepgram::new(&url, "dg-key", "nova-2");
    let refused = untrusted.transcribe(vec![0; 8_000], "en").await.unwrap_err().to_string();
    assert!(refused.contains("certificate") || refused.contains("UnknownIssuer"), "{refused}");

    let trusted = Deepgram::new(&url, "dg-key", "nova-2").trusting(trusting(&ca));
    let heard = trusted.transcribe(vec![0; 8_000], "en").await.unwrap();
    assert_eq!(heard.text, "heard over tls");
}

#[tokio::test]
async fn a_translator_under_a_private_ca_is_refused_until_trusted_then_answers() {
    let ca = private_ca();
    let url = chat_over_tls(ca.acceptor.clone()).await;

    let untrusted = ChatTranslator::new(&url, "sk-test", "m");
    assert!(untrusted.translate("hello", "en", "es", &[]).await.is_err());

    let trusted = ChatTranslator::new(&url, "sk-test", "m").trusting(trusting(&ca));
    assert_eq!(trusted.translate("hello", "en", "es", &[]).await.unwrap(), "hola");
}
