//! The connection table: one entry per client flow, keyed as the kernel's
//! `ip_vs_conn_in_get` looks them up (protocol, client address and port,
//! virtual address and port).

pub mod tcp;

use crate::dest::DestId;
use crate::time::Time;
use crate::types::{FwdMethod, Protocol};
use ahash::RandomState;
use std::collections::HashMap;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug, Clone)]
pub struct Conn {
    pub key: ConnKey,
    pub daddr: IpAddr,
    pub dport: u16,
    pub dest: DestId,
    pub fwd: FwdMethod,
    pub state: ConnState,
    /// IP_VS_CONN_F_INACTIVE: counted in the destination's inactconns.
    pub inactive: bool,
    /// IP_VS_CONN_F_NOOUTPUT: no reply has been seen (always so for DR/TUN).
    pub no_output: bool,
    pub expires: Time,
    /// The persistence template that placed it (ip_vs_control_add).
    pub control: Option<TemplateId>,
    /// Where replies to the client leave (NAT), learnt from its first frame.
    pub return_hop: Option<Hop>,
    /// FULLNAT: the local address and port the real server sees.
    pub fnat: Option<(IpAddr, u16)>,
    /// FULLNAT TCP: the offsets into the director's sequence and timestamp
    /// space (see fwd::tcpseq).
    pub seq_adjust: Option<crate::fwd::tcpseq::SeqAdjust>,
}

impl Conn {
    /// The key its replies arrive with, for methods whose replies pass the
    /// director.
    pub fn out_key(&self) -> Option<OutKey> {
        let (caddr, cport) = match (self.fwd, self.fnat) {
            (FwdMethod::Masq, _) => (self.key.caddr, self.key.cport),
            (FwdMethod::FullNat, Some(local)) => local,
            _ => return None,
        };
        Some(OutKey { protocol: self.key.protocol, daddr: self.daddr, dport: self.dport, caddr, cport })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u32);

/// A persistence template's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateId(pub u32);

/// Connections in a slab with a hash index. The hasher is keyed randomly per
/// table so that clients cannot aim collisions at it.
#[derive(Debug, Default)]
pub struct ConnTable {
    index: HashMap<ConnKey, u32, RandomState>,
    /// Replies' keys of the connections whose replies pass the director.
    out_index: HashMap<OutKey, u32, RandomState>,
    slots: Vec<Option<Conn>>,
    free: Vec<u32>,
}

impl ConnTable {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn lookup(&self, key: &ConnKey) -> Option<ConnId> {
        self.index.get(key).map(|&i| ConnId(i))
    }

    /// ip_vs_conn_out_get: the connection a reply belongs to.
    pub fn lookup_out(&self, key: &OutKey) -> Option<ConnId> {
        self.out_index.get(key).map(|&i| ConnId(i))
    }

    pub fn insert(&mut self, c: Conn) -> ConnId {
        let key = c.key;
        let out = c.out_key();
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
        self.index.insert(key, i);
        if let Some(o) = out {
            self.out_index.insert(o, i);
        }
        ConnId(i)
    }

    pub fn remove(&mut self, id: ConnId) -> Conn {
        let c = self.slots[id.0 as usize].take().expect("live connection id");
        self.index.remove(&c.key);
        if let Some(o) = c.out_key() {
            if self.out_index.get(&o) == Some(&id.0) {
                self.out_index.remove(&o);
            }
        }
        self.free.push(id.0);
        c
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
