//! Reading SDP text. Unknown lines and attributes are skipped (RFC 8866 §5);
//! malformed ones that Bond relies on are refused with the line number.

use std::net::IpAddr;

use super::{Direction, MediaDescription, RtpMap, SdpError, SessionDescription, MAX_SDP_LEN};

/// More `m=` sections than any audio call needs.
const MAX_MEDIA: usize = 16;
/// More formats than one `m=` line needs.
const MAX_FORMATS: usize = 64;

impl SessionDescription {
    pub fn parse(body: &[u8]) -> Result<Self, SdpError> {
        if body.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLong);
        }
        let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
        let mut session = SessionDescription {
            origin_session_id: 0,
            origin_version: 0,
            connection: None,
            direction: None,
            media: Vec::new(),
        };
        let mut seen_version = false;
        let mut seen_origin = false;
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.is_empty() {
                continue;
            }
            let fail = |reason: &str| SdpError::Line { line, reason: reason.to_owned() };
            let (kind, value) = raw.split_once('=').ok_or_else(|| fail("expected <type>=<value>"))?;
            if kind.len() != 1 {
                return Err(fail("the type must be one letter"));
            }
            match kind {
                "v" => {
                    if value != "0" {
                        return Err(fail("only SDP version 0 exists"));
                    }
                    seen_version = true;
                }
                "o" => {
                    let fields: Vec<&str> = value.split(' ').collect();
                    if fields.len() != 6 {
                        return Err(fail("o= needs six fields"));
                    }
                    session.origin_session_id = fields[1].parse().map_err(|_| fail("bad session id"))?;
                    session.origin_version = fields[2].parse().map_err(|_| fail("bad session version"))?;
                    seen_origin = true;
                }
                "c" => {
                    let address = parse_connection(value).map_err(|r| fail(&r))?;
                    match session.media.last_mut() {
                        Some(media) => media.connection = Some(address),
                        None => session.connection = Some(address),
                    }
                }
                "m" => {
                    if session.media.len() >= MAX_MEDIA {
                        return Err(fail("too many m= sections"));
                    }
                    session.media.push(parse_media(value).map_err(|r| fail(&r))?);
                }
                "a" => {
                    let target = session.media.last_mut();
                    parse_attribute(value, target, &mut session.direction).map_err(|r| fail(&r))?;
                }
                _ => {} // s=, t=, b=, i=, ... carry nothing Bond uses
            }
        }
        if !seen_version {
            return Err(SdpError::Missing("v="));
        }
        if !seen_origin {
            return Err(SdpError::Missing("o="));
        }
        Ok(session)
    }
}

/// `IN IP4 192.0.2.1` (a multicast `/ttl` suffix is ignored).
fn parse_connection(value: &str) -> Result<IpAddr, String> {
    let mut fields = value.split(' ');
    let (Some("IN"), Some(kind), Some(address)) = (fields.next(), fields.next(), fields.next()) else {
        return Err("c= must be 'IN IP4|IP6 <address>'".to_owned());
    };
    let address = address.split('/').next().unwrap_or(address);
    let ip: IpAddr = address.parse().map_err(|_| format!("'{address}' is not an IP address"))?;
    match (kind, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        _ => Err(format!("address type {kind} does not match '{address}'")),
    }
}

/// `audio 49170 RTP/AVP 0 8 101`
fn parse_media(value: &str) -> Result<MediaDescription, String> {
    let mut fields = value.split(' ').filter(|f| !f.is_empty());
    let (Some(media), Some(port), Some(protocol)) = (fields.next(), fields.next(), fields.next()) else {
        return Err("m= needs media, port and protocol".to_owned());
    };
    let port = port.split('/').next().unwrap_or(port);
    let port: u16 = port.parse().map_err(|_| format!("'{port}' is not a port"))?;
    let mut formats = Vec::new();
    for format in fields {
        if formats.len() >= MAX_FORMATS {
            return Err("too many formats".to_owned());
        }
        // Non-RTP protocols have non-numeric formats; they are kept out.
        if let Ok(pt) = format.parse::<u8>() {
            if pt < 128 {
                formats.push(pt);
            }
        }
    }
    Ok(MediaDescription {
        media: media.to_owned(),
        port,
        protocol: protocol.to_owned(),
        formats,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        ptime: None,
        maxptime: None,
        direction: None,
        connection: None,
        rtcp_mux: false,
        crypto: Vec::new(),
    })
}

