// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// Every key and value of rlvs's BPF maps, in one place. The Rust side
// (src/maps.rs) mirrors each struct with #[repr(C)] and asserts the same
// sizes at compile time, so a field changed here and not there fails the
// build instead of corrupting a map.

#ifndef RLVS_MAPS_H
#define RLVS_MAPS_H

#include <linux/types.h>

#define RLVS_MAX_QUEUES 64
#define RLVS_MAX_IFACES 16
// The filter maps' default size; the daemon sets the real one at load
// time (--filter-entries).
#define RLVS_FILTER_ENTRIES 65536

// A (family, protocol, port, address) the filter matches: a virtual
// service, or a NAT/FULLNAT real server's source. family is 4 or 6; an
// IPv4 address fills the first 4 bytes of addr, the rest is zero.
struct rlvs_flow_key {
	__u8 family;
	__u8 proto;
	__u16 port; // network order
	__u8 addr[16];
};

// A director address (local) or a FULLNAT local address (laddrs).
struct rlvs_addr_key {
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

// ifaces: an array indexed by ifindex % RLVS_IFACE_SLOTS (an array lookup
// costs no hash, and is on every frame's way): the interface's index (a
// slot of another ifindex does not count), its MAC, and its block of xsks
// entries (slot * RLVS_MAX_QUEUES + queue; one program serves every
// interface, and a socket only takes frames of the device and queue it is
// bound to).
#define RLVS_IFACE_SLOTS 4096
struct rlvs_iface {
	__u32 ifindex;
	__u8 mac[6];
	__u16 slot;
};

// settings[0]: FULLNAT's local port range (host order).
struct rlvs_settings {
	__u16 lport_first;
	__u16 lport_last;
	__u32 pad;
};

// counters (per CPU): what the program did with frames.
enum rlvs_counter {
	RLVS_CNT_TO_ENGINE = 0,
	RLVS_CNT_PASSED = 1,
	// 2: unused (the fast path's packets are counted in dest_stats).
	// Found in the connection map but left to the engine (see punt()).
	RLVS_CNT_PUNTED = 3,
	// Owned traffic dropped for want of an engine socket (no daemon).
	RLVS_CNT_ORPHANED = 4,
	RLVS_CNT_MAX = 5,
};

// ---------------------------------------------------------------- fast path
//
// Bump when any struct below or the meaning of a field changes: a daemon
// finding pinned maps of another version refuses to adopt them.
#define RLVS_LAYOUT_VERSION 4
#define RLVS_MAGIC 0x726c7673 // "rlvs"

#define RLVS_MAX_CONNS 1048576
// hops: real servers' next hops below RLVS_LINK_HOPS, the links replies
// leave by (numbered by the director, 1-65535) from it.
#define RLVS_MAX_HOPS 131072
#define RLVS_LINK_HOPS 65536
#define RLVS_MAX_DESTS 65536

// meta[0]: what wrote the pinned maps.
struct rlvs_meta {
	__u32 magic;
	__u32 layout;
};

// conns6 (and, in a report, any family): one direction of a connection as
// its packets reach the director. IPv4 connections live in conns4, whose
// smaller key and value (below) keep a connection's kernel memory down.
struct rlvs_conn_key {
	__u8 family; // 4 or 6
	__u8 proto;
	__u16 pad;
	__u16 sport; // network order
	__u16 dport; // network order
	__u8 saddr[16];
	__u8 daddr[16];
};

enum rlvs_action {
	// Direct routing: the MAC addresses only.
	RLVS_ACT_DR = 1,
	// NAT towards the real server: destination address and port.
	RLVS_ACT_NAT_IN = 2,
	// NAT reply: source back to the virtual address and port; routed.
	RLVS_ACT_NAT_OUT = 3,
	// FULLNAT towards the real server: source to the local address and
	// port, destination to the real server; sequence and TSval offsets.
	RLVS_ACT_FNAT_IN = 4,
	// FULLNAT reply: source to the virtual service, destination to the
	// client; ack, SACK edges and TSecr offsets; routed.
	RLVS_ACT_FNAT_OUT = 5,
	// Tunnel: wrapped in IPv4 (IPIP) from saddr to daddr.
	RLVS_ACT_TUN_IPIP = 6,
	// Tunnel: IPv4, UDP to dport, GUE (variant 0, IPIP inside).
	RLVS_ACT_TUN_GUE = 7,
};

// flags of struct rlvs_conn
#define RLVS_CF_TS 0x01 // FULLNAT: TSval/TSecr offset applies

// What to do with a packet of that direction. Addresses and ports are
// the new ones (network order); unused fields are zero.
struct rlvs_conn {
	__u8 action;
	__u8 flags;
	__u16 pad;
	__u32 hop; // index into hops
	__u32 dest; // index into dest_stats and dest_up
	__u16 sport;
	__u16 dport;
	__u32 seq; // FULLNAT: added to seq (in), taken from ack/SACK (out)
	__u32 ts; // FULLNAT: added to TSval (in), taken from TSecr (out)
	__u8 saddr[16];
	__u8 daddr[16];
	// bpf_ktime_get_ns() of a recent packet (written when 1/8 s old).
	__u64 last_seen;
};

// conns4: the IPv4 form of the two above (addresses in network order).
struct rlvs_conn_key4 {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct rlvs_conn4 {
	__u8 action;
	__u8 flags;
	__u16 sport;
	__u16 dport;
	__u16 pad;
	__u32 hop;
	__u32 dest;
	__u32 seq;
	__u32 ts;
	__u32 saddr;
	__u32 daddr;
	__u64 last_seen;
};

// hops: where a packet leaves, and the MAC addresses it leaves with.
struct rlvs_hop {
	__u32 ifindex; // 0: unresolved, the packet goes to the engine
	__u8 src[6];
	__u8 dst[6];
	__u16 mtu;
	// A real server's slot: whose next hop it is (family 0: a link's
	// slot), so that a daemon taking over finds its numbering here.
	__u8 family;
	__u8 pad;
	__u8 addr[16];
};

// dest_ids: which real server of which service a destination number is,
// written by the engine when it first installs one of its connections, so
// that a daemon taking over can tell whose connections the entries are.
struct rlvs_dest_id {
	__u8 family; // 0: unused
	__u8 proto;
	__u16 vport; // host order
	__u16 dport; // host order
	__u16 pad;
	__u8 vaddr[16];
	__u8 daddr[16];
};

// dest_stats (per CPU): what the fast path forwarded per real server
// (indexed by the director's destination number); the engine adds the
// growth to the director's counters. dest_up: 1 while the real server is
// in its service; packets of a deleted one's connections go to the engine,
// which drops them as the kernel does.
struct rlvs_dest_stats {
	__u64 packets_in;
	__u64 bytes_in;
	__u64 packets_out;
	__u64 bytes_out;
};

// tcp_events (ring buffer): a FIN or RST the fast path forwarded, for the
// engine's TCP state machine.
struct rlvs_tcp_event {
	struct rlvs_conn_key key;
	__u8 flags; // the TCP flags byte
	__u8 pad[7];
};

_Static_assert(sizeof(struct rlvs_flow_key) == 20, "rlvs_flow_key");
_Static_assert(sizeof(struct rlvs_addr_key) == 20, "rlvs_addr_key");
_Static_assert(sizeof(struct rlvs_iface) == 12, "rlvs_iface");
_Static_assert(sizeof(struct rlvs_settings) == 8, "rlvs_settings");
_Static_assert(sizeof(struct rlvs_meta) == 8, "rlvs_meta");
_Static_assert(sizeof(struct rlvs_conn_key) == 40, "rlvs_conn_key");
_Static_assert(sizeof(struct rlvs_conn) == 64, "rlvs_conn");
_Static_assert(sizeof(struct rlvs_conn_key4) == 16, "rlvs_conn_key4");
_Static_assert(sizeof(struct rlvs_conn4) == 40, "rlvs_conn4");
_Static_assert(sizeof(struct rlvs_hop) == 36, "rlvs_hop");
_Static_assert(sizeof(struct rlvs_dest_id) == 40, "rlvs_dest_id");
_Static_assert(sizeof(struct rlvs_dest_stats) == 32, "rlvs_dest_stats");
_Static_assert(sizeof(struct rlvs_tcp_event) == 48, "rlvs_tcp_event");

#endif
