//! The Rust side of bpf/rlvs_maps.h: every BPF map key and value, with the
//! sizes the C header asserts checked here at compile time too.

use rlvs_lvs::Protocol;
use std::net::IpAddr;

pub const MAX_QUEUES: u32 = 64;
pub const MAX_IFACES: u16 = 16;
/// The filter maps' size unless the daemon is told otherwise.
pub const FILTER_ENTRIES: u32 = 65_536;

#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FlowKey {
    pub family: u8,
    pub proto: u8,
    /// Network order.
    pub port: u16,
    pub addr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct AddrKey {
    pub family: u8,
    pub pad: [u8; 3],
    pub addr: [u8; 16],
}

/// `ifaces` is an array indexed by ifindex % IFACE_SLOTS.
pub const IFACE_SLOTS: u32 = 4096;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Iface {
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub slot: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub lport_first: u16,
    pub lport_last: u16,
    pub pad: u32,
}

/// Indexes of the per-CPU `counters` array.
pub const CNT_TO_ENGINE: u32 = 0;
pub const CNT_PASSED: u32 = 1;

const _: () = assert!(std::mem::size_of::<FlowKey>() == 20);
const _: () = assert!(std::mem::size_of::<AddrKey>() == 20);
const _: () = assert!(std::mem::size_of::<Iface>() == 12);
const _: () = assert!(std::mem::size_of::<Settings>() == 8);

// SAFETY: plain C structs without padding (the sizes above are the sums of
// their fields), so every byte the kernel copies is initialised.
unsafe impl aya::Pod for FlowKey {}
unsafe impl aya::Pod for AddrKey {}
unsafe impl aya::Pod for Iface {}
unsafe impl aya::Pod for Settings {}

fn addr_bytes(a: IpAddr) -> (u8, [u8; 16]) {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(v) => {
            b[..4].copy_from_slice(&v.octets());
            (4, b)
        }
        IpAddr::V6(v) => (6, v.octets()),
    }
}

impl FlowKey {
    /// None for protocols the program does not look at (it passes them).
    pub fn new(addr: IpAddr, protocol: Protocol, port: u16) -> Option<FlowKey> {
        if !matches!(protocol, Protocol::Tcp | Protocol::Udp) {
            return None;
        }
        let (family, addr) = addr_bytes(addr);
        Some(FlowKey { family, proto: protocol.number(), port: port.to_be(), addr })
    }
}

impl AddrKey {
    pub fn new(a: IpAddr) -> AddrKey {
        let (family, addr) = addr_bytes(a);
        AddrKey { family, pad: [0; 3], addr }
    }
}

// ------------------------------------------------------------- fast path

/// Bumped with any change to the structs below (rlvs_maps.h says the same).
pub const LAYOUT_VERSION: u32 = 4;
pub const MAGIC: u32 = 0x726c_7673;
pub const MAX_CONNS: u32 = 1_048_576;
/// What a connection costs in the pinned maps, at most: an entry for its
/// requests and one for its replies, each a hash element's header (48
/// bytes in the kernel's htab_elem) with the IPv6 key and value.
pub const BPF_BYTES_PER_CONN: u64 = 2 * (48 + std::mem::size_of::<ConnKey>() + std::mem::size_of::<Conn>()) as u64;
pub const MAX_HOPS: u32 = 131_072;
/// Hop slots of return links start here (at 65,536 + the director's link
/// number); real servers' next hops take the slots below.
pub const LINK_HOPS: u32 = 65_536;
pub const MAX_DESTS: u32 = 65_536;
pub const CNT_PUNTED: u32 = 3;
pub const CNT_ORPHANED: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub magic: u32,
    pub layout: u32,
}

#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct ConnKey {
    pub family: u8,
    pub proto: u8,
    pub pad: u16,
    /// Network order.
    pub sport: u16,
    /// Network order.
    pub dport: u16,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

pub mod action {
    pub const DR: u8 = 1;
    pub const NAT_IN: u8 = 2;
    pub const NAT_OUT: u8 = 3;
    pub const FNAT_IN: u8 = 4;
    pub const FNAT_OUT: u8 = 5;
    pub const TUN_IPIP: u8 = 6;
    pub const TUN_GUE: u8 = 7;
}

/// `Conn::flags`: FULLNAT's timestamp offset applies.
pub const CF_TS: u8 = 0x01;

#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Conn {
    pub action: u8,
    pub flags: u8,
    pub pad: u16,
    pub hop: u32,
    pub dest: u32,
    /// Network order.
    pub sport: u16,
    /// Network order.
    pub dport: u16,
    pub seq: u32,
    pub ts: u32,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub last_seen: u64,
}

