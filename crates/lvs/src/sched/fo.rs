//! Weighted failover (ip_vs_fo.c).
//!
//! Every new connection goes to the usable destination with the highest
//! weight (the first one in list order among equals); the others only take
//! over when it is quiesced or overloaded.

use super::{SchedInput, Scheduler};
use crate::dest::DestList;
use crate::time::Time;

#[derive(Debug, Default)]
pub struct WeightedFailover;

impl Scheduler for WeightedFailover {
    fn name(&self) -> &'static str {
        "fo"
    }

    fn schedule(&mut self, dests: DestList<'_>, _input: &SchedInput, _now: Time) -> Option<usize> {
        let mut best: Option<(usize, i32)> = None;
        for (i, d) in dests.iter().enumerate() {
            if !d.overloaded && d.weight > best.map_or(0, |(_, w)| w) {
                best = Some((i, d.weight));
            }
        }
        best.map(|(i, _)| i)
    }
}
