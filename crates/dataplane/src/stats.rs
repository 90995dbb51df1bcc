//! What a packet worker did with frames, for logs and metrics.

use rlvs_lvs::director::DropReason;

/// Why the engine dropped a frame meant for a virtual service: the
/// director's reasons, then the transmit side's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    NoConnection,
    DestUnavailable,
    NoDestination,
    Malformed,
    NoLocalPort,
    /// The rewrite for the forwarding method did not fit the packet.
    Rewrite,
    /// A reply with no known way back to its client.
    NoRoute,
    /// A routed reply's TTL or hop limit ran out.
    TtlExceeded,
    /// Too big to tunnel (the client was sent fragmentation-needed).
    TooBig,
    /// A forwarding method the packet's family cannot take (TUN over IPv6).
    Unsupported,
    /// AF_XDP: the transmit ring or the chunk pool was full.
    TxFull,
    /// A new connection with the connection table at its bound.
    ConnectionLimit,
    /// A new connection dropped by the drop_packet defence.
    DropPacket,
}

impl Drop {
    pub const ALL: [Drop; 13] = [
        Drop::NoConnection,
        Drop::DestUnavailable,
        Drop::NoDestination,
        Drop::Malformed,
        Drop::NoLocalPort,
        Drop::Rewrite,
        Drop::NoRoute,
        Drop::TtlExceeded,
        Drop::TooBig,
        Drop::Unsupported,
        Drop::TxFull,
        Drop::ConnectionLimit,
        Drop::DropPacket,
    ];

    /// The `reason` label of rlvs_engine_drops_total.
    pub fn name(self) -> &'static str {
        match self {
            Drop::NoConnection => "no_connection",
            Drop::DestUnavailable => "real_server_deleted",
            Drop::NoDestination => "no_real_server",
            Drop::Malformed => "malformed",
            Drop::NoLocalPort => "no_local_port",
            Drop::Rewrite => "rewrite_failed",
            Drop::NoRoute => "no_route_to_client",
            Drop::TtlExceeded => "ttl_exceeded",
            Drop::TooBig => "too_big",
            Drop::Unsupported => "unsupported",
            Drop::TxFull => "transmit_ring_full",
            Drop::ConnectionLimit => "connection_limit",
            Drop::DropPacket => "drop_packet",
        }
    }
}

impl From<DropReason> for Drop {
    fn from(r: DropReason) -> Drop {
        match r {
            DropReason::NoConnection => Drop::NoConnection,
            DropReason::DestUnavailable => Drop::DestUnavailable,
            DropReason::NoDestination => Drop::NoDestination,
            DropReason::Malformed => Drop::Malformed,
            DropReason::NoLocalPort => Drop::NoLocalPort,
            DropReason::ConnectionLimit => Drop::ConnectionLimit,
            DropReason::DropPacket => Drop::DropPacket,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct EngineStats {
    pub frames: u64,
    pub forwarded: u64,
    pub not_ours: u64,
    /// By `Drop as usize`.
    pub drops: [u64; Drop::ALL.len()],
    pub waiting_for_neighbour: u64,
    pub truncated: u64,
    pub icmp_sent: u64,
    /// NAT replies sent back to clients.
    pub replies: u64,
    /// AF_XDP frames whose TCP/UDP checksum was left partial by a local
    /// sender (finished on the way out).
    pub partial_checksums: u64,
}

impl EngineStats {
    pub fn drop(&mut self, why: Drop) {
        self.drops[why as usize] += 1;
    }

    pub fn add(&mut self, o: &EngineStats) {
        self.frames += o.frames;
        self.forwarded += o.forwarded;
        self.not_ours += o.not_ours;
        for (a, b) in self.drops.iter_mut().zip(o.drops) {
            *a += b;
        }
        self.waiting_for_neighbour += o.waiting_for_neighbour;
        self.truncated += o.truncated;
        self.icmp_sent += o.icmp_sent;
        self.replies += o.replies;
        self.partial_checksums += o.partial_checksums;
    }
}

/// What `Request::EngineStats` answers: the workers' counters, the fast
/// path's, the tables' sizes and the sync daemons'.
pub(crate) fn counters(
    slow: &EngineStats,
    fast: Option<&crate::fastpath::FastPath>,
    connections: usize,
    defence: rlvs_lvs::defence::DefenceStatus,
    sync: Option<&crate::sync::SyncShell>,
) -> rlvs_ctl::EngineCounters {
    let fast_path = fast.map(|f| {
        let (forwarded, punted, orphaned) = f.counters();
        rlvs_ctl::FastPathCounters {
            forwarded,
            punted,
            orphaned,
            map_entries: f.map_entries(),
            map_capacity: u64::from(crate::maps::MAX_CONNS),
        }
    });
    let sync = sync.map(|s| s.counters()).unwrap_or_default();
    rlvs_ctl::EngineCounters {
        frames: slow.frames,
        forwarded: slow.forwarded,
        replies: slow.replies,
        not_ours: slow.not_ours,
        drops: Drop::ALL.iter().map(|d| (d.name().to_string(), slow.drops[*d as usize])).collect(),
        icmp_sent: slow.icmp_sent,
        waiting_for_neighbour: slow.waiting_for_neighbour,
        fast_path,
        connections: connections as u64,
        connection_limit: defence.config.limit,
        defence: Some(defence),
        sync_sent: sync.sent,
        sync_received: sync.received,
        sync_conns_received: sync.conns,
        sync_rejected: vec![("malformed".into(), sync.malformed), ("other_syncid".into(), sync.other_syncid)],
    }
}
