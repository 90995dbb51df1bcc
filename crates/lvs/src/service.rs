//! Virtual services.

use crate::dest::{DestArena, DestId, DestList};
use crate::sched::Scheduler;
use crate::stats::{Counters, Estimator};
use crate::types::{ServiceConfig, ServiceKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SvcId(pub u32);

pub struct Service {
    pub key: ServiceKey,
    pub config: ServiceConfig,
    /// Destinations in the kernel's list order (most recently added first).
    pub dests: Vec<DestId>,
    pub sched: Box<dyn Scheduler>,
    pub stats: Counters,
    pub est: Estimator,
    /// FULLNAT local addresses, and which one serves the next connection.
    pub laddrs: Vec<std::net::IpAddr>,
    pub next_laddr: usize,
}

impl Service {
    pub fn dest_list<'a>(&'a self, arena: &'a DestArena) -> DestList<'a> {
        DestList::new(&self.dests, arena)
    }

    pub fn position(&self, arena: &DestArena, addr: std::net::IpAddr, port: u16) -> Option<usize> {
        self.dests.iter().position(|&id| {
            let d = arena.get(id);
            d.addr == addr && d.port == port
        })
    }
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("key", &self.key)
            .field("scheduler", &self.sched.name())
            .field("dests", &self.dests)
            .finish()
    }
}
