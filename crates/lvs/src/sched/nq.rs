//! Never queue (ip_vs_nq.c).
//!
//! An idle destination (no active connection) gets the connection at once,
//! the first one in list order; when none is idle it falls back to shortest
//! expected delay: (active + 1) / weight, smallest wins, earliest on ties.

use super::{usable, SchedInput, Scheduler};
use crate::dest::DestList;
use crate::time::Time;

#[derive(Debug, Default)]
pub struct NeverQueue;

impl Scheduler for NeverQueue {
    fn name(&self) -> &'static str {
        "nq"
    }

    fn schedule(&mut self, dests: DestList<'_>, _input: &SchedInput, _now: Time) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for (i, d) in dests.iter().enumerate() {
            if !usable(d) {
                continue;
            }
            let doh = u64::from(d.activeconns) + 1;
            if d.activeconns == 0 {
                return Some(i);
            }
            let better = match least {
                None => true,
                Some((l, loh)) => u128::from(loh) * d.weight as u128 > u128::from(doh) * dests.get(l).weight as u128,
            };
            if better {
                least = Some((i, doh));
            }
        }
        least.map(|(i, _)| i)
    }
}
