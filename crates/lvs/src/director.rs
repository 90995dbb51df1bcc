//! The director: the table of services and destinations, the connection
//! table, and the per-packet decision. It is the one owner of all LVS state;
//! the I/O shell hands it packets and control commands with the current time.

use crate::conn::tcp::{self, Direction, TcpState};
use crate::conn::{Conn, ConnId, ConnKey, ConnState, ConnTable, Hop, OutKey, TemplateId};
use crate::dest::{Dest, DestArena, DestId};
use crate::error::IpvsError;
use crate::fwd::tcpseq::SeqAdjust;
use crate::sched::{self, SchedInput};
use crate::service::{Service, SvcId};
use crate::stats::{Counters, Estimator, Rates, ESTIMATOR_PERIOD};
use crate::time::{Span, Time};
use crate::types::{DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
use ahash::RandomState;
use rlvs_wire::{IpProtocol, Ipv4Packet, Ipv6Packet, TcpFlags, TcpPacket, UdpPacket};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// The kernel keeps a deleted destination this long after its last connection
/// went away, so that a quick re-add revives it with its statistics
/// (IP_VS_DEST_TRASH_PERIOD).
pub const DEST_TRASH_PERIOD: Span = Span(120_000);

/// What the shell must do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not for a virtual service: leave it to the kernel.
    NotOurs,
    /// For a virtual service but not forwarded.
    Drop(DropReason),
    /// Send it to a real server.
    Forward(Forward),
    /// A real server's reply on a NAT connection: rewrite its source to the
    /// virtual address and port and send it back to the client.
    Reply(Reply),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub vaddr: IpAddr,
    pub vport: u16,
    /// FULLNAT: the client, the reply's new destination.
    pub client: Option<(IpAddr, u16)>,
    /// The link the client's packets came in on, if the shell told us.
    pub hop: Option<Hop>,
    /// The client's address (a synced connection's replies are routed to
    /// it until its first packet shows the link).
    pub caddr: IpAddr,
    /// FULLNAT TCP: what to take off ack, SACK and TSecr.
    pub seq_adjust: Option<SeqAdjust>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A TCP segment other than a SYN, for no known connection.
    NoConnection,
    /// The connection's real server was deleted.
    DestUnavailable,
    /// The scheduler found no usable real server. The kernel answers with
    /// ICMP port unreachable here; the shell may do the same.
    NoDestination,
    /// Headers too short or inconsistent.
    Malformed,
    /// FULLNAT: no local address configured, or all their ports taken.
    NoLocalPort,
    /// A new connection with the table at its bound (see defence.rs).
    ConnectionLimit,
    /// A new connection dropped by the drop_packet defence.
    DropPacket,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    pub method: FwdMethod,
    /// FULLNAT: the new source (local address and port).
    pub snat: Option<(IpAddr, u16)>,
    pub daddr: IpAddr,
    pub dport: u16,
    pub dest: DestId,
    /// How to wrap the packet for a tunnelling real server.
    pub tun: Option<crate::fwd::tun::TunKind>,
    /// FULLNAT TCP: what to add to seq and TSval.
    pub seq_adjust: Option<SeqAdjust>,
}

/// What the director reads from a TCP header: the flags for the state
/// machine; sequence number and timestamp for FULLNAT's first SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSeg {
    pub flags: TcpFlags,
    pub seq: u32,
    /// TSval, read from SYNs only (nothing else needs it).
    pub tsval: Option<u32>,
}

impl TcpSeg {
    pub fn of<T: AsRef<[u8]>>(t: &TcpPacket<T>) -> TcpSeg {
        let flags = t.flags();
        TcpSeg { flags, seq: t.seq_number(), tsval: if flags.syn() { t.timestamp() } else { None } }
    }

    /// A segment with only flags, for tests and callers without a header.
    pub fn flags(flags: u8) -> TcpSeg {
        TcpSeg { flags: TcpFlags(flags), seq: 0, tsval: None }
    }
}

/// Timeouts (seconds) per TCP state, and UDP's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: [u32; 11],
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        let mut t = [0; 11];
        for s in TcpState::ALL {
            t[s as usize] = tcp::default_timeout(s);
        }
        Timeouts { tcp: t, udp: 300 }
    }
}

/// The three values `ipvsadm --set` and `--timeout` deal in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutTriple {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

