//! What the traffic filter (the nftables guard, or the XDP program's maps)
//! and the next-hop watch must know of the tables, kept up to date from
//! the director's events. Each rule is reference-counted, since many
//! services share a real server or a local address; only a count moving
//! between zero and one changes the filter, so a change costs the same
//! whatever the size of the table.

use rlvs_ctl::Request;
use rlvs_lvs::director::Event;
use rlvs_lvs::{DestConfig, FwdMethod, Protocol, ServiceKey};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// One entry of the filter.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Rule {
    /// Traffic to a virtual service; port 0 takes every port.
    Service { addr: IpAddr, protocol: Protocol, port: u16 },
    /// Replies from a NAT real server, unless they are for the director
    /// itself (its health checks).
    NatSource { addr: IpAddr, protocol: Protocol, port: u16 },
    /// Replies from a FULLNAT real server to a local address in the local
    /// port range.
    FnatSource { addr: IpAddr, protocol: Protocol, port: u16 },
    /// A FULLNAT local address.
    Laddr(IpAddr),
    /// One of the director's own addresses.
    Local(IpAddr),
}

/// Where a rule lives: one nft set per family, one BPF map for both.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Table {
    Services,
    AnyPort,
    NatReplies,
    FnatSources,
    Local,
    Laddrs,
}

impl Table {
    pub const ALL: [Table; 6] =
        [Table::Services, Table::AnyPort, Table::NatReplies, Table::FnatSources, Table::Local, Table::Laddrs];

    /// The BPF map's name, and the nft sets' stem (a family suffix added).
    pub fn name(self) -> &'static str {
        match self {
            Table::Services => "services",
            Table::AnyPort => "anyport",
            Table::NatReplies => "natreplies",
            Table::FnatSources => "fnatsources",
            Table::Local => "local",
            Table::Laddrs => "laddrs",
        }
    }
}

impl Rule {
    pub fn table(self) -> Table {
        match self {
            Rule::Service { port: 0, .. } => Table::AnyPort,
            Rule::Service { .. } => Table::Services,
            Rule::NatSource { .. } => Table::NatReplies,
            Rule::FnatSource { .. } => Table::FnatSources,
            Rule::Laddr(_) => Table::Laddrs,
            Rule::Local(_) => Table::Local,
        }
    }

    pub fn addr(self) -> IpAddr {
        match self {
            Rule::Service { addr, .. } | Rule::NatSource { addr, .. } | Rule::FnatSource { addr, .. } => addr,
            Rule::Laddr(a) | Rule::Local(a) => a,
        }
    }

    fn service(key: &ServiceKey) -> Option<Rule> {
        carried(key.protocol, key.fwmark).then_some(Rule::Service {
            addr: key.addr,
            protocol: key.protocol,
            port: key.port,
        })
    }

    /// The reply rule a real server of `service` needs, if any.
    fn source(service: &ServiceKey, d: &DestConfig) -> Option<Rule> {
        if !carried(service.protocol, service.fwmark) {
            return None;
        }
        let (addr, protocol, port) = (d.addr, service.protocol, d.port);
        match d.fwd {
            FwdMethod::Masq => Some(Rule::NatSource { addr, protocol, port }),
            FwdMethod::FullNat => Some(Rule::FnatSource { addr, protocol, port }),
            _ => None,
        }
    }
}

/// The filter matches TCP and UDP by address and port; fwmark and SCTP
/// services never reach a packet engine.
fn carried(p: Protocol, fwmark: u32) -> bool {
    fwmark == 0 && matches!(p, Protocol::Tcp | Protocol::Udp)
}

/// What to do to the filter, and to the next-hop watch, to catch up.
#[derive(Debug, Default, PartialEq)]
pub struct Delta {
    pub added: Vec<Rule>,
    pub removed: Vec<Rule>,
    pub watch: Vec<IpAddr>,
    pub unwatch: Vec<IpAddr>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.watch.is_empty() && self.unwatch.is_empty()
    }
}

/// Counts with the changes since the last [`Counted::take`]: a key that
/// appears and goes again in between is never reported.
struct Counted<K> {
    refs: HashMap<K, u32, ahash::RandomState>,
    added: HashSet<K, ahash::RandomState>,
    removed: HashSet<K, ahash::RandomState>,
}

impl<K: Copy + Eq + std::hash::Hash> Counted<K> {
    fn new() -> Self {
        Counted { refs: HashMap::default(), added: HashSet::default(), removed: HashSet::default() }
    }

    /// True when `k` is new.
    fn inc(&mut self, k: K) -> bool {
        let n = self.refs.entry(k).or_insert(0);
        *n += 1;
        if *n > 1 {
            return false;
        }
        if !self.removed.remove(&k) {
            self.added.insert(k);
        }
        true
    }

