//! What a fast path (the XDP program of the AF_XDP engine) needs from the
//! director, which stays the authority over every connection: which
//! connections it may carry and how, the FINs and RSTs it forwarded (the
//! state machine moves as if the director had seen them), the packets it
//! counted, and when a connection it carries was last seen (a connection
//! expires only once the fast path has not seen it for its timeout).

use super::*;
use crate::fwd::tun::TunKind;

/// One connection as a fast path carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastConn {
    pub key: ConnKey,
    pub method: FwdMethod,
    pub dest: DestId,
    pub daddr: IpAddr,
    pub dport: u16,
    /// FULLNAT: the local address and port the real server sees.
    pub fnat: Option<(IpAddr, u16)>,
    pub seq_adjust: Option<SeqAdjust>,
    pub tun: Option<TunKind>,
    /// The key replies arrive with (NAT, FULLNAT).
    pub out: Option<OutKey>,
    /// The link replies leave by, and its number (see
    /// ConnTable::return_hop_number).
    pub return_hop: Option<(u16, Hop)>,
}

/// A connection a fast path carried while no director ran, as the fast
/// path's maps describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adopted {
    pub key: ConnKey,
    pub dest: DestId,
    pub daddr: IpAddr,
    pub dport: u16,
    pub fnat: Option<(IpAddr, u16)>,
    pub seq_adjust: Option<SeqAdjust>,
    /// The link its replies left by.
    pub return_hop: Option<Hop>,
    /// TCP: the state the fast path's reports leave it in (ESTABLISHED,
    /// or later when it forwarded a FIN or RST).
    pub state: ConnState,
    pub expires: Time,
}

impl Director {
    /// Takes over a connection a fast path kept alive while no director
    /// ran (a daemon restarted): it is counted and found as if this
    /// director had scheduled it. False when its destination or its
    /// FULLNAT local port cannot take it.
    pub fn adopt_conn(&mut self, a: &Adopted) -> bool {
        if self.conns.lookup(&a.key).is_some() {
            return false;
        }
        let Some(d) = self.dests.try_get(a.dest) else { return false };
        if d.svc.is_none() {
            return false;
        }
        let fwd = d.fwd;
        if let Some((laddr, lport)) = a.fnat {
            let local = fullnat::LocalKey { laddr, protocol: a.key.protocol, raddr: a.daddr, rport: a.dport };
            if !self.ports.claim(local, lport) {
                return false;
            }
        }
        let target = crate::conn::Target { dest: a.dest, daddr: a.daddr, dport: a.dport };
        let mut c = Conn::new(fwd, a.state, a.expires, None);
        c.inactive = !matches!(a.state, ConnState::Tcp(TcpState::Established));
        c.seq_adjust = a.seq_adjust;
        // Replies have been seen: a NAT connection's entry was installed.
        c.no_output = !matches!(fwd, FwdMethod::Masq | FwdMethod::FullNat);
        let Some(cid) = self.conns.insert(c, a.key, target, a.fnat) else { return false };
        self.conns.set_return_hop(cid, a.return_hop);
        let d = self.dests.get_mut(a.dest);
        if matches!(a.state, ConnState::Tcp(TcpState::Established)) {
            d.activeconns += 1;
        } else {
            d.inactconns += 1;
        }
        d.refs += 1;
        true
    }

    /// `key`'s connection if a fast path may carry it now: TCP in
    /// ESTABLISHED, or UDP, to a destination still in its service.
    pub fn fast_conn(&self, key: &ConnKey) -> Option<FastConn> {
        let cid = self.conns.lookup(key)?;
        let c = self.conns.get(cid);
        if !fast_path_state(c.state) {
            return None;
        }
        let t = self.conns.target(c);
        let d = self.dests.try_get(t.dest)?;
        if !d.available {
            return None;
        }
        let tun = (d.fwd == FwdMethod::Tunnel).then(|| TunKind::from_config(d.tun_type, d.tun_port, d.tun_flags));
        if tun == Some(None) {
            return None;
        }
        let number = self.conns.return_hop_number(c);
        Some(FastConn {
            key: *key,
            method: c.fwd,
            dest: t.dest,
            daddr: t.daddr,
            dport: t.dport,
            fnat: self.conns.fnat(c),
            seq_adjust: c.seq_adjust,
            tun: tun.flatten(),
            out: self.conns.out_key(c),
            return_hop: self.conns.return_hop(c).map(|h| (number, h)),
        })
    }

    /// The key replies to `key`'s connection arrive with, if they pass
    /// the director.
    pub fn out_key_of(&self, key: &ConnKey) -> Option<OutKey> {
        let cid = self.conns.lookup(key)?;
        self.conns.out_key(self.conns.get(cid))
    }

    /// A fast path forwarded a segment with `flags` from the client; false
    /// when `key` names no connection.
    pub fn fast_tcp_in(&mut self, key: &ConnKey, flags: TcpFlags, now: Time) -> bool {
        let Some(cid) = self.conns.lookup(key) else { return false };
        let timeout = self.set_tcp_state(cid, Direction::Input, flags);
        self.conns.get_mut(cid).expires = now + Span::from_secs(u64::from(timeout));
        // An input packet the director did not see: its state change is
        // announced as if it had (FIN_WAIT, CLOSE... reach the backup).
        self.sync_after_packet(cid, now);
        true
    }

