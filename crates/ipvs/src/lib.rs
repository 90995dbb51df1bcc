//! Kernel IPVS over generic netlink, as a plain codec: the IPVS family's
//! numbers (`attr`), its attribute layout (`nla`) and typed requests and
//! answers (`msg`), all without I/O; and `client`, the thin blocking shell
//! that resolves the family and exchanges them with the kernel; `backend`
//! and `engine` put kernel IPVS behind the control layer's boundary, and
//! `conns` reads the connection table netlink does not carry.

#![forbid(unsafe_code)]
pub mod attr;
pub mod backend;
pub mod client;
pub mod conns;
pub mod engine;
pub mod msg;
pub mod nla;

pub use msg::{Daemon, Dest, IpvsMessage, Service, ServiceId, Stats, Timeouts};
