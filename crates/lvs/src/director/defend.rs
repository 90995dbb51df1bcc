//! The director's side of the defences (defence.rs): admitting new
//! connections against the bound and drop_packet, replacing a
//! never-answered entry at the bound, and drop_entry's sweep.

use super::*;
use crate::defence::{DefenceConfig, DefenceStatus};

/// A sweep idles this long before it drops a lightly used connection
/// (todrop_entry's 60 s).
const SWEEP_IDLE: Span = Span(60_000);

/// How many random slots a new connection at the bound looks at for one
/// to replace.
const REPLACE_TRIES: usize = 8;

impl Director {
    /// New settings for the bound and the defences (the shell's options
    /// and its runtime control).
    pub fn set_defence(&mut self, cfg: DefenceConfig) -> Result<(), String> {
        cfg.validate()?;
        self.defence.configure(cfg);
        self.defence.update(self.conns.len());
        Ok(())
    }

    pub fn defence_config(&self) -> DefenceConfig {
        self.defence.config()
    }

    pub fn defence_status(&self) -> DefenceStatus {
        self.defence.status(self.conns.len())
    }

    /// update_defense_level and, while drop_entry is on, its sweep of a
    /// random 1/32 of the table. Call once a second.
    pub fn defend(&mut self, now: Time) {
        self.defence.update(self.conns.len());
        if !self.defence.sweeping() {
            return;
        }
        let slots = self.conns.slot_count();
        for _ in 0..slots.div_ceil(32) {
            let slot = (self.defence.random() % slots as u64) as u32;
            let Some(cid) = self.conns.live_at(slot) else { continue };
            if self.sweep_drops(cid, now) {
                self.defence.entries_dropped += 1;
                self.expire_conn(cid, now);
            }
        }
    }

    /// ip_vs_random_dropentry's choice for one connection.
    fn sweep_drops(&mut self, cid: ConnId, now: Time) -> bool {
        let c = self.conns.get(cid);
        let timeout = match c.state {
            ConnState::Tcp(TcpState::SynRecv | TcpState::SynAck) => return true,
            ConnState::Tcp(TcpState::Established) => self.timeouts.tcp[TcpState::Established as usize],
            ConnState::Tcp(_) => return false,
            ConnState::Udp => self.timeouts.udp,
        };
        let last_seen = Time(c.expires.0.saturating_sub(u64::from(timeout) * 1000));
        if now - last_seen < SWEEP_IDLE {
            return false;
        }
        let in_pkts = c.in_pkts;
        self.defence.todrop_entry(in_pkts)
    }

    /// Whether a new connection may be made now (None) or why not. At the
    /// bound, with drop_entry enabled, a never-answered entry makes room.
    pub(super) fn admit_new_conn(&mut self, now: Time) -> Option<DropReason> {
        if self.defence.todrop() {
            return Some(DropReason::DropPacket);
        }
        if self.defence.has_room(self.conns.len()) {
            return None;
        }
        if self.defence.may_replace() && self.conns.slot_count() > 0 {
            let slots = self.conns.slot_count() as u64;
            for _ in 0..REPLACE_TRIES {
                let slot = (self.defence.random() % slots) as u32;
                let Some(cid) = self.conns.live_at(slot) else { continue };
                if never_answered(self.conns.get(cid)) {
                    self.defence.entries_replaced += 1;
                    self.expire_conn(cid, now);
                    return None;
                }
            }
        }
        self.defence.refused_at_limit += 1;
        Some(DropReason::ConnectionLimit)
    }
}

/// A TCP entry still opening that nothing has answered: what a SYN flood
/// fills the table with. Under secure_tcp a NAT connection reaches SYNACK
/// only by its real server's SYN-ACK, and is spared from then on; a DR one
/// (whose replies the director never sees) waits there for the client's
/// ACK, which establishes it.
fn never_answered(c: &Conn) -> bool {
    match c.state {
        ConnState::Tcp(TcpState::None | TcpState::SynRecv) => true,
        ConnState::Tcp(TcpState::SynAck) => c.no_output,
        _ => false,
    }
}
