//! Machine translation behind one trait. The embedded engine is Apertium
//! (Debian packages `apertium` and a language pair such as
//! `apertium-eng-spa`), run as a subprocess with the text on stdin.

use std::process::Stdio;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::AsyncWriteExt;

use super::breaker::Fallback;

const TIMEOUT: Duration = Duration::from_secs(10);
/// Longest text translated in one go.
pub const MAX_TEXT_CHARS: usize = 2_000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MtError {
    #[error("{0} cannot translate {1} to {2} (for Apertium, install the pair's Debian package, e.g. apertium-eng-spa)")]
    UnsupportedPair(&'static str, String, String),
    #[error("{0} failed: {1}")]
    Failed(&'static str, String),
}

/// One translator. `context` holds the call's previous segments (oldest first)
/// for engines that can use them.
pub trait Translator: Send + Sync {
    fn name(&self) -> &'static str;
    fn translate(
        &self,
        text: &str,
        from: &str,
        to: &str,
        context: &[String],
    ) -> BoxFuture<'static, Result<String, MtError>>;
}

/// Translators in order: the first that answers wins; one that fails rests for
/// a while (a [`Breaker`]; a pair it lacks is not a failure); when all fail the
/// last failure comes back (the call goes on; `call.translation.failed` says why).
pub struct MtChain(Fallback<dyn Translator>);

impl std::fmt::Debug for MtChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.members().map(|t| t.name())).finish()
    }
}

impl MtChain {
    pub fn new(translators: Vec<Box<dyn Translator>>) -> Self {
        Self(Fallback::new(translators))
    }

    pub async fn translate(
        &self,
        text: &str,
        from: &str,
        to: &str,
        context: &[String],
    ) -> Result<String, MtError> {
        let none = MtError::Failed("translation", "no translator is available".into());
        // A pair the translator lacks is not an outage.
        let outage = |e: &MtError| matches!(e, MtError::Failed(..));
        self.0.first(|t| t.name(), |t| t.translate(text, from, to, context), outage, none).await
    }
}

/// Apertium's rule-based pairs; context is not used.
#[derive(Debug, Default)]
pub struct Apertium;

const APERTIUM: &str = "apertium";

impl Translator for Apertium {
    fn name(&self) -> &'static str {
        APERTIUM
    }

    fn translate(
        &self,
        text: &str,
        from: &str,
        to: &str,
        _context: &[String],
    ) -> BoxFuture<'static, Result<String, MtError>> {
        let mode = match (apertium_code(from), apertium_code(to)) {
            (Some(a), Some(b)) => Ok(format!("{a}-{b}")),
            _ => Err(MtError::UnsupportedPair(APERTIUM, from.into(), to.into())),
        };
        let (text, from, to) =
            (text.chars().take(MAX_TEXT_CHARS).collect::<String>(), from.to_owned(), to.to_owned());
        Box::pin(async move {
            let mode = mode?;
            match tokio::time::timeout(TIMEOUT, run(&mode, &text)).await {
                Ok(Ok(out)) => Ok(out),
                Ok(Err(e)) if e.contains("does not exist") => {
                    Err(MtError::UnsupportedPair(APERTIUM, from, to))
                }
                Ok(Err(e)) => Err(MtError::Failed(APERTIUM, e)),
                Err(_) => Err(MtError::Failed(APERTIUM, format!("no answer within {} s", TIMEOUT.as_secs()))),
            }
        })
    }
}

/// Apertium names languages by ISO 639-3 (`eng`, `spa`); callers use BCP 47 (`en-US`, `es`).
fn apertium_code(tag: &str) -> Option<&'static str> {
    let primary = tag.split(['-', '_']).next()?.to_ascii_lowercase();
    Some(match primary.as_str() {
        "en" | "eng" => "eng",
        "es" | "spa" => "spa",
        "fr" | "fra" => "fra",
        "pt" | "por" => "por",
        "ca" | "cat" => "cat",
        "it" | "ita" => "ita",
        "gl" | "glg" => "glg",
        "ro" | "ron" => "ron",
        "eo" | "epo" => "epo",
        "eu" | "eus" => "eus",
        "oc" | "oci" => "oci",
        _ => return None,
    })
}

async fn run(mode: &str, text: &str) -> Result<String, String> {
    let mut child = tokio::process::Command::new("apertium")
        .arg("-u") // no marks on unknown words
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("apertium could not start ({e}); install the Debian package apertium"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).await.map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().await.map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || stderr.contains("does not exist") {
        return Err(stderr.trim().to_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_map_to_apertium_codes() {
        assert_eq!(apertium_code("en-US"), Some("eng"));
        assert_eq!(apertium_code("es"), Some("spa"));
        assert_eq!(apertium_code("xx"), None);
    }

    #[tokio::test]
    async fn a_language_apertium_has_no_name_for_is_an_unsupported_pair() {
        let err = Apertium.translate("hello", "en", "tlh", &[]).await.unwrap_err();
        assert!(matches!(err, MtError::UnsupportedPair(..)), "{err}");
    }
}
