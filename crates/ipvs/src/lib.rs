//! Kernel IPVS over generic netlink, as a plain codec: the IPVS family's
//! numbers (`attr`), its attribute layout (`nla`) and typed requests and
//! answers (`msg`). No sockets here: the kernel backend's shell sends
//! these through netlink-sys.
pub mod attr;
pub mod msg;
pub mod nla;

pub use msg::{Daemon, Dest, IpvsMessage, Service, ServiceId, Stats, Timeouts};
