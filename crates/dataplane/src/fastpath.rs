//! The engine's side of the XDP fast path (bpf/rlvs_fast.h): it installs
//! a connection in the `conns` map once the director says it may be carried
//! there (TCP established, UDP), one entry per direction the director
//! forwards, and removes it when the connection leaves that state or goes;
//! it keeps the next hops the entries point at, feeds the FINs and RSTs the
//! program reports to the director's state machine, adds the program's
//! per-destination counters to the director's, and tells the director when
//! a connection it carries was last seen.

use crate::maps::{self, action, ConnKey, DestStats, Hop, LINK_HOPS, MAX_DESTS, MAX_HOPS};
use crate::resolver::NextHop;
use anyhow::{anyhow, Result};
use aya::maps::{Array, HashMap, MapData, PerCpuArray, RingBuf};
use rlvs_lvs::conn::{ConnKey as DirKey, OutKey};
use rlvs_lvs::director::FastConn;
use rlvs_lvs::fwd::tun::TunKind;
use rlvs_lvs::{Director, FwdMethod, Protocol, Time};
use rlvs_wire::TcpFlags;
use std::collections::{HashMap as StdHashMap, HashSet};
use std::net::IpAddr;

/// The connection maps, one per family (IPv4's entries are smaller),
/// seen through the family-neutral key and value.
struct ConnMaps {
    v4: HashMap<MapData, maps::ConnKey4, maps::Conn4>,
    v6: HashMap<MapData, ConnKey, maps::Conn>,
    /// Entries in each, kept as they are added and removed (counting a
    /// map of a million entries would take a million system calls).
    len: [u64; 2],
}

const BPF_NOEXIST: u64 = 1;

