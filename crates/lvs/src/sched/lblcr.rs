//! Locality-based least-connection with replication (ip_vs_lblcr.c).
//!
//! Like lblc, but each packet destination address maps to a set of real
//! servers: the least loaded of the set serves, and when it is overloaded
//! (lblc's test) the service's weighted-least-connection pick joins the set.
//! A set that has not changed for a day sheds its most loaded member on the
//! next use. Idle entries are collected as in lblc.

use super::lblc::{collect, lblc_overloaded, CHECK_INTERVAL, EXPIRATION, MAX_ENTRIES};
use super::{weighted_least, SchedInput, Scheduler};
use crate::dest::{Dest, DestId, DestList};
use crate::time::Time;
use std::collections::HashMap;
use std::net::IpAddr;

struct Set {
    /// Most recently inserted first, as list_add_rcu keeps them.
    members: Vec<DestId>,
    lastmod: Time,
}

impl Set {
    fn insert(&mut self, id: DestId, now: Time) {
        if !self.members.contains(&id) {
            self.members.insert(0, id);
            self.lastmod = now;
        }
    }

    /// ip_vs_dest_set_min: weighted least-connection among available members.
    fn min(&self, dests: DestList<'_>) -> Option<DestId> {
        let ok = |d: &Dest| !d.overloaded && d.weight > 0 && d.available;
        let mut it = self.members.iter().filter_map(|&id| dests.by_id(id).map(|d| (id, d)));
        let (mut least_id, mut least) = it.by_ref().find(|(_, d)| ok(d))?;
        let mut loh = least.conn_overhead();
        for (id, d) in it {
            if d.overloaded {
                continue;
            }
            let doh = d.conn_overhead();
            if u128::from(loh) * d.weight.max(0) as u128 > u128::from(doh) * least.weight.max(0) as u128 && d.available
            {
                (least_id, least, loh) = (id, d, doh);
            }
        }
        Some(least_id)
    }

    /// ip_vs_dest_set_max: the most loaded member with a positive weight.
    fn max(&self, dests: DestList<'_>) -> Option<DestId> {
        let mut it = self.members.iter().filter_map(|&id| dests.by_id(id).map(|d| (id, d)));
        let (mut most_id, mut most) = it.by_ref().find(|(_, d)| d.weight > 0)?;
        let mut moh = most.conn_overhead();
        for (id, d) in it {
            let doh = d.conn_overhead();
            if (u128::from(moh) * d.weight.max(0) as u128) < u128::from(doh) * most.weight.max(0) as u128
                && d.weight > 0
            {
                (most_id, most, moh) = (id, d, doh);
            }
        }
        Some(most_id)
    }
}

struct Entry {
    set: Set,
    lastuse: Time,
}

pub struct LocalityReplicated {
    table: HashMap<IpAddr, Entry>,
    next_check: Time,
    counter: u32,
}

impl LocalityReplicated {
    pub fn new(now: Time) -> Self {
        LocalityReplicated { table: HashMap::new(), next_check: now + CHECK_INTERVAL, counter: 1 }
    }

    pub fn set_size(&self, daddr: &IpAddr) -> usize {
        self.table.get(daddr).map_or(0, |e| e.set.members.len())
    }
}

impl Scheduler for LocalityReplicated {
    fn name(&self) -> &'static str {
        "lblcr"
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
            let chosen = en.set.min(dests);
            if en.set.members.len() > 1 && now > en.set.lastmod + EXPIRATION {
                if let Some(m) = en.set.max(dests) {
                    en.set.members.retain(|&x| x != m);
                    en.set.lastmod = now;
                }
            }
            if let Some(i) = chosen.and_then(|id| dests.position(id)) {
                if !lblc_overloaded(dests.get(i), dests) {
                    return Some(i);
                }
            }
            let i = weighted_least(dests, Dest::conn_overhead)?;
            en.set.insert(dests.id(i), now);
            return Some(i);
        }
        let i = weighted_least(dests, Dest::conn_overhead)?;
        if self.table.len() <= MAX_ENTRIES {
            let mut set = Set { members: Vec::new(), lastmod: now };
            set.insert(dests.id(i), now);
            self.table.insert(input.vaddr, Entry { set, lastuse: now });
        }
        Some(i)
    }
}
