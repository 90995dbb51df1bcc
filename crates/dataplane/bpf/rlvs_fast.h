// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// The fast path: a packet of a connection the engine installed in `conns`
// is rewritten and sent on here, without a trip through user space. The
// engine stays the authority: it installs an entry once a connection may
// be carried here (TCP established, UDP), removes it when the connection
// leaves that state or expires, and learns from `tcp_events` of the FINs
// and RSTs forwarded here. What this code cannot do safely goes to the
// engine instead ("punt"): SYNs (a new connection on a reused tuple),
// unresolved next hops, tunnelled packets that would not fit the MTU,
// checksum-partial packets too long to finish here, unaligned TCP options.

#ifndef RLVS_FAST_H
#define RLVS_FAST_H

#include "rlvs_csum.h"

#define PUNT (-1)
// barrier_var (bpf_helpers.h) makes the compiler forget what it knows of
// a variable, so that a mask after a test survives and tells the verifier
// the bound (clang would drop the mask as redundant and test a copy).
// A checksum-partial packet's L4 segment is summed here up to this length;
// longer ones go to the engine.
#define MAX_SUMMED 2048
// last_seen is written at most this often per entry (ns): a store per
// packet would bounce the entry's cache line between CPUs.
#define LAST_SEEN_GRAIN (1000000000ULL / 8)

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RLVS_MAX_CONNS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rlvs_conn_key4);
	__type(value, struct rlvs_conn4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conns4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RLVS_MAX_CONNS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rlvs_conn_key);
	__type(value, struct rlvs_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conns6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RLVS_MAX_HOPS);
	__type(key, __u32);
	__type(value, struct rlvs_hop);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hops SEC(".maps");

// Egress devices for bpf_redirect_map, keyed by ifindex.
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RLVS_MAX_DESTS);
	__type(key, __u32);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dest_up SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RLVS_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct rlvs_dest_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dest_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RLVS_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct rlvs_dest_id);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dest_ids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tcp_events SEC(".maps");

// A parsed packet: everything below was bounds-checked by the parser.
struct pkt {
	void *end;
	struct ethhdr *eth;
	void *l3;
	void *l4;
	__u16 *check; // the L4 checksum field (UDP: may be 0, "none")
	__u32 l4len; // from the L4 header to the end of the IP packet
	__u32 iplen; // the IP packet's length, as statistics count it
	__u8 family;
	__u8 proto;
	__u8 tcp_flags;
};

static __always_inline void count(__u32 k)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &k);
	if (n)
		*n += 1;
}

// The pseudo-header sum of the packet's current addresses.
static __always_inline __u64 pseudo_sum(const struct pkt *p)
{
	__u64 s;
	if (p->family == 4) {
		struct iphdr *ip = p->l3;
		s = csum_words((__u16 *)&ip->saddr, 4);
	} else {
		struct ipv6hdr *ip6 = p->l3;
		s = csum_words((__u16 *)&ip6->saddr, 16);
	}
	return s + bpf_htons(p->proto) + bpf_htons((__u16)p->l4len);
}

// Whether the L4 checksum holds only the pseudo-header sum, as a local
// stack sending through veth leaves it (CHECKSUM_PARTIAL; the skb that
// said so is gone in XDP). Finishing a complete checksum that happens to
// equal it would give the same value, so the test needs no full sum.
static __always_inline int is_partial(const struct pkt *p)
{
	if (p->proto == IPPROTO_UDP && *p->check == 0)
		return 0;
	return *p->check == csum_fold(pseudo_sum(p));
}

// The loops over packet bytes live in global functions, which the
// verifier checks once each, not once per path through the caller (it
// gave up on the inlined versions: "program too large").

#define FIN_UDP 1

