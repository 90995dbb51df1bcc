//! Schedulers, one per file as in the kernel (`ip_vs_<name>.c`), behind one
//! trait that mirrors `struct ip_vs_scheduler`: hooks for destinations being
//! added, removed and updated, a periodic tick for the ones that keep
//! timed state, and `schedule` to pick one for a new connection.
//!
//! Positions are indices into the service's destination list, which is kept
//! in the kernel's order; a scheduler that remembers a position (rr, wrr)
//! keeps it valid through the add/remove hooks, and one that caches
//! destinations (lblc, lblcr) holds generation-checked ids.

pub mod dh;
pub mod fo;
mod hash;
pub mod lblc;
pub mod lblcr;
pub mod lc;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod twos;
pub mod wlc;
pub mod wrr;

#[cfg(test)]
mod tests;

use crate::dest::{Dest, DestList};
use crate::time::Time;
use crate::types::Protocol;
use std::net::IpAddr;

/// What a scheduler may look at in the packet that opens a connection.
#[derive(Debug, Clone, Copy)]
pub struct SchedInput {
    pub protocol: Protocol,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    /// The service's IP_VS_SVC_F_* flags (sh-port, mh-fallback, ...), read
    /// at each pick as the kernel reads svc->flags.
    pub svc_flags: u32,
}

pub trait Scheduler: Send {
    fn name(&self) -> &'static str;

    /// A destination was inserted at `index` (the kernel always inserts at
    /// the head, index 0).
    fn dest_added(&mut self, _dests: DestList<'_>, _index: usize) {}

    /// The destination that was at `index` has been unlinked; `dests` no
    /// longer contains it.
    fn dest_removed(&mut self, _dests: DestList<'_>, _index: usize) {}

    /// The destination at `index` changed (weight, thresholds, method).
    fn dest_updated(&mut self, _dests: DestList<'_>, _index: usize) {}

    /// Called about once a second with the current time, for schedulers
    /// with timers of their own (lblc and lblcr's cache expiry).
    fn tick(&mut self, _now: Time) {}

    /// Picks a destination for a new connection, or None when none is
    /// available (all quiesced with weight 0, overloaded, or no destinations).
    fn schedule(&mut self, dests: DestList<'_>, input: &SchedInput, now: Time) -> Option<usize>;
}

/// Every scheduler IPVS has, in ipvsadm's help order (twos last: Linux 6.2).
pub const NAMES: &[&str] =
    &["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"];

/// Binds a scheduler to a service that already has `dests`, as the kernel's
/// `init_service` does.
pub fn create(name: &str, dests: DestList<'_>, now: Time) -> Option<Box<dyn Scheduler>> {
    Some(match name {
        "rr" => Box::new(rr::RoundRobin::new()),
        "wrr" => Box::new(wrr::WeightedRoundRobin::new(dests)),
        "lc" => Box::new(lc::LeastConnection),
        "wlc" => Box::new(wlc::WeightedLeastConnection),
        "sed" => Box::new(sed::ShortestExpectedDelay),
        "nq" => Box::new(nq::NeverQueue),
        "fo" => Box::new(fo::WeightedFailover),
        "ovf" => Box::new(ovf::WeightedOverflow),
        "lblc" => Box::new(lblc::LocalityLeastConnection::new(now)),
        "lblcr" => Box::new(lblcr::LocalityReplicated::new(now)),
        "dh" => Box::new(dh::DestinationHashing::new(dests)),
        "sh" => Box::new(sh::SourceHashing::new(dests)),
        "mh" => Box::new(mh::MaglevHashing::new(dests)),
        "twos" => Box::new(twos::TwoChoices::new()),
        _ => return None,
    })
}

/// True when the scheduler may hand new connections to `d`.
pub(crate) fn usable(d: &Dest) -> bool {
    !d.overloaded && d.weight > 0
}

/// The weighted-least-connection pick shared by wlc, lblc and lblcr: the
/// first usable destination is the candidate, and a later one replaces it
/// when overhead/weight is strictly smaller (cross-multiplied, no division).
pub(crate) fn weighted_least(dests: DestList<'_>, overhead: impl Fn(&Dest) -> u64) -> Option<usize> {
    let first = dests.iter().position(usable)?;
    let (mut least, mut loh) = (first, overhead(dests.get(first)));
    for i in first + 1..dests.len() {
        let d = dests.get(i);
        if d.overloaded {
            continue;
        }
        let doh = overhead(d);
        if u128::from(loh) * d.weight.max(0) as u128 > u128::from(doh) * dests.get(least).weight.max(0) as u128 {
            least = i;
            loh = doh;
        }
    }
    Some(least)
}
