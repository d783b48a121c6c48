//! The ports this system gives outgoing connections (Linux's ephemeral range,
//! `net.ipv4.ip_local_port_range`). Any outgoing connection on the host (Bond's
//! own to its database, a webhook, another program's) may hold one of them, so
//! a listening port inside the range can be taken when Bond starts. Bond
//! warns when it listens on one, and a failed bind there says why.

use std::ops::RangeInclusive;

const RANGE: &str = "/proc/sys/net/ipv4/ip_local_port_range";
const RESERVED: &str = "/proc/sys/net/ipv4/ip_local_reserved_ports";

/// What to add to "address already in use" on `port`: why an outgoing
/// connection may hold it, if the system may have given it to one; else nothing.
pub fn in_use_hint(port: u16) -> String {
    system_reason(port).map(|why| format!("; {why}")).unwrap_or_default()
}

/// Bound, but a port an outgoing connection may hold the next time Bond
/// starts: warn at once rather than on that day.
pub fn warn_if_exposed(key: &'static str, port: u16) {
    if let Some(why) = system_reason(port) {
        tracing::warn!(setting = key, "{why}");
    }
}

fn system_reason(port: u16) -> Option<String> {
    let range = std::fs::read_to_string(RANGE).ok()?;
    let reserved = std::fs::read_to_string(RESERVED).unwrap_or_default();
    reason(port, &range, &reserved)
}

fn reason(port: u16, range: &str, reserved: &str) -> Option<String> {
    let range = parse_range(range)?;
    if port == 0 || !range.contains(&port) || reserved_ports(reserved).any(|r| r.contains(&port)) {
        return None;
    }
    let (low, high) = (range.start(), range.end());
    Some(format!(
        "port {port} lies in the range this system gives outgoing connections ({low}-{high}, \
         net.ipv4.ip_local_port_range), so one of them may hold it: choose a port below {low}, \
         or keep it from them with net.ipv4.ip_local_reserved_ports"
    ))
}

/// `32768\t60999`.
fn parse_range(text: &str) -> Option<RangeInclusive<u16>> {
    let mut ends = text.split_whitespace().map(|n| n.parse::<u16>().ok());
    let (low, high) = (ends.next()??, ends.next()??);
    Some(low..=high)
}

/// `8080,40000-40010` (empty: none).
fn reserved_ports(text: &str) -> impl Iterator<Item = RangeInclusive<u16>> + '_ {
    text.trim().split(',').filter_map(|part| {
        let (low, high) = part.trim().split_once('-').unwrap_or((part.trim(), part.trim()));
        Some(low.parse().ok()?..=high.parse().ok()?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_in_the_outgoing_range_is_explained_unless_reserved() {
        let text = reason(40_002, "32768\t60999\n", "\n").expect("in the range");
        assert!(
            text.contains("port 40002") && text.contains("32768-60999") && text.contains("below 32768"),
            "{text}"
        );
        assert_eq!(reason(31_000, "32768\t60999\n", ""), None, "below the range");
        assert_eq!(reason(40_002, "32768\t60999\n", "8080,40000-40010\n"), None, "reserved");
        assert!(reason(40_011, "32768\t60999\n", "8080,40000-40010\n").is_some());
        assert_eq!(reason(40_002, "not numbers", ""), None);
        assert_eq!(reason(0, "0\t65535\n", ""), None, "a port the system picks");
    }
}
