// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// rlvs's XDP program. Established connections the engine installed in
// `conns` are forwarded here (rlvs_fast.h). Everything else the director
// owns goes to the AF_XDP engine; the rest (ARP, VRRP, ICMP, management
// traffic, the director's own connections) passes to the kernel. What the
// director owns is what the AF_PACKET engine's nftables guard drops:
//
//   1. to a virtual service: daddr . proto . dport in services, or
//      daddr . proto in anyport (port-zero services);
//   2. a NAT reply: saddr . proto . sport in natreplies, and daddr is not
//      one of the director's own addresses (those are its health checks);
//   3. a FULLNAT reply: saddr . proto . sport in fnatsources, daddr in
//      laddrs and dport in the local port range.
//
// Only unicast frames to the receiving interface's own MAC qualify: a
// bridge flooding an unknown destination must not make two directors
// forward one packet. Fragments and IPv6 extension headers stay with the
// kernel. Every map is pinned (by name, in the daemon's directory on
// bpffs) with the program's links, so forwarding outlives the daemon: while
// none runs, installed connections are still forwarded here and other
// traffic the director owns is dropped rather than answered by the kernel.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "rlvs_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, RLVS_MAX_QUEUES * RLVS_MAX_IFACES);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RLVS_IFACE_SLOTS);
	__type(key, __u32);
	__type(value, struct rlvs_iface);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rlvs_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} meta SEC(".maps");

#define FLOW_MAP(name)                                  \
	struct {                                        \
		__uint(type, BPF_MAP_TYPE_HASH);        \
		__uint(max_entries, RLVS_FILTER_ENTRIES); \
		__type(key, struct rlvs_flow_key);      \
		__type(value, __u8);                    \
		__uint(pinning, LIBBPF_PIN_BY_NAME);    \
	} name SEC(".maps")

#define ADDR_MAP(name)                                  \
	struct {                                        \
		__uint(type, BPF_MAP_TYPE_HASH);        \
		__uint(max_entries, RLVS_FILTER_ENTRIES); \
		__type(key, struct rlvs_addr_key);      \
		__type(value, __u8);                    \
		__uint(pinning, LIBBPF_PIN_BY_NAME);    \
	} name SEC(".maps")

FLOW_MAP(services);
FLOW_MAP(anyport);
FLOW_MAP(natreplies);
FLOW_MAP(fnatsources);
ADDR_MAP(local);
ADDR_MAP(laddrs);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rlvs_settings);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RLVS_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

#include "rlvs_fast.h"

/* A byte swap's result is unbounded to older verifiers (Debian 12's 6.1
 * refuses "math between pkt pointer and register with unbounded min
 * value"): mask it behind a barrier the compiler cannot fold, so the
 * verifier sees 0..65535. */
static __always_inline __u32 bounded16(__u32 v)
{
	asm volatile("" : "+r"(v));
	return v & 0xffff;
}

static __always_inline int pass(void)
{
	count(RLVS_CNT_PASSED);
	return XDP_PASS;
}

// To the engine's socket for this queue. Without one (no daemon runs)
// the frame is dropped: the kernel would answer it with a reset.
static __always_inline int to_engine(struct xdp_md *ctx, const struct rlvs_iface *own)
{
	__u32 k = own->slot * RLVS_MAX_QUEUES + ctx->rx_queue_index;
	if (!bpf_map_lookup_elem(&xsks, &k)) {
		count(RLVS_CNT_ORPHANED);
		return XDP_DROP;
	}
	count(RLVS_CNT_TO_ENGINE);
	return bpf_redirect_map(&xsks, k, XDP_DROP);
}

static __always_inline int ours(struct xdp_md *ctx, __u8 family, __u8 proto,
				const __u8 *saddr, const __u8 *daddr, int alen,
				__u16 sport, __u16 dport)
{
	struct rlvs_flow_key fk = {};
	struct rlvs_addr_key ak = {};

	fk.family = family;
	fk.proto = proto;
	fk.port = dport;
	__builtin_memcpy(fk.addr, daddr, 16);
	if (alen == 4)
		__builtin_memset(fk.addr + 4, 0, 12);
	if (bpf_map_lookup_elem(&services, &fk))
		return 1;
	fk.port = 0;
	if (bpf_map_lookup_elem(&anyport, &fk))
		return 1;

	fk.port = sport;
	__builtin_memcpy(fk.addr, saddr, 16);
	if (alen == 4)
		__builtin_memset(fk.addr + 4, 0, 12);
	ak.family = family;
	__builtin_memcpy(ak.addr, daddr, 16);
	if (alen == 4)
		__builtin_memset(ak.addr + 4, 0, 12);
	if (bpf_map_lookup_elem(&natreplies, &fk) && !bpf_map_lookup_elem(&local, &ak))
		return 1;
	if (bpf_map_lookup_elem(&fnatsources, &fk) && bpf_map_lookup_elem(&laddrs, &ak)) {
		__u32 zero = 0;
		struct rlvs_settings *c = bpf_map_lookup_elem(&settings, &zero);
		__u16 p = bpf_ntohs(dport);
		if (c && p >= c->lport_first && p <= c->lport_last)
			return 1;
	}
	return 0;
}

