//! Maglev hashing (ip_vs_mh.c, after Google's Maglev paper).
//!
//! Each destination gets a permutation of the 4093 table slots from two
//! hashes of its address and port (a starting offset and a skip); the
//! destinations then take turns — as many turns each as its weight divided
//! by the weights' gcd, shifted down so the largest fits in 6 bits — claiming
//! their next free slot until the table is full. The result spreads keys
//! almost evenly and, when one of N destinations goes, moves only about 1/N
//! of them. The client address (plus port with mh-port) hashed with the
//! same keyed hash picks the slot; mh-fallback probes further slots when
//! the chosen destination is quiesced or overloaded. Weights are the
//! destinations' last non-zero weights, so quiescing one does not reshuffle
//! the table.
//!
//! The kernel fills the table in destination-list order, and a new
//! destination goes to the head of the list: directors with the same real
//! servers but different histories (a checker flap, a reload) can fill it
//! differently. With flag-3, which the kernel's mh ignores, rlvs uses a
//! table filled in address-and-port order instead, the same on every
//! director with the same servers and weights (active-active directors
//! behind ECMP). Both tables are kept, so the flag may change at any time.

use super::hash::{fold, hsiphash_u32};
use super::{usable, SchedInput, Scheduler};
use crate::dest::{DestId, DestList};
use crate::time::Time;
use crate::types::svc_flags;

/// The kernel's default table size (CONFIG_IP_VS_MH_TAB_INDEX 12).
pub const TABLE_SIZE: usize = 4093;
const TAB_BITS: u32 = 6;
const FALLBACK: u32 = svc_flags::SCHED1;
const PORT: u32 = svc_flags::SCHED2;
const SORTED: u32 = svc_flags::SCHED3;
const HASH1: [u64; 2] = [2_654_435_761, 2_654_435_761];
const HASH2: [u64; 2] = [2_654_446_892, 2_654_446_892];

pub struct MaglevHashing {
    lookup: Vec<Option<DestId>>,
    /// The same, filled in address-and-port order (flag-3).
    sorted: Vec<Option<DestId>>,
}

fn hashkey(addr: u32, port: u16, key: [u64; 2], offset: u32) -> u32 {
    hsiphash_u32(offset.wrapping_add(u32::from(port)).wrapping_add(addr), key)
}

fn gcd(mut a: i32, mut b: i32) -> i32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl MaglevHashing {
    pub fn new(dests: DestList<'_>) -> Self {
        let mut s = MaglevHashing { lookup: vec![None; TABLE_SIZE], sorted: vec![None; TABLE_SIZE] };
        s.reassign(dests);
        s
    }

    fn reassign(&mut self, dests: DestList<'_>) {
        let listed: Vec<usize> = (0..dests.len()).collect();
        fill(&mut self.lookup, dests, &listed);
        let mut by_address = listed;
        by_address.sort_by_key(|&i| (dests.get(i).addr, dests.get(i).port));
        fill(&mut self.sorted, dests, &by_address);
    }

    fn get(&self, dests: DestList<'_>, slot: usize, flags: u32) -> Result<usize, bool> {
        let table = if flags & SORTED != 0 { &self.sorted } else { &self.lookup };
        let id = table[slot].ok_or(true)?;
        let i = dests.position(id).ok_or(false)?;
        if usable(dests.get(i)) {
            Ok(i)
        } else {
            Err(false)
        }
    }

    /// The slot a client lands in (for tests and diagnostics).
    pub fn slot(caddr: u32, port: u16) -> usize {
        hashkey(caddr, port, HASH1, 0) as usize % TABLE_SIZE
    }

    pub fn table(&self) -> &[Option<DestId>] {
        &self.lookup
    }

    /// The table flag-3 picks from.
    pub fn sorted_table(&self) -> &[Option<DestId>] {
        &self.sorted
    }
}

impl Scheduler for MaglevHashing {
    fn name(&self) -> &'static str {
        "mh"
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
        let ihash = hashkey(addr, port, HASH1, 0) as usize % TABLE_SIZE;
        if input.svc_flags & FALLBACK == 0 {
            return self.get(dests, ihash, input.svc_flags).ok();
        }
        match self.get(dests, ihash, input.svc_flags) {
            Ok(i) => return Some(i),
            Err(true) => return None,
            Err(false) => {}
        }
        for offset in 0..TABLE_SIZE {
            let roffset = ((offset + ihash) % TABLE_SIZE) as u32;
            match self.get(dests, hashkey(addr, port, HASH1, roffset) as usize % TABLE_SIZE, input.svc_flags) {
                Ok(i) => return Some(i),
                Err(true) => return None,
                Err(false) => {}
            }
        }
        None
    }
}

