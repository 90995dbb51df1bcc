//! Connection synchronisation, the director's side (sans-IO): as master,
//! which connections to announce and when (the kernel's
//! ip_vs_sync_conn_needed); as backup, what an announced connection
//! becomes in this table (ip_vs_proc_conn). The shell carries the
//! messages (rlvs_wire::ipvs_sync) over multicast and feeds them here.
//!
//! Where rlvs differs from the kernel, and why:
//! - The kernel counts every input packet and first announces a TCP
//!   connection at its third (sync_threshold), then every sync_period
//!   packets. Under the XDP fast path an established connection's packets
//!   no longer reach the director, so there (`every_packet_seen` false) a
//!   connection is announced when it enters a synced state, ESTABLISHED
//!   included, and a UDP one at its first packet: the moment it leaves
//!   for XDP.
//! - The master re-announces a flow the fast path carries each time its
//!   timer runs out in the director (then every half timeout), and
//!   announces such flows with 1.5 times the state's timeout, so the
//!   backup's copy lives until the next announcement.
//! - A connection whose real server this backup does not know is kept
//!   aside (capped at UNBOUND_MAX, counted) and bound when the server
//!   appears, as the kernel binds it; until then it is not forwarded (the
//!   kernel forwards an unbound connection by its flags).

use super::fast::Adopted;
use super::ConnKey;
use super::Director;
use crate::conn::tcp::TcpState;
use crate::conn::{ConnId, ConnState};
use crate::time::{Span, Time};
use crate::types::{FwdMethod, Protocol};
use rlvs_wire::ipvs_sync::{flags, FnatOffsets, SyncConn};
use serde::Serialize;

/// Synced connections waiting for their real server, at most.
pub const UNBOUND_MAX: usize = 65_536;

/// net.ipv4.vs.sync_* as the master uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncParams {
    pub threshold: u32,
    pub period: u32,
    /// 0: off (the kernel's default).
    pub refresh_period: Span,
}

impl Default for SyncParams {
    fn default() -> Self {
        SyncParams { threshold: 3, period: 50, refresh_period: Span::from_secs(0) }
    }
}

/// What sync did, for metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SyncCounters {
    /// Connections queued for sending (master).
    pub announced: u64,
    /// Received connections that made a new entry, or updated one.
    pub created: u64,
    pub updated: u64,
    /// Received for a real server not configured (yet), then bound.
    pub unbound: u64,
    pub bound_later: u64,
    /// Refused: unknown protocol, impossible state, no such service, the
    /// unbound list full, the table unable to take it.
    pub bad_protocol: u64,
    pub bad_state: u64,
    pub no_service: u64,
    pub unbound_full: u64,
    pub refused: u64,
    /// Persistence templates received (made or renewed here).
    pub templates: u64,
}

#[derive(Default)]
pub(crate) struct SyncSide {
    master: Option<SyncParams>,
    every_packet_seen: bool,
    out: Vec<SyncConn>,
    /// Waiting for their real server, with when they would have expired.
    unbound: Vec<(SyncConn, Time)>,
    /// Clients of synced NAT and FULLNAT connections, whose replies the
    /// shell must route until their first packet shows the link.
    hops_wanted: Vec<std::net::IpAddr>,
    hops_asked: std::collections::HashSet<std::net::IpAddr>,
    counters: SyncCounters,
}

fn synced_tcp_state(s: TcpState) -> bool {
    matches!(s, TcpState::Established | TcpState::FinWait | TcpState::Close | TcpState::CloseWait | TcpState::TimeWait)
}

fn fwd_flag(m: FwdMethod) -> u32 {
    match m {
        // A kernel has no FULLNAT: it reads the closest, and skips the
        // local address parameter that makes it FULLNAT to rlvs.
        FwdMethod::Masq | FwdMethod::FullNat => flags::MASQ,
        FwdMethod::Local => flags::LOCALNODE,
        FwdMethod::Tunnel => flags::TUNNEL,
        FwdMethod::DirectRoute => flags::DROUTE,
    }
}

