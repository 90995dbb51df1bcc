// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// The benchmark's reference forwarder: the least any XDP load balancer
// does for an established flow. Every frame for the VIP gets the two MAC
// addresses of the next hop and is redirected to its interface; nothing
// is looked up but one array entry. What rlvs's fast path adds on top
// (connection lookup, rewrites, counters) is measured against this.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct target {
	__u32 ifindex;
	__u32 vip; // network order
	__u8 src[6];
	__u8 dst[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct target);
} target SEC(".maps");

SEC("xdp")
int xdp_redirect_ref(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 zero = 0;
	struct target *t;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	t = bpf_map_lookup_elem(&target, &zero);
	if (!t || ip->daddr != t->vip)
		return XDP_PASS;
	__builtin_memcpy(eth->h_source, t->src, 6);
	__builtin_memcpy(eth->h_dest, t->dst, 6);
	return bpf_redirect(t->ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
