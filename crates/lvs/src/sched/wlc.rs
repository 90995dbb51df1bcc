//! Weighted least-connection (ip_vs_wlc.c), the default scheduler.
//!
//! Picks the destination with the smallest overhead per unit of weight
//! (overhead = active x 256 + inactive), comparing by cross-multiplication so
//! no division rounds. The first usable destination in list order is the
//! starting candidate and wins ties.

use super::{SchedInput, Scheduler};
use crate::dest::DestList;
use crate::time::Time;

#[derive(Debug, Default)]
pub struct WeightedLeastConnection;

impl Scheduler for WeightedLeastConnection {
    fn name(&self) -> &'static str {
        "wlc"
    }

    fn schedule(&mut self, dests: DestList<'_>, _input: &SchedInput, _now: Time) -> Option<usize> {
        let first = dests.iter().position(|d| !d.overloaded && d.weight > 0)?;
        let (mut least, mut loh) = (first, dests.get(first).conn_overhead());
        for i in first + 1..dests.len() {
            let d = dests.get(i);
            if d.overloaded {
                continue;
            }
            let doh = d.conn_overhead();
            // loh/lw > doh/dw, without division.
            if u128::from(loh) * d.weight as u128
                > u128::from(doh) * dests.get(least).weight as u128
            {
                least = i;
                loh = doh;
            }
        }
        Some(least)
    }
}