    /// A fast path forwarded a reply with `flags` from the real server;
    /// returns its connection's key.
    pub fn fast_tcp_out(&mut self, key: &OutKey, flags: TcpFlags, now: Time) -> Option<ConnKey> {
        let cid = self.conns.lookup_out(key)?;
        let timeout = self.set_tcp_state(cid, Direction::Output, flags);
        self.conns.get_mut(cid).expires = now + Span::from_secs(u64::from(timeout));
        Some(self.conns.key(self.conns.get(cid)))
    }

    /// The destination `addr:port` of service `key`, in its list or in
    /// the trash.
    pub fn dest_id(&self, key: &ServiceKey, addr: IpAddr, port: u16) -> Option<DestId> {
        if let Ok(sid) = self.service_id(key) {
            let svc = self.svc(sid);
            if let Some(i) = svc.position(&self.dests, addr, port) {
                return Some(svc.dests[i]);
            }
        }
        self.trash.iter().copied().find(|&t| {
            let d = self.dests.get(t);
            d.svc_key == *key && d.addr == addr && d.port == port
        })
    }

    /// Which real server of which service `id` is.
    pub fn dest_identity(&self, id: DestId) -> Option<(ServiceKey, IpAddr, u16)> {
        self.dests.try_get(id).map(|d| (d.svc_key, d.addr, d.port))
    }

    /// Whether `id` still names a destination (in a service or the trash).
    pub fn dest_alive(&self, id: DestId) -> bool {
        self.dests.try_get(id).is_some()
    }

    /// Packets a fast path forwarded for `dest` (in: towards real
    /// servers; out: replies), counted as the director counts its own.
    pub fn add_fast_stats(&mut self, dest: DestId, c: &Counters) {
        let Some(d) = self.dests.try_get_mut(dest) else { return };
        add(&mut d.stats, c);
        if let Some(sid) = d.svc {
            add(&mut self.svc_mut(sid).stats, c);
        }
        add(&mut self.stats, c);
    }

    /// Moves the timers of the connections a fast path may carry to what
    /// `seen` says (for a listing: `ipvsadm -Lnc` shows when each expires).
    pub fn refresh_seen(&mut self, mut seen: impl FnMut(&ConnKey, Option<&OutKey>) -> Option<Time>) {
        let ids: Vec<ConnId> = self.conns.iter().map(|(id, _)| id).collect();
        for id in ids {
            let c = self.conns.get(id);
            let timeout = match c.state {
                ConnState::Tcp(TcpState::Established) => self.timeouts.tcp[TcpState::Established as usize],
                ConnState::Udp => self.timeouts.udp,
                _ => continue,
            };
            let (key, out) = (self.conns.key(c), self.conns.out_key(c));
            // Only a connection in a state the fast path carries can have
            // been forwarded there: asking for the others would cost a map
            // lookup per closed connection (10,000 a second under churn).
            let fast_seen = if fast_path_state(c.state) { seen(&key, out.as_ref()) } else { None };
            if let Some(t) = fast_seen {
                let until = t + Span::from_secs(u64::from(timeout));
                let c = self.conns.get_mut(id);
                if until > c.expires {
                    c.expires = until;
                }
            }
        }
    }

    /// As [`Director::expire`], but a connection whose timer ran out lives
    /// on when `seen` says a fast path saw it more recently than its
    /// timeout ago; its timer then runs from that time.
    pub fn expire_with(&mut self, now: Time, mut seen: impl FnMut(&ConnKey, Option<&OutKey>) -> Option<Time>) -> usize {
        self.expire_unbound(now);
        let mut n = 0;
        for id in self.conns.expired(now) {
            let c = self.conns.get(id);
            let (key, out) = (self.conns.key(c), self.conns.out_key(c));
            let timeout = match c.state {
                ConnState::Tcp(s) => self.timeouts.tcp[s as usize],
                ConnState::Udp => self.timeouts.udp,
            };
            // Only a connection in a state the fast path carries can have
            // been forwarded there: asking for the others would cost a map
            // lookup per closed connection (10,000 a second under churn).
            let fast_seen = if fast_path_state(c.state) { seen(&key, out.as_ref()) } else { None };
            if let Some(t) = fast_seen {
                let until = t + Span::from_secs(u64::from(timeout));
                if until > now {
                    let next = self.refresh_fast(id, until, now);
                    self.conns.get_mut(id).expires = next;
                    continue;
                }
            }
            self.expire_conn(id, now);
            n += 1;
        }
        self.expire_templates(now);
        self.purge_trash(now);
        for svc in self.services.iter_mut().flatten() {
            svc.sched.tick(now);
        }
        self.estimate(now);
        n
    }
}

/// The states in which a connection may be forwarded by the fast path.
pub(super) fn fast_path_state(state: ConnState) -> bool {
    matches!(state, ConnState::Udp | ConnState::Tcp(TcpState::Established))
}

fn add(to: &mut Counters, c: &Counters) {
    to.inpkts += c.inpkts;
    to.inbytes += c.inbytes;
    to.outpkts += c.outpkts;
    to.outbytes += c.outbytes;
}
