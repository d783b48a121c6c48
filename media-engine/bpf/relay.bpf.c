// Bond's in-kernel passthrough relay (media-engine/src/runtime/kernel_relay.rs
// loads it; build.rs compiles it with clang).
//
// A tc classifier on an interface's ingress. A UDP datagram addressed to a
// relay port that has a route, from the peer the route expects, carrying RTP on
// the route's payload type, is rewritten as the relay would send it to the
// bridged leg's peer: source and destination address and port, the payload
// type, the SSRC, the sequence number and timestamp moved by the route's
// offsets; the IP and UDP checksums follow. The packet then carries on up the
// stack, which delivers it to the new destination: on the loopback interface
// that is the far peer's socket, with no process woken on the way. Anything
// else (RTCP, telephone-events, other peers, other SSRCs) passes untouched to
// the next program on the interface and then to the relay's own socket.
//
// A route to a peer on another host names the interface that reaches it, and
// the rewritten packet leaves by it at once (bpf_redirect_neigh).

#include <stddef.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// Keep both layouts in step with kernel_relay.rs.
struct key {
    __be32 addr;
    __be16 port;
    __u16 pad;
};

struct route {
    __be32 peer_addr; // the source expected; 0: any
    __be16 peer_port; // 0: any
    __be16 out_sport;
    __be32 out_saddr;
    __be32 out_daddr;
    __be16 out_dport;
    __u8 in_pt;
    __u8 out_pt;
    __u32 in_ssrc; // the incoming stream the offsets were taken for; 0: any
    __u32 out_ssrc;
    __u32 ts_offset;
    __u16 seq_offset;
    __u16 pad;
    __u32 out_ifindex; // the interface the far peer is reached by; 0: this host
    // Held while a packet is counted; userspace sets `closed` under it to end
    // the route, after which no packet is counted or relayed by it.
    struct bpf_spin_lock lock;
    __u32 closed;
    __u32 clock_rate; // the incoming stream's RTP clock, Hz (0: no jitter kept)
    __u32 pad2;
};

// What a route relayed, kept apart from the route so that closing the route
// (a locked write of its whole value) does not overwrite it.
struct counts {
    __u64 packets;
    __u64 bytes;
    __u32 last_ts;  // the newest packet written: its timestamp and sequence
    __u16 last_seq; // number, so userspace can go on from it when the route
    __u16 sent;     // is removed; sent: 0 until a packet has been written
    // The incoming stream's interarrival jitter (RFC 3550 A.8): the last
    // packet's arrival and timestamp, and the estimate in clock units x 16.
    __u64 last_arrival_ns;
    __u32 last_in_ts;
    __u32 jitter_q4;
};
_Static_assert(sizeof(struct key) == 8, "key layout");
_Static_assert(offsetof(struct route, out_ifindex) == 36 && offsetof(struct route, closed) == 44
               && offsetof(struct route, clock_rate) == 48 && sizeof(struct route) == 56, "route layout");
_Static_assert(offsetof(struct counts, last_ts) == 16 && offsetof(struct counts, last_seq) == 20
               && offsetof(struct counts, last_arrival_ns) == 24 && offsetof(struct counts, jitter_q4) == 36
               && sizeof(struct counts) == 40, "counts layout");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, struct key);
    __type(value, struct route);
} routes SEC(".maps");

// Under the same key as the route.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, struct key);
    __type(value, struct counts);
} counts SEC(".maps");

#define IP_OFF ETH_HLEN
#define UDP_OFF (IP_OFF + sizeof(struct iphdr))
#define RTP_OFF (UDP_OFF + sizeof(struct udphdr))
#define RTP_HEADER 12
#define IP_CSUM (IP_OFF + offsetof(struct iphdr, check))
#define UDP_CSUM (UDP_OFF + offsetof(struct udphdr, check))
#define L4 BPF_F_MARK_MANGLED_0
// A packet this program does not relay goes on to the interface's next
// program (TCX_NEXT), if there is one, and then up the stack as it came.
#define NOT_MINE TC_ACT_UNSPEC

