// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// rlvs's XDP program: hands the AF_XDP engine exactly the frames it owns and
// passes everything else (ARP, VRRP, ICMP, management traffic, the
// director's own connections) to the kernel. The rules are those of the
// AF_PACKET engine's nftables guard, so both engines see the same traffic:
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
// kernel. The engine rewrites the maps when its tables change; the program
// is never reloaded.

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
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct rlvs_iface);
} ifaces SEC(".maps");

#define FLOW_MAP(name)                                  \
	struct {                                        \
		__uint(type, BPF_MAP_TYPE_HASH);        \
		__uint(max_entries, RLVS_FILTER_ENTRIES); \
		__type(key, struct rlvs_flow_key);      \
		__type(value, __u8);                    \
	} name SEC(".maps")

#define ADDR_MAP(name)                                  \
	struct {                                        \
		__uint(type, BPF_MAP_TYPE_HASH);        \
		__uint(max_entries, RLVS_FILTER_ENTRIES); \
		__type(key, struct rlvs_addr_key);      \
		__type(value, __u8);                    \
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
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RLVS_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline int pass(void)
{
	__u32 k = RLVS_CNT_PASSED;
	__u64 *n = bpf_map_lookup_elem(&counters, &k);
	if (n)
		*n += 1;
	return XDP_PASS;
}

static __always_inline int to_engine(struct xdp_md *ctx, const struct rlvs_iface *own)
{
	__u32 k = RLVS_CNT_TO_ENGINE;
	__u64 *n = bpf_map_lookup_elem(&counters, &k);
	if (n)
		*n += 1;
	// No socket on this queue (engine stopping): the kernel's, as before.
	return bpf_redirect_map(&xsks, own->slot * RLVS_MAX_QUEUES + ctx->rx_queue_index, XDP_PASS);
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
	struct rlvs_iface *own;
	__u8 saddr[16] = {}, daddr[16] = {};
	__u8 proto;
	void *l4;
	int alen;

	if ((void *)(eth + 1) > end)
		return pass();
	own = bpf_map_lookup_elem(&ifaces, &ifindex);
	if (!own)
		return pass();
	for (int i = 0; i < 6; i++)
		if (eth->h_dest[i] != own->mac[i])
			return pass();

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return pass();
		if (ip->frag_off & bpf_htons(0x3fff))
			return pass();
		proto = ip->protocol;
		__builtin_memcpy(saddr, &ip->saddr, 4);
		__builtin_memcpy(daddr, &ip->daddr, 4);
		l4 = (void *)ip + ip->ihl * 4;
		alen = 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return pass();
		proto = ip6->nexthdr;
		__builtin_memcpy(saddr, &ip6->saddr, 16);
		__builtin_memcpy(daddr, &ip6->daddr, 16);
		l4 = ip6 + 1;
		alen = 16;
	} else {
		return pass();
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return pass();
	// Source and destination ports lead both TCP and UDP headers.
	__u16 *ports = l4;
	if ((void *)(ports + 2) > end)
		return pass();
	if (ours(ctx, alen == 4 ? 4 : 6, proto, saddr, daddr, alen, ports[0], ports[1]))
		return to_engine(ctx, own);
	return pass();
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
