//! The XDP program's Rust side: loading it (aya), attaching it to the
//! served interfaces, registering AF_XDP sockets, and keeping its maps in
//! step with the tables. It plays the part the nftables guard plays for
//! the AF_PACKET engine, with the same rules (see bpf/rlvs_xdp.c), and
//! also decides which frames the engine gets at all.

use crate::filter::{Rule, Table};
use crate::maps::{AddrKey, FlowKey, Iface, Meta, Settings, LAYOUT_VERSION, MAGIC, MAX_IFACES, MAX_QUEUES};
use crate::pins::PinDir;
use anyhow::{anyhow, bail, Context, Result};
use aya::maps::{Array, HashMap, MapData, XskMap};
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::xdp::XdpLink;
use aya::programs::{Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rlvs_xdp.o"));

/// The benchmark's reference forwarder (bpf/xdp_redirect.c: rewrite both
/// MACs, redirect), built beside the engine's program; empty without clang.
pub static REFERENCE_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/xdp_redirect.o"));

/// The program attached to the served interfaces, and its maps, all
/// pinned (see pins.rs) so that forwarding outlives the process.
pub struct Program {
    bpf: Ebpf,
    /// Interface index → slot in the socket map.
    slots: Vec<(u32, u16)>,
    pins: PinDir,
    /// Leave everything pinned and attached when dropped (an upgrade
    /// hand-over); otherwise an orderly stop removes it all.
    pub keep: bool,
    /// The pins held state of an earlier daemon.
    pub adopted: bool,
}

/// The engine's program object (for measurements of its maps).
pub fn object() -> &'static [u8] {
    OBJECT
}

/// Whether this build carries the XDP program at all.
pub fn built() -> bool {
    !OBJECT.is_empty()
}

/// Why pinned maps cannot be adopted, if they cannot.
fn check_layout(pins: &PinDir) -> Result<bool> {
    let path = pins.file("meta");
    if !path.exists() {
        return Ok(false);
    }
    let data = MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))?;
    let m: Array<MapData, Meta> = Array::try_from(aya::maps::Map::Array(data))?;
    let meta = m.get(&0, 0)?;
    if meta.magic != MAGIC || meta.layout != LAYOUT_VERSION {
        bail!(
            "{} holds forwarding state of map layout {} (magic {:#x}); this rlvs writes layout {}: \
             stop the other rlvs, or remove the directory to start afresh (established connections \
             through this director are then lost)",
            pins.path.display(),
            meta.layout,
            meta.magic,
            LAYOUT_VERSION
        );
    }
    Ok(true)
}

