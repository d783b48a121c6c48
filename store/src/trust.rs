//! Whom Bond's own TLS connections trust: the public web roots
//! (`webpki-roots`), plus the certificate authorities named by
//! `trusted_ca`, for webhooks, `audio_url` fetches, `streaming_start`'s
//! `wss://` streams, the speech providers and SIP trunks over TLS alike. The extra roots are set
//! once, when Bond starts,
//! before the first request; a certificate that chains to neither fails the
//! connection with the verifier's reason.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// The extra roots, parsed and as the PEM text they came in (which rsipstack takes).
#[derive(Debug, PartialEq)]
struct Extra {
    roots: Vec<CertificateDer<'static>>,
    pem: Vec<u8>,
}

static EXTRA: OnceLock<Extra> = OnceLock::new();

/// Why certificates could not be read or trusted.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{path}: {problem}")]
    Read { path: String, problem: String },
    #[error("other certificate authorities are trusted already")]
    AlreadySet,
}

/// The certificates of the PEM file at `path` (at least one).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let pem = std::fs::read(path).map_err(|e| read_error(path, e.to_string()))?;
    certificates_in(&pem, path)
}

fn certificates_in(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(path, e.to_string()))?;
    if certificates.is_empty() {
        return Err(read_error(path, "holds no PEM certificate".into()));
    }
    Ok(certificates)
}

fn read_error(path: &Path, problem: String) -> TrustError {
    TrustError::Read { path: path.display().to_string(), problem }
}

/// Trust the certificate authorities of the PEM file at `path` too, from now
/// on; once per process.
pub fn trust_file(path: &Path) -> Result<(), TrustError> {
    let pem = std::fs::read(path).map_err(|e| read_error(path, e.to_string()))?;
    let extra = Extra { roots: certificates_in(&pem, path)?, pem };
    match EXTRA.get() {
        Some(set) if *set == extra => Ok(()),
        Some(_) => Err(TrustError::AlreadySet),
        None => EXTRA.set(extra).map_err(|_| TrustError::AlreadySet),
    }
}

/// The extra roots [`trust_file`] was given (none until then).
pub fn extra_roots() -> &'static [CertificateDer<'static>] {
    EXTRA.get().map_or(&[], |extra| extra.roots.as_slice())
}

/// The same, as the PEM text they were read from.
pub fn extra_roots_pem() -> &'static [u8] {
    EXTRA.get().map_or(&[], |extra| extra.pem.as_slice())
}

/// A TLS client configuration with the public roots and the extra ones, for
/// connections reqwest does not make (WebSocket clients).
pub fn client_config() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    // Each was parsed when it was read; one the store refuses is left out.
    roots.add_parsable_certificates(extra_roots().iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_a_certificate_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let error = read_certificates(&path).unwrap_err().to_string();
        assert!(error.contains("empty.pem") && error.contains("no PEM certificate"), "{error}");
        let missing = read_certificates(&dir.path().join("missing.pem")).unwrap_err().to_string();
        assert!(missing.contains("missing.pem"), "{missing}");
    }
}
