//! The in-kernel relay (issue 45) with peers on other hosts: each peer in a
//! network namespace of its own, joined to this one by a veth pair, as a
//! carrier's SBC and a caller would be on their own machines. A routed packet
//! from one peer leaves by the interface that reaches the other
//! (`bpf_redirect_neigh`), rewritten, without the stack forwarding it; its UDP
//! checksum, computed in full by a raw socket, is verified on arrival. Needs
//! root, clang, libbpf-dev, iproute2 and python3, as the test suite's machines
//! have (`scripts/test`).

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Child, ChildStdout, Command, Stdio};

use bond_tests::kernel_relay::{path_to, KernelRelay, Route};

use super::kernel_relay::{bound, route, rtp, udp_datagram};

/// Peer A's and peer B's RTP port, each in its own namespace.
const PEER_PORT: u16 = 5004;

/// Two hosts beside this one. Host `i` is namespace `{tag}h{i}`, reached
/// from here by the veth `{tag}v{i}` (10.231.{i+1}.1) whose far end is
/// 10.231.{i+1}.2; each host's default route points back here.
struct Hosts {
    tag: String,
}

impl Hosts {
    fn new() -> Self {
        let hosts = Self { tag: format!("bkr{}", std::process::id() % 100_000) };
        for i in 0..2 {
            let (ns, link, far) = (hosts.namespace(i), hosts.link(i), format!("{}p", hosts.link(i)));
            ip(&["netns", "add", &ns]);
            ip(&["link", "add", &link, "type", "veth", "peer", "name", &far]);
            ip(&["link", "set", &far, "netns", &ns]);
            ip(&["addr", "add", &format!("10.231.{}.1/24", i + 1), "dev", &link]);
            ip(&["link", "set", &link, "up"]);
            let inside = |args: &[&str]| ip(&[&["netns", "exec", &ns, "ip"], args].concat());
            inside(&["addr", "add", &format!("10.231.{}.2/24", i + 1), "dev", &far]);
            inside(&["link", "set", &far, "up"]);
            inside(&["route", "add", "default", "via", &format!("10.231.{}.1", i + 1)]);
        }
        hosts
    }

    fn namespace(&self, i: usize) -> String {
        format!("{}h{i}", self.tag)
    }

    fn link(&self, i: usize) -> String {
        format!("{}v{i}", self.tag)
    }

    fn here(i: usize) -> SocketAddrV4 {
        SocketAddrV4::new([10, 231, i as u8 + 1, 1].into(), 0)
    }

    fn peer(i: usize) -> SocketAddrV4 {
        SocketAddrV4::new([10, 231, i as u8 + 1, 2].into(), PEER_PORT)
    }

    fn ifindex(&self, i: usize) -> u32 {
        let path = format!("/sys/class/net/{}/ifindex", self.link(i));
        std::fs::read_to_string(&path).expect("ifindex").trim().parse().expect("a number")
    }

    /// `python3 -c script args` inside host `i`.
    fn python(&self, i: usize, script: &str, args: &[String]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.namespace(i), "python3", "-c", script])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 in the namespace")
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for i in 0..2 {
            // Deleting the namespace takes its end of the veth, and so the pair.
            let _ = Command::new("ip").args(["netns", "del", &self.namespace(i)]).status();
        }
    }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("iproute2");
    assert!(status.success(), "ip {args:?}");
}

/// Receives on PEER_PORT and prints `ready`, then a line per datagram
/// (`HEX FROM_IP FROM_PORT`) until none comes for a second.
const RECEIVER: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5004))
s.settimeout(1.0)
print("ready", flush=True)
try:
    while True:
        data, (host, port) = s.recvfrom(2048)
        print(data.hex(), host, port, flush=True)
except socket.timeout:
    pass
"#;

/// Sends argv[3] (hex) from PEER_PORT to argv[1]:argv[2] from an ordinary
/// socket (the checksum left to the stack), then the UDP datagrams argv[4:]
/// (hex, their checksums computed in full) from a raw socket.
const SENDER: &str = r#"
import socket, sys
relay, port = sys.argv[1], int(sys.argv[2])
plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
plain.bind(("10.231.1.2", 5004))
plain.sendto(bytes.fromhex(sys.argv[3]), (relay, port))
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
for datagram in sys.argv[4:]:
    raw.sendto(bytes.fromhex(datagram), (relay, 0))
"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn lines(stdout: ChildStdout) -> impl Iterator<Item = String> {
    BufReader::new(stdout).lines().map(|l| l.expect("a line"))
}

#[test]
fn a_routed_packet_leaves_for_a_peer_on_another_host_rewritten_with_a_sound_checksum() {
    let hosts = Hosts::new();
    let ((_relay_a, relay_a), (_relay_b, relay_b)) = (bound(Hosts::here(0)), bound(Hosts::here(1)));
    let mut relay = KernelRelay::start(&hosts.link(0)).expect("the relay program attaches");
    // The interface and source address the runtime routes a far peer by, as the kernel would pick them.
    let far = *Hosts::peer(1).ip();
    let path = Some((*relay_b.ip(), hosts.ifindex(1)));
    assert_eq!(path_to(*relay_b.ip(), far), path, "a relay port bound to the link's address");
    assert_eq!(path_to(Ipv4Addr::UNSPECIFIED, far), path, "one bound to every address");
    let route = Route { out_ifindex: hosts.ifindex(1), ..route(Hosts::peer(0), relay_b, Hosts::peer(1)) };
    relay.route(relay_a, &route).expect("route");

    let mut receiver = hosts.python(1, RECEIVER, &[]);
    let mut heard = lines(receiver.stdout.take().expect("stdout"));
    assert_eq!(heard.next().as_deref(), Some("ready"));
    // Sequence numbers 1, 2 and 3: plain, then raw with a spoiled checksum, then raw and sound.
    let packet = |seq| rtp(0, seq, 8_000, 0x1111_2222);
    let raw = |seq, spoil| hex(&udp_datagram(Hosts::peer(0), relay_a, &packet(seq), spoil));
    let args =
        [relay_a.ip().to_string(), relay_a.port().to_string(), hex(&packet(1)), raw(2, true), raw(3, false)];
    let sender = hosts.python(0, SENDER, &args);
    assert!(sender.wait_with_output().expect("the sender ran").status.success());

    let got: Vec<(Vec<u8>, String)> = heard
        .map(|line| {
            let mut fields = line.split(' ');
            let hex = fields.next().expect("data");
            let bytes =
                (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
            (bytes, fields.collect::<Vec<_>>().join(":"))
        })
        .collect();
    assert!(receiver.wait().expect("the receiver ran").success());
    let seqs: Vec<u16> = got.iter().map(|(p, _)| u16::from_be_bytes([p[2], p[3]])).collect();
    assert_eq!(
        seqs,
        [1_001, 1_003],
        "the ordinary and the sound datagram arrive, the spoiled one is dropped"
    );
    for (packet, from) in &got {
        assert_eq!(*from, relay_b.to_string(), "sent from the relay's far port");
        assert_eq!(packet[1], 0x80 | 8, "the marker kept, the far side's payload type");
        assert_eq!(u32::from_be_bytes(packet[8..12].try_into().unwrap()), 0xabcd_ef01);
        assert_eq!(packet[12..], rtp(0, 1, 8_000, 0x1111_2222)[12..], "the payload as it came");
    }
    assert_eq!(relay.forwarded(relay_a).expect("counts").0, 3, "all three were rewritten and sent on");
}