impl Program {
    /// Loads the program and attaches it in driver mode (veth has one) to
    /// every interface of `ifaces` (index, name, MAC), through links
    /// pinned in `pins` beside the maps; each filter map takes `entries`
    /// rules. Pins an earlier daemon left in this namespace are adopted:
    /// its maps are reused and its links take the new program
    /// (bpf_link_update), so forwarding never stops.
    pub fn attach(ifaces: &[(u32, String, [u8; 6])], entries: u32, pins: PinDir) -> Result<Program> {
        if !built() {
            bail!("this build has no XDP program (clang was missing when rlvs was built)");
        }
        if ifaces.len() > usize::from(MAX_IFACES) {
            bail!("AF_XDP serves at most {MAX_IFACES} interfaces");
        }
        crate::pins::collect_garbage(&pins);
        let adopted = check_layout(&pins)?;
        let mut loader = EbpfLoader::new();
        loader.default_map_pin_directory(&pins.path);
        for t in Table::ALL {
            loader.map_max_entries(t.name(), entries);
        }
        let mut bpf = loader.load(OBJECT).context("loading the XDP program")?;
        let prog: &mut Xdp = bpf
            .program_mut("rlvs_xdp")
            .ok_or_else(|| anyhow!("no rlvs_xdp in the object"))?
            .try_into()
            .context("rlvs_xdp is not an XDP program")?;
        prog.load().context("the kernel refused the XDP program")?;
        let mut slots = Vec::new();
        for (slot, (index, name, _)) in ifaces.iter().enumerate() {
            let pin = pins.file(&format!("link-{name}"));
            let live = crate::pins::xdp_link_ifindex(&pin) == Some(*index);
            if pin.exists() && !live {
                let _ = std::fs::remove_file(&pin);
            }
            let replaced = live
                && PinnedLink::from_pin(&pin)
                    .ok()
                    .and_then(|l| XdpLink::try_from(FdLink::from(l)).ok())
                    .is_some_and(|l| prog.attach_to_link(l).is_ok());
            if !replaced {
                let id = prog
                    .attach(name, XdpMode::Driver)
                    .or_else(|e| {
                        tracing::debug!(interface = %name, error = %e, "no driver-mode XDP; generic mode");
                        prog.attach(name, XdpMode::Skb)
                    })
                    .with_context(|| format!("attaching XDP to {name}"))?;
                let link = prog.take_link(id)?;
                let fd: FdLink = link.try_into().context("the kernel attached XDP without a bpf_link")?;
                fd.pin(&pin).with_context(|| format!("pinning the XDP link of {name} at {}", pin.display()))?;
            }
            slots.push((*index, slot as u16));
        }
        let mut p = Program { bpf, slots, pins, keep: false, adopted };
        {
            let slots = p.slots.clone();
            let mut m: Array<&mut MapData, Iface> = Array::try_from(p.map("ifaces")?)?;
            for ((index, _, mac), (_, slot)) in ifaces.iter().zip(slots) {
                let at = index % crate::maps::IFACE_SLOTS;
                if let Ok(other) = m.get(&at, 0) {
                    if other.ifindex != 0 && other.ifindex != *index && ifaces.iter().any(|i| i.0 == other.ifindex) {
                        bail!("interfaces {} and {} share an XDP interface slot", other.ifindex, index);
                    }
                }
                m.set(at, Iface { ifindex: *index, mac: *mac, slot }, 0)?;
            }
        }
        let mut s: Array<&mut MapData, Settings> = Array::try_from(p.map("settings")?)?;
        let (first, last) = (rlvs_lvs::director::LPORT_FIRST, rlvs_lvs::director::LPORT_LAST);
        s.set(0, Settings { lport_first: first, lport_last: last, pad: 0 }, 0)?;
        let mut m: Array<&mut MapData, Meta> = Array::try_from(p.map("meta")?)?;
        m.set(0, Meta { magic: MAGIC, layout: LAYOUT_VERSION }, 0)?;
        Ok(p)
    }

    /// The fast path's maps, handed to the engine.
    pub fn fast_path(&mut self, epoch_ns: u64) -> Result<crate::fastpath::FastPath> {
        crate::fastpath::FastPath::new(&mut self.bpf, epoch_ns)
    }

