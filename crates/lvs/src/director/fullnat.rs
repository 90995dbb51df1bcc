//! FULLNAT's local addresses: each service has a pool of the director's own
//! addresses (LIPs); a new connection gets the next LIP in turn and a local
//! port on it that no live connection of the same protocol uses, so the
//! real server sees a unique (LIP, lport) per connection and its replies
//! find their way back. Ports are released when the connection expires.
//!
//! Local ports come from 1024-32767, below Linux's default ephemeral range
//! (32768-60999), so the director's own connections from a LIP (health
//! checks) never collide with them and the nft guard can tell their replies
//! apart.

use super::*;

pub const LPORT_FIRST: u16 = 1024;
pub const LPORT_LAST: u16 = 32767;
const RANGE: usize = (LPORT_LAST - LPORT_FIRST) as usize + 1;

/// Which local ports are taken, per (local address, protocol).
#[derive(Default)]
pub(crate) struct PortPool {
    used: HashMap<(IpAddr, Protocol), (Vec<u64>, usize), RandomState>,
}

impl PortPool {
    /// A free port on `laddr`, scanning on from where the last one was taken.
    pub fn allocate(&mut self, laddr: IpAddr, protocol: Protocol) -> Option<u16> {
        let (bits, cursor) = self.used.entry((laddr, protocol)).or_insert_with(|| (vec![0; RANGE.div_ceil(64)], 0));
        for k in 0..RANGE {
            let i = (*cursor + k) % RANGE;
            if bits[i / 64] & (1 << (i % 64)) == 0 {
                bits[i / 64] |= 1 << (i % 64);
                *cursor = (i + 1) % RANGE;
                return Some(LPORT_FIRST + i as u16);
            }
        }
        None
    }

    pub fn release(&mut self, laddr: IpAddr, protocol: Protocol, port: u16) {
        if let Some((bits, _)) = self.used.get_mut(&(laddr, protocol)) {
            let i = usize::from(port - LPORT_FIRST);
            bits[i / 64] &= !(1 << (i % 64));
        }
    }
}

impl Director {
    pub fn add_laddr(&mut self, key: &ServiceKey, laddr: IpAddr) -> Result<(), IpvsError> {
        let id = self.service_id(key)?;
        let svc = self.services[id.0 as usize].as_mut().unwrap();
        if svc.laddrs.contains(&laddr) {
            return Err(IpvsError::Exists);
        }
        if laddr.is_ipv4() != key.addr.is_ipv4() {
            return Err(IpvsError::Invalid);
        }
        svc.laddrs.push(laddr);
        Ok(())
    }

    pub fn del_laddr(&mut self, key: &ServiceKey, laddr: IpAddr) -> Result<(), IpvsError> {
        let id = self.service_id(key)?;
        let svc = self.services[id.0 as usize].as_mut().unwrap();
        let before = svc.laddrs.len();
        svc.laddrs.retain(|&a| a != laddr);
        if svc.laddrs.len() == before {
            return Err(IpvsError::NotFound);
        }
        Ok(())
    }

    /// A (LIP, lport) for a new FULLNAT connection of service `sid`, taking
    /// the pool's addresses in turn; None when every port is taken.
    pub(super) fn allocate_local(&mut self, sid: SvcId, protocol: Protocol) -> Option<(IpAddr, u16)> {
        let svc = self.services[sid.0 as usize].as_mut().unwrap();
        let n = svc.laddrs.len();
        for k in 0..n {
            let laddr = svc.laddrs[(svc.next_laddr + k) % n];
            if let Some(port) = self.ports.allocate(laddr, protocol) {
                svc.next_laddr = (svc.next_laddr + k + 1) % n;
                return Some((laddr, port));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_never_collide_and_come_back() {
        let mut p = PortPool::default();
        let a: IpAddr = "192.168.100.254".parse().unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..RANGE {
            assert!(seen.insert(p.allocate(a, Protocol::Tcp).unwrap()));
        }
        assert_eq!(p.allocate(a, Protocol::Tcp), None, "all taken");
        assert!(p.allocate(a, Protocol::Udp).is_some(), "per protocol");
        p.release(a, Protocol::Tcp, 2000);
        assert_eq!(p.allocate(a, Protocol::Tcp), Some(2000));
        assert!(seen.iter().all(|&x| (LPORT_FIRST..=LPORT_LAST).contains(&x)));
    }
}