impl Director {
    /// Master role on (`Some`) or off. `every_packet_seen`: the engine
    /// passes every input packet through the director (AF_PACKET); false
    /// under the XDP fast path (see the module's notes).
    pub fn set_sync_master(&mut self, params: Option<SyncParams>, every_packet_seen: bool) {
        self.sync.master = params;
        self.sync.every_packet_seen = every_packet_seen;
    }

    pub fn sync_counters(&self) -> SyncCounters {
        self.sync.counters
    }

    /// Synced connections still waiting for their real server.
    pub fn sync_unbound(&self) -> usize {
        self.sync.unbound.len()
    }

    /// Client addresses the shell should resolve a next hop for (see
    /// `Reply::caddr`), each asked once (at most UNBOUND_MAX of them).
    pub fn take_wanted_hops(&mut self) -> Vec<std::net::IpAddr> {
        std::mem::take(&mut self.sync.hops_wanted)
    }

    /// The connections announced since the last call, for the shell to send.
    pub fn take_sync(&mut self) -> Vec<SyncConn> {
        std::mem::take(&mut self.sync.out)
    }

    /// After an input packet of `cid` (ip_vs_in's call of ip_vs_sync_conn).
    pub(super) fn sync_after_packet(&mut self, cid: ConnId, now: Time) {
        let Some(p) = self.sync.master else { return };
        let every = self.sync.every_packet_seen;
        let c = self.conns.get_mut(cid);
        let pkts = c.in_pkts;
        let force = match c.state {
            ConnState::Tcp(s) => {
                if !synced_tcp_state(s) {
                    return;
                }
                c.state != c.sync_state && (s != TcpState::Established || !every)
            }
            // Without every packet, UDP goes to XDP at its first.
            ConnState::Udp => !every && pkts == 1,
        };
        if !force {
            if p.refresh_period.as_secs() > 0 && c.synced_at.as_millis() > 0 {
                let since = now.as_millis().saturating_sub(c.synced_at.as_millis());
                if since < p.refresh_period.as_secs() * 1000 {
                    return;
                }
            }
            let due = if p.period > 0 {
                pkts % p.period == p.threshold
            } else {
                p.refresh_period.as_secs() > 0 || pkts == p.threshold
            };
            if !due {
                return;
            }
        }
        c.sync_state = c.state;
        self.announce(cid, now);
    }

    fn conn_timeout(&self, cid: ConnId) -> u32 {
        match self.conns.get(cid).state {
            ConnState::Tcp(s) => self.timeouts.tcp[s as usize],
            ConnState::Udp => self.timeouts.udp,
        }
    }

    fn announce(&mut self, cid: ConnId, now: Time) {
        self.conns.get_mut(cid).synced_at = now;
        let s = self.sync_conn_of(cid);
        self.sync.out.push(s);
        self.sync.counters.announced += 1;
        // Its persistence template goes with it, as the kernel syncs a
        // connection's controller, so that a backup keeps the client's
        // later connections on the same real server.
        if let Some(tid) = self.conns.get(cid).control {
            let t = self.templates.get_mut(tid);
            let fwd = self.dests.try_get(t.dest).map_or(flags::MASQ, |d| fwd_flag(d.fwd));
            let tpl = SyncConn {
                protocol: t.key.protocol.number(),
                flags: flags::TEMPLATE | fwd,
                state: 0,
                caddr: t.key.caddr,
                cport: 0,
                vaddr: t.key.vaddr,
                vport: t.key.vport,
                daddr: t.daddr,
                dport: t.dport,
                fwmark: 0,
                timeout: t.timeout.as_secs() as u32,
                seq: None,
                pe_name: None,
                pe_data: None,
                fnat_local: None,
                fnat_offsets: None,
            };
            self.sync.out.push(tpl);
            self.sync.counters.announced += 1;
        }
    }

