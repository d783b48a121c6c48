//! Structured logs with tracing: text for people, JSON for collectors.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Libraries that are chatty at `info` (the SIP stack logs every message,
/// whisper.cpp its model as it loads): below a global `debug` and unless the
/// filter names them, they log warnings only, so `info` is the calls' story.
const QUIET: [&str; 2] = ["rsipstack", "whisper_rs"];

/// Install the global subscriber. `RUST_LOG`, when set, wins over `log.level`.
pub fn init(config: &LogConfig) {
    let filter = filter(&config.level);
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal, not for files and log collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// `level` with the [`QUIET`] libraries held to warnings where it does not say otherwise.
fn filter(level: &str) -> String {
    let global_debug = level.split(',').any(|d| matches!(d.trim(), "debug" | "trace"));
    let mut filter = level.to_owned();
    for library in QUIET {
        if !global_debug && !level.contains(library) {
            filter.push_str(&format!(",{library}=warn"));
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatty_libraries_are_held_to_warnings_at_info_only() {
        assert_eq!(filter("info"), "info,rsipstack=warn,whisper_rs=warn");
        assert_eq!(filter("info,rsipstack=debug"), "info,rsipstack=debug,whisper_rs=warn");
        assert_eq!(filter("debug"), "debug");
    }
}
