//! The ports this system gives outgoing connections (Linux's ephemeral range,
//! `net.ipv4.ip_local_port_range`). Any outgoing connection on the host (Bond's
//! own to its database, a webhook, another program's) may hold one of them, so
//! a listening port inside the range can be taken when Bond starts; a failed
//! bind there says so, and how to avoid it.

use std::ops::RangeInclusive;

const RANGE: &str = "/proc/sys/net/ipv4/ip_local_port_range";
const RESERVED: &str = "/proc/sys/net/ipv4/ip_local_reserved_ports";

/// What to add to "address already in use" on `port`: why an outgoing
/// connection may hold it, if the system may have given it to one; else nothing.
pub fn in_use_hint(port: u16) -> String {
    let Ok(range) = std::fs::read_to_string(RANGE) else { return String::new() };
    let reserved = std::fs::read_to_string(RESERVED).unwrap_or_default();
    hint(port, &range, &reserved).unwrap_or_default()
}

fn hint(port: u16, range: &str, reserved: &str) -> Option<String> {
    let range = parse_range(range)?;
    if !range.contains(&port) || reserved_ports(reserved).any(|r| r.contains(&port)) {
        return None;
    }
    let (low, high) = (range.start(), range.end());
    Some(format!(
        "; port {port} lies in the range this system gives outgoing connections ({low}-{high}, \
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
        let text = hint(40_002, "32768\t60999\n", "\n").expect("in the range");
        assert!(
            text.contains("port 40002") && text.contains("32768-60999") && text.contains("below 32768"),
            "{text}"
        );
        assert_eq!(hint(31_000, "32768\t60999\n", ""), None, "below the range");
        assert_eq!(hint(40_002, "32768\t60999\n", "8080,40000-40010\n"), None, "reserved");
        assert!(hint(40_011, "32768\t60999\n", "8080,40000-40010\n").is_some());
        assert_eq!(hint(40_002, "not numbers", ""), None);
    }
}