/// Fills `table` with the destinations taking turns in `order`
/// (positions in `dests`).
fn fill(table: &mut [Option<DestId>], dests: DestList<'_>, order: &[usize]) {
    let g = dests.iter().map(|d| d.last_weight).filter(|&w| w > 0).fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
    if g < 1 {
        table.fill(None);
        return;
    }
    let mw = dests.iter().map(|d| d.last_weight).max().unwrap_or(0) / g;
    let fls = 32 - (mw as u32).leading_zeros();
    let rshift = fls.saturating_sub(TAB_BITS);
    struct Setup {
        skip: usize,
        perm: usize,
        turns: i32,
    }
    let mut setup: Vec<Setup> = order
        .iter()
        .map(|&i| {
            let d = dests.get(i);
            let a = fold(&d.addr);
            let offset = hashkey(a, d.port, HASH1, 0) as usize % TABLE_SIZE;
            let skip = hashkey(a, d.port, HASH2, 0) as usize % (TABLE_SIZE - 1) + 1;
            let lw = d.last_weight;
            let t = (lw / g) >> rshift;
            Setup { skip, perm: offset, turns: if t != 0 { t } else { i32::from(lw != 0) } }
        })
        .collect();
    let mut taken = vec![false; TABLE_SIZE];
    let (mut n, mut dt_count, mut p) = (0usize, 0i32, 0usize);
    'fill: loop {
        if p == order.len() {
            p = 0;
        }
        while p < order.len() {
            let ds = &mut setup[p];
            if ds.turns < 1 {
                p += 1;
                continue;
            }
            let mut c = ds.perm;
            while taken[c] {
                ds.perm += ds.skip;
                if ds.perm >= TABLE_SIZE {
                    ds.perm -= TABLE_SIZE;
                }
                c = ds.perm;
            }
            taken[c] = true;
            table[c] = Some(dests.id(order[p]));
            n += 1;
            if n == TABLE_SIZE {
                break 'fill;
            }
            dt_count += 1;
            if dt_count >= ds.turns {
                dt_count = 0;
                p += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dest::{Dest, DestArena};
    use crate::service::SvcId;
    use crate::types::{DestConfig, FwdMethod, Protocol, ServiceKey};

    fn build(n: usize) -> (DestArena, Vec<DestId>) {
        let mut arena = DestArena::default();
        let key = ServiceKey::new(Protocol::Tcp, "10.0.0.1".parse().unwrap(), 80);
        let ids = (0..n)
            .map(|i| {
                let cfg = DestConfig::new(
                    format!("10.1.{}.{}", i / 200, i % 200 + 1).parse().unwrap(),
                    80,
                    FwdMethod::DirectRoute,
                    1,
                );
                arena.insert(Dest::new(&cfg, SvcId(0), key))
            })
            .collect();
        (arena, ids)
    }

    #[test]
    fn ten_equal_backends_balance_within_one_percent() {
        let (arena, ids) = build(10);
        let s = MaglevHashing::new(DestList::new(&ids, &arena));
        assert!(s.table().iter().all(Option::is_some));
        for id in &ids {
            let share = s.table().iter().filter(|x| **x == Some(*id)).count();
            let ideal = TABLE_SIZE as f64 / 10.0;
            assert!((share as f64 - ideal).abs() / ideal <= 0.01, "share {share} of {TABLE_SIZE}");
        }
    }

    #[test]
    fn the_sorted_table_does_not_depend_on_the_list_order() {
        let (arena, ids) = build(7);
        let a = MaglevHashing::new(DestList::new(&ids, &arena));
        let mut flapped = ids.clone();
        // A checker flap: the server is removed, then added back at the head.
        let back = flapped.remove(4);
        flapped.insert(0, back);
        let b = MaglevHashing::new(DestList::new(&flapped, &arena));
        assert_ne!(a.table(), b.table(), "the kernel's order-dependent table differs");
        assert_eq!(a.sorted_table(), b.sorted_table());
        let mut reversed = ids.clone();
        reversed.reverse();
        assert_eq!(a.sorted_table(), MaglevHashing::new(DestList::new(&reversed, &arena)).sorted_table());
    }

    #[test]
    fn removing_one_of_n_remaps_about_one_nth() {
        let (arena, ids) = build(10);
        let before = MaglevHashing::new(DestList::new(&ids, &arena));
        let fewer: Vec<DestId> = ids.iter().copied().filter(|&x| x != ids[3]).collect();
        let after = MaglevHashing::new(DestList::new(&fewer, &arena));
        let moved = before.table().iter().zip(after.table()).filter(|(a, b)| a != b).count();
        let lost = before.table().iter().filter(|x| **x == Some(ids[3])).count();
        // Every slot of the removed backend must move; Maglev moves few others.
        assert!(moved >= lost);
        let frac = moved as f64 / TABLE_SIZE as f64;
        assert!(frac < 0.1 * 1.5, "moved {frac:.3} of the keys");
    }
}
