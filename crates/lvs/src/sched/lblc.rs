//! Locality-based least-connection (ip_vs_lblc.c).
//!
//! Meant for cache clusters: each packet destination address is bound to one
//! real server, picked by weighted least-connection the first time and kept
//! while that server has weight and is not overloaded in lblc's sense (more
//! active connections than its weight while some other server is below half
//! of its own). Bindings unused for a day are dropped by a full sweep every
//! half hour; when there are more than 16 per bucket of the 1024-bucket
//! table, those idle for six minutes go first.

use super::{weighted_least, SchedInput, Scheduler};
use crate::dest::{Dest, DestId, DestList};
use crate::time::{Span, Time};
use std::collections::HashMap;
use std::net::IpAddr;

pub(crate) const CHECK_INTERVAL: Span = Span(60_000);
pub(crate) const ENTRY_TIMEOUT: Span = Span(6 * 60_000);
pub(crate) const EXPIRATION: Span = Span(24 * 3_600_000);
pub(crate) const COUNT_FOR_FULL_EXPIRATION: u32 = 30;
pub(crate) const MAX_ENTRIES: usize = 1024 * 16;

/// lblc's overload test: more active connections than weight, while some
/// destination of the service is under half its weight.
pub(crate) fn lblc_overloaded(d: &Dest, dests: DestList<'_>) -> bool {
    i64::from(d.activeconns) > i64::from(d.weight)
        && dests.iter().any(|x| i64::from(x.activeconns) * 2 < i64::from(x.weight))
}

struct Entry {
    dest: DestId,
    lastuse: Time,
}

pub struct LocalityLeastConnection {
    table: HashMap<IpAddr, Entry>,
    next_check: Time,
    counter: u32,
}

impl LocalityLeastConnection {
    pub fn new(now: Time) -> Self {
        LocalityLeastConnection { table: HashMap::new(), next_check: now + CHECK_INTERVAL, counter: 1 }
    }

    pub fn entries(&self) -> usize {
        self.table.len()
    }
}

/// The periodic collection both lblc and lblcr run: a full sweep of day-old
/// entries every 30th check, else (only when over-full) a partial sweep of
/// entries idle for six minutes.
pub(crate) fn collect<E>(table: &mut HashMap<IpAddr, E>, counter: &mut u32, now: Time, lastuse: impl Fn(&E) -> Time) {
    if (*counter).is_multiple_of(COUNT_FOR_FULL_EXPIRATION) {
        table.retain(|_, e| now < lastuse(e) + EXPIRATION);
        *counter = 1;
        return;
    }
    if table.len() <= MAX_ENTRIES {
        *counter += 1;
        return;
    }
    let mut goal = ((table.len() - MAX_ENTRIES) * 4 / 3).min(MAX_ENTRIES / 2) as i64;
    table.retain(|_, e| {
        if goal > 0 && now >= lastuse(e) + ENTRY_TIMEOUT {
            goal -= 1;
            false
        } else {
            true
        }
    });
}

impl Scheduler for LocalityLeastConnection {
    fn name(&self) -> &'static str {
        "lblc"
    }

    fn tick(&mut self, now: Time) {
        while now >= self.next_check {
            collect(&mut self.table, &mut self.counter, self.next_check, |e| e.lastuse);
            self.next_check = self.next_check + CHECK_INTERVAL;
        }
    }

    fn schedule(&mut self, dests: DestList<'_>, input: &SchedInput, now: Time) -> Option<usize> {
        if let Some(en) = self.table.get_mut(&input.vaddr) {
            en.lastuse = now;
            if let Some(i) = dests.position(en.dest) {
                let d = dests.get(i);
                if d.weight > 0 && !lblc_overloaded(d, dests) {
                    return Some(i);
                }
            }
        }
        let i = weighted_least(dests, Dest::conn_overhead)?;
        let id = dests.id(i);
        let full = self.table.len() > MAX_ENTRIES;
        match self.table.get_mut(&input.vaddr) {
            Some(en) if en.dest == id => {}
            Some(en) => *en = Entry { dest: id, lastuse: now },
            None if full => {}
            None => {
                self.table.insert(input.vaddr, Entry { dest: id, lastuse: now });
            }
        }
        Some(i)
    }
}