// Computes the L4 checksum (its field `coff` bytes into the header) from
// scratch: `pseudo` is the pseudo-header sum, the segment starts `l4_off`
// bytes into the frame and is `len` bytes long.
static __always_inline int l4_finish_at(struct xdp_md *ctx, __u32 l4_off, __u32 len, __u32 pseudo, const int coff)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u64 s = pseudo;

	if (l4_off >= 128 || len > MAX_SUMMED)
		return -1;
	barrier_var(l4_off);
	barrier_var(len);
	l4_off &= 127;
	len &= 2 * MAX_SUMMED - 1;
	__u8 *l4 = data + l4_off;
	if ((void *)(l4 + coff + 2) > end)
		return -1;
	__u16 *check = (__u16 *)(l4 + coff);
	*check = 0;
	__u16 *w = (__u16 *)l4;
	for (int i = 0; i < MAX_SUMMED / 2; i++) {
		if (2 * i + 2 > len)
			break;
		if ((void *)(w + i + 1) > end)
			return -1;
		s += w[i];
	}
	if (len & 1) {
		__u8 *b = l4 + ((len - 1) & (MAX_SUMMED - 1));
		if ((void *)(b + 1) > end)
			return -1;
		s += *b;
	}
	__u16 c = ~csum_fold(s);
	if (coff == 6 && c == 0)
		c = 0xffff;
	l4 = (void *)(long)ctx->data + l4_off;
	if ((void *)(l4 + coff + 2) > (void *)(long)ctx->data_end)
		return -1;
	*(__u16 *)(l4 + coff) = c;
	return 0;
}

// The same for a TCP segment, or a UDP datagram with FIN_UDP: 0, or -1
// when it cannot be done here.
__attribute__((noinline)) int rlvs_l4_finish(struct xdp_md *ctx, __u32 l4_off, __u32 len, __u32 pseudo,
					     __u32 flags)
{
	if (flags & FIN_UDP)
		return l4_finish_at(ctx, l4_off, len, pseudo, 6);
	return l4_finish_at(ctx, l4_off, len, pseudo, 16);
}

static __always_inline int finish_checksum(struct xdp_md *ctx, struct pkt *p)
{
	__u32 off = (void *)p->l4 - (void *)(long)ctx->data;
	__u32 pseudo = csum_fold(pseudo_sum(p));
	return rlvs_l4_finish(ctx, off, p->l4len, pseudo, p->proto == IPPROTO_UDP ? FIN_UDP : 0) ? PUNT : 0;
}

// Replaces the packet's source or destination address and port, keeping
// the IPv4 header checksum and (unless it is left to finish) the L4 one.
static __always_inline void rewrite_endpoint(struct pkt *p, int source, const __u8 *addr, __u16 port,
					    int partial)
{
	__u16 *l4port = (__u16 *)p->l4 + (source ? 0 : 1);
	int l4sum = !partial && !(p->proto == IPPROTO_UDP && *p->check == 0);

	if (p->family == 4) {
		struct iphdr *ip = p->l3;
		__u32 *a = source ? &ip->saddr : &ip->daddr;
		__u32 old = *a, new;
		__builtin_memcpy(&new, addr, 4);
		ip->check = csum_replace32(ip->check, old, new);
		if (l4sum)
			*p->check = csum_replace32(*p->check, old, new);
		*a = new;
	} else {
		struct ipv6hdr *ip6 = p->l3;
		__u16 *a = (__u16 *)(source ? &ip6->saddr : &ip6->daddr);
		__u16 new[8];
		__builtin_memcpy(new, addr, 16);
		if (l4sum)
			*p->check = csum_replace(*p->check, a, new, 8);
		__builtin_memcpy(a, new, 16);
	}
	if (l4sum)
		*p->check = csum_replace16(*p->check, *l4port, port);
	*l4port = port;
}

// A routed packet loses a hop (the kernel's forward path does this before
// IPVS rewrites a reply). 0 when it had none left: the engine decides.
static __always_inline int hop_down(struct pkt *p)
{
	if (p->family == 4) {
		struct iphdr *ip = p->l3;
		if (ip->ttl <= 1)
			return 0;
		__u16 *word = (__u16 *)&ip->ttl; // ttl and protocol
		__u16 old = *word;
		ip->ttl--;
		ip->check = csum_replace16(ip->check, old, *word);
		return 1;
	}
	struct ipv6hdr *ip6 = p->l3;
	if (ip6->hop_limit <= 1)
		return 0;
	ip6->hop_limit--;
	return 1;
}