SEC("xdp")
int rlvs_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 islot = ifindex % RLVS_IFACE_SLOTS;
	struct rlvs_iface *own;
	struct rlvs_conn_key key = {};
	struct pkt p = {};
	__u8 *saddr, *daddr;
	int alen;

	if ((void *)(eth + 1) > end)
		return pass();
	own = bpf_map_lookup_elem(&ifaces, &islot);
	if (!own || own->ifindex != ifindex)
		return pass();
	if (*(__u32 *)eth->h_dest != *(__u32 *)own->mac ||
	    *(__u16 *)(eth->h_dest + 4) != *(__u16 *)(own->mac + 4))
		return pass();
	p.end = end;
	p.eth = eth;
	p.l3 = eth + 1;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = p.l3;
		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return pass();
		if (ip->frag_off & bpf_htons(0x3fff))
			return pass();
		__u32 hl = ip->ihl * 4, tot = bounded16(bpf_ntohs(ip->tot_len));
		if (tot < hl || (void *)ip + tot > end)
			return pass();
		p.family = 4;
		p.proto = ip->protocol;
		p.l4 = (void *)ip + hl;
		p.l4len = tot - hl;
		p.iplen = tot;
		saddr = (__u8 *)&ip->saddr;
		daddr = (__u8 *)&ip->daddr;
		alen = 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = p.l3;
		if ((void *)(ip6 + 1) > end)
			return pass();
		__u32 plen = bounded16(bpf_ntohs(ip6->payload_len));
		if ((void *)(ip6 + 1) + plen > end)
			return pass();
		p.family = 6;
		p.proto = ip6->nexthdr;
		p.l4 = ip6 + 1;
		p.l4len = plen;
		p.iplen = plen + 40;
		saddr = (__u8 *)&ip6->saddr;
		daddr = (__u8 *)&ip6->daddr;
		alen = 16;
	} else {
		return pass();
	}
	if (p.proto == IPPROTO_TCP) {
		__u8 *tcp = p.l4;
		if ((void *)(tcp + 20) > end || p.l4len < 20)
			return pass();
		p.check = (__u16 *)(tcp + 16);
		p.tcp_flags = tcp[13];
	} else if (p.proto == IPPROTO_UDP) {
		__u8 *udp = p.l4;
		if ((void *)(udp + 8) > end || p.l4len < 8)
			return pass();
		p.check = (__u16 *)(udp + 6);
	} else {
		return pass();
	}
	__u16 *ports = p.l4;

	key.family = p.family;
	key.proto = p.proto;
	key.sport = ports[0];
	key.dport = ports[1];
	if (alen == 4) {
		struct rlvs_conn_key4 k4 = {};
		__builtin_memcpy(&k4.saddr, saddr, 4);
		__builtin_memcpy(&k4.daddr, daddr, 4);
		k4.sport = ports[0];
		k4.dport = ports[1];
		k4.proto = p.proto;
		struct rlvs_conn4 *c4 = bpf_map_lookup_elem(&conns4, &k4);
		if (c4) {
			// The IPv4 entry in the common form the fast path reads.
			struct rlvs_conn c = {};
			c.action = c4->action;
			c.flags = c4->flags;
			c.hop = c4->hop;
			c.dest = c4->dest;
			c.sport = c4->sport;
			c.dport = c4->dport;
			c.seq = c4->seq;
			c.ts = c4->ts;
			__builtin_memcpy(c.saddr, &c4->saddr, 4);
			__builtin_memcpy(c.daddr, &c4->daddr, 4);
			int r = fast_forward(ctx, &p, &c, &c4->last_seen);
			if (r != PUNT)
				return r;
			count(RLVS_CNT_PUNTED);
			return to_engine(ctx, own);
		}
		// A miss: the filter below wants the family-neutral key.
		__builtin_memcpy(key.saddr, saddr, 4);
		__builtin_memcpy(key.daddr, daddr, 4);
	} else {
		__builtin_memcpy(key.saddr, saddr, 16);
		__builtin_memcpy(key.daddr, daddr, 16);
		struct rlvs_conn *c = bpf_map_lookup_elem(&conns6, &key);
		if (c) {
			int r = fast_forward(ctx, &p, c, &c->last_seen);
			if (r != PUNT)
				return r;
			count(RLVS_CNT_PUNTED);
			return to_engine(ctx, own);
		}
	}
	if (ours(ctx, p.family, p.proto, key.saddr, key.daddr, alen, ports[0], ports[1]))
		return to_engine(ctx, own);
	return pass();
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
