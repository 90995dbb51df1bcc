//! The configuration vocabulary shared by the core, the control protocol and
//! the faces.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// How packets reach a real server (the kernel's IP_VS_CONN_F_FWD_MASK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FwdMethod {
    /// NAT, `-m`.
    Masq,
    /// The director itself, chosen by the kernel for local addresses.
    Local,
    /// IP-in-IP tunnelling, `-i`.
    Tunnel,
    /// Direct routing, `-g`: only the MAC address changes.
    DirectRoute,
    /// Full NAT (rlvs's `--fullnat`, as DPVS has it): the source becomes one
    /// of the service's local addresses, the destination the real server;
    /// replies come back to the local address and are reversed.
    FullNat,
}

/// A virtual service's identity: protocol, address and port, or a fwmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceKey {
    pub protocol: Protocol,
    pub addr: IpAddr,
    pub port: u16,
    /// Non-zero for firewall-mark services (`-f`); then addr/port are unused.
    pub fwmark: u32,
}

impl ServiceKey {
    pub fn new(protocol: Protocol, addr: IpAddr, port: u16) -> Self {
        ServiceKey { protocol, addr, port, fwmark: 0 }
    }
}

/// IP_VS_SVC_F_* bits as ipvsadm and the kernel know them.
pub mod svc_flags {
    pub const PERSISTENT: u32 = 0x0001;
    pub const HASHED: u32 = 0x0002;
    pub const ONEPACKET: u32 = 0x0004;
    pub const SCHED1: u32 = 0x0008;
    pub const SCHED2: u32 = 0x0010;
    pub const SCHED3: u32 = 0x0020;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceConfig {
    pub scheduler: String,
    /// IP_VS_SVC_F_* bits.
    pub flags: u32,
    /// Persistence timeout in seconds (meaningful with PERSISTENT).
    pub timeout: u32,
    /// Persistence granularity: an IPv4 netmask in host order, or an IPv6
    /// prefix length.
    pub netmask: u32,
    pub pe_name: String,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig { scheduler: "wlc".into(), flags: 0, timeout: 0, netmask: 0xffff_ffff, pe_name: String::new() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestConfig {
    pub addr: IpAddr,
    pub port: u16,
    pub fwd: FwdMethod,
    pub weight: i32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub tun_type: u8,
    pub tun_port: u16,
    pub tun_flags: u16,
}

impl DestConfig {
    pub fn new(addr: IpAddr, port: u16, fwd: FwdMethod, weight: i32) -> Self {
        DestConfig { addr, port, fwd, weight, u_threshold: 0, l_threshold: 0, tun_type: 0, tun_port: 0, tun_flags: 0 }
    }
}