fn parse_attribute(
    value: &str,
    media: Option<&mut MediaDescription>,
    session_direction: &mut Option<Direction>,
) -> Result<(), String> {
    let (name, rest) = value.split_once(':').unwrap_or((value, ""));
    let direction = match name {
        "sendrecv" => Some(Direction::SendRecv),
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "inactive" => Some(Direction::Inactive),
        _ => None,
    };
    let Some(media) = media else {
        if direction.is_some() {
            *session_direction = direction;
        }
        return Ok(());
    };
    if direction.is_some() {
        media.direction = direction;
        return Ok(());
    }
    match name {
        "rtpmap" => {
            if media.rtpmaps.len() >= MAX_FORMATS {
                return Err("too many rtpmap attributes".to_owned());
            }
            media.rtpmaps.push(parse_rtpmap(rest)?);
        }
        "fmtp" => {
            if media.fmtps.len() >= MAX_FORMATS {
                return Err("too many fmtp attributes".to_owned());
            }
            let (pt, params) = rest.split_once(' ').ok_or("fmtp needs a payload type and parameters")?;
            let pt = parse_pt(pt)?;
            media.fmtps.push((pt, params.trim().to_owned()));
        }
        "ptime" => media.ptime = Some(parse_ms(name, rest)?),
        "maxptime" => media.maxptime = Some(parse_ms(name, rest)?),
        "rtcp-mux" => media.rtcp_mux = true,
        "crypto" => {
            if media.crypto.len() >= MAX_FORMATS {
                return Err("too many crypto attributes".to_owned());
            }
            media.crypto.extend(super::Crypto::parse(rest)?);
        }
        _ => {}
    }
    Ok(())
}

/// A packet time in ms (`a=ptime`, `a=maxptime`).
fn parse_ms(name: &str, value: &str) -> Result<u32, String> {
    value.trim().parse().map_err(|_| format!("'{value}' is not a {name}"))
}

/// `0 PCMU/8000`, `111 opus/48000/2`
fn parse_rtpmap(value: &str) -> Result<RtpMap, String> {
    let (pt, encoding) = value.split_once(' ').ok_or("rtpmap needs a payload type and an encoding")?;
    let payload_type = parse_pt(pt)?;
    let mut parts = encoding.trim().split('/');
    let name = parts.next().unwrap_or_default();
    let clock = parts.next().ok_or("rtpmap needs a clock rate")?;
    let clock_rate: u32 = clock.parse().map_err(|_| format!("'{clock}' is not a clock rate"))?;
    let channels = match parts.next() {
        Some(c) => Some(c.parse::<u8>().map_err(|_| format!("'{c}' is not a channel count"))?),
        None => None,
    };
    if name.is_empty() || clock_rate == 0 {
        return Err("rtpmap needs an encoding name and a clock rate".to_owned());
    }
    Ok(RtpMap { payload_type, encoding: name.to_owned(), clock_rate, channels })
}

fn parse_pt(value: &str) -> Result<u8, String> {
    match value.trim().parse::<u8>() {
        Ok(pt) if pt < 128 => Ok(pt),
        _ => Err(format!("'{value}' is not a payload type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 123 7 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
        m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-16\r\na=ptime:20\r\na=sendonly\r\n";

    #[test]
    fn reads_a_typical_trunk_offer() {
        let sdp = SessionDescription::parse(OFFER.as_bytes()).unwrap();
        assert_eq!(sdp.origin_session_id, 123);
        assert_eq!(sdp.origin_version, 7);
        assert_eq!(sdp.connection, Some("10.0.0.5".parse().unwrap()));
        let audio = &sdp.media[0];
        assert_eq!((audio.port, audio.formats.as_slice()), (40000, &[8, 0, 101][..]));
        assert_eq!(audio.rtpmap(0).unwrap().encoding, "PCMU", "static type without rtpmap");
        assert_eq!(audio.rtpmap(101).unwrap().encoding, "telephone-event");
        assert_eq!(audio.fmtp(101), Some("0-16"));
        assert_eq!(audio.ptime, Some(20));
        assert_eq!(audio.direction, Some(Direction::SendOnly));
    }

    #[test]
    fn bare_newlines_and_media_level_connection_are_accepted() {
        let text = "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nm=audio 5004 RTP/AVP 0\nc=IN IP6 ::1\n";
        let sdp = SessionDescription::parse(text.as_bytes()).unwrap();
        assert_eq!(sdp.connection, None);
        assert_eq!(sdp.media[0].connection, Some("::1".parse().unwrap()));
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let cases: &[(&str, usize)] = &[
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio port RTP/AVP 0\r\n", 3),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 not-an-ip\r\n", 3),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n", 4),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:300 X/8000\r\n", 4),
            ("v=0\r\ngarbage\r\n", 2),
            ("v=1\r\n", 1),
        ];
        for (text, line) in cases {
            match SessionDescription::parse(text.as_bytes()) {
                Err(SdpError::Line { line: got, .. }) => assert_eq!(got, *line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn required_lines_and_size_are_enforced() {
        assert_eq!(SessionDescription::parse(b"o=- 1 1 IN IP4 1.2.3.4\r\n"), Err(SdpError::Missing("v=")));
        assert_eq!(SessionDescription::parse(b"v=0\r\n"), Err(SdpError::Missing("o=")));
        assert_eq!(SessionDescription::parse(&vec![b'a'; MAX_SDP_LEN + 1]), Err(SdpError::TooLong));
        assert_eq!(SessionDescription::parse(&[0xff, 0xfe]), Err(SdpError::NotText));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = bond_codecs::signals::SplitMix64::new(7);
        let base = OFFER.as_bytes();
        for _ in 0..20_000 {
            let mut body = base.to_vec();
            for _ in 0..(rng.next_u64() % 8) {
                let at = (rng.next_u64() as usize) % body.len();
                body[at] = rng.next_u64() as u8;
            }
            let cut = (rng.next_u64() as usize) % (body.len() + 1);
            let _ = SessionDescription::parse(&body[..cut]);
        }
    }
}
