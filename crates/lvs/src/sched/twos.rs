//! Power of two choices (ip_vs_twos.c, Linux 6.2).
//!
//! Draws two destinations at random, each with probability proportional to
//! its weight, and keeps the one with the lower overhead per weight (the
//! first draw on ties). Random by design: its picks can be compared with the
//! kernel's only statistically.

use super::{SchedInput, Scheduler};
use crate::dest::DestList;
use crate::time::Time;

pub struct TwoChoices {
    state: u64,
}

impl Default for TwoChoices {
    fn default() -> Self {
        Self::new()
    }
}

impl TwoChoices {
    pub fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // A per-process random seed without a dependency: std's hasher keys.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x9e37_79b9_7f4a_7c15);
        TwoChoices { state: h.finish() | 1 }
    }

    pub fn with_seed(seed: u64) -> Self {
        TwoChoices { state: seed | 1 }
    }

    /// A uniform number in [0, n) (xorshift64*, rejection-free modulo is
    /// fine for these small ranges).
    fn below(&mut self, n: u32) -> u32 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        ((self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) % u64::from(n)) as u32
    }
}

impl Scheduler for TwoChoices {
    fn name(&self) -> &'static str {
        "twos"
    }

    fn schedule(&mut self, dests: DestList<'_>, _input: &SchedInput, _now: Time) -> Option<usize> {
        let total: i64 = dests.iter().filter(|d| !d.overloaded && d.weight > 0).map(|d| i64::from(d.weight)).sum();
        let last = (0..dests.len()).rev().find(|&i| !dests.get(i).overloaded && dests.get(i).weight > 0)?;
        let n = (total + 1).min(i64::from(u32::MAX)) as u32;
        let (mut r1, mut r2) = (i64::from(self.below(n)), i64::from(self.below(n)));
        // (index, weight, overhead) of each draw.
        type Choice = Option<(usize, i64, u64)>;
        let (mut c1, mut c2): (Choice, Choice) = (None, None);
        for (i, d) in dests.iter().enumerate() {
            if d.overloaded || d.weight <= 0 {
                continue;
            }
            let w = i64::from(d.weight);
            r1 -= w;
            r2 -= w;
            if r1 <= 0 && c1.is_none() {
                c1 = Some((i, w, d.conn_overhead()));
            }
            if r2 <= 0 && c2.is_none() {
                c2 = Some((i, w, d.conn_overhead()));
            }
            if c1.is_some() && c2.is_some() {
                break;
            }
        }
        let Some((i1, w1, o1)) = c1 else { return Some(last) };
        match c2 {
            Some((i2, w2, o2)) if i128::from(w2) * i128::from(o1) > i128::from(w1) * i128::from(o2) => Some(i2),
            _ => Some(i1),
        }
    }
}