    /// Takes out of the filter maps every entry that is not one of
    /// `rules`: what an earlier daemon's tables left that this one's do
    /// not have.
    pub fn prune(&mut self, rules: &[Rule]) -> Result<()> {
        for t in Table::ALL {
            let of_t = rules.iter().filter(|r| r.table() == t);
            match t {
                Table::Local | Table::Laddrs => {
                    let want: std::collections::HashSet<AddrKey> = of_t.map(|r| AddrKey::new(r.addr())).collect();
                    let mut m: HashMap<&mut MapData, AddrKey, u8> = HashMap::try_from(self.map(t.name())?)?;
                    let stale: Vec<AddrKey> = m.keys().flatten().filter(|k| !want.contains(k)).collect();
                    for k in stale {
                        let _ = m.remove(&k);
                    }
                }
                _ => {
                    let want: std::collections::HashSet<FlowKey> = of_t.filter_map(|r| flow_key(*r)).collect();
                    let mut m: HashMap<&mut MapData, FlowKey, u8> = HashMap::try_from(self.map(t.name())?)?;
                    let stale: Vec<FlowKey> = m.keys().flatten().filter(|k| !want.contains(k)).collect();
                    for k in stale {
                        let _ = m.remove(&k);
                    }
                }
            }
        }
        Ok(())
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

    /// Adds and removes rules, entry by entry.
    pub fn apply(&mut self, added: &[Rule], removed: &[Rule]) -> Result<()> {
        for r in removed {
            self.set(*r, false)?;
        }
        for r in added {
            self.set(*r, true)?;
        }
        Ok(())
    }

    fn set(&mut self, r: Rule, present: bool) -> Result<()> {
        let name = r.table().name();
        let map = self.map(name)?;
        match flow_key(r) {
            Some(k) => {
                let mut m: HashMap<&mut MapData, FlowKey, u8> = HashMap::try_from(map)?;
                match present {
                    true => m.insert(k, 1, 0).with_context(|| format!("adding to XDP map {name}"))?,
                    false => m.remove(&k).with_context(|| format!("removing from XDP map {name}"))?,
                }
            }
            None => {
                let k = AddrKey::new(r.addr());
                let mut m: HashMap<&mut MapData, AddrKey, u8> = HashMap::try_from(map)?;
                match present {
                    true => m.insert(k, 1, 0).with_context(|| format!("adding to XDP map {name}"))?,
                    false => m.remove(&k).with_context(|| format!("removing from XDP map {name}"))?,
                }
            }
        }
        Ok(())
    }
}

impl Drop for Program {
    /// An orderly stop takes the program off the interfaces and drops its
    /// maps (unpinned, they go with the last descriptor) unless `keep`.
    fn drop(&mut self) {
        if !self.keep {
            self.pins.remove_all();
        }
    }
}

/// The key of a flow rule in its map (None for address rules).
fn flow_key(r: Rule) -> Option<FlowKey> {
    match r {
        Rule::Service { addr, protocol, port }
        | Rule::NatSource { addr, protocol, port }
        | Rule::FnatSource { addr, protocol, port } => FlowKey::new(addr, protocol, port),
        Rule::Laddr(_) | Rule::Local(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned maps of another layout are refused with a message that says
    /// what was found and what to do; ours are adopted. Needs root and
    /// bpffs at /sys/fs/bpf (skipped otherwise).
    #[test]
    fn pinned_maps_of_another_layout_are_refused() {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if !built() || unsafe { libc::geteuid() } != 0 {
            return;
        }
        let root = std::path::PathBuf::from(format!("/sys/fs/bpf/rlvs-layout-test-{}", std::process::id()));
        if std::fs::create_dir_all(&root).is_err() {
            return;
        }
        let pins = PinDir::at(root.clone());
        {
            let mut bpf = EbpfLoader::new().default_map_pin_directory(&root).load(OBJECT).unwrap();
            let mut m: Array<&mut MapData, Meta> = Array::try_from(bpf.map_mut("meta").unwrap()).unwrap();
            m.set(0, Meta { magic: MAGIC, layout: LAYOUT_VERSION }, 0).unwrap();
        }
        assert!(check_layout(&pins).unwrap(), "our own layout is adopted");
        {
            let mut bpf = EbpfLoader::new().default_map_pin_directory(&root).load(OBJECT).unwrap();
            let mut m: Array<&mut MapData, Meta> = Array::try_from(bpf.map_mut("meta").unwrap()).unwrap();
            m.set(0, Meta { magic: MAGIC, layout: LAYOUT_VERSION + 7 }, 0).unwrap();
        }
        let err = format!("{:#}", check_layout(&pins).unwrap_err());
        pins.remove_all();
        let _ = std::fs::remove_dir_all(&root);
        assert!(err.contains(&format!("map layout {}", LAYOUT_VERSION + 7)), "{err}");
        assert!(err.contains(&format!("this rlvs writes layout {LAYOUT_VERSION}")), "{err}");
        assert!(err.contains("remove the directory to start afresh"), "{err}");
    }
}
