//! The VRRP core, sans IO: [`Instance`] is one virtual router's state
//! machine; [`Router`] holds all of them with their tracked objects and
//! sync groups. The shell feeds in received adverts, timer ticks and
//! tracker results with the current time, and carries out the returned
//! [`Action`]s (send an advert, add or remove addresses, gratuitous ARPs,
//! notify scripts, log lines).

#![forbid(unsafe_code)]

pub mod check;
pub mod instance;
pub mod router;

pub use check::Stats;
pub use instance::Instance;
pub use router::{Output, Router, Track};

use serde::Serialize;
use std::net::IpAddr;
use std::time::Duration;

/// Time since an arbitrary epoch chosen by the shell.
pub type Time = Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum State {
    Init,
    Backup,
    Master,
    Fault,
}

impl State {
    /// As keepalived's notify scripts and logs name it.
    pub fn name(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpTiming {
    /// A second round this long after becoming master (zero: none).
    pub delay: Duration,
    pub repeat: u32,
    /// Again every this often while master (zero: never).
    pub refresh: Duration,
    pub refresh_repeat: u32,
    pub lower_prio_delay: Option<Duration>,
    pub lower_prio_repeat: Option<u32>,
}

impl Default for GarpTiming {
    fn default() -> Self {
        GarpTiming {
            delay: Duration::from_secs(5),
            repeat: 5,
            refresh: Duration::ZERO,
            refresh_repeat: 1,
            lower_prio_delay: None,
            lower_prio_repeat: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub addr: IpAddr,
    pub min_ttl: u8,
    pub max_ttl: u8,
}

/// What the state machine needs of a vrrp_instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    pub name: String,
    pub vrid: u8,
    pub version: u8,
    pub priority: u8,
    pub advert_int: Duration,
    /// v2 PASS authentication: the password, zero-padded to 8 bytes.
    pub auth_pass: Option<[u8; 8]>,
    /// The addresses advertised (not the excluded ones).
    pub vips: Vec<IpAddr>,
    /// `state MASTER`.
    pub want_master: bool,
    pub nopreempt: bool,
    pub preempt_delay: Duration,
    pub down_timer_adverts: u32,
    pub lower_prio_no_advert: bool,
    pub higher_prio_send_advert: bool,
    pub skip_check_adv_addr: bool,
    /// Empty: multicast.
    pub unicast_peers: Vec<Peer>,
    pub check_unicast_src: bool,
    pub garp: GarpTiming,
}

impl InstanceConfig {
    /// A plain instance, for tests and the simple cases.
    pub fn new(name: &str, vrid: u8, priority: u8, vips: Vec<IpAddr>) -> InstanceConfig {
        InstanceConfig {
            name: name.to_string(),
            vrid,
            version: 2,
            priority,
            advert_int: Duration::from_secs(1),
            auth_pass: None,
            vips,
            want_master: priority == 255,
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            down_timer_adverts: 3,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            skip_check_adv_addr: false,
            unicast_peers: Vec::new(),
            check_unicast_src: false,
            garp: GarpTiming::default(),
        }
    }

    /// The advert this instance sends with `priority`.
    pub fn advert(&self, priority: u8) -> rlvs_wire::vrrp::VrrpRepr {
        let advert_int = if self.version == 2 {
            self.advert_int.as_secs().clamp(1, 255) as u16
        } else {
            (self.advert_int.as_millis() / 10).clamp(1, 4095) as u16
        };
        rlvs_wire::vrrp::VrrpRepr {
            version: self.version,
            vrid: self.vrid,
            priority,
            advert_int,
            addresses: self.vips.clone(),
            auth: if self.version == 2 { self.auth_pass.map(|p| (1, p)) } else { None },
        }
    }
}

/// A received advert: the IP envelope's facts and the VRRP message.
#[derive(Debug, Clone, Copy)]
pub struct Advert<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    SendAdvert {
        priority: u8,
    },
    AddVips,
    RemoveVips,
    /// Gratuitous ARP / unsolicited NA for every address, `repeat` times.
    SendGarp {
        repeat: u32,
    },
    /// The instance entered this state: run its notify scripts.
    Notify(State),
    NotifyMasterRxLowerPri,
    PriorityChanged(u8),
    /// The master-down timer expired (the router decides, with any sync
    /// group, whether it becomes master).
    WantMaster,
    /// A line for the log, in keepalived's words.
    Log(String),
}

#[cfg(test)]
mod tests;
