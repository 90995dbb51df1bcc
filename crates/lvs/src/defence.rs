//! The connection table's bound and IPVS's three defences against running
//! out of it (ip_vs_ctl.c's update_defense_level, ip_vs_todrop and
//! ip_vs_conn.c's ip_vs_random_dropentry), with the kernel's sysctl
//! semantics:
//!
//! - each of drop_entry, drop_packet and secure_tcp is 0 (off), 1 (on
//!   when memory runs short: moves itself to 2 while it lasts and back
//!   to 1 after), or 3 (always on);
//! - memory runs short when what is available falls below amemthresh
//!   (pages);
//! - drop_packet, while on, drops one new connection in
//!   amemthresh / (amemthresh − available) (3: one in am_droprate);
//! - drop_entry, while on, looks at a random 1/32 of the table every
//!   second and drops never-answered TCP entries (SYN_RECV, SYNACK) and
//!   idle lightly used ones (todrop_entry);
//! - secure_tcp, while on, moves TCP connections by the kernel's stricter
//!   state table (tcp::next_state with `secure`).
//!
//! What "available memory" is differs on purpose. The kernel asks the page
//! allocator; rlvs's table has a bound of its own, `limit` connections of
//! `bytes_per_conn` bytes each (its user-space entry and, under AF_XDP, its
//! pinned BPF map entry), and available memory is what is left of that
//! budget, in 4 KiB pages. So the defences start when the table comes
//! within amemthresh pages of its bound, whatever else the host does.
//!
//! At the bound itself a new connection is refused, unless drop_entry is
//! enabled (1, 2 or 3): then it takes the place of a never-answered entry
//! found among a few random slots, as nf_conntrack's early drop does. A
//! SYN flood then replaces its own entries, not legitimate clients'.
//!
//! Sans-IO: the shell calls `Director::defend` once a second; randomness
//! comes from a generator seeded at construction.

use serde::{Deserialize, Serialize};

/// The kernel's page, the unit of amemthresh.
pub const PAGE: u64 = 4096;

/// The operator's settings, as the kernel's sysctls (net.ipv4.vs.*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefenceConfig {
    pub drop_entry: u8,
    pub drop_packet: u8,
    pub secure_tcp: u8,
    /// Pages (the kernel's default: 1024).
    pub amemthresh: u64,
    /// drop_packet at 3 drops one new connection in this many (default 10).
    pub am_droprate: u32,
    /// The table's bound in connections (None: unbounded).
    pub limit: Option<u64>,
    /// What one connection costs, for the memory accounting.
    pub bytes_per_conn: u64,
}

impl Default for DefenceConfig {
    fn default() -> Self {
        DefenceConfig {
            drop_entry: 0,
            drop_packet: 0,
            secure_tcp: 0,
            amemthresh: 1024,
            am_droprate: 10,
            limit: None,
            bytes_per_conn: crate::conn::ConnTable::BYTES_PER_CONN,
        }
    }
}

impl DefenceConfig {
    /// The values the sysctls accept.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in
            [("drop_entry", self.drop_entry), ("drop_packet", self.drop_packet), ("secure_tcp", self.secure_tcp)]
        {
            if v > 3 {
                return Err(format!("{name} must be 0 to 3, not {v}"));
            }
        }
        if self.am_droprate == 0 {
            return Err("am_droprate must be at least 1".into());
        }
        if self.bytes_per_conn == 0 {
            return Err("a connection costs at least one byte".into());
        }
        Ok(())
    }
}

/// What the defences are doing, for `rlvs ctl` and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefenceStatus {
    /// The settings, with drop_entry, drop_packet and secure_tcp as the
    /// kernel's sysctls show them (2 while an automatic defence is on).
    pub config: DefenceConfig,
    /// What is left of the table's budget, in pages (None: unbounded).
    pub available_pages: Option<u64>,
    /// drop_packet drops one new connection in this many (0: none).
    pub drop_rate: u32,
    /// New connections refused at the bound.
    pub refused_at_limit: u64,
    /// New connections dropped by drop_packet.
    pub packets_dropped: u64,
    /// Entries dropped by drop_entry's sweep, and replaced at the bound.
    pub entries_dropped: u64,
    pub entries_replaced: u64,
}