/// A service as the listing faces see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub key: ServiceKey,
    pub config: ServiceConfig,
    /// FULLNAT local addresses.
    pub laddrs: Vec<IpAddr>,
    pub stats: Counters,
    pub rates: Rates,
    /// In the kernel's list order.
    pub dests: Vec<DestInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestInfo {
    pub config: DestConfig,
    pub activeconns: u32,
    pub inactconns: u32,
    pub persistconns: u32,
    pub stats: Counters,
    pub rates: Rates,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnInfo {
    pub protocol: Protocol,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    pub state: String,
    /// Seconds until the connection expires.
    pub expires: u64,
}

#[derive(Default)]
pub struct Director {
    services: Vec<Option<Service>>,
    by_key: HashMap<ServiceKey, SvcId, RandomState>,
    /// Service ids in creation order, for an unsorted listing.
    order: Vec<SvcId>,
    dests: DestArena,
    trash: Vec<DestId>,
    conns: ConnTable,
    timeouts: Timeouts,
    stats: Counters,
    est: Estimator,
    /// When the estimators tick next.
    next_estimate: Time,
    templates: persist::Templates,
    ports: fullnat::PortPool,
    /// FULLNAT's secret for initial sequence numbers and timestamp clock.
    isn_key: std::collections::hash_map::RandomState,
    /// Slots of `services` freed by deletions, reused first.
    free_services: Vec<SvcId>,
    /// Changes not yet taken by the shell (see events.rs).
    events: std::collections::VecDeque<Event>,
    conn_events: bool,
    sync: sync::SyncSide,
    defence: crate::defence::Defence,
    /// net.ipv4.vs.sloppy_tcp: any TCP segment but a RST may open a
    /// connection, not only a SYN (a flow moved from another director).
    sloppy_tcp: bool,
    /// The same, for these services only (rlvs's per-service opt-in).
    sloppy_services: std::collections::HashSet<ServiceKey>,
}

impl Director {
    pub fn new() -> Self {
        Self::default()
    }

    // ---------------------------------------------------------------- control

    pub fn add_service(&mut self, key: ServiceKey, config: ServiceConfig, now: Time) -> Result<(), IpvsError> {
        if key.fwmark != 0 {
            return Err(IpvsError::NotSupported);
        }
        if self.by_key.contains_key(&key) {
            return Err(IpvsError::Exists);
        }
        validate_service(&key, &config)?;
        let sched = sched::create(&config.scheduler, crate::dest::DestList::new(&[], &self.dests), now)
            .ok_or(IpvsError::NotFound)?;
        let id = match self.free_services.pop() {
            Some(id) => id,
            None => {
                self.services.push(None);
                SvcId(self.services.len() as u32 - 1)
            }
        };
        self.services[id.0 as usize] = Some(Service {
            key,
            config,
            dests: Vec::new(),
            sched,
            stats: Counters::default(),
            est: Estimator::default(),
            laddrs: Vec::new(),
            next_laddr: 0,
        });
        self.by_key.insert(key, id);
        self.order.push(id);
        self.emit(Event::ServiceAdded(key));
        Ok(())
    }

    pub fn edit_service(&mut self, key: &ServiceKey, config: ServiceConfig, now: Time) -> Result<(), IpvsError> {
        let id = self.service_id(key)?;
        validate_service(key, &config)?;
        let svc = live(&mut self.services, id);
        if svc.config.scheduler != config.scheduler {
            svc.sched = sched::create(&config.scheduler, svc.dest_list(&self.dests), now).ok_or(IpvsError::NotFound)?;
        }
        let changed = svc.config != config;
        svc.config = config;
        if changed {
            self.emit(Event::ServiceChanged(*key));
        }
        Ok(())
    }

    pub fn del_service(&mut self, key: &ServiceKey, now: Time) -> Result<(), IpvsError> {
        let id = self.service_id(key)?;
        let svc = self.services[id.0 as usize].take().expect("a live service id");
        self.free_services.push(id);
        self.by_key.remove(key);
        if let Some(i) = self.order.iter().position(|&o| o == id) {
            self.order.remove(i);
        }
        for d in svc.dests {
            let dest = self.dests.get(d).config();
            self.move_to_trash(d, now);
            self.emit(Event::DestRemoved { service: *key, dest });
        }
        for laddr in svc.laddrs {
            self.emit(Event::LaddrRemoved { service: *key, laddr });
        }
        self.emit(Event::ServiceRemoved(*key));
        Ok(())
    }

    pub fn flush(&mut self, now: Time) {
        let keys: Vec<ServiceKey> = self.order.iter().map(|&id| self.svc(id).key).collect();
        for k in keys {
            let _ = self.del_service(&k, now);
        }
    }

    pub fn add_dest(&mut self, key: &ServiceKey, cfg: DestConfig, now: Time) -> Result<(), IpvsError> {
        let sid = self.service_id(key)?;
        validate_dest(&cfg)?;
        if self.svc(sid).position(&self.dests, cfg.addr, cfg.port).is_some() {
            return Err(IpvsError::Exists);
        }
        let revived = self.trash.iter().position(|&t| {
            let d = self.dests.get(t);
            d.svc_key == *key && d.addr == cfg.addr && d.port == cfg.port
        });
        let id = match revived {
            Some(i) => {
                let id = self.trash.swap_remove(i);
                let d = self.dests.get_mut(id);
                d.update(&cfg, true);
                d.svc = Some(sid);
                id
            }
            None => self.dests.insert(Dest::new(&cfg, sid, *key)),
        };
        let svc = live(&mut self.services, sid);
        svc.dests.insert(0, id);
        let list = crate::dest::DestList::new(&svc.dests, &self.dests);
        svc.sched.dest_added(list, 0);
        let dest = self.dests.get(id).config();
        self.emit(Event::DestAdded { service: *key, dest });
        self.bind_unbound(now);
        Ok(())
    }

    pub fn edit_dest(&mut self, key: &ServiceKey, cfg: DestConfig) -> Result<(), IpvsError> {
        let sid = self.service_id(key)?;
        validate_dest(&cfg)?;
        let idx = self.svc(sid).position(&self.dests, cfg.addr, cfg.port).ok_or(IpvsError::NotFound)?;
        let svc = live(&mut self.services, sid);
        let d = self.dests.get_mut(svc.dests[idx]);
        let old = d.config();
        d.update(&cfg, false);
        let new = d.config();
        let list = crate::dest::DestList::new(&svc.dests, &self.dests);
        svc.sched.dest_updated(list, idx);
        if old != new {
            self.emit(Event::DestChanged { service: *key, old, new });
        }
        Ok(())
    }

    pub fn del_dest(&mut self, key: &ServiceKey, addr: IpAddr, port: u16, now: Time) -> Result<(), IpvsError> {
        let sid = self.service_id(key)?;
        let idx = self.svc(sid).position(&self.dests, addr, port).ok_or(IpvsError::NotFound)?;
        let svc = live(&mut self.services, sid);
        let id = svc.dests.remove(idx);
        let list = crate::dest::DestList::new(&svc.dests, &self.dests);
        svc.sched.dest_removed(list, idx);
        let dest = self.dests.get(id).config();
        self.move_to_trash(id, now);
        self.emit(Event::DestRemoved { service: *key, dest });
        Ok(())
    }

    /// Zeroes the counters of one service (and its destinations) or of all.
    pub fn zero(&mut self, key: Option<&ServiceKey>) -> Result<(), IpvsError> {
        let ids: Vec<SvcId> = match key {
            Some(k) => vec![self.service_id(k)?],
            None => {
                self.stats = Counters::default();
                self.est.zero(&self.stats);
                self.order.clone()
            }
        };
        for id in ids {
            let svc = live(&mut self.services, id);
            svc.stats = Counters::default();
            svc.est.zero(&svc.stats);
            for &d in &svc.dests {
                let d = self.dests.get_mut(d);
                d.stats = Counters::default();
                d.est.zero(&d.stats);
            }
        }
        Ok(())
    }

    /// `ipvsadm --set`: zero leaves a value unchanged.
    /// net.ipv4.vs.sloppy_tcp: a mid-flow segment of a connection this
    /// director has not seen (one an ECMP router moved here) is scheduled
    /// instead of dropped. It starts in CLOSE, whose 10 s each packet
    /// renews, as the kernel's does. Only DR and TUN can carry such a
    /// flow: NAT and FULLNAT rewrite it, and the client's side of the
    /// rewrite lived on the other director.
    pub fn set_sloppy_tcp(&mut self, on: bool) {
        self.sloppy_tcp = on;
    }

    /// sloppy_tcp for these services alone, replacing the previous list
    /// (services that come later with the same key are covered too).
    pub fn set_sloppy_services(&mut self, keys: impl IntoIterator<Item = ServiceKey>) {
        self.sloppy_services = keys.into_iter().collect();
    }

    pub fn sloppy_services(&self) -> impl Iterator<Item = &ServiceKey> {
        self.sloppy_services.iter()
    }

    pub fn set_timeouts(&mut self, t: TimeoutTriple) {
        if t.tcp != 0 {
            self.timeouts.tcp[TcpState::Established as usize] = t.tcp;
        }
        if t.tcp_fin != 0 {
            self.timeouts.tcp[TcpState::FinWait as usize] = t.tcp_fin;
        }
        if t.udp != 0 {
            self.timeouts.udp = t.udp;
        }
    }

    pub fn timeouts(&self) -> TimeoutTriple {
        TimeoutTriple {
            tcp: self.timeouts.tcp[TcpState::Established as usize],
            tcp_fin: self.timeouts.tcp[TcpState::FinWait as usize],
            udp: self.timeouts.udp,
        }
    }

    pub fn service_count(&self) -> usize {
        self.order.len()
    }

    pub fn services(&self) -> Vec<ServiceInfo> {
        self.order.iter().map(|&id| self.service_info(id)).collect()
    }

    pub fn service(&self, key: &ServiceKey) -> Result<ServiceInfo, IpvsError> {
        Ok(self.service_info(self.service_id(key)?))
    }

    pub fn conns(&self, now: Time) -> Vec<ConnInfo> {
        self.conns
            .iter()
            .map(|(_, c)| (c, self.conns.key(c), self.conns.target(c)))
            .map(|(c, k, t)| ConnInfo {
                protocol: k.protocol,
                caddr: k.caddr,
                cport: k.cport,
                vaddr: k.vaddr,
                vport: k.vport,
                daddr: t.daddr,
                dport: t.dport,
                state: c.state.name().to_string(),
                expires: now.secs_until(c.expires),
            })
            .chain(self.template_infos(now))
            .collect()
    }

    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }

    /// Persistence templates alive (also listed by `conns`).
    pub fn template_count(&self) -> usize {
        self.templates.len()
    }

    /// As the kernel lists them: folded at the last estimator tick.
    pub fn total_stats(&self) -> Counters {
        self.est.folded()
    }

    pub fn total_rates(&self) -> Rates {
        self.est.read()
    }

    // --------------------------------------------------------------- helpers

    fn move_to_trash(&mut self, id: DestId, now: Time) {
        let d = self.dests.get_mut(id);
        d.available = false;
        d.svc = None;
        d.idle_since = (d.refs == 0).then_some(now);
        self.trash.push(id);
    }

    fn service_id(&self, key: &ServiceKey) -> Result<SvcId, IpvsError> {
        self.by_key.get(key).copied().ok_or(IpvsError::NoService)
    }

    /// The service an id names. Ids come from `by_key`, from a
    /// connection or from a destination, and a service's slot is emptied
    /// only with all three: an id in hand always names a live service.
    fn svc(&self, id: SvcId) -> &Service {
        live_ref(&self.services, id)
    }

    fn svc_mut(&mut self, id: SvcId) -> &mut Service {
        live(&mut self.services, id)
    }

    fn service_info(&self, id: SvcId) -> ServiceInfo {
        let s = self.svc(id);
        ServiceInfo {
            key: s.key,
            config: s.config.clone(),
            laddrs: s.laddrs.clone(),
            stats: s.est.folded(),
            rates: s.est.read(),
            dests: s
                .dests
                .iter()
                .map(|&d| {
                    let d = self.dests.get(d);
                    DestInfo {
                        config: d.config(),
                        activeconns: d.activeconns,
                        inactconns: d.inactconns,
                        persistconns: d.persistconns,
                        stats: d.est.folded(),
                        rates: d.est.read(),
                    }
                })
                .collect(),
        }
    }
}

