//! Just enough SIP over UDP for a load generator: build an INVITE, answer one,
//! acknowledge a 200 and read the media address out of SDP. The interop tests
//! use real user agents (sipp, baresip, PJSIP); this is only for driving many
//! calls from one process when measuring Bond's media path.

use std::net::SocketAddr;

/// One received SIP message: its first line and headers, and its body.
#[derive(Debug, Clone)]
pub struct Message {
    pub start: String,
    headers: Vec<(String, String)>,
    pub body: String,
}

impl Message {
    pub fn parse(datagram: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(datagram).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let start = lines.next()?.to_owned();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Some(Self { start, headers, body: body.to_owned() })
    }

    /// The first header called `name` (or its compact form).
    pub fn header(&self, name: &str) -> Option<&str> {
        let compact = match name {
            "via" => "v",
            "from" => "f",
            "to" => "t",
            "call-id" => "i",
            "contact" => "m",
            _ => "",
        };
        self.headers.iter().find(|(n, _)| n == name || n == compact).map(|(_, v)| v.as_str())
    }

    /// Every header called `name`, in order (Via may repeat).
    pub fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// A response's status code.
    pub fn status(&self) -> Option<u16> {
        self.start.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
    }

    /// A request's method.
    pub fn method(&self) -> Option<&str> {
        (!self.start.starts_with("SIP/2.0")).then(|| self.start.split(' ').next()).flatten()
    }

    /// The user part of a request's URI (`sip:user@host`).
    pub fn request_user(&self) -> Option<&str> {
        let uri = self.start.split(' ').nth(1)?;
        uri.strip_prefix("sip:")?.split('@').next()
    }

    /// The response to this request with `status`, a To tag and an optional SDP body.
    pub fn response(&self, status: &str, to_tag: &str, contact: SocketAddr, sdp: Option<&str>) -> String {
        let mut out = format!("SIP/2.0 {status}\r\n");
        for via in self.headers("via").chain(self.headers("v")) {
            out.push_str(&format!("Via: {via}\r\n"));
        }
        let to = self.header("to").unwrap_or_default();
        let to = if to.contains(";tag=") { to.to_owned() } else { format!("{to};tag={to_tag}") };
        for (name, value) in [
            ("From", self.header("from").unwrap_or_default()),
            ("To", &to),
            ("Call-ID", self.header("call-id").unwrap_or_default()),
            ("CSeq", self.header("cseq").unwrap_or_default()),
        ] {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(&format!("Contact: <sip:load@{contact}>\r\n"));
        finish(out, sdp)
    }
}

fn finish(mut out: String, sdp: Option<&str>) -> String {
    match sdp {
        Some(sdp) => out.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )),
        None => out.push_str("Content-Length: 0\r\n\r\n"),
    }
    out
}

/// An INVITE from `local` to `user` at `bond` carrying `sdp`.
pub fn invite(local: SocketAddr, bond: SocketAddr, user: &str, call_id: &str, sdp: &str) -> String {
    let out = format!(
        "INVITE sip:{user}@{bond} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:load@{local}>;tag=f-{call_id}\r\nTo: <sip:{user}@{bond}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:load@{local}>\r\n"
    );
    finish(out, Some(sdp))
}

/// The ACK for a 2xx answer to [`invite`].
pub fn ack(local: SocketAddr, bond: SocketAddr, ok: &Message) -> String {
    let call_id = ok.header("call-id").unwrap_or_default();
    let out = format!(
        "ACK sip:load@{bond} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-ack-{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n",
        ok.header("from").unwrap_or_default(),
        ok.header("to").unwrap_or_default(),
    );
    finish(out, None)
}

/// An audio SDP offering or answering `formats` (`(payload type, rtpmap)`) at `addr`.
pub fn sdp(addr: SocketAddr, formats: &[(u8, &str)]) -> String {
    let pts: Vec<String> = formats.iter().map(|(pt, _)| pt.to_string()).collect();
    let mut sdp = format!(
        "v=0\r\no=load 1 1 IN IP4 {ip}\r\ns=load\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {}\r\n",
        pts.join(" "),
        ip = addr.ip(),
        port = addr.port(),
    );
    for (pt, map) in formats {
        sdp.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
    }
    sdp.push_str("a=ptime:20\r\na=sendrecv\r\n");
    sdp
}

/// The audio address of an SDP body (`c=` and the `m=audio` port).
pub fn media_addr(sdp: &str) -> Option<SocketAddr> {
    let ip = sdp.lines().find_map(|l| l.trim().strip_prefix("c=IN IP4 "))?.trim();
    let port = sdp.lines().find_map(|l| l.strip_prefix("m=audio "))?.split(' ').next()?;
    format!("{ip}:{port}").parse().ok()
}

/// The payload type an SDP maps to `encoding` (say `opus/48000` or `telephone-event/8000`).
pub fn payload_type(sdp: &str, encoding: &str) -> Option<u8> {
    sdp.lines().find_map(|l| {
        let (pt, map) = l.trim().strip_prefix("a=rtpmap:")?.split_once(' ')?;
        map.to_ascii_lowercase()
            .starts_with(&encoding.to_ascii_lowercase())
            .then(|| pt.parse().ok())
            .flatten()
    })
}
