//! Weighted least-connection (ip_vs_wlc.c), the default scheduler.
//!
//! Picks the destination with the smallest overhead per unit of weight
//! (overhead = active x 256 + inactive), comparing by cross-multiplication so
//! no division rounds. The first usable destination in list order is the
//! starting candidate and wins ties.

use super::{weighted_least, SchedInput, Scheduler};
use crate::dest::{Dest, DestList};
use crate::time::Time;

#[derive(Debug, Default)]
pub struct WeightedLeastConnection;

impl Scheduler for WeightedLeastConnection {
    fn name(&self) -> &'static str {
        "wlc"
    }

    fn schedule(&mut self, dests: DestList<'_>, _input: &SchedInput, _now: Time) -> Option<usize> {
        weighted_least(dests, Dest::conn_overhead)
    }
}
