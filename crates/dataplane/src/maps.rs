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

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Iface {
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
const _: () = assert!(std::mem::size_of::<Iface>() == 8);
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
