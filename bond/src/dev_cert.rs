//! `bond dev-cert`: a certificate authority of one's own and a server
//! certificate it signs, for trying Bond over HTTPS on a private network.
//! Browsers and clients trust `ca.pem` (import it, or pass it as their CA
//! file); Bond serves `cert.pem` with `key.pem`. Never for production: the
//! CA's key sits beside them, unencrypted.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// The files `dev-cert` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCert {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why the certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    #[error("cannot make the certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// Make a CA and a certificate for `hosts` (names or IP addresses; `localhost`
/// and 127.0.0.1 are always added) in `dir`: `ca.pem`, `ca-key.pem`,
/// `cert.pem` and `key.pem`.
pub fn make(dir: &Path, hosts: &[String]) -> Result<DevCert, DevCertError> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    // A name of its own: two such CAs must not pass for each other's issuer.
    let serial = &uuid::Uuid::new_v4().simple().to_string()[..12];
    ca.distinguished_name.push(DnType::CommonName, format!("Bond development CA {serial}"));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = CertifiedIssuer::self_signed(ca, ca_key)?;

    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    names.extend(hosts.iter().filter(|h| !names.contains(h)).cloned().collect::<Vec<_>>());
    let mut server = CertificateParams::new(names)?;
    server.distinguished_name.push(DnType::CommonName, "Bond");
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = server.signed_by(&key, &issuer)?;

    std::fs::create_dir_all(dir).map_err(|source| write_error(dir, source))?;
    let written = DevCert { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") };
    write(&written.ca, &issuer.pem(), 0o644)?;
    write(&dir.join("ca-key.pem"), &ca_key_pem, 0o600)?;
    write(&written.cert, &cert.pem(), 0o644)?;
    write(&written.key, &key.serialize_pem(), 0o600)?;
    Ok(written)
}

/// Write `text` to `path`, readable as `mode` says (keys by their owner only).
fn write(path: &Path, text: &str, mode: u32) -> Result<(), DevCertError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|source| write_error(path, source))?;
    file.write_all(text.as_bytes()).map_err(|source| write_error(path, source))
}

fn write_error(path: &Path, source: std::io::Error) -> DevCertError {
    DevCertError::Write { path: path.display().to_string(), source }
}
