//! The XDP program's Rust side: loading it (aya), attaching it to the
//! served interfaces, registering AF_XDP sockets, and keeping its maps in
//! step with the tables. It plays the part the nftables guard plays for
//! the AF_PACKET engine, with the same rules (see bpf/rlvs_xdp.c), and
//! also decides which frames the engine gets at all.

use crate::engine::FilterState;
use anyhow::{anyhow, bail, Context, Result};
use aya::maps::{Array, HashMap, MapData, XskMap};
use aya::programs::{Xdp, XdpMode};
use aya::Ebpf;
use rlvs_lvs::Protocol;
use std::net::IpAddr;

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rlvs_xdp.o"));
pub const MAX_QUEUES: u32 = 64;
pub const MAX_IFACES: u16 = 16;

#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct FlowKey {
    family: u8,
    proto: u8,
    port: u16,
    addr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct AddrKey {
    family: u8,
    pad: [u8; 3],
    addr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Iface {
    mac: [u8; 6],
    slot: u16,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Settings {
    lport_first: u16,
    lport_last: u16,
    pad: u32,
}

// SAFETY: plain C structs without padding holes the kernel could mind.
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

fn flow(a: IpAddr, p: Protocol, port: u16) -> Option<FlowKey> {
    if !matches!(p, Protocol::Tcp | Protocol::Udp) {
        return None;
    }
    let (family, addr) = addr_bytes(a);
    Some(FlowKey { family, proto: p.number(), port: port.to_be(), addr })
}

fn addr_key(a: IpAddr) -> AddrKey {
    let (family, addr) = addr_bytes(a);
    AddrKey { family, pad: [0; 3], addr }
}

/// The program attached to the served interfaces, and its maps.
pub struct Program {
    bpf: Ebpf,
    /// Interface index → slot in the socket map.
    slots: Vec<(u32, u16)>,
}

/// Whether this build carries the XDP program at all.
pub fn built() -> bool {
    !OBJECT.is_empty()
}

impl Program {
    /// Loads the program and attaches it in driver mode (veth has one) to
    /// every interface of `ifaces` (index, name, MAC).
    pub fn attach(ifaces: &[(u32, String, [u8; 6])]) -> Result<Program> {
        if !built() {
            bail!("this build has no XDP program (clang was missing when rlvs was built)");
        }
        if ifaces.len() > usize::from(MAX_IFACES) {
            bail!("AF_XDP serves at most {MAX_IFACES} interfaces");
        }
        let mut bpf = Ebpf::load(OBJECT).context("loading the XDP program")?;
        let prog: &mut Xdp = bpf
            .program_mut("rlvs_xdp")
            .ok_or_else(|| anyhow!("no rlvs_xdp in the object"))?
            .try_into()
            .context("rlvs_xdp is not an XDP program")?;
        prog.load().context("the kernel refused the XDP program")?;
        let mut slots = Vec::new();
        for (slot, (index, name, _)) in ifaces.iter().enumerate() {
            prog.attach(name, XdpMode::Driver)
                .or_else(|e| {
                    tracing::debug!(interface = %name, error = %e, "no driver-mode XDP; generic mode");
                    prog.attach(name, XdpMode::Skb)
                })
                .with_context(|| format!("attaching XDP to {name}"))?;
            slots.push((*index, slot as u16));
        }
        let mut p = Program { bpf, slots };
        {
            let slots = p.slots.clone();
            let mut m: HashMap<&mut MapData, u32, Iface> = HashMap::try_from(p.map("ifaces")?)?;
            for ((index, _, mac), (_, slot)) in ifaces.iter().zip(slots) {
                m.insert(index, Iface { mac: *mac, slot }, 0)?;
            }
        }
        let mut s: Array<&mut MapData, Settings> = Array::try_from(p.map("settings")?)?;
        let (first, last) = (rlvs_lvs::director::LPORT_FIRST, rlvs_lvs::director::LPORT_LAST);
        s.set(0, Settings { lport_first: first, lport_last: last, pad: 0 }, 0)?;
        Ok(p)
    }

    fn map(&mut self, name: &str) -> Result<&mut aya::maps::Map> {
        self.bpf.map_mut(name).ok_or_else(|| anyhow!("no map {name} in the XDP object"))
    }

    /// Frames of `ifindex` queue `queue` go to the socket `fd`.
    pub fn register(&mut self, ifindex: u32, queue: u32, fd: std::os::fd::RawFd) -> Result<()> {
        let Some(&(_, slot)) = self.slots.iter().find(|(i, _)| *i == ifindex) else {
            bail!("interface {ifindex} has no XDP program");
        };
        if queue >= MAX_QUEUES {
            bail!("queue {queue} is beyond the {MAX_QUEUES} the program serves");
        }
        let mut m: XskMap<&mut MapData> = XskMap::try_from(self.map("xsks")?)?;
        m.set(u32::from(slot) * MAX_QUEUES + queue, fd, 0)?;
        Ok(())
    }

    /// Rewrites the rule maps from `old` to `want`, entry by entry.
    pub(crate) fn update(&mut self, old: &FilterState, want: &FilterState) -> Result<()> {
        let services = |s: &FilterState, any: bool| -> Vec<FlowKey> {
            s.services
                .iter()
                .filter(|k| k.fwmark == 0 && (k.port == 0) == any)
                .filter_map(|k| flow(k.addr, k.protocol, k.port))
                .collect()
        };
        let triples = |t: &[(IpAddr, Protocol, u16)]| -> Vec<FlowKey> {
            t.iter().filter_map(|&(a, p, port)| flow(a, p, port)).collect()
        };
        self.sync_flows("services", services(old, false), services(want, false))?;
        self.sync_flows("anyport", services(old, true), services(want, true))?;
        self.sync_flows("natreplies", triples(&old.nat_sources), triples(&want.nat_sources))?;
        self.sync_flows("fnatsources", triples(&old.fnat_sources), triples(&want.fnat_sources))?;
        let addrs = |a: &[IpAddr]| -> Vec<AddrKey> { a.iter().map(|&x| addr_key(x)).collect() };
        self.sync_addrs("local", addrs(&old.local), addrs(&want.local))?;
        self.sync_addrs("laddrs", addrs(&old.laddrs), addrs(&want.laddrs))?;
        Ok(())
    }

    fn sync_flows(&mut self, name: &str, old: Vec<FlowKey>, new: Vec<FlowKey>) -> Result<()> {
        let mut m: HashMap<&mut MapData, FlowKey, u8> = HashMap::try_from(self.map(name)?)?;
        for k in old.iter().filter(|k| !new.contains(k)) {
            let _ = m.remove(k);
        }
        for k in new.iter().filter(|k| !old.contains(k)) {
            m.insert(k, 1, 0).with_context(|| format!("XDP map {name} is full"))?;
        }
        Ok(())
    }

    fn sync_addrs(&mut self, name: &str, old: Vec<AddrKey>, new: Vec<AddrKey>) -> Result<()> {
        let mut m: HashMap<&mut MapData, AddrKey, u8> = HashMap::try_from(self.map(name)?)?;
        for k in old.iter().filter(|k| !new.contains(k)) {
            let _ = m.remove(k);
        }
        for k in new.iter().filter(|k| !old.contains(k)) {
            m.insert(k, 1, 0).with_context(|| format!("XDP map {name} is full"))?;
        }
        Ok(())
    }
}
