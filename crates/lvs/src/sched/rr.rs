//! Round-robin (ip_vs_rr.c).
//!
//! Walks the destination list circularly from just after the last pick and
//! takes the first destination that has a positive weight and is not
//! overloaded. The position survives additions (which happen at the head) and,
//! when the last-picked destination is deleted, steps back to its predecessor
//! so the walk resumes where it would have.

use super::{usable, SchedInput, Scheduler};
use crate::dest::DestList;
use crate::time::Time;

#[derive(Debug, Default)]
pub struct RoundRobin {
    /// Index of the last pick; None is the list head (nothing picked yet).
    last: Option<usize>,
}

impl RoundRobin {
    pub fn new() -> Self {
        RoundRobin { last: None }
    }
}

impl Scheduler for RoundRobin {
    fn name(&self) -> &'static str {
        "rr"
    }

    fn dest_added(&mut self, _dests: DestList<'_>, index: usize) {
        if let Some(l) = self.last.as_mut() {
            if *l >= index {
                *l += 1;
            }
        }
    }

    fn dest_removed(&mut self, _dests: DestList<'_>, index: usize) {
        self.last = match self.last {
            Some(l) if l == index => index.checked_sub(1),
            Some(l) if l > index => Some(l - 1),
            other => other,
        };
    }

    fn schedule(&mut self, dests: DestList<'_>, _input: &SchedInput, _now: Time) -> Option<usize> {
        let n = dests.len();
        let start = self.last.map_or(0, |l| l + 1);
        let pick = (0..n).map(|k| (start + k) % n).find(|&i| usable(dests.get(i)))?;
        self.last = Some(pick);
        Some(pick)
    }
}