    /// True when `k` is gone.
    fn dec(&mut self, k: K) -> bool {
        let Some(n) = self.refs.get_mut(&k) else { return false };
        *n -= 1;
        if *n > 0 {
            return false;
        }
        self.refs.remove(&k);
        if !self.added.remove(&k) {
            self.removed.insert(k);
        }
        true
    }

    fn take(&mut self) -> (Vec<K>, Vec<K>) {
        (self.added.drain().collect(), self.removed.drain().collect())
    }
}

/// The filter's rules and the watched next hops, as the events left them.
pub struct Follower {
    rules: Counted<Rule>,
    /// Distinct rules per table, against `capacity`.
    sizes: HashMap<Table, usize>,
    capacity: usize,
    hops: Counted<IpAddr>,
    local: HashSet<IpAddr>,
}

impl Follower {
    /// `capacity`: how many distinct rules each table takes.
    pub fn new(capacity: usize) -> Follower {
        Follower { rules: Counted::new(), sizes: HashMap::new(), capacity, hops: Counted::new(), local: HashSet::new() }
    }

    fn inc(&mut self, r: Option<Rule>) {
        if let Some(r) = r {
            if self.rules.inc(r) {
                *self.sizes.entry(r.table()).or_default() += 1;
            }
        }
    }

    fn dec(&mut self, r: Option<Rule>) {
        if let Some(r) = r {
            if self.rules.dec(r) {
                *self.sizes.entry(r.table()).or_default() -= 1;
            }
        }
    }

    pub fn event(&mut self, e: &Event) {
        match e {
            Event::ServiceAdded(k) => self.inc(Rule::service(k)),
            Event::ServiceRemoved(k) => self.dec(Rule::service(k)),
            Event::DestAdded { service, dest } => {
                self.inc(Rule::source(service, dest));
                self.hops.inc(dest.addr);
            }
            Event::DestChanged { service, old, new } => {
                self.inc(Rule::source(service, new));
                self.dec(Rule::source(service, old));
                self.hops.inc(new.addr);
                self.hops.dec(old.addr);
            }
            Event::DestRemoved { service, dest } => {
                self.dec(Rule::source(service, dest));
                self.hops.dec(dest.addr);
            }
            Event::LaddrAdded { laddr, .. } => self.inc(Some(Rule::Laddr(*laddr))),
            Event::LaddrRemoved { laddr, .. } => self.dec(Some(Rule::Laddr(*laddr))),
            Event::ServiceChanged(_) | Event::ConnAdded(_) | Event::ConnChanged { .. } | Event::ConnRemoved { .. } => {}
        }
    }

    /// The director's own addresses now (they come and go with VIPs).
    pub fn set_local(&mut self, now: &[IpAddr]) {
        let now: HashSet<IpAddr> = now.iter().copied().collect();
        let gone: Vec<IpAddr> = self.local.difference(&now).copied().collect();
        let new: Vec<IpAddr> = now.difference(&self.local).copied().collect();
        for a in gone {
            self.dec(Some(Rule::Local(a)));
        }
        for a in new {
            if !self.room(Rule::Local(a)) {
                tracing::error!(
                    address = %a,
                    capacity = self.capacity,
                    "the traffic filter's local table is full: replies from real servers to this address \
                     may be taken for the engine's (raise --filter-entries)"
                );
                continue;
            }
            self.inc(Some(Rule::Local(a)));
        }
        self.local = now.into_iter().filter(|a| self.rules.refs.contains_key(&Rule::Local(*a))).collect();
    }

    /// Whether `r` is there already or its table has room for it.
    fn room(&self, r: Rule) -> bool {
        self.rules.refs.contains_key(&r) || self.sizes.get(&r.table()).copied().unwrap_or(0) < self.capacity
    }

    /// Why the filter could not take what `req` would add, if it could not:
    /// the request is then refused, before the tables change.
    pub fn refuses(&self, req: &Request) -> Option<String> {
        let rule = match req {
            Request::AddService { key, .. } => Rule::service(key),
            Request::AddDest { service, dest } | Request::EditDest { service, dest } => Rule::source(service, dest),
            Request::AddLaddr { laddr, .. } => Some(Rule::Laddr(*laddr)),
            _ => None,
        }?;
        (!self.room(rule)).then(|| {
            format!(
                "the traffic filter's {} table is full ({} entries): raise --filter-entries",
                rule.table().name(),
                self.capacity
            )
        })
    }

    /// Every rule the filter holds (as of the last [`Follower::take`] and
    /// since).
    pub fn rules(&self) -> Vec<Rule> {
        self.rules.refs.keys().copied().collect()
    }

