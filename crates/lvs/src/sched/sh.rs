//! Source hashing (ip_vs_sh.c).
//!
//! A 256-bucket table where each destination, in list order, takes as many
//! consecutive buckets as its weight (at least one), cycling through the
//! list until the table is full. The client's address — plus its port with
//! the sh-port flag — hashed with hash_32 picks the bucket. With
//! sh-fallback, an unusable bucket's destination is replaced by probing
//! the table from rehashed offsets; without it the connection is refused.

use super::hash::{fold, hash_32};
use super::{usable, SchedInput, Scheduler};
use crate::dest::{DestId, DestList};
use crate::time::Time;
use crate::types::svc_flags;

const BITS: u32 = 8;
const SIZE: usize = 1 << BITS;
/// IP_VS_SVC_F_SCHED_SH_FALLBACK and _SH_PORT share the SCHED1/2 bits.
const FALLBACK: u32 = svc_flags::SCHED1;
const PORT: u32 = svc_flags::SCHED2;

pub struct SourceHashing {
    buckets: Vec<Option<DestId>>,
}

/// ip_vs_sh_hashkey: (offset + hash_32(port + addr)) mod table size.
pub fn hashkey(addr: u32, port: u16, offset: u32) -> usize {
    (offset.wrapping_add(hash_32(u32::from(port).wrapping_add(addr), BITS)) as usize) & (SIZE - 1)
}

impl SourceHashing {
    pub fn new(dests: DestList<'_>) -> Self {
        let mut s = SourceHashing { buckets: vec![None; SIZE] };
        s.reassign(dests);
        s
    }

    fn reassign(&mut self, dests: DestList<'_>) {
        if dests.is_empty() {
            self.buckets.fill(None);
            return;
        }
        let (mut p, mut count) = (0usize, 0i32);
        for b in self.buckets.iter_mut() {
            let d = dests.get(p);
            *b = Some(dests.id(p));
            count += 1;
            if count >= d.weight {
                p = (p + 1) % dests.len();
                count = 0;
            }
        }
    }

    /// The bucket's destination if it can take connections.
    fn get(&self, dests: DestList<'_>, hash: usize) -> Result<usize, bool> {
        // Err(true): the bucket is empty; Err(false): its destination is unusable.
        let id = self.buckets[hash].ok_or(true)?;
        let i = dests.position(id).ok_or(false)?;
        if usable(dests.get(i)) {
            Ok(i)
        } else {
            Err(false)
        }
    }
}

impl Scheduler for SourceHashing {
    fn name(&self) -> &'static str {
        "sh"
    }

    fn dest_added(&mut self, dests: DestList<'_>, _index: usize) {
        self.reassign(dests);
    }

    fn dest_removed(&mut self, dests: DestList<'_>, _index: usize) {
        self.reassign(dests);
    }

    fn dest_updated(&mut self, dests: DestList<'_>, _index: usize) {
        self.reassign(dests);
    }

    fn schedule(&mut self, dests: DestList<'_>, input: &SchedInput, _now: Time) -> Option<usize> {
        let addr = fold(&input.caddr);
        let port = if input.svc_flags & PORT != 0 { input.cport } else { 0 };
        let ihash = hashkey(addr, port, 0);
        if input.svc_flags & FALLBACK == 0 {
            return self.get(dests, ihash).ok();
        }
        match self.get(dests, ihash) {
            Ok(i) => return Some(i),
            Err(true) => return None,
            Err(false) => {}
        }
        for offset in 0..SIZE as u32 {
            let roffset = (offset + ihash as u32) % SIZE as u32;
            match self.get(dests, hashkey(addr, port, roffset)) {
                Ok(i) => return Some(i),
                Err(true) => return None,
                Err(false) => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dest::{Dest, DestArena};
    use crate::service::SvcId;
    use crate::types::{DestConfig, FwdMethod, Protocol, ServiceKey};

    #[test]
    fn weights_take_consecutive_buckets() {
        let mut arena = DestArena::default();
        let key = ServiceKey::new(Protocol::Tcp, "10.0.0.1".parse().unwrap(), 80);
        let ids: Vec<DestId> = [(1u8, 3), (2, 1)]
            .iter()
            .map(|&(a, w)| {
                let cfg = DestConfig::new(format!("10.1.1.{a}").parse().unwrap(), 80, FwdMethod::DirectRoute, w);
                arena.insert(Dest::new(&cfg, SvcId(0), key))
            })
            .collect();
        let s = SourceHashing::new(DestList::new(&ids, &arena));
        let got: Vec<DestId> = s.buckets.iter().take(8).map(|b| b.unwrap()).collect();
        let (a, b) = (ids[0], ids[1]);
        assert_eq!(got, vec![a, a, a, b, a, a, a, b]);
    }
}