SEC("classifier")
int relay(struct __sk_buff *skb)
{
    void *data = (void *)(long)skb->data;
    void *end = (void *)(long)skb->data_end;
    if (data + RTP_OFF + RTP_HEADER > end)
        return NOT_MINE;
    struct ethhdr *eth = data;
    struct iphdr *ip = data + IP_OFF;
    struct udphdr *udp = data + UDP_OFF;
    __u8 *rtp = data + RTP_OFF;
    if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_UDP
        || (ip->frag_off & bpf_htons(0x3fff)))
        return NOT_MINE;

    // A relay port bound to every address (0.0.0.0) is routed under address 0.
    struct key key = { .addr = ip->daddr, .port = udp->dest, .pad = 0 };
    struct route *r = bpf_map_lookup_elem(&routes, &key);
    if (!r) {
        key.addr = 0;
        r = bpf_map_lookup_elem(&routes, &key);
    }
    if (!r)
        return NOT_MINE;
    if ((r->peer_addr && r->peer_addr != ip->saddr) || (r->peer_port && r->peer_port != udp->source))
        return NOT_MINE;
    if ((rtp[0] >> 6) != 2 || (rtp[1] & 0x7f) != r->in_pt)
        return NOT_MINE;

    __be32 old_saddr = ip->saddr, old_daddr = ip->daddr;
    __be16 old_sport = udp->source, old_dport = udp->dest;
    __be16 old_first, old_seq;
    __be32 old_ts, old_ssrc;
    __builtin_memcpy(&old_first, rtp, 2);
    __builtin_memcpy(&old_seq, rtp + 2, 2);
    __builtin_memcpy(&old_ts, rtp + 4, 4);
    __builtin_memcpy(&old_ssrc, rtp + 8, 4);
    if (r->in_ssrc && bpf_ntohl(old_ssrc) != r->in_ssrc)
        return NOT_MINE;

    __be32 saddr = r->out_saddr, daddr = r->out_daddr;
    __be16 sport = r->out_sport, dport = r->out_dport;
    __be16 first = bpf_htons((bpf_ntohs(old_first) & 0xff80) | r->out_pt);
    __be16 seq = bpf_htons((__u16)(bpf_ntohs(old_seq) + r->seq_offset));
    __be32 ts = bpf_htonl(bpf_ntohl(old_ts) + r->ts_offset);
    __be32 ssrc = bpf_htonl(r->out_ssrc);

    // Count the packet before it is relayed, under the route's lock: once
    // userspace has closed the route, no packet is relayed that its last
    // counts do not hold, so the leg's own stream goes on after every one.
    struct counts *c = bpf_map_lookup_elem(&counts, &key);
    if (!c)
        return NOT_MINE;
    __u16 out_seq = bpf_ntohs(seq);
    __u32 len = skb->len;
    __u64 arrival = bpf_ktime_get_ns();
    __u32 in_ts = bpf_ntohl(old_ts);
    bpf_spin_lock(&r->lock);
    if (r->closed) {
        bpf_spin_unlock(&r->lock);
        return NOT_MINE;
    }
    if (c->packets && r->clock_rate) {
        // D(i-1, i): the arrival gap less the timestamp gap, in clock units.
        __u64 gap = (arrival - c->last_arrival_ns) * r->clock_rate / 1000000000ULL;
        __s64 d = (__s64)gap - (__s32)(in_ts - c->last_in_ts);
        if (d < 0)
            d = -d;
        if (d > 0x7fffffff)
            d = 0x7fffffff;
        c->jitter_q4 += (__u32)d - ((c->jitter_q4 + 8) >> 4);
    }
    c->last_arrival_ns = arrival;
    c->last_in_ts = in_ts;
    c->packets += 1;
    c->bytes += len;
    // The newest by sequence number (a late packet does not move it back).
    if (!c->sent || (__s16)(out_seq - c->last_seq) > 0) {
        c->last_seq = out_seq;
        c->last_ts = bpf_ntohl(ts);
        c->sent = 1;
    }
    bpf_spin_unlock(&r->lock);

    // The checksums first (these helpers know a loopback packet's checksum is
    // still to be completed and touch only what they must), then the fields.
    bpf_l3_csum_replace(skb, IP_CSUM, old_saddr, saddr, 4);
    bpf_l3_csum_replace(skb, IP_CSUM, old_daddr, daddr, 4);
    bpf_l4_csum_replace(skb, UDP_CSUM, old_saddr, saddr, L4 | BPF_F_PSEUDO_HDR | 4);
    bpf_l4_csum_replace(skb, UDP_CSUM, old_daddr, daddr, L4 | BPF_F_PSEUDO_HDR | 4);
    bpf_l4_csum_replace(skb, UDP_CSUM, old_sport, sport, L4 | 2);
    bpf_l4_csum_replace(skb, UDP_CSUM, old_dport, dport, L4 | 2);
    bpf_l4_csum_replace(skb, UDP_CSUM, old_first, first, L4 | 2);
    bpf_l4_csum_replace(skb, UDP_CSUM, old_seq, seq, L4 | 2);
    bpf_l4_csum_replace(skb, UDP_CSUM, old_ts, ts, L4 | 4);
    bpf_l4_csum_replace(skb, UDP_CSUM, old_ssrc, ssrc, L4 | 4);
    bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, saddr), &saddr, 4, 0);
    bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, daddr), &daddr, 4, 0);
    bpf_skb_store_bytes(skb, UDP_OFF + offsetof(struct udphdr, source), &sport, 2, 0);
    bpf_skb_store_bytes(skb, UDP_OFF + offsetof(struct udphdr, dest), &dport, 2, 0);
    bpf_skb_store_bytes(skb, RTP_OFF, &first, 2, 0);
    bpf_skb_store_bytes(skb, RTP_OFF + 2, &seq, 2, 0);
    bpf_skb_store_bytes(skb, RTP_OFF + 4, &ts, 4, 0);
    bpf_skb_store_bytes(skb, RTP_OFF + 8, &ssrc, 4, 0);

    // A peer on this host: up the stack, which delivers it to the peer's
    // socket. Another host: straight out of the interface that reaches it,
    // the link-layer header filled in from the neighbour table (no forwarding
    // by the stack, so no ip_forward needed).
    if (r->out_ifindex)
        return bpf_redirect_neigh(r->out_ifindex, NULL, 0, 0);
    return TC_ACT_OK;
}

// Bond's own licence: the program calls no helper the kernel keeps for GPL code.
char LICENSE[] SEC("license") = "Apache-2.0";