#[derive(Debug)]
pub struct Defence {
    cfg: DefenceConfig,
    /// The sysctls' live values: an automatic defence moves 1 to 2 and back.
    drop_entry: u8,
    drop_packet: u8,
    secure_tcp: u8,
    drop_entry_on: bool,
    drop_rate: u32,
    drop_counter: u32,
    /// todrop_entry's per-packet-count counters.
    todrop_counter: [u8; 9],
    rng: u64,
    pub(crate) refused_at_limit: u64,
    pub(crate) packets_dropped: u64,
    pub(crate) entries_dropped: u64,
    pub(crate) entries_replaced: u64,
}

impl Default for Defence {
    fn default() -> Self {
        use std::hash::BuildHasher;
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1;
        Defence::new(DefenceConfig::default(), seed)
    }
}

impl Defence {
    pub fn new(cfg: DefenceConfig, seed: u64) -> Defence {
        let mut d = Defence {
            cfg,
            drop_entry: 0,
            drop_packet: 0,
            secure_tcp: 0,
            drop_entry_on: false,
            drop_rate: 0,
            drop_counter: 0,
            todrop_counter: [0; 9],
            rng: seed | 1,
            refused_at_limit: 0,
            packets_dropped: 0,
            entries_dropped: 0,
            entries_replaced: 0,
        };
        d.configure(cfg);
        d
    }

    /// New settings; the automatic defences re-decide at the next update.
    pub fn configure(&mut self, cfg: DefenceConfig) {
        self.cfg = cfg;
        self.drop_entry = cfg.drop_entry;
        self.drop_packet = cfg.drop_packet;
        self.secure_tcp = cfg.secure_tcp;
        self.drop_entry_on = cfg.drop_entry == 3;
        self.drop_rate = if cfg.drop_packet == 3 { cfg.am_droprate } else { 0 };
        self.drop_counter = self.drop_rate;
    }

    pub fn config(&self) -> DefenceConfig {
        self.cfg
    }

    pub fn limit(&self) -> Option<u64> {
        self.cfg.limit
    }

    /// The table holds `conns`: is there room for one more?
    pub fn has_room(&self, conns: usize) -> bool {
        self.cfg.limit.is_none_or(|l| (conns as u64) < l)
    }

    /// At the bound, may a new connection replace a never-answered one?
    pub fn may_replace(&self) -> bool {
        self.cfg.drop_entry != 0
    }

    fn available_pages(&self, conns: usize) -> Option<u64> {
        let limit = self.cfg.limit?;
        Some(limit.saturating_sub(conns as u64).saturating_mul(self.cfg.bytes_per_conn) / PAGE)
    }

    /// update_defense_level, with the table holding `conns`.
    pub fn update(&mut self, conns: usize) {
        let thresh = self.cfg.amemthresh;
        let available = self.available_pages(conns);
        let nomem = available.is_some_and(|a| a < thresh);
        // drop_entry
        match self.drop_entry {
            0 => self.drop_entry_on = false,
            1 | 2 => {
                self.drop_entry_on = nomem;
                self.drop_entry = if nomem { 2 } else { 1 };
            }
            _ => self.drop_entry_on = true,
        }
        // drop_packet
        let rate = || {
            let a = available.unwrap_or(thresh);
            u32::try_from(thresh / (thresh - a).max(1)).unwrap_or(u32::MAX).max(1)
        };
        match self.drop_packet {
            0 => self.drop_rate = 0,
            1 | 2 => {
                if nomem {
                    self.drop_rate = rate();
                    self.drop_counter = self.drop_rate;
                    self.drop_packet = 2;
                } else {
                    self.drop_rate = 0;
                    self.drop_packet = 1;
                }
            }
            _ => self.drop_rate = self.cfg.am_droprate,
        }
        // secure_tcp
        if matches!(self.secure_tcp, 1 | 2) {
            self.secure_tcp = if nomem { 2 } else { 1 };
        }
    }

    /// ip_vs_todrop: should this new connection's first packet be dropped?
    pub fn todrop(&mut self) -> bool {
        if self.drop_rate == 0 {
            return false;
        }
        self.drop_counter = self.drop_counter.saturating_sub(1);
        if self.drop_counter > 0 {
            return false;
        }
        self.drop_counter = self.drop_rate;
        self.packets_dropped += 1;
        true
    }

    /// The stricter TCP state table is in force.
    pub fn secure_tcp(&self) -> bool {
        self.secure_tcp >= 2
    }

    /// drop_entry's sweep is due this second.
    pub fn sweeping(&self) -> bool {
        self.drop_entry_on
    }

