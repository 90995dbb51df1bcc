//! The connection table: one entry per client flow, keyed as the kernel's
//! `ip_vs_conn_in_get` looks them up (protocol, client address and port,
//! virtual address and port).

mod shared;
pub mod tcp;

use crate::dest::DestId;
use crate::time::Time;
use crate::types::{FwdMethod, Protocol};
use ahash::RandomState;
use hashbrown::HashTable;
use shared::Shared;
use std::net::IpAddr;
use tcp::TcpState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub protocol: Protocol,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
}

/// How a reply is keyed: as it leaves the real server (protocol, real
/// server address and port, client address and port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutKey {
    pub protocol: Protocol,
    pub daddr: IpAddr,
    pub dport: u16,
    pub caddr: IpAddr,
    pub cport: u16,
}

/// The link a client's packets came in on: where its replies go back out.
/// Learnt from the first frame, so replies need no route lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hop {
    pub ifindex: i32,
    /// The director's own address on that link.
    pub local: rlvs_wire::EthernetAddress,
    /// The client's (or its router's) address.
    pub peer: rlvs_wire::EthernetAddress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    Tcp(TcpState),
    /// IP_VS_UDP_S_NORMAL, printed as "UDP".
    Udp,
}

impl ConnState {
    pub fn name(self) -> &'static str {
        match self {
            ConnState::Tcp(s) => s.name(),
            ConnState::Udp => "UDP",
        }
    }
}

/// Where a connection goes: the destination it was bound to and the
/// address and port its packets are sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    pub dest: DestId,
    pub daddr: IpAddr,
    pub dport: u16,
}

/// One tracked connection. What many connections share (their target, the
/// FULLNAT local address, the reply link) is held by the table and named
/// here by number; ask the table for it.
#[derive(Debug, Clone)]
pub struct Conn {
    key: StoredKey,
    pub fwd: FwdMethod,
    pub state: ConnState,
    /// IP_VS_CONN_F_INACTIVE: counted in the destination's inactconns.
    pub inactive: bool,
    /// IP_VS_CONN_F_NOOUTPUT: no reply has been seen (always so for DR/TUN).
    pub no_output: bool,
    pub expires: Time,
    /// The persistence template that placed it (ip_vs_control_add).
    pub control: Option<TemplateId>,
    /// FULLNAT TCP: the offsets into the director's sequence and timestamp
    /// space (see fwd::tcpseq).
    pub seq_adjust: Option<crate::fwd::tcpseq::SeqAdjust>,
    target: u32,
    /// FULLNAT: the local address's number (0: not FULLNAT) and port.
    local: u16,
    lport: u16,
    /// Where replies to the client leave (NAT), learnt from its first
    /// frame (0: not known).
    return_hop: u16,
    /// Sync (master): input packets seen, the state last announced and
    /// when (cp->in_pkts, old_state, sync_endtime).
    pub in_pkts: u32,
    pub sync_state: ConnState,
    pub synced_at: Time,
}

impl Conn {
    /// A connection to be inserted; the table fills in what it shares.
    pub fn new(fwd: FwdMethod, state: ConnState, expires: Time, control: Option<TemplateId>) -> Conn {
        Conn {
            key: StoredKey { caddr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), cport: 0, virtual_side: 0 },
            fwd,
            state,
            inactive: true,
            no_output: !matches!(fwd, FwdMethod::Masq | FwdMethod::FullNat),
            expires,
            control,
            seq_adjust: None,
            target: 0,
            local: 0,
            lport: 0,
            return_hop: 0,
            in_pkts: 0,
            sync_state: state,
            synced_at: Time::default(),
        }
    }
}

/// A connection's key as its slot keeps it: the client side whole, the
/// virtual side (protocol, address, port), which thousands of connections
/// share, by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct StoredKey {
    caddr: IpAddr,
    cport: u16,
    virtual_side: u32,
}

/// A connection taken out of the table, with what it shared resolved.
#[derive(Debug)]
pub struct Removed {
    pub conn: Conn,
    pub key: ConnKey,
    pub target: Target,
    pub fnat: Option<(IpAddr, u16)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u32);

/// A persistence template's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateId(std::num::NonZeroU32);

impl TemplateId {
    /// The template in slot `index` (stored plus one, so that an absent
    /// template costs a connection no more than a present one).
    pub fn new(index: u32) -> TemplateId {
        TemplateId(std::num::NonZeroU32::new(index + 1).expect("template slot below u32::MAX"))
    }

