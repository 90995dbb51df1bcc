//! The LVS core, sans-IO: no sockets, no wall clock. Every entry point takes
//! the current [`Time`] as an argument and returns decisions, so the same core
//! serves the AF_PACKET and AF_XDP shells (and the sync and state
//! restore paths) and is tested with
//! simulated time.
//!
//! The model follows the kernel's `net/netfilter/ipvs/` closely, because
//! operators migrating from kernel IPVS expect the same ipvsadm commands to
//! pick the same real servers in the same order:
//! - a service keeps its destinations in the kernel's list order (new ones are
//!   inserted at the head, as `list_add_rcu` does);
//! - schedulers live one per file under [`sched`] behind the [`Scheduler`]
//!   trait, with the kernel's add/del/update hooks;
//! - connections follow the IPVS TCP state table and timeouts ([`conn`]),
//!   and the per-destination active/inactive counters move exactly as
//!   `set_tcp_state` moves them;
//! - a deleted destination that still carries connections goes to the
//!   service's trash and is revived (stats kept) if it is added back.

#![forbid(unsafe_code)]

pub mod conn;
pub mod defence;
pub mod dest;
pub mod director;
pub mod error;
pub mod fwd;
pub mod sched;
pub mod service;
pub mod stats;
pub mod time;
pub mod types;

pub use conn::ConnTable;
pub use director::{Director, Forward, Verdict};
pub use error::IpvsError;
pub use sched::Scheduler;
pub use time::Time;
pub use types::{DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