    /// Whether rules came or went since the last [`Follower::take`].
    pub fn filter_changes(&self) -> bool {
        !self.rules.added.is_empty() || !self.rules.removed.is_empty()
    }

    /// Whether `addr` is a real server whose next hop is wanted.
    pub fn watches(&self, addr: IpAddr) -> bool {
        self.hops.refs.contains_key(&addr)
    }

    /// Hands back changes the filter could not take, for the next
    /// [`Follower::take`].
    pub fn requeue(&mut self, added: Vec<Rule>, removed: Vec<Rule>) {
        self.rules.added.extend(added);
        self.rules.removed.extend(removed);
    }

    /// The changes since the last call.
    pub fn take(&mut self) -> Delta {
        let (added, removed) = self.rules.take();
        let (watch, unwatch) = self.hops.take();
        Delta { added, removed, watch, unwatch }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(port: u16) -> ServiceKey {
        ServiceKey::new(Protocol::Tcp, "10.0.0.100".parse().unwrap(), port)
    }

    fn dest(a: &str, fwd: FwdMethod) -> DestConfig {
        DestConfig::new(a.parse().unwrap(), 8080, fwd, 1)
    }

    fn sorted(mut v: Vec<Rule>) -> Vec<Rule> {
        v.sort_by_key(|r| format!("{r:?}"));
        v
    }

    #[test]
    fn shared_real_servers_are_counted_and_leave_with_the_last_service() {
        let mut f = Follower::new(16);
        let rs = dest("192.168.100.2", FwdMethod::Masq);
        let nat = Rule::NatSource { addr: rs.addr, protocol: Protocol::Tcp, port: 8080 };
        for p in [80, 81] {
            f.event(&Event::ServiceAdded(svc(p)));
            f.event(&Event::DestAdded { service: svc(p), dest: rs });
        }
        let d = f.take();
        assert_eq!(d.added.len(), 3, "{d:?}");
        assert!(d.added.contains(&nat));
        assert_eq!(d.watch, [rs.addr]);
        f.event(&Event::DestRemoved { service: svc(80), dest: rs });
        f.event(&Event::ServiceRemoved(svc(80)));
        let d = f.take();
        assert_eq!(d.removed, [Rule::Service { addr: svc(80).addr, protocol: Protocol::Tcp, port: 80 }]);
        assert!(d.unwatch.is_empty() && d.added.is_empty());
        f.event(&Event::DestRemoved { service: svc(81), dest: rs });
        let d = f.take();
        assert_eq!(d.removed, [nat]);
        assert_eq!(d.unwatch, [rs.addr]);
    }

    #[test]
    fn a_change_undone_before_it_is_taken_is_never_applied() {
        let mut f = Follower::new(16);
        f.event(&Event::ServiceAdded(svc(80)));
        f.event(&Event::ServiceRemoved(svc(80)));
        assert_eq!(f.take(), Delta::default());
        // Changing a real server from DR to NAT and back.
        f.event(&Event::ServiceAdded(svc(80)));
        let dr = dest("192.168.100.2", FwdMethod::DirectRoute);
        let nat = dest("192.168.100.2", FwdMethod::Masq);
        f.event(&Event::DestAdded { service: svc(80), dest: dr });
        let _ = f.take();
        f.event(&Event::DestChanged { service: svc(80), old: dr, new: nat });
        f.event(&Event::DestChanged { service: svc(80), old: nat, new: dr });
        assert_eq!(f.take(), Delta::default());
    }

    #[test]
    fn a_full_table_refuses_new_rules_but_not_shared_ones() {
        let mut f = Follower::new(2);
        f.event(&Event::ServiceAdded(svc(80)));
        f.event(&Event::ServiceAdded(svc(81)));
        let add = |port| Request::AddService { key: svc(port), config: Default::default() };
        let why = f.refuses(&add(82)).unwrap();
        assert!(why.contains("services table is full (2 entries)"), "{why}");
        // A port-zero service lives in another table.
        assert!(f.refuses(&add(0)).is_none());
        // A DR real server adds no rule; a NAT one does, and has room.
        let a = Request::AddDest { service: svc(80), dest: dest("192.168.100.2", FwdMethod::Masq) };
        assert!(f.refuses(&a).is_none());
        f.event(&Event::ServiceRemoved(svc(81)));
        assert!(f.refuses(&add(82)).is_none());
    }

    #[test]
    fn local_addresses_follow_the_director() {
        let mut f = Follower::new(16);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        f.set_local(&[a, b]);
        assert_eq!(sorted(f.take().added), sorted(vec![Rule::Local(a), Rule::Local(b)]));
        f.set_local(&[b]);
        f.set_local(&[b]);
        assert_eq!(f.take().removed, [Rule::Local(a)]);
    }
}
