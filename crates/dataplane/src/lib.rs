//! I/O shells around the sans-IO LVS core.
//!
//! - [`afpacket`]: TPACKET_V3 receive ring and batched sendmmsg, with
//!   virtio-net headers so offloaded frames pass intact;
//! - [`nft`]: the netdev ingress guard that silences the director's own
//!   stack for VIP:port traffic;
//! - [`netlink`] and [`resolver`]: route and neighbour lookups for real
//!   servers, off the packet path;
//! - [`engine`]: the thread that owns the director and runs the loop.

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