    /// todrop_entry: a lightly used connection (0-8 input packets; the
    /// kernel's rates 0-8, so one with no packet is never dropped) goes,
    /// one in `in_pkts` of them.
    pub fn todrop_entry(&mut self, in_pkts: u32) -> bool {
        let Some(i) = usize::try_from(in_pkts).ok().filter(|&i| (1..=8).contains(&i)) else {
            return false;
        };
        self.todrop_counter[i] = self.todrop_counter[i].saturating_sub(1);
        if self.todrop_counter[i] > 0 {
            return false;
        }
        self.todrop_counter[i] = i as u8;
        true
    }

    /// A pseudo-random number (xorshift64*): which slots the sweep visits.
    pub fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn status(&self, conns: usize) -> DefenceStatus {
        let live = DefenceConfig {
            drop_entry: self.drop_entry,
            drop_packet: self.drop_packet,
            secure_tcp: self.secure_tcp,
            ..self.cfg
        };
        DefenceStatus {
            config: live,
            available_pages: self.available_pages(conns),
            drop_rate: self.drop_rate,
            refused_at_limit: self.refused_at_limit,
            packets_dropped: self.packets_dropped,
            entries_dropped: self.entries_dropped,
            entries_replaced: self.entries_replaced,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(limit: u64) -> DefenceConfig {
        // One page a connection keeps the arithmetic in connections.
        DefenceConfig { limit: Some(limit), bytes_per_conn: PAGE, amemthresh: 100, ..Default::default() }
    }

    #[test]
    fn automatic_defences_move_to_two_while_memory_is_short_and_back() {
        let mut d = Defence::new(DefenceConfig { drop_entry: 1, drop_packet: 1, secure_tcp: 1, ..cfg(1000) }, 7);
        d.update(100);
        assert_eq!((d.drop_entry, d.drop_packet, d.secure_tcp), (1, 1, 1));
        assert!(!d.sweeping() && !d.secure_tcp() && !d.todrop());
        // 950 of 1000: 50 pages left, under the threshold of 100.
        d.update(950);
        assert_eq!((d.drop_entry, d.drop_packet, d.secure_tcp), (2, 2, 2));
        assert!(d.sweeping() && d.secure_tcp());
        assert_eq!(d.drop_rate, 2, "amemthresh / (amemthresh - available) = 100 / 50");
        let dropped = (0..10).filter(|_| d.todrop()).count();
        assert_eq!(dropped, 5);
        d.update(10);
        assert_eq!((d.drop_entry, d.drop_packet, d.secure_tcp), (1, 1, 1));
        assert!(!d.sweeping() && !d.secure_tcp() && !d.todrop());
    }

    #[test]
    fn off_and_always_ignore_memory() {
        let mut off = Defence::new(cfg(1000), 7);
        off.update(1000);
        assert!(!off.sweeping() && !off.secure_tcp() && !off.todrop());
        let mut always = Defence::new(
            DefenceConfig { drop_entry: 3, drop_packet: 3, secure_tcp: 3, am_droprate: 4, ..cfg(1000) },
            7,
        );
        always.update(0);
        assert!(always.sweeping() && always.secure_tcp());
        assert_eq!((0..8).filter(|_| always.todrop()).count(), 2, "one in am_droprate");
    }

    #[test]
    fn a_full_table_drops_every_new_connection_and_unbounded_never_runs_short() {
        let mut d = Defence::new(DefenceConfig { drop_packet: 1, ..cfg(1000) }, 7);
        d.update(1000);
        assert_eq!(d.drop_rate, 1);
        assert!(d.todrop() && d.todrop());
        assert!(!d.has_room(1000) && d.has_room(999));
        let mut unbounded = Defence::new(DefenceConfig { drop_packet: 1, limit: None, ..cfg(0) }, 7);
        unbounded.update(usize::MAX);
        assert!(!unbounded.todrop() && unbounded.has_room(usize::MAX));
    }

    #[test]
    fn todrop_entry_spares_busy_and_silent_connections() {
        let mut d = Defence::new(cfg(10), 7);
        assert!(!d.todrop_entry(0) && !d.todrop_entry(9));
        assert!(d.todrop_entry(1) && d.todrop_entry(1), "one in one");
        let threes = (0..9).filter(|_| d.todrop_entry(3)).count();
        assert_eq!(threes, 3, "one in three");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(DefenceConfig { secure_tcp: 4, ..Default::default() }.validate().is_err());
        assert!(DefenceConfig { am_droprate: 0, ..Default::default() }.validate().is_err());
        assert!(DefenceConfig::default().validate().is_ok());
    }
}