#define SEQ_TO_SERVER 1
#define SEQ_PARTIAL 2
#define SEQ_TS 4

// Adds `delta` to the 32-bit field at byte `at` of the TCP header at
// `l4_off` (`at` even), keeping the checksum unless it is left to finish.
__attribute__((noinline)) int rlvs_tcp_add32(struct xdp_md *ctx, __u32 l4_off, __u32 at, __u32 delta, __u32 flags)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (l4_off >= 128)
		return -1;
	barrier_var(l4_off);
	l4_off &= 127;
	__u8 *tcp = data + l4_off;
	__u32 *f = (__u32 *)(tcp + (at & 63));
	__u16 *check = (__u16 *)(tcp + 16);
	if ((void *)(f + 1) > end || (void *)(check + 1) > end)
		return -1;
	__u32 old = *f;
	__u32 new = bpf_htonl(bpf_ntohl(old) + delta);
	if (!(flags & SEQ_PARTIAL))
		*check = csum_replace32(*check, old, new);
	*f = new;
	return 0;
}

// FULLNAT's TCP translation (see lvs/src/fwd/tcpseq.rs): towards the real
// server seq and TSval gain the connection's offsets; towards the client
// ack, SACK edges and TSecr lose them. The options are read in the layout
// Linux and Windows send on established connections (NOP NOP TIMESTAMP,
// then NOP NOP SACK); any other layout is left to the engine, which walks
// options in full: a walk here would need a loop the verifier follows
// once per possible offset. 0, or -1 to leave it to the engine.
__attribute__((noinline)) int rlvs_tcp_seq(struct xdp_md *ctx, __u32 l4_off, __u32 seq, __u32 ts, __u32 flags)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	int to_server = flags & SEQ_TO_SERVER;

	if (l4_off >= 128)
		return -1;
	barrier_var(l4_off);
	l4_off &= 127;
	__u8 *tcp = data + l4_off;
	if ((void *)(tcp + 20) > end)
		return -1;
	__u32 hl = (tcp[12] >> 4) * 4;
	__u8 acks = tcp[13] & TCP_ACK;
	if (to_server) {
		if (rlvs_tcp_add32(ctx, l4_off, 4, seq, flags))
			return -1;
	} else if (acks) {
		if (rlvs_tcp_add32(ctx, l4_off, 8, -seq, flags))
			return -1;
	}
	if (hl <= 20)
		return 0;
	__u32 off = 20;
	tcp = (void *)(long)ctx->data + l4_off;
	end = (void *)(long)ctx->data_end;
	__u8 *o = tcp + 20;
	if ((void *)(o + 4) > end)
		return -1;
	if (hl >= 32 && o[0] == 1 && o[1] == 1 && o[2] == 8 && o[3] == 10) {
		if (flags & SEQ_TS) {
			if (to_server ? rlvs_tcp_add32(ctx, l4_off, 24, ts, flags) : rlvs_tcp_add32(ctx, l4_off, 28, -ts, flags))
				return -1;
		}
		off = 32;
	}
	tcp = (void *)(long)ctx->data + l4_off;
	end = (void *)(long)ctx->data_end;
	if (off + 4 <= hl) {
		o = tcp + (off & 63);
		if ((void *)(o + 4) > end)
			return -1;
		if (o[0] == 1 && o[1] == 1 && o[2] == 5) {
			__u8 len = o[3];
			if (len < 10 || (len - 2) % 8 || off + 2 + len > hl)
				return -1;
			if (!to_server) {
				for (int e = 0; e < 8; e++) {
					if (2 + 4 * e >= len)
						break;
					if (rlvs_tcp_add32(ctx, l4_off, off + 4 + 4 * e, -seq, flags))
						return -1;
				}
			}
			off += 2 + len;
		}
	}
	// Anything after what was read must be padding.
	tcp = (void *)(long)ctx->data + l4_off;
	end = (void *)(long)ctx->data_end;
	for (int i = 0; i < 40; i++) {
		if (off + i >= hl)
			break;
		__u8 *b = tcp + ((off + i) & 63);
		if ((void *)(b + 1) > end)
			return -1;
		if (*b > 1)
			return -1;
	}
	return 0;
}