    /// A connection the fast path still carries, whose timer ran out here
    /// (expire_with): as master, it is announced again and looked at
    /// again at half its timeout, so that a backup's copy, which nothing
    /// else refreshes, never expires while the flow lives. Returns when
    /// its timer should run out next.
    pub(super) fn refresh_fast(&mut self, cid: ConnId, until: Time, now: Time) -> Time {
        if self.sync.master.is_none() {
            return until;
        }
        let half = u64::from(self.conn_timeout(cid) / 2).max(1);
        if now.as_millis().saturating_sub(self.conns.get(cid).synced_at.as_millis()) >= half * 1000 - 1000 {
            self.announce(cid, now);
        }
        until.min(now + Span::from_secs(half))
    }

    /// Announces every connection a backup should hold: the answer to a
    /// returning master's bulk resync request. Returns how many.
    pub fn sync_all(&mut self, now: Time) -> usize {
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| match c.state {
                ConnState::Tcp(s) => synced_tcp_state(s),
                ConnState::Udp => true,
            })
            .map(|(id, _)| id)
            .collect();
        for &id in &ids {
            self.announce(id, now);
        }
        ids.len()
    }

    /// A connection as a sync message carries it.
    pub fn sync_conn_of(&self, cid: ConnId) -> SyncConn {
        let c = self.conns.get(cid);
        let key = self.conns.key(c);
        let target = self.conns.target(c);
        let mut f = fwd_flag(c.fwd);
        if c.no_output {
            f |= flags::NOOUTPUT;
        }
        if c.inactive {
            f |= flags::INACTIVE;
        }
        let (state, mut timeout) = match c.state {
            ConnState::Tcp(s) => (s as u16, self.timeouts.tcp[s as usize]),
            ConnState::Udp => (0, self.timeouts.udp),
        };
        if !self.sync.every_packet_seen && super::fast::fast_path_state(c.state) {
            // Announced again only when its timer runs out here (see
            // refresh_fast): the backup's copy must outlive that moment.
            timeout = timeout.saturating_mul(3) / 2;
        }
        SyncConn {
            protocol: key.protocol.number(),
            flags: f,
            state,
            caddr: key.caddr,
            cport: key.cport,
            vaddr: key.vaddr,
            vport: key.vport,
            daddr: target.daddr,
            dport: target.dport,
            fwmark: 0,
            timeout,
            seq: None,
            pe_name: None,
            pe_data: None,
            fnat_local: self.conns.fnat(c),
            fnat_offsets: c.seq_adjust.map(|a| FnatOffsets { seq: a.seq, ts: a.ts }),
        }
    }

    /// A connection a master announced (ip_vs_proc_conn). Whatever the
    /// message says, the table stays consistent: an impossible entry is
    /// refused and counted, never half-made.
    pub fn apply_sync(&mut self, s: &SyncConn, now: Time) {
        let protocol = match s.protocol {
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            _ => {
                self.sync.counters.bad_protocol += 1;
                return;
            }
        };
        if s.flags & flags::TEMPLATE != 0 {
            self.apply_template(s, protocol, now);
            return;
        }
        let state = match protocol {
            Protocol::Udp if s.state == 0 => ConnState::Udp,
            Protocol::Tcp => match TcpState::from_number(s.state) {
                Some(t) => ConnState::Tcp(t),
                None => {
                    self.sync.counters.bad_state += 1;
                    return;
                }
            },
            _ => {
                self.sync.counters.bad_state += 1;
                return;
            }
        };
        if s.caddr.is_ipv4() != s.vaddr.is_ipv4() {
            self.sync.counters.refused += 1;
            return;
        }
        let key = ConnKey { protocol, caddr: s.caddr, cport: s.cport, vaddr: s.vaddr, vport: s.vport };
        let timeout = match s.timeout {
            0 => match state {
                ConnState::Tcp(t) => self.timeouts.tcp[t as usize],
                ConnState::Udp => self.timeouts.udp,
            },
            t => t.min(31 * 86_400),
        };
        let expires = now + Span::from_secs(u64::from(timeout));
        if let Some(cid) = self.conns.lookup(&key) {
            let c = self.conns.get(cid);
            let t = self.conns.target(c);
            if t.daddr == s.daddr && t.dport == s.dport {
                self.update_synced(cid, s, state, expires);
                return;
            }
            if s.flags & flags::INACTIVE != 0 {
                // The expiry of an entry already replaced: ignore it.
                return;
            }
            self.expire_conn(cid, now);
        }
        self.bind_synced(key, s, state, expires, now);
    }

    fn update_synced(&mut self, cid: ConnId, s: &SyncConn, state: ConnState, expires: Time) {
        let dest = self.conns.target(self.conns.get(cid)).dest;
        let inactive = s.flags & flags::INACTIVE != 0;
        let c = self.conns.get_mut(cid);
        let from = c.state;
        if c.inactive != inactive {
            if let Some(d) = self.dests.try_get_mut(dest) {
                if inactive {
                    d.activeconns = d.activeconns.saturating_sub(1);
                    d.inactconns += 1;
                } else {
                    d.inactconns = d.inactconns.saturating_sub(1);
                    d.activeconns += 1;
                }
            }
            c.inactive = inactive;
        }
        c.state = state;
        c.sync_state = state;
        c.expires = expires;
        self.sync.counters.updated += 1;
        if from != state && self.conn_events && !self.needs_return_hop(cid) {
            let key = self.conns.key(self.conns.get(cid));
            self.events.push_back(super::Event::ConnChanged { key, from, to: state });
        }
    }

    /// Finds the real server and makes the entry, or keeps it aside.
    fn bind_synced(&mut self, key: ConnKey, s: &SyncConn, state: ConnState, expires: Time, now: Time) {
        let Some(sid) = self.find_service(key.protocol, key.vaddr, key.vport) else {
            // Kept aside as for an unknown real server: a director that is
            // still installing its table (a restart taking a bulk resync)
            // binds it once the service and its servers are in.
            self.sync.counters.no_service += 1;
            self.keep_unbound(s, expires);
            return;
        };
        let svc = self.svc(sid);
        let dest = svc.dests.iter().copied().find(|&d| {
            let d = self.dests.get(d);
            d.addr == s.daddr
                && (d.port == s.dport || matches!(d.fwd, FwdMethod::DirectRoute | FwdMethod::Tunnel) || d.port == 0)
        });
        let Some(dest) = dest else {
            self.keep_unbound(s, expires);
            return;
        };
        let a = Adopted {
            key,
            dest,
            daddr: s.daddr,
            dport: s.dport,
            fnat: s.fnat_local.filter(|_| self.dests.get(dest).fwd == FwdMethod::FullNat),
            seq_adjust: s.fnat_offsets.map(|o| crate::fwd::tcpseq::SeqAdjust { seq: o.seq, ts: o.ts }),
            return_hop: None,
            state,
            expires,
        };
        // The bound holds for a backup's copy too (a master with a larger
        // one must not exhaust its peer).
        if !self.defence.has_room(self.conns.len()) {
            self.defence.refused_at_limit += 1;
            self.sync.counters.refused += 1;
            return;
        }
        if !self.adopt_conn(&a) {
            self.sync.counters.refused += 1;
            return;
        }
        if let Some(cid) = self.conns.lookup(&key) {
            let c = self.conns.get_mut(cid);
            c.sync_state = state;
            c.synced_at = now;
            // A later message's INACTIVE flag is applied against this.
            if s.flags & flags::INACTIVE != 0 && !c.inactive {
                c.inactive = true;
                let d = self.dests.get_mut(dest);
                d.activeconns = d.activeconns.saturating_sub(1);
                d.inactconns += 1;
            }
        }
        self.sync.counters.created += 1;
        let ready = self.conns.lookup(&key).is_some_and(|cid| !self.needs_return_hop(cid));
        if !ready && self.sync.hops_asked.len() < UNBOUND_MAX && self.sync.hops_asked.insert(key.caddr) {
            self.sync.hops_wanted.push(key.caddr);
        }
        if self.conn_events && ready {
            self.events.push_back(super::Event::ConnAdded(key));
            if state != ConnState::Udp {
                self.events.push_back(super::Event::ConnChanged {
                    key,
                    from: ConnState::Tcp(TcpState::None),
                    to: state,
                });
            }
        }
    }

    /// A persistence template a master announced: made, or its timer
    /// renewed, so that the client network's next connections here go to
    /// the same real server. One whose service or real server this backup
    /// lacks is counted and dropped (the kernel keeps it unbound).
    fn apply_template(&mut self, s: &SyncConn, protocol: Protocol, now: Time) {
        self.sync.counters.templates += 1;
        let key = super::persist::TemplateKey { protocol, caddr: s.caddr, vaddr: s.vaddr, vport: s.vport };
        let sid = self.find_service(protocol, s.vaddr, s.vport).or_else(|| {
            // An FTP service's templates carry port 0.
            self.order.iter().copied().find(|&sid| {
                self.services[sid.0 as usize].as_ref().is_some_and(|svc| {
                    svc.key.addr == s.vaddr
                        && svc.key.protocol == protocol
                        && super::persist::is_persistent(&svc.config)
                })
            })
        });
        let Some(sid) = sid else {
            self.sync.counters.no_service += 1;
            return;
        };
        let svc = self.svc(sid);
        let timeout = Span::from_secs(u64::from(if s.timeout == 0 { svc.config.timeout } else { s.timeout }));
        let dest = svc.dests.iter().copied().find(|&d| {
            let d = self.dests.get(d);
            d.addr == s.daddr && (s.dport == 0 || d.port == s.dport || d.port == 0)
        });
        let Some(dest) = dest else {
            self.sync.counters.refused += 1;
            return;
        };
        self.sync_template(key, dest, s.daddr, s.dport, timeout, now);
    }

    /// NAT and FULLNAT replies leave by the link the client's packets came
    /// in on, which a synced connection has not shown this director yet.
    fn needs_return_hop(&self, cid: ConnId) -> bool {
        let c = self.conns.get(cid);
        matches!(c.fwd, FwdMethod::Masq | FwdMethod::FullNat) && self.conns.return_hop(c).is_none()
    }

    /// A client packet of a known connection: a synced NAT or FULLNAT one
    /// learns its return link from it, and only now enters the fast path
    /// (which could not send its replies before).
    pub(super) fn learn_return_hop(&mut self, cid: ConnId, ingress: Option<crate::conn::Hop>) {
        if ingress.is_none() || !self.needs_return_hop(cid) {
            return;
        }
        self.conns.set_return_hop(cid, ingress);
        let c = self.conns.get(cid);
        if self.conn_events && super::fast::fast_path_state(c.state) {
            let key = self.conns.key(c);
            let e = match c.state {
                ConnState::Udp => super::Event::ConnAdded(key),
                s => super::Event::ConnChanged { key, from: ConnState::Tcp(TcpState::None), to: s },
            };
            self.events.push_back(e);
        }
    }

    /// Keeps a synced connection aside until its real server is known.
    fn keep_unbound(&mut self, s: &SyncConn, expires: Time) {
        if self.sync.unbound.len() >= UNBOUND_MAX {
            self.sync.counters.unbound_full += 1;
            return;
        }
        let same = |u: &SyncConn| (u.protocol, u.caddr, u.cport, u.vaddr, u.vport);
        self.sync.unbound.retain(|(u, _)| same(u) != same(s));
        self.sync.unbound.push((s.clone(), expires));
        self.sync.counters.unbound += 1;
    }

    /// Forgets waiting connections whose time ran out.
    pub(super) fn expire_unbound(&mut self, now: Time) {
        self.sync.unbound.retain(|(_, until)| *until > now);
    }

    /// Binds waiting synced connections to real servers that exist now
    /// (after a real server is added).
    pub(super) fn bind_unbound(&mut self, now: Time) {
        if self.sync.unbound.is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut self.sync.unbound);
        let before = self.sync.counters.created;
        for (s, _) in waiting.into_iter().filter(|(_, until)| *until > now) {
            let n = self.sync.counters.unbound;
            self.apply_sync(&s, now);
            if self.sync.counters.unbound > n {
                // Still no server: apply_sync put it back and counted it again.
                self.sync.counters.unbound = n;
            }
        }
        self.sync.counters.bound_later += self.sync.counters.created - before;
    }
}