fn validate_service(key: &ServiceKey, cfg: &ServiceConfig) -> Result<(), IpvsError> {
    // No persistence engine (the kernel's sip) is built in: as a kernel
    // without ip_vs_pe_sip, refuse with ENOENT.
    if !cfg.pe_name.is_empty() {
        return Err(IpvsError::NotFound);
    }
    if key.addr.is_ipv6() && cfg.flags & crate::types::svc_flags::PERSISTENT != 0 && !(1..=128).contains(&cfg.netmask) {
        return Err(IpvsError::Invalid);
    }
    Ok(())
}

fn validate_dest(cfg: &DestConfig) -> Result<(), IpvsError> {
    if cfg.weight < 0 {
        return Err(IpvsError::Range);
    }
    if cfg.l_threshold > cfg.u_threshold {
        return Err(IpvsError::Range);
    }
    Ok(())
}

mod defend;
mod events;
mod fast;
mod fullnat;
mod path;
mod persist;
pub mod sync;

pub use events::Event;
pub use fast::{Adopted, FastConn};
pub use fullnat::{LPORT_FIRST, LPORT_LAST};

#[cfg(test)]
mod defend_tests;
#[cfg(test)]
mod sync_tests;
#[cfg(test)]
mod tests;

/// [`Director::svc_mut`] for code that borrows other tables of the director
/// at the same time.
fn live(services: &mut [Option<Service>], id: SvcId) -> &mut Service {
    services[id.0 as usize].as_mut().expect("a live service id")
}

/// [`Director::svc`], likewise.
fn live_ref(services: &[Option<Service>], id: SvcId) -> &Service {
    services[id.0 as usize].as_ref().expect("a live service id")
}
