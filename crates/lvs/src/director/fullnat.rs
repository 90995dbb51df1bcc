//! FULLNAT's local addresses: each service has a pool of the director's own
//! addresses (LIPs); a new connection gets the next LIP in turn and a local
//! port on it that no live connection to the same real server endpoint
//! uses. A reply is found by (protocol, RIP, rport, LIP, lport), so a port
//! only has to be unique per real server endpoint: each (LIP, RIP:rport)
//! pair offers the whole port range, as connect() does for a local socket.
//! Ports are released when the connection expires.
//!
//! A connection keeps its port through TIME_WAIT (two minutes), so a busy
//! service can run out of ports towards a real server while most of them
//! belong to closed connections. Then, as Linux's tcp_tw_reuse does for
//! connect(), a port held by a TIME_WAIT or CLOSE connection that has been
//! silent for a second is taken over: that entry is expired early.
//!
//! Local ports come from 1024-32767, below Linux's default ephemeral range
//! (32768-60999), so the director's own connections from a LIP (health
//! checks) never collide with them and the nft guard can tell their replies
//! apart.

use super::*;

pub const LPORT_FIRST: u16 = 1024;
pub const LPORT_LAST: u16 = 32767;
const RANGE: usize = (LPORT_LAST - LPORT_FIRST) as usize + 1;
const WORDS: usize = RANGE.div_ceil(64);

/// The endpoint a local port has to be unique towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct LocalKey {
    pub laddr: IpAddr,
    pub protocol: Protocol,
    pub raddr: IpAddr,
    pub rport: u16,
}

/// Which local ports are taken, per (local address, protocol, real server).
#[derive(Default)]
pub(crate) struct PortPool {
    used: HashMap<LocalKey, PortBits, RandomState>,
}

struct PortBits {
    words: Box<[u64; WORDS]>,
    taken: usize,
    /// Where the search for a free port starts: after the last one taken.
    cursor: usize,
    /// Where the search for a port to recycle goes on from.
    probe: usize,
}

impl PortPool {
    /// A free port towards `key`: the first free one after the last taken,
    /// a word (64 ports) at a time. Going round the range rather than
    /// taking the lowest free port keeps a just-released port (whose
    /// connection the real server may still hold in TIME_WAIT) unused for
    /// as long as possible.
    pub fn allocate(&mut self, key: LocalKey) -> Option<u16> {
        let p = self.used.entry(key).or_insert_with(|| PortBits {
            words: Box::new([0; WORDS]),
            taken: 0,
            cursor: 0,
            probe: 0,
        });
        if p.taken == RANGE {
            return None;
        }
        for k in 0..=WORDS {
            let w = (p.cursor / 64 + k) % WORDS;
            let mut valid =
                if w == WORDS - 1 && !RANGE.is_multiple_of(64) { (1u64 << (RANGE % 64)) - 1 } else { u64::MAX };
            if k == 0 {
                // This word's ports before the cursor come last, not first.
                valid &= u64::MAX << (p.cursor % 64);
            }
            let free = !p.words[w] & valid;
            if free != 0 {
                let i = w * 64 + free.trailing_zeros() as usize;
                p.words[i / 64] |= 1 << (i % 64);
                p.taken += 1;
                p.cursor = (i + 1) % RANGE;
                return Some(LPORT_FIRST + i as u16);
            }
        }
        None
    }

    /// Marks `port` taken towards `key` (a connection adopted from a fast
    /// path that outlived an earlier director); false when it already was.
    pub fn claim(&mut self, key: LocalKey, port: u16) -> bool {
        if !(LPORT_FIRST..=LPORT_LAST).contains(&port) {
            return false;
        }
        let p = self.used.entry(key).or_insert_with(|| PortBits {
            words: Box::new([0; WORDS]),
            taken: 0,
            cursor: 0,
            probe: 0,
        });
        let i = usize::from(port - LPORT_FIRST);
        if p.words[i / 64] & (1 << (i % 64)) != 0 {
            return false;
        }
        p.words[i / 64] |= 1 << (i % 64);
        p.taken += 1;
        true
    }

    /// Up to `n` taken ports towards `key` to try to recycle, starting
    /// after the last ones tried.
    pub fn recycle_candidates(&mut self, key: LocalKey, n: usize) -> Vec<u16> {
        let Some(p) = self.used.get_mut(&key) else { return Vec::new() };
        let mut out = Vec::with_capacity(n);
        for _ in 0..RANGE {
            if out.len() == n {
                break;
            }
            let i = p.probe;
            p.probe = (p.probe + 1) % RANGE;
            if p.words[i / 64] & (1 << (i % 64)) != 0 {
                out.push(LPORT_FIRST + i as u16);
            }
        }
        out
    }

