//! Weighted overflow (ip_vs_ovf.c).
//!
//! Connections go to the highest-weight destination until its active
//! connections exceed its weight, then overflow to the next highest, and so
//! on. Only active connections count, so it suits TCP better than UDP.

use super::{SchedInput, Scheduler};
use crate::dest::DestList;
use crate::time::Time;

#[derive(Debug, Default)]
pub struct WeightedOverflow;

impl Scheduler for WeightedOverflow {
    fn name(&self) -> &'static str {
        "ovf"
    }

    fn schedule(&mut self, dests: DestList<'_>, _input: &SchedInput, _now: Time) -> Option<usize> {
        let mut best: Option<(usize, i32)> = None;
        for (i, d) in dests.iter().enumerate() {
            let w = d.weight;
            if d.overloaded || i64::from(d.activeconns) > i64::from(w) || w == 0 {
                continue;
            }
            if best.is_none_or(|(_, hw)| w > hw) {
                best = Some((i, w));
            }
        }
        best.map(|(i, _)| i)
    }
}