#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Hop {
    pub ifindex: u32,
    pub src: [u8; 6],
    pub dst: [u8; 6],
    pub mtu: u16,
    /// A real server's slot: its address (family 0: a link's slot).
    pub family: u8,
    pub pad: u8,
    pub addr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct DestId {
    /// 0: unused.
    pub family: u8,
    pub proto: u8,
    pub vport: u16,
    pub dport: u16,
    pub pad: u16,
    pub vaddr: [u8; 16],
    pub daddr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct DestStats {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TcpEvent {
    pub key: ConnKey,
    pub flags: u8,
    pub pad: [u8; 7],
}

/// conns4's key: an IPv4 ConnKey (addresses and ports in network order).
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct ConnKey4 {
    pub saddr: [u8; 4],
    pub daddr: [u8; 4],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub pad: [u8; 3],
}

/// conns4's value: an IPv4 Conn.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Conn4 {
    pub action: u8,
    pub flags: u8,
    pub sport: u16,
    pub dport: u16,
    pub pad: u16,
    pub hop: u32,
    pub dest: u32,
    pub seq: u32,
    pub ts: u32,
    pub saddr: [u8; 4],
    pub daddr: [u8; 4],
    pub last_seen: u64,
}

impl ConnKey {
    /// The conns4 form of an IPv4 key.
    pub fn v4(&self) -> ConnKey4 {
        ConnKey4 {
            saddr: self.saddr[..4].try_into().unwrap(),
            daddr: self.daddr[..4].try_into().unwrap(),
            sport: self.sport,
            dport: self.dport,
            proto: self.proto,
            pad: [0; 3],
        }
    }

    pub fn from_v4(k: &ConnKey4) -> ConnKey {
        let mut c = ConnKey { family: 4, proto: k.proto, pad: 0, sport: k.sport, dport: k.dport, ..Default::default() };
        c.saddr[..4].copy_from_slice(&k.saddr);
        c.daddr[..4].copy_from_slice(&k.daddr);
        c
    }
}

impl Conn {
    pub fn v4(&self) -> Conn4 {
        Conn4 {
            action: self.action,
            flags: self.flags,
            sport: self.sport,
            dport: self.dport,
            pad: 0,
            hop: self.hop,
            dest: self.dest,
            seq: self.seq,
            ts: self.ts,
            saddr: self.saddr[..4].try_into().unwrap(),
            daddr: self.daddr[..4].try_into().unwrap(),
            last_seen: self.last_seen,
        }
    }

    pub fn from_v4(c: &Conn4) -> Conn {
        let mut out = Conn {
            action: c.action,
            flags: c.flags,
            pad: 0,
            hop: c.hop,
            dest: c.dest,
            sport: c.sport,
            dport: c.dport,
            seq: c.seq,
            ts: c.ts,
            last_seen: c.last_seen,
            ..Default::default()
        };
        out.saddr[..4].copy_from_slice(&c.saddr);
        out.daddr[..4].copy_from_slice(&c.daddr);
        out
    }
}

const _: () = assert!(std::mem::size_of::<ConnKey4>() == 16);
const _: () = assert!(std::mem::size_of::<Conn4>() == 40);
const _: () = assert!(std::mem::size_of::<Meta>() == 8);
const _: () = assert!(std::mem::size_of::<ConnKey>() == 40);
const _: () = assert!(std::mem::size_of::<Conn>() == 64);
const _: () = assert!(std::mem::size_of::<Hop>() == 36);
const _: () = assert!(std::mem::size_of::<DestId>() == 40);
const _: () = assert!(std::mem::size_of::<DestStats>() == 32);
const _: () = assert!(std::mem::size_of::<TcpEvent>() == 48);

// SAFETY: plain C structs whose sizes equal the sum of their fields (no
// padding the kernel could copy uninitialised).
unsafe impl aya::Pod for Meta {}
unsafe impl aya::Pod for ConnKey {}
unsafe impl aya::Pod for ConnKey4 {}
unsafe impl aya::Pod for Conn4 {}
unsafe impl aya::Pod for Conn {}
unsafe impl aya::Pod for Hop {}
unsafe impl aya::Pod for DestId {}
unsafe impl aya::Pod for DestStats {}

/// An address as the maps hold it: IPv4 in the first 4 bytes.
pub fn addr16(a: IpAddr) -> [u8; 16] {
    addr_bytes(a).1
}

pub fn family(a: IpAddr) -> u8 {
    addr_bytes(a).0
}

/// The address `bytes` holds for a key of `family`.
pub fn addr_of(family: u8, bytes: &[u8; 16]) -> IpAddr {
    if family == 4 {
        IpAddr::V4(std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        IpAddr::V6(std::net::Ipv6Addr::from(*bytes))
    }
}

impl ConnKey {
    pub fn new(protocol: Protocol, saddr: IpAddr, sport: u16, daddr: IpAddr, dport: u16) -> ConnKey {
        ConnKey {
            family: family(saddr),
            proto: protocol.number(),
            pad: 0,
            sport: sport.to_be(),
            dport: dport.to_be(),
            saddr: addr16(saddr),
            daddr: addr16(daddr),
        }
    }
}
