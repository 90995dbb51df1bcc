//! keepalived.conf's VRRP parts into the core's configuration and what the
//! shell needs beside it (interfaces, address specs, scripts).

use rlvs_conf::model::{self as m, Config, Vip};
use rlvs_vrrp::{GarpTiming, InstanceConfig, Peer, Track};
use std::net::IpAddr;
use std::time::Duration;

/// One instance as the shell runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Runtime {
    pub core: InstanceConfig,
    pub tracks: Vec<Track>,
    /// The interface adverts go out of and come in on.
    pub interface: String,
    pub v6: bool,
    pub mcast_group: IpAddr,
    pub unicast_src: Option<IpAddr>,
    pub unicast_ttl: u8,
    /// VIPs and excluded VIPs, added and removed together.
    pub addresses: Vec<Vip>,
    pub notify: m::Notifies,
    /// Traffic to the VIPs is taken while master (keepalived's accept,
    /// on unless strict mode says otherwise); shown in the dumps.
    pub accept: bool,
    pub dont_track_primary: bool,
}

impl Runtime {
    /// Whether a running instance can take this configuration over
    /// without a restart (same router on the same link).
    pub fn same_router(&self, other: &Runtime) -> bool {
        self.core.name == other.core.name
            && self.core.vrid == other.core.vrid
            && self.interface == other.interface
            && self.v6 == other.v6
    }
}

pub struct Setup {
    pub instances: Vec<Runtime>,
    /// Member indices into `instances`, with the group's notify scripts.
    pub groups: Vec<(String, Vec<usize>, m::Notifies)>,
    pub scripts: Vec<m::VrrpScript>,
    pub global: m::GlobalDefs,
}

pub fn build(c: &Config) -> Setup {
    let g = &c.global;
    let mut instances = Vec::new();
    for i in &c.instances {
        let Some(interface) = i.interface.as_ref().map(|x| x.0.clone()).or_else(|| g.default_interface.clone()) else {
            continue;
        };
        let v6 = i.vips.first().is_some_and(|v| v.addr.is_ipv6());
        let garp = i.garp.unwrap_or(g.garp);
        let core = InstanceConfig {
            name: i.name.clone(),
            vrid: i.vrid,
            version: i.version.unwrap_or(g.version),
            priority: i.priority,
            advert_int: i.advert_int,
            auth_pass: match &i.auth {
                Some(m::Auth::Pass(p)) => Some(*p),
                _ => None,
            },
            vips: i.vips.iter().map(|v| v.addr).collect(),
            want_master: i.state == Some(m::InitialState::Master),
            nopreempt: i.nopreempt,
            preempt_delay: i.preempt_delay,
            down_timer_adverts: i.down_timer_adverts.unwrap_or(g.down_timer_adverts),
            lower_prio_no_advert: i.lower_prio_no_advert.unwrap_or(g.lower_prio_no_advert),
            higher_prio_send_advert: i.higher_prio_send_advert.unwrap_or(g.higher_prio_send_advert),
            skip_check_adv_addr: i.skip_check_adv_addr.unwrap_or(g.skip_check_adv_addr),
            unicast_peers: i
                .unicast_peers
                .iter()
                .map(|p| Peer { addr: p.addr, min_ttl: p.min_ttl.unwrap_or(0), max_ttl: p.max_ttl.unwrap_or(255) })
                .collect(),
            check_unicast_src: i.check_unicast_src.unwrap_or(g.check_unicast_src)
                || i.unicast_peers.iter().any(|p| p.min_ttl.is_some() || p.max_ttl.is_some()),
            garp: GarpTiming {
                delay: garp.master_delay,
                repeat: garp.master_repeat,
                refresh: garp.master_refresh,
                refresh_repeat: garp.master_refresh_repeat,
                lower_prio_delay: Some(garp.lower_prio_delay.unwrap_or(garp.master_delay)),
                lower_prio_repeat: Some(garp.lower_prio_repeat.unwrap_or(garp.master_repeat)),
            },
        };
        let mut tracks = Vec::new();
        if !i.dont_track_primary {
            tracks.push(Track { id: link_id(&interface), weight: 0, reverse: false });
        }
        for t in &i.track_interfaces {
            if t.name != interface || i.dont_track_primary {
                tracks.push(Track { id: link_id(&t.name), weight: t.weight, reverse: t.reverse });
            }
        }
        for t in &i.track_scripts {
            tracks.push(Track { id: script_id(&t.name), weight: t.weight, reverse: t.reverse });
        }
        let mut addresses = i.vips.clone();
        addresses.extend(i.excluded_vips.iter().cloned());
        let mcast_group = match (i.mcast_dst_ip, v6) {
            (Some(a), _) => a,
            (None, false) => IpAddr::V4(g.mcast_group4),
            (None, true) => IpAddr::V6(g.mcast_group6),
        };
        instances.push(Runtime {
            core,
            tracks,
            interface,
            v6,
            mcast_group,
            unicast_src: i.unicast_src_ip.or(i.mcast_src_ip),
            unicast_ttl: i.unicast_ttl,
            addresses,
            notify: i.notify.clone(),
            accept: i.accept.unwrap_or(!i.strict_mode.unwrap_or(g.strict)),
            dont_track_primary: i.dont_track_primary,
        });
    }
    let mut groups = Vec::new();
    for sg in &c.sync_groups {
        let members: Vec<usize> = sg
            .members
            .iter()
            .filter_map(|(name, _)| instances.iter().position(|r: &Runtime| &r.core.name == name))
            .collect();
        // Trackers on the group apply to every member.
        for &mi in &members {
            for t in &sg.track_interfaces {
                instances[mi].tracks.push(Track { id: link_id(&t.name), weight: t.weight, reverse: t.reverse });
            }
            for t in &sg.track_scripts {
                instances[mi].tracks.push(Track { id: script_id(&t.name), weight: t.weight, reverse: t.reverse });
            }
        }
        groups.push((sg.name.clone(), members, sg.notify.clone()));
    }
    Setup { instances, groups, scripts: c.scripts.clone(), global: c.global.clone() }
}

pub fn link_id(name: &str) -> String {
    format!("if:{name}")
}

pub fn script_id(name: &str) -> String {
    format!("script:{name}")
}

/// The address flags keepalived sets: IPv6 VIPs skip duplicate address
/// detection unless `-nodad` says otherwise.
pub fn addr_flags(v: &Vip) -> u32 {
    const NODAD: u32 = 0x02;
    const HOMEADDRESS: u32 = 0x10;
    const NOPREFIXROUTE: u32 = 0x200;
    let mut f = 0;
    if v.addr.is_ipv6() && !v.nodad {
        f |= NODAD;
    }
    if v.home {
        f |= HOMEADDRESS;
    }
    if v.noprefixroute {
        f |= NOPREFIXROUTE;
    }
    f
}

pub fn scope_number(s: Option<m::Scope>) -> u8 {
    match s {
        None | Some(m::Scope::Global) => 0,
        Some(m::Scope::Site) => 200,
        Some(m::Scope::Link) => 253,
        Some(m::Scope::Host) => 254,
        Some(m::Scope::Nowhere) => 255,
        Some(m::Scope::Other(n)) => n,
    }
}

/// The interval a vrrp_script's timeout defaults to.
pub fn script_timeout(s: &m::VrrpScript) -> Duration {
    s.timeout.unwrap_or(s.interval)
}
