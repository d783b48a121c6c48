//! Just enough STUN (RFC 8489) to route a datagram on the shared WebRTC port:
//! is it STUN, and whose ICE username fragment does it name?
//!
//! A connectivity check to Bond carries `USERNAME = <Bond's ufrag>:<peer's ufrag>`;
//! the part before the colon picks the leg. str0m does the real parsing and the
//! MESSAGE-INTEGRITY check afterwards.

const HEADER: usize = 20;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const USERNAME: u16 = 0x0006;

/// RFC 7983 demultiplexing: STUN messages start with 0..=3 and carry the magic cookie.
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER && datagram[0] < 4 && datagram[4..8] == MAGIC_COOKIE
}

/// The local (Bond's) ICE username fragment a STUN request names, if any.
pub fn local_ufrag(datagram: &[u8]) -> Option<&str> {
    if !is_stun(datagram) {
        return None;
    }
    let declared = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    let body = datagram.get(HEADER..HEADER + declared)?;
    let mut rest = body;
    while rest.len() >= 4 {
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        let value = rest.get(4..4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next().filter(|u| !u.is_empty());
        }
        let padded = (4 + len).div_ceil(4) * 4;
        rest = rest.get(padded..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, value) in attrs {
            body.extend_from_slice(&kind.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&(body.len() as u16).to_be_bytes());
        msg.extend_from_slice(&MAGIC_COOKIE);
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&body);
        msg
    }

    #[test]
    fn the_ufrag_before_the_colon_names_the_leg() {
        let msg = binding_request(&[(0x0024, &[0, 0, 0, 1]), (USERNAME, b"bondabcd:chrome12")]);
        assert!(is_stun(&msg));
        assert_eq!(local_ufrag(&msg), Some("bondabcd"));
    }

    #[test]
    fn rtp_dtls_and_truncated_messages_name_nobody() {
        let rtp = [0x80u8, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        assert_eq!(local_ufrag(&rtp), None);
        let dtls = [22u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(local_ufrag(&dtls), None);
        let msg = binding_request(&[(USERNAME, b"bondabcd:chrome12")]);
        for cut in 0..msg.len() {
            assert_eq!(local_ufrag(&msg[..cut]), None, "cut at {cut}");
        }
        assert_eq!(local_ufrag(&binding_request(&[(USERNAME, b":x")])), None);
        assert_eq!(local_ufrag(&binding_request(&[(0x8022, b"no username")])), None);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = bond_codecs::signals::SplitMix64::new(7);
        for _ in 0..20_000 {
            let len = (rng.next_u64() % 80) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if data.len() >= 8 {
                data[0] &= 3;
                data[4..8].copy_from_slice(&MAGIC_COOKIE);
            }
            let _ = local_ufrag(&data);
        }
    }
}
