//! Shortest expected delay (ip_vs_sed.c).
//!
//! Like weighted least-connection, but the cost of a destination is its
//! active connections plus one — the delay a new connection would see if
//! served in turn — divided by the weight. Inactive connections do not count.

use super::{weighted_least, SchedInput, Scheduler};
use crate::dest::DestList;
use crate::time::Time;

#[derive(Debug, Default)]
pub struct ShortestExpectedDelay;

impl Scheduler for ShortestExpectedDelay {
    fn name(&self) -> &'static str {
        "sed"
    }

    fn schedule(&mut self, dests: DestList<'_>, _input: &SchedInput, _now: Time) -> Option<usize> {
        weighted_least(dests, |d| u64::from(d.activeconns) + 1)
    }
}
