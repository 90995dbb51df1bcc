//! Least-connection (ip_vs_lc.c).
//!
//! Picks the destination with the smallest overhead, where an active
//! connection counts 256 times an inactive one; ties go to the one found
//! first in list order. Weight only matters as "zero means quiesced".

use super::{SchedInput, Scheduler};
use crate::dest::DestList;
use crate::time::Time;

#[derive(Debug, Default)]
pub struct LeastConnection;

impl Scheduler for LeastConnection {
    fn name(&self) -> &'static str {
        "lc"
    }

    fn schedule(&mut self, dests: DestList<'_>, _input: &SchedInput, _now: Time) -> Option<usize> {
        let mut best: Option<(usize, u64)> = None;
        for (i, d) in dests.iter().enumerate() {
            if d.overloaded || d.weight == 0 {
                continue;
            }
            let doh = d.conn_overhead();
            if best.is_none_or(|(_, loh)| doh < loh) {
                best = Some((i, doh));
            }
        }
        best.map(|(i, _)| i)
    }
}