impl ConnMaps {
    fn insert(&mut self, k: ConnKey, c: maps::Conn) -> Result<(), aya::maps::MapError> {
        let (fam, fresh) = match k.family {
            4 => (0, self.v4.insert(k.v4(), c.v4(), BPF_NOEXIST)),
            _ => (1, self.v6.insert(k, c, BPF_NOEXIST)),
        };
        match fresh {
            Ok(()) => {
                self.len[fam] += 1;
                Ok(())
            }
            Err(aya::maps::MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::EEXIST) => {
                match k.family {
                    4 => self.v4.insert(k.v4(), c.v4(), 0),
                    _ => self.v6.insert(k, c, 0),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn get(&self, k: &ConnKey) -> Option<maps::Conn> {
        match k.family {
            4 => self.v4.get(&k.v4(), 0).ok().map(|c| maps::Conn::from_v4(&c)),
            _ => self.v6.get(k, 0).ok(),
        }
    }

    fn remove(&mut self, k: &ConnKey) {
        let (fam, gone) = match k.family {
            4 => (0, self.v4.remove(&k.v4())),
            _ => (1, self.v6.remove(k)),
        };
        if gone.is_ok() {
            self.len[fam] = self.len[fam].saturating_sub(1);
        }
    }

    /// Counts what an earlier daemon left, once, when the maps are adopted.
    fn recount(&mut self) {
        self.len = [self.v4.keys().count() as u64, self.v6.keys().count() as u64];
    }

    fn entries(&self) -> Vec<(ConnKey, maps::Conn)> {
        let v4 = self.v4.iter().flatten().map(|(k, c)| (ConnKey::from_v4(&k), maps::Conn::from_v4(&c)));
        v4.chain(self.v6.iter().flatten()).collect()
    }
}

pub struct FastPath {
    conns: ConnMaps,
    hops: Array<MapData, Hop>,
    tx_ports: aya::maps::DevMapHash<MapData>,
    dest_stats: PerCpuArray<MapData, DestStats>,
    dest_up: Array<MapData, u8>,
    dest_ids: Array<MapData, maps::DestId>,
    events: RingBuf<MapData>,
    counters: PerCpuArray<MapData, u64>,
    /// Hop slots of watched real servers (below LINK_HOPS).
    rs_slots: StdHashMap<IpAddr, u32>,
    free_slots: Vec<u32>,
    next_slot: u32,
    /// Devices already in tx_ports.
    ports: HashSet<u32>,
    /// Destinations with installed connections, and what their counters
    /// said when last read.
    counted: StdHashMap<u32, (rlvs_lvs::dest::DestId, DestStats)>,
    /// Connections waiting for their real server's next hop.
    waiting: HashSet<DirKey>,
    /// CLOCK_MONOTONIC (the program's clock) when the director's Time was 0.
    epoch_ns: u64,
}

fn take<T: TryFrom<aya::maps::Map>>(bpf: &mut aya::Ebpf, name: &str) -> Result<T>
where
    T::Error: std::fmt::Display,
{
    let m = bpf.take_map(name).ok_or_else(|| anyhow!("no map {name} in the XDP object"))?;
    T::try_from(m).map_err(|e| anyhow!("map {name}: {e}"))
}

/// CLOCK_MONOTONIC now, in ns (bpf_ktime_get_ns's clock).
pub fn monotonic_ns() -> u64 {
    // SAFETY: clock_gettime into a zeroed timespec.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl FastPath {
    /// Takes the fast path's maps out of the loaded object. `epoch_ns`:
    /// the monotonic time at which the director's clock read zero.
    pub fn new(bpf: &mut aya::Ebpf, epoch_ns: u64) -> Result<FastPath> {
        Ok(FastPath {
            conns: ConnMaps { v4: take(bpf, "conns4")?, v6: take(bpf, "conns6")?, len: [0; 2] },
            hops: take(bpf, "hops")?,
            tx_ports: take(bpf, "tx_ports")?,
            dest_stats: take(bpf, "dest_stats")?,
            dest_up: take(bpf, "dest_up")?,
            dest_ids: take(bpf, "dest_ids")?,
            events: take(bpf, "tcp_events")?,
            counters: take(bpf, "counters")?,
            rs_slots: StdHashMap::new(),
            free_slots: Vec::new(),
            next_slot: 1,
            ports: HashSet::new(),
            counted: StdHashMap::new(),
            waiting: HashSet::new(),
            epoch_ns,
        })
    }

    /// Takes every connection out of the map (a start that does not
    /// rebuild from what an earlier daemon left).
    pub fn clear(&mut self) {
        for (k, _) in self.conns.entries() {
            self.conns.remove(&k);
        }
        self.conns.len = [0; 2];
    }

    fn time_of(&self, ns: u64) -> Time {
        Time(ns.saturating_sub(self.epoch_ns) / 1_000_000)
    }

    fn set_hop(&mut self, slot: u32, h: Hop) {
        if h.ifindex != 0 && self.ports.insert(h.ifindex) {
            if let Err(e) = self.tx_ports.insert(h.ifindex, h.ifindex, None, 0) {
                tracing::warn!(ifindex = h.ifindex, error = %e, "could not add a device to the XDP redirect map");
                self.ports.remove(&h.ifindex);
            }
        }
        if let Err(e) = self.hops.set(slot, h, 0) {
            tracing::warn!(slot, error = %e, "could not write an XDP next hop");
        }
    }

    /// A real server's next hop is watched: it gets a slot (unresolved
    /// until `resolved`).
    pub fn watch(&mut self, addr: IpAddr) {
        if self.rs_slots.contains_key(&addr) {
            return;
        }
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.next_slot += 1;
            self.next_slot - 1
        });
        if slot >= LINK_HOPS {
            return;
        }
        self.rs_slots.insert(addr, slot);
        self.set_hop(slot, Hop { family: maps::family(addr), addr: maps::addr16(addr), ..Default::default() });
    }

    pub fn unwatch(&mut self, addr: IpAddr) {
        if let Some(slot) = self.rs_slots.remove(&addr) {
            self.set_hop(slot, Hop::default());
            self.free_slots.push(slot);
        }
    }

    /// The resolver's answer for a real server: its connections' entries
    /// follow at once (they name the slot, not the MAC).
    pub fn resolved(&mut self, addr: IpAddr, hop: Option<&NextHop>) {
        let Some(&slot) = self.rs_slots.get(&addr) else { return };
        let mut h = hop.map_or(Hop::default(), |h| Hop {
            ifindex: h.ifindex as u32,
            src: h.src.0,
            dst: h.dst.0,
            mtu: h.mtu.min(u32::from(u16::MAX)) as u16,
            ..Default::default()
        });
        h.family = maps::family(addr);
        h.addr = maps::addr16(addr);
        self.set_hop(slot, h);
    }

    /// Real servers deleted from their service: their connections' packets
    /// go to the engine (which drops them, as the kernel does), and come
    /// back here if the server is added again.
    pub fn dest_available(&mut self, d: &Director, key: &rlvs_lvs::ServiceKey, addr: IpAddr, port: u16, up: bool) {
        if let Some(id) = d.dest_id(key, addr, port) {
            if id.index < MAX_DESTS {
                let _ = self.dest_up.set(id.index, u8::from(up), 0);
            }
        }
    }

    /// Installs `key`'s connection if the director lets the fast path
    /// carry it; otherwise makes sure it is not installed.
    pub fn follow(&mut self, d: &Director, hops: &crate::xmit::HopTable, key: &DirKey) {
        match d.fast_conn(key) {
            Some(fc) => {
                if !self.install(d, &fc, hops) {
                    self.waiting.insert(*key);
                }
            }
            None => self.remove(key, d.out_key_of(key).as_ref()),
        }
    }

    /// Connections that waited for a next hop, tried again.
    pub fn retry_waiting(&mut self, d: &Director, hops: &crate::xmit::HopTable) {
        if self.waiting.is_empty() {
            return;
        }
        let keys: Vec<DirKey> = self.waiting.drain().collect();
        for k in keys {
            if let Some(fc) = d.fast_conn(&k) {
                if !self.install(d, &fc, hops) {
                    self.waiting.insert(k);
                }
            }
        }
    }

    /// False when it cannot be installed yet (next hop unresolved).
    fn install(&mut self, d: &Director, fc: &FastConn, hops: &crate::xmit::HopTable) -> bool {
        let k = &fc.key;
        if fc.dest.index >= MAX_DESTS {
            return true;
        }
        let Some(&rs_slot) = self.rs_slots.get(&fc.daddr) else { return true };
        let Some(rs_hop) = hops.get(&fc.daddr) else { return false };
        let mut fwd = maps::Conn { hop: rs_slot, dest: fc.dest.index, ..Default::default() };
        let mut back = None;
        match fc.method {
            FwdMethod::DirectRoute => fwd.action = action::DR,
            FwdMethod::Tunnel => {
                let Some(IpAddr::V4(src)) = rs_hop.src_ip else { return true };
                fwd.saddr = maps::addr16(IpAddr::V4(src));
                fwd.daddr = maps::addr16(fc.daddr);
                match fc.tun {
                    Some(TunKind::Ipip) => fwd.action = action::TUN_IPIP,
                    Some(TunKind::Gue { port, csum: false }) => {
                        fwd.action = action::TUN_GUE;
                        fwd.dport = port.to_be();
                    }
                    // A GUE checksum covers the whole packet: the engine's.
                    _ => return true,
                }
            }
            FwdMethod::Masq => {
                fwd.action = action::NAT_IN;
                fwd.daddr = maps::addr16(fc.daddr);
                fwd.dport = fc.dport.to_be();
                back = fc.out.zip(fc.return_hop).map(|(out, (n, _))| {
                    let c = maps::Conn {
                        action: action::NAT_OUT,
                        hop: LINK_HOPS + u32::from(n),
                        dest: fc.dest.index,
                        saddr: maps::addr16(k.vaddr),
                        sport: k.vport.to_be(),
                        ..Default::default()
                    };
                    (out, c)
                });
            }
            FwdMethod::FullNat => {
                let Some((laddr, lport)) = fc.fnat else { return true };
                let adj = fc.seq_adjust.unwrap_or(rlvs_lvs::fwd::tcpseq::SeqAdjust { seq: 0, ts: None });
                let flags = if adj.ts.is_some() { maps::CF_TS } else { 0 };
                fwd.action = action::FNAT_IN;
                fwd.flags = flags;
                fwd.saddr = maps::addr16(laddr);
                fwd.sport = lport.to_be();
                fwd.daddr = maps::addr16(fc.daddr);
                fwd.dport = fc.dport.to_be();
                fwd.seq = adj.seq;
                fwd.ts = adj.ts.unwrap_or(0);
                back = fc.out.zip(fc.return_hop).map(|(out, (n, _))| {
                    let c = maps::Conn {
                        action: action::FNAT_OUT,
                        flags,
                        hop: LINK_HOPS + u32::from(n),
                        dest: fc.dest.index,
                        saddr: maps::addr16(k.vaddr),
                        sport: k.vport.to_be(),
                        daddr: maps::addr16(k.caddr),
                        dport: k.cport.to_be(),
                        seq: adj.seq,
                        ts: adj.ts.unwrap_or(0),
                        ..Default::default()
                    };
                    (out, c)
                });
            }
            FwdMethod::Local => return true,
        }
        if let Some((n, h)) = fc.return_hop {
            let slot = LINK_HOPS + u32::from(n);
            if slot < MAX_HOPS {
                self.set_hop(
                    slot,
                    Hop { ifindex: h.ifindex as u32, src: h.local.0, dst: h.peer.0, ..Default::default() },
                );
            }
        }
        // A number seen for the first time: its flag, counters and identity
        // (DestAdded and DestRemoved keep the flag right afterwards).
        if self.counted.get(&fc.dest.index).is_none_or(|(id, _)| *id != fc.dest) {
            let _ = self.dest_up.set(fc.dest.index, 1, 0);
            let base = self.read_stats(fc.dest.index);
            self.counted.insert(fc.dest.index, (fc.dest, base));
            if let Some((svc, addr, port)) = d.dest_identity(fc.dest) {
                let id = maps::DestId {
                    family: maps::family(svc.addr),
                    proto: svc.protocol.number(),
                    vport: svc.port,
                    dport: port,
                    pad: 0,
                    vaddr: maps::addr16(svc.addr),
                    daddr: maps::addr16(addr),
                };
                let _ = self.dest_ids.set(fc.dest.index, id, 0);
            }
        }
        let now = monotonic_ns();
        fwd.last_seen = now;
        let in_key = ConnKey::new(k.protocol, k.caddr, k.cport, k.vaddr, k.vport);
        if let Err(e) = self.conns.insert(in_key, fwd) {
            tracing::debug!(error = %e, "connection not installed in the XDP map (full?)");
            return true;
        }
        if let Some((out, mut c)) = back {
            c.last_seen = now;
            let _ = self.conns.insert(ConnKey::new(out.protocol, out.daddr, out.dport, out.caddr, out.cport), c);
        }
        true
    }

    /// Takes `key`'s entries (and its reply entry, `out`) out of the map.
    pub fn remove(&mut self, key: &DirKey, out: Option<&OutKey>) {
        self.waiting.remove(key);
        self.conns.remove(&ConnKey::new(key.protocol, key.caddr, key.cport, key.vaddr, key.vport));
        if let Some(o) = out {
            self.conns.remove(&ConnKey::new(o.protocol, o.daddr, o.dport, o.caddr, o.cport));
        }
    }

    /// When the fast path last saw `key`'s connection (either direction).
    pub fn last_seen(&self, key: &DirKey, out: Option<&OutKey>) -> Option<Time> {
        let a = self.conns.get(&ConnKey::new(key.protocol, key.caddr, key.cport, key.vaddr, key.vport));
        let b = out.and_then(|o| self.conns.get(&ConnKey::new(o.protocol, o.daddr, o.dport, o.caddr, o.cport)));
        let ns = a.map(|c| c.last_seen).into_iter().chain(b.map(|c| c.last_seen)).max()?;
        Some(self.time_of(ns))
    }

    /// The FINs and RSTs the program forwarded, into the director's state
    /// machine (whose events then take connections off the fast path).
    pub fn tcp_events(&mut self, d: &mut Director, now: Time) {
        while let Some(item) = self.events.next() {
            if item.len() < std::mem::size_of::<maps::TcpEvent>() {
                continue;
            }
            // SAFETY: the program wrote a whole rlvs_tcp_event.
            let ev: maps::TcpEvent = unsafe { std::ptr::read_unaligned(item.as_ptr() as *const maps::TcpEvent) };
            let k = ev.key;
            let protocol = if k.proto == 6 { Protocol::Tcp } else { continue };
            let (saddr, daddr) = (maps::addr_of(k.family, &k.saddr), maps::addr_of(k.family, &k.daddr));
            let (sport, dport) = (u16::from_be(k.sport), u16::from_be(k.dport));
            let flags = TcpFlags(ev.flags);
            let key = DirKey { protocol, caddr: saddr, cport: sport, vaddr: daddr, vport: dport };
            if !d.fast_tcp_in(&key, flags, now) {
                let out = OutKey { protocol, daddr: saddr, dport: sport, caddr: daddr, cport: dport };
                d.fast_tcp_out(&out, flags, now);
            }
        }
    }

    /// Takes the real servers' hop slots an earlier daemon used (each slot
    /// names its real server), before the tables are restored: entries it
    /// left keep pointing at the right next hops.
    pub fn recover_rs_slots(&mut self) {
        for slot in 1..LINK_HOPS {
            let Ok(h) = self.hops.get(&slot, 0) else { continue };
            if h.family != 0 {
                self.rs_slots.insert(maps::addr_of(h.family, &h.addr), slot);
                self.next_slot = self.next_slot.max(slot + 1);
            }
        }
        for slot in 1..self.next_slot {
            if !self.rs_slots.values().any(|&s| s == slot) {
                self.free_slots.push(slot);
            }
        }
    }

    /// Takes over the connections an earlier daemon left in the map: each
    /// one the restored tables can still place is adopted by the director
    /// (its timer continuing from when the program last saw it); the rest,
    /// and those that expired meanwhile, are taken out. Returns the keys
    /// adopted, to be installed anew with this daemon's numbering.
    pub fn adopt(&mut self, d: &mut Director, now: Time) -> Vec<DirKey> {
        let entries = self.conns.entries();
        let by_key: StdHashMap<ConnKey, maps::Conn> = entries.iter().copied().collect();
        let now_ns = monotonic_ns();
        let t = d.timeouts();
        let mut adopted = Vec::new();
        let mut keep: HashSet<ConnKey> = HashSet::new();
        for (k, v) in &entries {
            if !matches!(v.action, action::DR | action::NAT_IN | action::FNAT_IN | action::TUN_IPIP | action::TUN_GUE) {
                continue;
            }
            let protocol = match k.proto {
                6 => Protocol::Tcp,
                17 => Protocol::Udp,
                _ => continue,
            };
            let key = DirKey {
                protocol,
                caddr: maps::addr_of(k.family, &k.saddr),
                cport: u16::from_be(k.sport),
                vaddr: maps::addr_of(k.family, &k.daddr),
                vport: u16::from_be(k.dport),
            };
            let Ok(id) = self.dest_ids.get(&v.dest, 0) else { continue };
            if id.family == 0 {
                continue;
            }
            let svc = rlvs_lvs::ServiceKey::new(
                if id.proto == 17 { Protocol::Udp } else { Protocol::Tcp },
                maps::addr_of(id.family, &id.vaddr),
                id.vport,
            );
            let (ra, rp) = (maps::addr_of(id.family, &id.daddr), id.dport);
            let Some(dest) = d.dest_id(&svc, ra, rp) else { continue };
            let (daddr, dport) = match v.action {
                action::NAT_IN | action::FNAT_IN => (maps::addr_of(k.family, &v.daddr), u16::from_be(v.dport)),
                _ => (ra, key.vport),
            };
            let fnat =
                (v.action == action::FNAT_IN).then(|| (maps::addr_of(k.family, &v.saddr), u16::from_be(v.sport)));
            let seq_adjust = fnat.map(|_| rlvs_lvs::fwd::tcpseq::SeqAdjust {
                seq: v.seq,
                ts: (v.flags & maps::CF_TS != 0).then_some(v.ts),
            });
            let out = match (v.action, fnat) {
                (action::NAT_IN, _) => Some(ConnKey::new(protocol, daddr, dport, key.caddr, key.cport)),
                (action::FNAT_IN, Some((la, lp))) => Some(ConnKey::new(protocol, daddr, dport, la, lp)),
                _ => None,
            };
            let back = out.and_then(|o| by_key.get(&o).map(|c| (o, *c)));
            let return_hop = back.and_then(|(_, c)| {
                let h = self.hops.get(&c.hop, 0).ok()?;
                (c.hop >= LINK_HOPS && h.ifindex != 0).then_some(rlvs_lvs::conn::Hop {
                    ifindex: h.ifindex as i32,
                    local: rlvs_wire::EthernetAddress(h.src),
                    peer: rlvs_wire::EthernetAddress(h.dst),
                })
            });
            let seen = back.map_or(v.last_seen, |(_, c)| c.last_seen.max(v.last_seen));
            let (state, timeout) = match protocol {
                Protocol::Udp => (rlvs_lvs::conn::ConnState::Udp, t.udp),
                _ => (rlvs_lvs::conn::ConnState::Tcp(rlvs_lvs::conn::tcp::TcpState::Established), t.tcp),
            };
            let age_ms = now_ns.saturating_sub(seen) / 1_000_000;
            let left_ms = (u64::from(timeout) * 1000).saturating_sub(age_ms);
            if left_ms == 0 {
                continue;
            }
            let a = rlvs_lvs::director::Adopted {
                key,
                dest,
                daddr,
                dport,
                fnat,
                seq_adjust,
                return_hop,
                state,
                expires: Time(now.as_millis() + left_ms),
            };
            if d.adopt_conn(&a) {
                keep.insert(*k);
                if let Some((o, _)) = back {
                    keep.insert(o);
                }
                adopted.push(key);
            }
        }
        for (k, _) in &entries {
            if !keep.contains(k) {
                self.conns.remove(k);
            }
        }
        self.conns.recount();
        adopted
    }

    /// Entries in the connection maps.
    pub fn map_entries(&self) -> Vec<(String, u64)> {
        vec![("conns4".into(), self.conns.len[0]), ("conns6".into(), self.conns.len[1])]
    }

    /// What the program did with frames, summed over CPUs: forwarded here
    /// (for the real servers that had connections on it), found here but
    /// left to the engine, dropped for want of an engine.
    pub fn counters(&self) -> (u64, u64, u64) {
        let read = |k: u32| self.counters.get(&k, 0).map_or(0, |v| v.iter().sum::<u64>());
        let forwarded = self.counted.keys().map(|&s| {
            let d = self.read_stats(s);
            d.packets_in + d.packets_out
        });
        (forwarded.sum(), read(maps::CNT_PUNTED), read(maps::CNT_ORPHANED))
    }

    fn read_stats(&self, slot: u32) -> DestStats {
        let Ok(per_cpu) = self.dest_stats.get(&slot, 0) else { return DestStats::default() };
        per_cpu.iter().fold(DestStats::default(), |a, s| DestStats {
            packets_in: a.packets_in + s.packets_in,
            bytes_in: a.bytes_in + s.bytes_in,
            packets_out: a.packets_out + s.packets_out,
            bytes_out: a.bytes_out + s.bytes_out,
        })
    }

    /// What the program counted since the last call, into the director.
    pub fn collect_stats(&mut self, d: &mut Director) {
        let slots: Vec<u32> = self.counted.keys().copied().collect();
        for slot in slots {
            let now = self.read_stats(slot);
            let Some((id, before)) = self.counted.get_mut(&slot) else { continue };
            let delta = rlvs_lvs::stats::Counters {
                conns: 0,
                inpkts: now.packets_in.wrapping_sub(before.packets_in),
                inbytes: now.bytes_in.wrapping_sub(before.bytes_in),
                outpkts: now.packets_out.wrapping_sub(before.packets_out),
                outbytes: now.bytes_out.wrapping_sub(before.bytes_out),
            };
            *before = now;
            let id = *id;
            if delta.inpkts + delta.outpkts > 0 {
                d.add_fast_stats(id, &delta);
            }
            // A destination purged from the director: stop reading it.
            if !d.dest_alive(id) {
                self.counted.remove(&slot);
            }
        }
    }
}