    pub fn index(self) -> u32 {
        self.0.get() - 1
    }
}

/// Connections in a slab with two hash indexes (requests' keys, and the
/// reply keys of connections whose replies pass the director). The
/// indexes hold only slot numbers, four bytes a bucket; the keys they are
/// compared with live in the slots. The hasher is keyed randomly per table
/// so that clients cannot aim collisions at it.
pub struct ConnTable {
    hasher: RandomState,
    index: HashTable<u32>,
    out_index: HashTable<u32>,
    slots: Vec<Option<Conn>>,
    free: Vec<u32>,
    virtual_sides: Shared<(Protocol, IpAddr, u16)>,
    targets: Shared<Target>,
    locals: Shared<IpAddr>,
    hops: Shared<Hop>,
}

impl Default for ConnTable {
    fn default() -> ConnTable {
        ConnTable {
            hasher: RandomState::new(),
            index: HashTable::new(),
            out_index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            // A connection's slot is a u32, so these numbers fit one.
            virtual_sides: Shared::with_limit(u32::MAX),
            targets: Shared::with_limit(u32::MAX),
            locals: Shared::with_limit(u32::from(u16::MAX)),
            hops: Shared::with_limit(u32::from(u16::MAX)),
        }
    }
}

impl std::fmt::Debug for ConnTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnTable").field("len", &self.index.len()).finish()
    }
}

impl ConnTable {
    /// What one connection costs in user space: its slot, and its place
    /// in both indexes at hashbrown's 7/8 load (a bucket is a u32 and a
    /// control byte).
    pub const BYTES_PER_CONN: u64 = (std::mem::size_of::<Option<Conn>>() + 2 * 5 * 8 / 7 + 4) as u64;

