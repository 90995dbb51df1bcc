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

// ifaces: ifindex -> the interface's MAC and its block of xsks entries
// (slot * RLVS_MAX_QUEUES + queue; one program serves every interface, and
// a socket only takes frames of the device and queue it is bound to).
struct rlvs_iface {
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
	RLVS_CNT_MAX = 2,
};

_Static_assert(sizeof(struct rlvs_flow_key) == 20, "rlvs_flow_key");
_Static_assert(sizeof(struct rlvs_addr_key) == 20, "rlvs_addr_key");
_Static_assert(sizeof(struct rlvs_iface) == 8, "rlvs_iface");
_Static_assert(sizeof(struct rlvs_settings) == 8, "rlvs_settings");

#endif