static __always_inline int fullnat_seq(struct xdp_md *ctx, struct pkt *p, const struct rlvs_conn *c, int to_server,
				       int partial)
{
	__u32 off = (void *)p->l4 - (void *)(long)ctx->data;
	__u32 flags = (to_server ? SEQ_TO_SERVER : 0) | (partial ? SEQ_PARTIAL : 0) | ((c->flags & RLVS_CF_TS) ? SEQ_TS : 0);
	return rlvs_tcp_seq(ctx, off, c->seq, c->ts, flags) ? PUNT : 0;
}

// Wraps the (IPv4) packet for a tunnelling real server: IPIP, or GUE
// (UDP to c->dport, GUE variant 0 carrying IPIP).
static __always_inline int encapsulate(struct xdp_md *ctx, struct pkt *p, const struct rlvs_conn *c,
				       const struct rlvs_hop *hop)
{
	int gue = c->action == RLVS_ACT_TUN_GUE;
	int extra = gue ? 20 + 8 + 4 : 20;
	struct iphdr *inner = (void *)((struct ethhdr *)(long)ctx->data + 1);
	if ((void *)(inner + 1) > (void *)(long)ctx->data_end)
		return PUNT;
	__u16 inner_len = bpf_ntohs(inner->tot_len);
	__u8 tos = inner->tos, ttl = inner->ttl;
	__be16 df = inner->frag_off & bpf_htons(0x4000);

	if (p->family != 4 || inner_len + extra > hop->mtu)
		return PUNT;
	if (bpf_xdp_adjust_head(ctx, -extra))
		return PUNT;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return XDP_DROP;
	eth->h_proto = bpf_htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = tos;
	ip->tot_len = bpf_htons(inner_len + extra);
	ip->id = (__u16)bpf_get_prandom_u32();
	ip->frag_off = df;
	ip->ttl = ttl;
	ip->protocol = gue ? IPPROTO_UDP : IPPROTO_IPIP;
	ip->check = 0;
	__builtin_memcpy(&ip->saddr, c->saddr, 4);
	__builtin_memcpy(&ip->daddr, c->daddr, 4);
	ip->check = ~csum_fold(csum_words((__u16 *)ip, 10));
	if (gue) {
		__u16 *udp = (void *)(ip + 1);
		if ((void *)(udp + 6) > end)
			return XDP_DROP;
		udp[0] = c->dport;
		udp[1] = c->dport;
		udp[2] = bpf_htons(inner_len + 12);
		udp[3] = 0;
		__u8 *g = (void *)(udp + 4);
		g[0] = 0;
		g[1] = IPPROTO_IPIP;
		g[2] = 0;
		g[3] = 0;
	}
	p->eth = eth;
	return 0;
}

static __always_inline void add_stats(const struct rlvs_conn *c, __u32 bytes, int out)
{
	__u32 k = c->dest;
	struct rlvs_dest_stats *s = bpf_map_lookup_elem(&dest_stats, &k);
	if (!s)
		return;
	if (out) {
		s->packets_out++;
		s->bytes_out += bytes;
	} else {
		s->packets_in++;
		s->bytes_in += bytes;
	}
}

// The packet's 5-tuple in the form the ring buffer reports it.
static __always_inline void event_key(const struct pkt *p, struct rlvs_conn_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->family = p->family;
	k->proto = p->proto;
	k->sport = ((__u16 *)p->l4)[0];
	k->dport = ((__u16 *)p->l4)[1];
	if (p->family == 4) {
		struct iphdr *ip = p->l3;
		__builtin_memcpy(k->saddr, &ip->saddr, 4);
		__builtin_memcpy(k->daddr, &ip->daddr, 4);
	} else {
		struct ipv6hdr *ip6 = p->l3;
		__builtin_memcpy(k->saddr, &ip6->saddr, 16);
		__builtin_memcpy(k->daddr, &ip6->daddr, 16);
	}
}

