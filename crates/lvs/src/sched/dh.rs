//! Destination hashing (ip_vs_dh.c).
//!
//! A 256-bucket table filled with the destinations in list order, round and
//! round; a packet's destination address (hashed with hash_32) picks the
//! bucket. Only additions and removals refill the table — a weight change
//! does not — and a bucket whose destination is quiesced or overloaded
//! yields nothing rather than another server.

use super::hash::{fold, hash_32};
use super::{usable, SchedInput, Scheduler};
use crate::dest::{DestId, DestList};
use crate::time::Time;

const BITS: u32 = 8;
const SIZE: usize = 1 << BITS;

pub struct DestinationHashing {
    buckets: Vec<Option<DestId>>,
}

impl DestinationHashing {
    pub fn new(dests: DestList<'_>) -> Self {
        let mut s = DestinationHashing { buckets: vec![None; SIZE] };
        s.reassign(dests);
        s
    }

    fn reassign(&mut self, dests: DestList<'_>) {
        let n = dests.len();
        for (i, b) in self.buckets.iter_mut().enumerate() {
            *b = (n > 0).then(|| dests.id(i % n));
        }
    }
}

impl Scheduler for DestinationHashing {
    fn name(&self) -> &'static str {
        "dh"
    }

    fn dest_added(&mut self, dests: DestList<'_>, _index: usize) {
        self.reassign(dests);
    }

    fn dest_removed(&mut self, dests: DestList<'_>, _index: usize) {
        self.reassign(dests);
    }

    fn schedule(&mut self, dests: DestList<'_>, input: &SchedInput, _now: Time) -> Option<usize> {
        let id = self.buckets[hash_32(fold(&input.vaddr), BITS) as usize]?;
        let i = dests.position(id)?;
        usable(dests.get(i)).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cycle_through_the_list() {
        // With n destinations, bucket i holds list entry i mod n.
        assert_eq!(SIZE, 256);
        assert_eq!(hash_32(0x0a00_0064, BITS), (0x0a00_0064u32.wrapping_mul(0x61C8_8647)) >> 24);
    }
}