    /// Slots, live or free: where a random pick of a connection draws from.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The connection in `slot`, if it is live.
    pub fn live_at(&self, slot: u32) -> Option<ConnId> {
        self.slots.get(slot as usize)?.as_ref().map(|_| ConnId(slot))
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn key(&self, c: &Conn) -> ConnKey {
        let (protocol, vaddr, vport) =
            self.virtual_sides.get(c.key.virtual_side).expect("a live connection's key is named");
        ConnKey { protocol, caddr: c.key.caddr, cport: c.key.cport, vaddr, vport }
    }

    /// How `key` is kept in a slot, if any connection has its virtual side.
    fn stored(&self, key: &ConnKey) -> Option<StoredKey> {
        let virtual_side = self.virtual_sides.find(&(key.protocol, key.vaddr, key.vport))?;
        Some(StoredKey { caddr: key.caddr, cport: key.cport, virtual_side })
    }

    pub fn target(&self, c: &Conn) -> Target {
        self.targets.get(c.target).expect("a live connection's target is named")
    }

    /// FULLNAT: the local address and port the real server sees.
    pub fn fnat(&self, c: &Conn) -> Option<(IpAddr, u16)> {
        self.locals.get(u32::from(c.local)).map(|a| (a, c.lport))
    }

    pub fn return_hop(&self, c: &Conn) -> Option<Hop> {
        self.hops.get(u32::from(c.return_hop))
    }

    /// The return link's number (1-65,535; 0 when none is known): stable
    /// while any connection uses the link, so a shell may key its own
    /// copy of the link by it.
    pub fn return_hop_number(&self, c: &Conn) -> u16 {
        c.return_hop
    }

    /// Remembers the link replies to `id` leave by. Only 65,535 distinct
    /// links are remembered at a time (source MACs are the sender's to
    /// choose); past that a reply goes by a route lookup instead.
    pub fn set_return_hop(&mut self, id: ConnId, hop: Option<Hop>) {
        let number = hop.and_then(|h| self.hops.acquire(h)).unwrap_or(0) as u16;
        let c = self.slots[id.0 as usize].as_mut().expect("live connection id");
        let old = std::mem::replace(&mut c.return_hop, number);
        self.hops.release(u32::from(old));
    }

    /// The key replies to `c` arrive with, for methods whose replies pass
    /// the director.
    pub fn out_key(&self, c: &Conn) -> Option<OutKey> {
        Self::out_key_in(&self.virtual_sides, &self.targets, &self.locals, c)
    }

    fn out_key_in(
        virtual_sides: &Shared<(Protocol, IpAddr, u16)>,
        targets: &Shared<Target>,
        locals: &Shared<IpAddr>,
        c: &Conn,
    ) -> Option<OutKey> {
        let (caddr, cport) = match c.fwd {
            FwdMethod::Masq => (c.key.caddr, c.key.cport),
            FwdMethod::FullNat => (locals.get(u32::from(c.local))?, c.lport),
            _ => return None,
        };
        let t = targets.get(c.target)?;
        let (protocol, _, _) = virtual_sides.get(c.key.virtual_side)?;
        Some(OutKey { protocol, daddr: t.daddr, dport: t.dport, caddr, cport })
    }

    fn slot(slots: &[Option<Conn>], i: u32) -> &Conn {
        slots[i as usize].as_ref().expect("indexed slot is live")
    }

    pub fn lookup(&self, key: &ConnKey) -> Option<ConnId> {
        let key = self.stored(key)?;
        let h = self.hasher.hash_one(key);
        self.index.find(h, |&i| Self::slot(&self.slots, i).key == key).map(|&i| ConnId(i))
    }

    /// ip_vs_conn_out_get: the connection a reply belongs to.
    pub fn lookup_out(&self, key: &OutKey) -> Option<ConnId> {
        let h = self.hasher.hash_one(key);
        self.out_index.find(h, |&i| self.out_key(Self::slot(&self.slots, i)).as_ref() == Some(key)).map(|&i| ConnId(i))
    }

    /// Adds `c`, going to `target` (and, FULLNAT, from `fnat`). None when
    /// the table cannot name one more distinct local address (65,535).
    pub fn insert(&mut self, mut c: Conn, key: ConnKey, target: Target, fnat: Option<(IpAddr, u16)>) -> Option<ConnId> {
        if let Some((laddr, lport)) = fnat {
            c.local = self.locals.acquire(laddr)? as u16;
            c.lport = lport;
        }
        c.target = self.targets.acquire(target).expect("fewer targets than connection slots");
        let virtual_side = self.virtual_sides.acquire((key.protocol, key.vaddr, key.vport)).expect("fewer than slots");
        c.key = StoredKey { caddr: key.caddr, cport: key.cport, virtual_side };
        let key = c.key;
        let out = self.out_key(&c);
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(c);
                i
            }
            None => {
                self.slots.push(Some(c));
                self.slots.len() as u32 - 1
            }
        };
        // A key already indexed (the caller replaces a connection) points
        // to the new slot, as HashMap::insert would have it.
        let (hasher, slots, virtual_sides) = (&self.hasher, &self.slots, &self.virtual_sides);
        let (targets, locals) = (&self.targets, &self.locals);
        let out_key =
            |j: u32| slots[j as usize].as_ref().and_then(|c| Self::out_key_in(virtual_sides, targets, locals, c));
        let rehash = |&j: &u32| hasher.hash_one(Self::slot(slots, j).key);
        let h = hasher.hash_one(key);
        match self.index.find_mut(h, |&j| j != i && slots[j as usize].as_ref().is_some_and(|c| c.key == key)) {
            Some(j) => *j = i,
            None => {
                self.index.insert_unique(h, i, rehash);
            }
        }
        if let Some(o) = out {
            let rehash_out = |&j: &u32| hasher.hash_one(out_key(j).expect("indexed by its reply key"));
            let h = hasher.hash_one(o);
            match self.out_index.find_mut(h, |&j| j != i && out_key(j) == Some(o)) {
                Some(j) => *j = i,
                None => {
                    self.out_index.insert_unique(h, i, rehash_out);
                }
            }
        }
        Some(ConnId(i))
    }

    pub fn remove(&mut self, id: ConnId) -> Removed {
        let out = self.out_key(self.get(id));
        let c = self.slots[id.0 as usize].take().expect("live connection id");
        let h = self.hasher.hash_one(c.key);
        if let Ok(e) = self.index.find_entry(h, |&j| j == id.0) {
            e.remove();
        }
        if let Some(o) = out {
            let h = self.hasher.hash_one(o);
            if let Ok(e) = self.out_index.find_entry(h, |&j| j == id.0) {
                e.remove();
            }
        }
        self.free.push(id.0);
        let removed = Removed { key: self.key(&c), target: self.target(&c), fnat: self.fnat(&c), conn: c };
        self.virtual_sides.release(removed.conn.key.virtual_side);
        self.targets.release(removed.conn.target);
        self.locals.release(u32::from(removed.conn.local));
        self.hops.release(u32::from(removed.conn.return_hop));
        removed
    }

    pub fn get(&self, id: ConnId) -> &Conn {
        self.slots[id.0 as usize].as_ref().expect("live connection id")
    }

    pub fn get_mut(&mut self, id: ConnId) -> &mut Conn {
        self.slots[id.0 as usize].as_mut().expect("live connection id")
    }

    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn)> {
        self.slots.iter().enumerate().filter_map(|(i, c)| c.as_ref().map(|c| (ConnId(i as u32), c)))
    }

    /// Ids of connections whose timer has run out at `now`.
    pub fn expired(&self, now: Time) -> Vec<ConnId> {
        self.iter().filter(|(_, c)| c.expires <= now).map(|(id, _)| id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn v4(d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, d))
    }

    fn key(cport: u16) -> ConnKey {
        ConnKey { protocol: Protocol::Tcp, caddr: v4(1), cport, vaddr: v4(100), vport: 80 }
    }

    fn target() -> Target {
        Target { dest: DestId { index: 0, generation: 1 }, daddr: v4(2), dport: 8080 }
    }

    fn nat() -> Conn {
        Conn::new(FwdMethod::Masq, ConnState::Tcp(TcpState::None), Time::ZERO, None)
    }

    #[test]
    fn both_sides_find_a_nat_connection_and_shared_values_go_with_the_last_one() {
        let mut t = ConnTable::default();
        let a = t.insert(nat(), key(1000), target(), None).unwrap();
        let b = t.insert(nat(), key(1001), target(), None).unwrap();
        assert_eq!(t.lookup(&key(1000)), Some(a));
        assert_eq!(t.key(t.get(b)), key(1001));
        assert_eq!(t.target(t.get(b)), target());
        let reply = OutKey { protocol: Protocol::Tcp, daddr: v4(2), dport: 8080, caddr: v4(1), cport: 1001 };
        assert_eq!(t.lookup_out(&reply), Some(b));
        let udp = ConnKey { protocol: Protocol::Udp, ..key(1000) };
        assert_eq!(t.lookup(&udp), None, "the protocol is part of the virtual side");

        let gone = t.remove(a);
        assert_eq!((gone.key, gone.target, gone.fnat), (key(1000), target(), None));
        assert_eq!(t.lookup(&key(1000)), None);
        assert_eq!(t.lookup(&key(1001)), Some(b), "b still names the shared values");
        t.remove(b);
        assert!(t.virtual_sides.find(&(Protocol::Tcp, v4(100), 80)).is_none());
        assert!(t.targets.find(&target()).is_none());
        assert_eq!(t.lookup_out(&reply), None);
    }

    #[test]
    fn a_fullnat_connection_is_found_by_its_local_address_and_a_replaced_key_by_its_newest_slot() {
        let mut t = ConnTable::default();
        let c = Conn::new(FwdMethod::FullNat, ConnState::Tcp(TcpState::None), Time::ZERO, None);
        let a = t.insert(c.clone(), key(1000), target(), Some((v4(254), 5000))).unwrap();
        let reply = OutKey { protocol: Protocol::Tcp, daddr: v4(2), dport: 8080, caddr: v4(254), cport: 5000 };
        assert_eq!(t.lookup_out(&reply), Some(a));
        assert_eq!(t.fnat(t.get(a)), Some((v4(254), 5000)));
        let b = t.insert(c, key(1000), target(), Some((v4(254), 5000))).unwrap();
        assert_eq!(t.lookup(&key(1000)), Some(b));
        assert_eq!(t.lookup_out(&reply), Some(b));
        t.remove(a);
        assert_eq!(t.lookup(&key(1000)), Some(b), "removing the replaced slot leaves the new one indexed");
        assert_eq!(t.lookup_out(&reply), Some(b));
    }

    #[test]
    fn a_return_hop_is_remembered_and_released() {
        let mut t = ConnTable::default();
        let a = t.insert(nat(), key(1000), target(), None).unwrap();
        let hop = Hop {
            ifindex: 3,
            local: rlvs_wire::EthernetAddress([2, 0, 0, 0, 0, 1]),
            peer: rlvs_wire::EthernetAddress([2, 0, 0, 0, 0, 2]),
        };
        t.set_return_hop(a, Some(hop));
        assert_eq!(t.return_hop(t.get(a)), Some(hop));
        t.set_return_hop(a, None);
        assert_eq!(t.return_hop(t.get(a)), None);
        assert!(t.hops.find(&hop).is_none());
    }
}