// Forwards a packet of an installed connection `c` (its map entry's
// last_seen at `seen`), or returns PUNT.
static __always_inline int fast_forward(struct xdp_md *ctx, struct pkt *p, const struct rlvs_conn *c,
					__u64 *seen)
{
	__u32 hk = c->hop;
	struct rlvs_hop *hop = bpf_map_lookup_elem(&hops, &hk);
	int out = c->action == RLVS_ACT_NAT_OUT || c->action == RLVS_ACT_FNAT_OUT;
	int partial;

	if (!hop || !hop->ifindex)
		return PUNT;
	__u32 dk = c->dest;
	__u8 *up = bpf_map_lookup_elem(&dest_up, &dk);
	if (!up || !*up)
		return PUNT;
	// A SYN on an installed tuple is a connection starting over: the
	// engine's (it may schedule it anew).
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & TCP_SYN))
		return PUNT;
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FIN | TCP_RST))) {
		struct rlvs_tcp_event *ev = bpf_ringbuf_reserve(&tcp_events, sizeof(*ev), 0);
		if (!ev)
			return PUNT;
		event_key(p, &ev->key);
		ev->flags = p->tcp_flags;
		__builtin_memset(ev->pad, 0, sizeof(ev->pad));
		// Nobody sleeps on the ring: the engine reads it each time it
		// wakes. A wake-up would queue an irq_work, a self-interrupt per
		// FIN or RST (costly in a VM) for no reader.
		bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
	}
	partial = is_partial(p);
	if (partial && p->l4len > MAX_SUMMED)
		return PUNT;

	switch (c->action) {
	case RLVS_ACT_DR:
	case RLVS_ACT_TUN_IPIP:
	case RLVS_ACT_TUN_GUE:
		break;
	case RLVS_ACT_NAT_IN:
		rewrite_endpoint(p, 0, c->daddr, c->dport, partial);
		break;
	case RLVS_ACT_NAT_OUT:
		if (!hop_down(p))
			return PUNT;
		rewrite_endpoint(p, 1, c->saddr, c->sport, partial);
		break;
	case RLVS_ACT_FNAT_IN:
		if (p->proto == IPPROTO_TCP && fullnat_seq(ctx, p, c, 1, partial))
			return PUNT;
		rewrite_endpoint(p, 1, c->saddr, c->sport, partial);
		rewrite_endpoint(p, 0, c->daddr, c->dport, partial);
		break;
	case RLVS_ACT_FNAT_OUT:
		if (!hop_down(p))
			return PUNT;
		if (p->proto == IPPROTO_TCP && fullnat_seq(ctx, p, c, 0, partial))
			return PUNT;
		rewrite_endpoint(p, 1, c->saddr, c->sport, partial);
		rewrite_endpoint(p, 0, c->daddr, c->dport, partial);
		break;
	default:
		return PUNT;
	}
	if (partial && finish_checksum(ctx, p))
		return PUNT;
	__u32 bytes = p->iplen;
	if (c->action == RLVS_ACT_TUN_IPIP || c->action == RLVS_ACT_TUN_GUE) {
		int r = encapsulate(ctx, p, c, hop);
		if (r)
			return r;
	}
	// The calls above may have moved the frame: its header anew.
	struct ethhdr *eth = (void *)(long)ctx->data;
	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_source, hop->src, 6);
	__builtin_memcpy(eth->h_dest, hop->dst, 6);
	add_stats(c, bytes, out);
	// The coarse clock (CLOCK_MONOTONIC at tick resolution) is plenty for
	// a timer of seconds and much cheaper than the precise one.
	__u64 now = bpf_ktime_get_coarse_ns();
	if (now - *seen > LAST_SEEN_GRAIN)
		*seen = now;
	// Through the devmap even back out of the ingress device: veth wakes
	// its peer for an XDP_TX frame only if the peer runs XDP itself, but
	// flushes a redirected one to a peer with GRO as well.
	return bpf_redirect_map(&tx_ports, hop->ifindex, 0);
}

#endif
