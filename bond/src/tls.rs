//! TLS for Bond's HTTP listener (`http.tls_cert`, `http.tls_key`): the API,
//! the pages, the agent and supervisor sockets and the carrier media streams
//! are then served over HTTPS and WSS. A browser grants the microphone only
//! to a secure origin, so an agent on another machine needs this.

use std::path::Path;
use std::sync::Arc;

use bond_control_api::http::listener::TlsAcceptor;
use bond_store::trust::{read_certificates, TrustError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;

/// Where the system keeps the public roots as one PEM file (Debian's
/// ca-certificates), for what verifies against a PEM bundle (SIP trunks).
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Which listener a certificate is for: its configuration keys, and its ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Http,
    Sip,
}

impl Listener {
    fn keys(self) -> (&'static str, &'static str) {
        match self {
            Self::Http => ("http.tls_cert", "http.tls_key"),
            Self::Sip => ("sip.tls_cert", "sip.tls_key"),
        }
    }
}

/// Why the listener's certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}: {source}")]
    Certificate { key: &'static str, source: TrustError },
    #[error("{key}: {path}: {problem}")]
    Key { key: &'static str, path: String, problem: String },
    #[error("{cert} and {key} do not go together: {source}")]
    Mismatch { cert: &'static str, key: &'static str, source: rustls::Error },
}

/// An acceptor for `listener` serving the certificate chain in `cert` (PEM,
/// the server's certificate first) with the private key in `key` (PEM:
/// PKCS#8, PKCS#1 or SEC1).
pub fn acceptor(listener: Listener, cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let (cert_key, key_key) = listener.keys();
    let chain = read_certificates(cert).map_err(|source| TlsError::Certificate { key: cert_key, source })?;
    let key_error =
        |problem: String| TlsError::Key { key: key_key, path: key.display().to_string(), problem };
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| key_error(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::Mismatch { cert: cert_key, key: key_key, source })?;
    if listener == Listener::Http {
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
    }
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A handshake with `acceptor` from a client trusting only `ca`, for `name`;
    /// a byte is sent each way once it is up.
    async fn handshake(acceptor: TlsAcceptor, ca: &Path, name: &str) -> Result<(), String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(read_certificates(ca).unwrap());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let (client, server) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(async move {
            let mut stream = acceptor.accept(server).await.ok()?;
            let mut byte = [0u8];
            stream.read_exact(&mut byte).await.ok()?;
            stream.write_all(&byte).await.ok()
        });
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let mut stream = connector.connect(name, client).await.map_err(|e| e.to_string())?;
        stream.write_all(b"x").await.map_err(|e| e.to_string())?;
        let mut back = [0u8];
        stream.read_exact(&mut back).await.map_err(|e| e.to_string())?;
        served.await.unwrap().ok_or("the server side failed")?;
        Ok(())
    }

    #[tokio::test]
    async fn the_dev_certificate_verifies_for_its_hosts_and_no_other_name() {
        let dir = tempfile::tempdir().unwrap();
        let made = crate::dev_cert::make(dir.path(), &["10.1.2.3".into(), "bond.test".into()]).unwrap();
        for host in ["localhost", "127.0.0.1", "10.1.2.3", "bond.test"] {
            let acceptor = acceptor(Listener::Http, &made.cert, &made.key).unwrap();
            handshake(acceptor, &made.ca, host).await.unwrap_or_else(|e| panic!("{host}: {e}"));
        }
        let refused =
            handshake(acceptor(Listener::Http, &made.cert, &made.key).unwrap(), &made.ca, "example.com")
                .await;
        let refused = refused.unwrap_err();
        assert!(refused.contains("not valid for name \"example.com\""), "{refused}");
    }

    #[tokio::test]
    async fn a_certificate_from_another_authority_is_not_trusted() {
        let (mine, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mine = crate::dev_cert::make(mine.path(), &[]).unwrap();
        let theirs = crate::dev_cert::make(theirs.path(), &[]).unwrap();
        let refused =
            handshake(acceptor(Listener::Http, &theirs.cert, &theirs.key).unwrap(), &mine.ca, "localhost")
                .await;
        let refused = refused.unwrap_err();
        assert!(refused.contains("UnknownIssuer"), "{refused}");
    }

    #[test]
    fn a_key_that_is_not_the_certificates_or_no_key_at_all_is_named() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = crate::dev_cert::make(a.path(), &[]).unwrap();
        let b = crate::dev_cert::make(b.path(), &[]).unwrap();
        let mismatch = acceptor(Listener::Sip, &a.cert, &b.key).map(|_| ()).unwrap_err().to_string();
        assert!(mismatch.starts_with("sip.tls_cert and sip.tls_key do not go together"), "{mismatch}");
        let missing =
            acceptor(Listener::Http, &a.cert, &a.key.with_file_name("nope.pem")).map(|_| ()).unwrap_err();
        assert!(
            missing.to_string().starts_with("http.tls_key: ") && missing.to_string().contains("nope.pem")
        );
        let not_a_cert = acceptor(Listener::Http, &a.key, &a.key).map(|_| ()).unwrap_err().to_string();
        assert!(not_a_cert.starts_with("http.tls_cert: "), "{not_a_cert}");
    }

    #[test]
    fn dev_cert_keys_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let made = crate::dev_cert::make(dir.path(), &[]).unwrap();
        for key in [made.key.clone(), dir.path().join("ca-key.pem")] {
            assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600, "{key:?}");
        }
    }
}
