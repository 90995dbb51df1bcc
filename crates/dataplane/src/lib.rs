//! I/O shells around the sans-IO LVS core.
//!
//! - [`engine`]: the control thread that owns the tables, answers control
//!   requests and drives the packet workers;
//! - receive and transmit: [`afpacket`] (TPACKET_V3 ring, batched sendmmsg
//!   with virtio-net headers so offloaded frames pass intact) or AF_XDP
//!   ([`xsk`] sockets fed by the XDP program, [`xdp`]);
//! - the XDP fast path: [`fastpath`] installs established flows in the
//!   pinned [`maps`] (mirroring bpf/rlvs_maps.h), [`pins`] keeps them
//!   across restarts, [`state`] the tables a restarted daemon takes over;
//! - the traffic filter ([`filter`]: the [`nft`] netdev guard, or the XDP
//!   program's maps) that keeps the director's own stack off VIP traffic;
//! - [`netlink`] and [`resolver`]: route and neighbour lookups for real
//!   servers, off the packet path; [`iface`]: the namespace's interfaces;
//! - connection sync (the daemons around the core's sans-IO sync side) and
//!   [`stats`]: what the workers did, for logs and metrics.

pub mod afpacket;
mod csum;
pub mod engine;
pub mod fastpath;
pub mod filter;
pub mod iface;
pub mod maps;
pub mod netlink;
pub mod nft;
mod nft_sets;
pub mod pins;
pub mod resolver;
pub mod state;
pub mod stats;
mod sync;
mod worker;
pub mod xdp;
mod xdp_io;
mod xmit;
pub mod xsk;

pub use engine::{start, ControlMsg, EngineConfig, EngineKind, Handle, Subscriber};