    pub fn release(&mut self, key: LocalKey, port: u16) {
        let Some(p) = self.used.get_mut(&key) else { return };
        let i = usize::from(port - LPORT_FIRST);
        if p.words[i / 64] & (1 << (i % 64)) != 0 {
            p.words[i / 64] &= !(1 << (i % 64));
            p.taken -= 1;
        }
        if p.taken == 0 {
            // Real servers come and go; do not keep 4 KiB per one gone.
            self.used.remove(&key);
        }
    }
}

impl Director {
    pub fn add_laddr(&mut self, key: &ServiceKey, laddr: IpAddr) -> Result<(), IpvsError> {
        let id = self.service_id(key)?;
        let svc = self.svc_mut(id);
        if svc.laddrs.contains(&laddr) {
            return Err(IpvsError::Exists);
        }
        if laddr.is_ipv4() != key.addr.is_ipv4() {
            return Err(IpvsError::Invalid);
        }
        svc.laddrs.push(laddr);
        self.emit(super::Event::LaddrAdded { service: *key, laddr });
        Ok(())
    }

    pub fn del_laddr(&mut self, key: &ServiceKey, laddr: IpAddr) -> Result<(), IpvsError> {
        let id = self.service_id(key)?;
        let svc = self.svc_mut(id);
        let before = svc.laddrs.len();
        svc.laddrs.retain(|&a| a != laddr);
        if svc.laddrs.len() == before {
            return Err(IpvsError::NotFound);
        }
        self.emit(super::Event::LaddrRemoved { service: *key, laddr });
        Ok(())
    }

    /// A (LIP, lport) for a new FULLNAT connection of service `sid` to
    /// `raddr:rport`, taking the pool's addresses in turn; None when every
    /// port is taken.
    pub(super) fn allocate_local(
        &mut self,
        sid: SvcId,
        protocol: Protocol,
        raddr: IpAddr,
        rport: u16,
        now: Time,
    ) -> Option<(IpAddr, u16)> {
        let svc = live(&mut self.services, sid);
        let n = svc.laddrs.len();
        for k in 0..n {
            let laddr = svc.laddrs[(svc.next_laddr + k) % n];
            if let Some(port) = self.ports.allocate(LocalKey { laddr, protocol, raddr, rport }) {
                svc.next_laddr = (svc.next_laddr + k + 1) % n;
                return Some((laddr, port));
            }
        }
        self.recycle_local(sid, protocol, raddr, rport, now)
    }

    /// The offsets a new FULLNAT TCP connection's first SYN fixes: its
    /// sequence numbers start at a keyed hash of the server-side tuple plus
    /// a clock of 64 ns ticks (RFC 6528, Linux's rate), its timestamps on
    /// the director's millisecond clock.
    pub(super) fn seq_adjust(
        &self,
        seg: TcpSeg,
        (laddr, lport): (IpAddr, u16),
        (raddr, rport): (IpAddr, u16),
        now: Time,
    ) -> SeqAdjust {
        use std::hash::BuildHasher;
        let ms = now.as_millis();
        let isn = (self.isn_key.hash_one((laddr, lport, raddr, rport)) as u32).wrapping_add((ms * 15_625) as u32);
        let ts_clock = (self.isn_key.hash_one("timestamps") as u32).wrapping_add(ms as u32);
        SeqAdjust { seq: isn.wrapping_sub(seg.seq), ts: seg.tsval.map(|v| ts_clock.wrapping_sub(v)) }
    }

