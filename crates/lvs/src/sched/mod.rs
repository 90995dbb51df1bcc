//! Schedulers, one per file as in the kernel (`ip_vs_<name>.c`), behind one
//! trait that mirrors `struct ip_vs_scheduler`: hooks for destinations being
//! added, removed and updated, and `schedule` to pick one for a new
//! connection.
//!
//! Positions are indices into the service's destination list, which is kept
//! in the kernel's order; a scheduler that remembers a position (rr, wrr)
//! keeps it valid through the add/remove hooks.

pub mod lc;
pub mod rr;
pub mod wlc;
pub mod wrr;

use crate::dest::DestList;
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

    /// Picks a destination for a new connection, or None when none is
    /// available (all quiesced with weight 0, overloaded, or no destinations).
    fn schedule(&mut self, dests: DestList<'_>, input: &SchedInput, now: Time) -> Option<usize>;
}

/// Names of the schedulers this build knows, in the order ipvsadm's help lists them.
pub const NAMES: &[&str] = &["rr", "wrr", "lc", "wlc"];

/// Binds a scheduler to a service that already has `dests`, as the kernel's
/// `init_service` does.
pub fn create(name: &str, dests: DestList<'_>) -> Option<Box<dyn Scheduler>> {
    match name {
        "rr" => Some(Box::new(rr::RoundRobin::new())),
        "wrr" => Some(Box::new(wrr::WeightedRoundRobin::new(dests))),
        "lc" => Some(Box::new(lc::LeastConnection)),
        "wlc" => Some(Box::new(wlc::WeightedLeastConnection)),
        _ => None,
    }
}

/// True when the scheduler may hand new connections to `d`.
pub(crate) fn usable(d: &crate::dest::Dest) -> bool {
    !d.overloaded && d.weight > 0
}
