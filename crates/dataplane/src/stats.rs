//! What a packet worker did with frames, for logs and metrics.

#[derive(Debug, Default, Clone, Copy)]
pub struct EngineStats {
    pub frames: u64,
    pub forwarded: u64,
    pub not_ours: u64,
    pub dropped: u64,
    pub waiting_for_neighbour: u64,
    pub truncated: u64,
    pub icmp_sent: u64,
    /// NAT replies sent back to clients.
    pub replies: u64,
    /// AF_XDP frames whose TCP/UDP checksum was left partial by a local
    /// sender (finished on the way out).
    pub partial_checksums: u64,
}