    /// Every port is taken: expires a quiet TIME_WAIT/CLOSE connection and
    /// takes its port. Bounded: a few ports probed per local address.
    fn recycle_local(
        &mut self,
        sid: SvcId,
        protocol: Protocol,
        raddr: IpAddr,
        rport: u16,
        now: Time,
    ) -> Option<(IpAddr, u16)> {
        const PROBES: usize = 32;
        if protocol != Protocol::Tcp {
            return None;
        }
        let laddrs = self.svc(sid).laddrs.clone();
        for laddr in laddrs {
            let key = LocalKey { laddr, protocol, raddr, rport };
            for port in self.ports.recycle_candidates(key, PROBES) {
                let out = OutKey { protocol, daddr: raddr, dport: rport, caddr: laddr, cport: port };
                let Some(cid) = self.conns.lookup_out(&out) else { continue };
                let c = self.conns.get(cid);
                let ConnState::Tcp(state @ (TcpState::TimeWait | TcpState::Close)) = c.state else { continue };
                let last_seen =
                    c.expires.as_millis().saturating_sub(u64::from(self.timeouts.tcp[state as usize]) * 1000);
                if now.as_millis() < last_seen + 1000 {
                    continue;
                }
                self.expire_conn(cid, now);
                if let Some(port) = self.ports.allocate(key) {
                    return Some((laddr, port));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raddr: &str, protocol: Protocol) -> LocalKey {
        LocalKey { laddr: "192.168.100.254".parse().unwrap(), protocol, raddr: raddr.parse().unwrap(), rport: 80 }
    }

    #[test]
    fn ports_never_collide_and_come_back() {
        let mut p = PortPool::default();
        let rs1 = key("192.168.100.2", Protocol::Tcp);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..RANGE {
            assert!(seen.insert(p.allocate(rs1).unwrap()));
        }
        assert_eq!(p.allocate(rs1), None, "all taken");
        assert!(p.allocate(key("192.168.100.2", Protocol::Udp)).is_some(), "per protocol");
        assert!(p.allocate(key("192.168.100.3", Protocol::Tcp)).is_some(), "per real server");
        assert!(p.allocate(LocalKey { rport: 81, ..rs1 }).is_some(), "per real server port");
        p.release(rs1, 2000);
        assert_eq!(p.allocate(rs1), Some(2000));
        // With free ports all over, the search goes on round the range.
        p.release(rs1, 1500);
        p.release(rs1, 3000);
        assert_eq!(p.allocate(rs1), Some(3000), "after 2000, not the lowest");
        assert_eq!(p.allocate(rs1), Some(1500), "then round");
        assert!(seen.iter().all(|&x| (LPORT_FIRST..=LPORT_LAST).contains(&x)));
    }

    #[test]
    fn an_emptied_pool_is_forgotten() {
        let mut p = PortPool::default();
        let rs1 = key("192.168.100.2", Protocol::Tcp);
        let a = p.allocate(rs1).unwrap();
        let b = p.allocate(rs1).unwrap();
        assert_ne!(a, b);
        p.release(rs1, a);
        p.release(rs1, a);
        assert_eq!(p.used.len(), 1, "a double release must not underflow the count");
        p.release(rs1, b);
        assert!(p.used.is_empty());
    }

    /// One LIP, one real server and every local port held by a closed
    /// connection: a new client gets a port once one of them has been quiet
    /// for a second, and never one of a live connection.
    #[test]
    fn time_wait_ports_are_recycled_when_the_pool_is_full() {
        use crate::types::{DestConfig, ServiceConfig};
        let svc = ServiceKey::new(Protocol::Tcp, "10.0.0.100".parse().unwrap(), 80);
        let mut d = Director::new();
        d.add_service(svc, ServiceConfig { scheduler: "rr".into(), ..Default::default() }, Time::ZERO).unwrap();
        d.add_laddr(&svc, "192.168.100.254".parse().unwrap()).unwrap();
        let rs = DestConfig::new("192.168.100.2".parse().unwrap(), 8080, FwdMethod::FullNat, 1);
        d.add_dest(&svc, rs, Time::ZERO).unwrap();
        let conn = |client: &str, cport: u16| ConnKey {
            protocol: Protocol::Tcp,
            caddr: client.parse().unwrap(),
            cport,
            vaddr: svc.addr,
            vport: 80,
        };
        let syn = Some(TcpSeg::flags(TcpFlags::SYN));
        let fin = Some(TcpSeg::flags(TcpFlags::FIN | TcpFlags::ACK));
        let t0 = Time::ZERO;
        for i in 0..RANGE as u16 {
            assert!(matches!(d.process(conn("10.1.1.10", 1024 + i), syn, 60, None, t0), Verdict::Forward(_)));
            d.process(conn("10.1.1.10", 1024 + i), fin, 40, None, t0);
        }
        assert!(d.conns(t0).iter().all(|c| c.state == "TIME_WAIT"));
        let late = conn("10.1.1.11", 5000);
        assert!(
            matches!(d.process(late, syn, 60, None, t0), Verdict::Drop(DropReason::NoLocalPort)),
            "closed a moment ago: not yet recycled"
        );
        let t1 = Time::from_secs(2);
        let Verdict::Forward(f) = d.process(late, syn, 60, None, t1) else {
            panic!("a TIME_WAIT port should be recycled")
        };
        let (_, lport) = f.snat.unwrap();
        assert_eq!(d.conn_count(), RANGE, "the recycled entry is gone, the new one in");
        assert_eq!(d.conns(t1).iter().filter(|c| c.state == "SYN_RECV").count(), 1);
        // The new connection's port is not handed out again while it lives.
        for cport in 6000..6100 {
            if let Verdict::Forward(g) = d.process(conn("10.1.1.11", cport), syn, 60, None, t1) {
                assert_ne!(g.snat.unwrap().1, lport);
            }
        }
    }
}
