//! rtpengine (Debian `rtpengine-daemon`) in userspace, driven over its ng
//! control protocol (bencoded dictionaries over UDP, each behind a cookie), so
//! a load tool can relay the same calls through it as through Bond.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::net::UdpSocket;

/// A bencoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Bencode {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Bencode>),
    Dict(BTreeMap<Vec<u8>, Bencode>),
}

impl Bencode {
    pub fn str(s: &str) -> Self {
        Self::Bytes(s.as_bytes().to_vec())
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Self::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Self::List(items) => {
                out.push(b'l');
                items.iter().for_each(|i| i.encode(out));
                out.push(b'e');
            }
            Self::Dict(entries) => {
                out.push(b'd');
                for (k, v) in entries {
                    Self::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Decode one value from the front of `input`; returns it and the rest.
    pub fn decode(input: &[u8]) -> Option<(Self, &[u8])> {
        match *input.first()? {
            b'i' => {
                let end = input.iter().position(|&b| b == b'e')?;
                let n = std::str::from_utf8(&input[1..end]).ok()?.parse().ok()?;
                Some((Self::Int(n), &input[end + 1..]))
            }
            b'l' | b'd' => {
                let dict = input[0] == b'd';
                let mut rest = &input[1..];
                let mut items = Vec::new();
                while *rest.first()? != b'e' {
                    let (item, r) = Self::decode(rest)?;
                    items.push(item);
                    rest = r;
                }
                let value = if dict {
                    let mut map = BTreeMap::new();
                    for pair in items.chunks(2) {
                        let [Self::Bytes(k), v] = pair else { return None };
                        map.insert(k.clone(), v.clone());
                    }
                    Self::Dict(map)
                } else {
                    Self::List(items)
                };
                Some((value, &rest[1..]))
            }
            _ => {
                let colon = input.iter().position(|&b| b == b':')?;
                let len: usize = std::str::from_utf8(&input[..colon]).ok()?.parse().ok()?;
                let bytes = input.get(colon + 1..colon + 1 + len)?;
                Some((Self::Bytes(bytes.to_vec()), &input[colon + 1 + len..]))
            }
        }
    }

    /// The string under `key` of a dictionary.
    pub fn get_str(&self, key: &str) -> Option<String> {
        match self {
            Self::Dict(map) => match map.get(key.as_bytes())? {
                Self::Bytes(b) => String::from_utf8(b.clone()).ok(),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A running `rtpengine --table=-1` (no kernel forwarding), killed when dropped.
#[derive(Debug)]
pub struct RtpEngine {
    child: Child,
    control: SocketAddr,
    socket: UdpSocket,
    next_cookie: u64,
}

impl Drop for RtpEngine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RtpEngine {
    /// Start it on 127.0.0.1 with media ports `ports` and the ng protocol on `control_port`.
    pub async fn start(control_port: u16, ports: (u16, u16)) -> Result<Self, String> {
        let child = Command::new("rtpengine")
            .args(["--table=-1", "--interface=127.0.0.1", "--foreground", "--log-stderr", "--log-level=3"])
            .arg(format!("--listen-ng=127.0.0.1:{control_port}"))
            .arg(format!("--port-min={}", ports.0))
            .arg(format!("--port-max={}", ports.1))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start rtpengine (Debian rtpengine-daemon): {e}"))?;
        let socket = UdpSocket::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let mut engine =
            Self { child, control: SocketAddr::from(([127, 0, 0, 1], control_port)), socket, next_cookie: 0 };
        for _ in 0..100 {
            let ping = Bencode::Dict([(b"command".to_vec(), Bencode::str("ping"))].into());
            if engine.request(&ping).await.is_ok() {
                return Ok(engine);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("rtpengine did not answer ping".into())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `offer` or `answer` for one side of a call; returns the SDP rtpengine rewrote.
    pub async fn negotiate(
        &mut self,
        command: &str,
        call_id: &str,
        tags: &[(&str, &str)],
        sdp: &str,
    ) -> Result<String, String> {
        let mut dict: BTreeMap<Vec<u8>, Bencode> = [
            (b"command".to_vec(), Bencode::str(command)),
            (b"call-id".to_vec(), Bencode::str(call_id)),
            (b"sdp".to_vec(), Bencode::str(sdp)),
        ]
        .into();
        for (k, v) in tags {
            dict.insert(k.as_bytes().to_vec(), Bencode::str(v));
        }
        let reply = self.request(&Bencode::Dict(dict)).await?;
        match reply.get_str("result").as_deref() {
            Some("ok") => reply.get_str("sdp").ok_or_else(|| "no sdp in reply".into()),
            _ => Err(format!("rtpengine {command}: {reply:?}")),
        }
    }

    async fn request(&mut self, message: &Bencode) -> Result<Bencode, String> {
        self.next_cookie += 1;
        let cookie = format!("c{}", self.next_cookie);
        let mut out = format!("{cookie} ").into_bytes();
        message.encode(&mut out);
        self.socket.send_to(&out, self.control).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 65_536];
        let read = tokio::time::timeout(Duration::from_secs(2), self.socket.recv(&mut buf)).await;
        let n = read.map_err(|_| "no reply".to_owned())?.map_err(|e| e.to_string())?;
        let body = buf[..n].strip_prefix(format!("{cookie} ").as_bytes()).ok_or("wrong cookie")?;
        Bencode::decode(body).map(|(v, _)| v).ok_or_else(|| "bad bencode".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bencode_round_trips() {
        let value = Bencode::Dict(
            [
                (b"a".to_vec(), Bencode::Int(-3)),
                (b"b".to_vec(), Bencode::List(vec![Bencode::str("x"), Bencode::str("")])),
            ]
            .into(),
        );
        let mut out = Vec::new();
        value.encode(&mut out);
        assert_eq!(out, b"d1:ai-3e1:bl1:x0:ee");
        assert_eq!(Bencode::decode(&out).unwrap().0, value);
    }
}
