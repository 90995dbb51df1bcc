//! The forwarding transforms, one per method, as the kernel keeps them all in
//! ip_vs_xmit.c. They rewrite a frame in place once the director has chosen a
//! real server and the shell has resolved its next hop.

pub mod dr;
pub mod icmp;
pub mod nat;
pub mod tcpseq;
pub mod tun;
