//! Signed, expiring download links for recordings: no API key needed, but the
//! link only works until `expires` and only for the recording it was made for.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Makes and checks `.../v2/recordings/{id}/download?expires=<unix>&signature=<hex>` links.
#[derive(Clone)]
pub struct RecordingLinks {
    secret: Vec<u8>,
    base_url: String,
    lifetime_secs: i64,
}

impl std::fmt::Debug for RecordingLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingLinks").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl RecordingLinks {
    pub fn new(secret: Vec<u8>, base_url: &str, lifetime_secs: i64) -> Self {
        Self { secret, base_url: base_url.trim_end_matches('/').to_owned(), lifetime_secs }
    }

    pub fn url(&self, recording_id: &str, now: i64) -> String {
        let expires = now + self.lifetime_secs;
        format!(
            "{}/v2/recordings/{recording_id}/download?expires={expires}&signature={}",
            self.base_url,
            self.signature(recording_id, expires)
        )
    }

    /// True when `signature` was made here for this recording and `expires` has not passed.
    pub fn verify(&self, recording_id: &str, expires: i64, signature: &str, now: i64) -> bool {
        if now > expires {
            return false;
        }
        let Some(given) = decode_hex(signature) else { return false };
        self.mac(recording_id, expires).verify_slice(&given).is_ok()
    }

    fn signature(&self, recording_id: &str, expires: i64) -> String {
        self.mac(recording_id, expires).finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn mac(&self, recording_id: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(format!("{recording_id}:{expires}").as_bytes());
        mac
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (i64, String) {
        let query = url.split_once('?').unwrap().1;
        let get =
            |k: &str| query.split('&').find_map(|kv| kv.strip_prefix(&format!("{k}="))).unwrap().to_owned();
        (get("expires").parse().unwrap(), get("signature"))
    }

    #[test]
    fn links_work_until_they_expire_and_only_for_their_recording() {
        let links = RecordingLinks::new(b"secret".to_vec(), "http://bond.example/", 3600);
        let url = links.url("rec-1", 1_000);
        assert!(url.starts_with("http://bond.example/v2/recordings/rec-1/download?expires=4600&signature="));
        let (expires, sig) = parts(&url);
        assert!(links.verify("rec-1", expires, &sig, 4_600));
        assert!(!links.verify("rec-1", expires, &sig, 4_601), "expired");
        assert!(!links.verify("rec-2", expires, &sig, 2_000), "another recording");
        assert!(!links.verify("rec-1", expires + 1, &sig, 2_000), "expiry changed");
        assert!(!links.verify("rec-1", expires, "00", 2_000));
        assert!(!links.verify("rec-1", expires, "zz", 2_000));
        let other = RecordingLinks::new(b"other".to_vec(), "http://bond.example", 3600);
        assert!(!other.verify("rec-1", expires, &sig, 2_000), "another secret");
    }
}
