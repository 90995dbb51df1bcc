//! vrrp_script, vrrp_instance and vrrp_sync_group, with the defaults and
//! consistency rules keepalived applies when it completes an instance.

use super::values::{parse_ip, parse_prefixed, parse_scope};
use super::Builder;
use crate::diag::Diag;
use crate::model::*;
use crate::schema::BlockKind;
use crate::tree::Node;
use std::net::IpAddr;
use std::time::Duration;

mod address;
mod complete;
mod sync;
mod track;

const PRIO_OWNER: u8 = 255;
const PRIO_DEFAULT: u8 = 100;

/// An instance as read, before keepalived's completion judges it.
pub(super) struct PendingInstance {
    pub v: VrrpInstance,
    /// auth_type (PASS: true, AH: false) and auth_pass as given.
    pub auth: (Option<bool>, Option<[u8; 8]>),
    /// The family its first address (or native_ipv6) fixed.
    pub v6: bool,
    /// A unicast keyword without any peer (a deprecated form).
    pub unicast_without_peers: bool,
}

impl Builder {
    pub(super) fn vrrp_script(&mut self, node: &Node) -> Option<VrrpScript> {
        let name = self.need(node, 0)?.to_string();
        let children = self.block(node)?;
        let end = node.block.as_ref().and_then(|b| b.close.clone()).unwrap_or_else(|| node.pos().clone());
        let mut s = VrrpScript {
            name,
            pos: node.pos().clone(),
            end,
            script: Vec::new(),
            interval: Duration::from_secs(1),
            timeout: None,
            weight: 0,
            weight_reverse: false,
            rise: 1,
            fall: 1,
            user: None,
            user_pos: None,
            init_fail: false,
        };
        for n in children {
            self.no_block(n);
            match n.keyword() {
                "script" => {
                    if let Some((argv, _)) = self.script(n) {
                        s.script = argv;
                    }
                }
                "interval" => match self.unsigned(n, 0, 0, u64::from(u32::MAX / 1_000_000)) {
                    Some(0) => {
                        self.bad(
                            n,
                            &format!("({}): vrrp script interval must be greater than 0, setting to 1", s.name),
                        );
                        s.interval = Duration::from_secs(1);
                    }
                    Some(v) => s.interval = Duration::from_secs(v),
                    None => self.bad(
                        n,
                        &format!(
                            "({}): vrrp script interval '{}' must be between 1 and {} - ignoring",
                            s.name,
                            n.arg(0).unwrap_or(""),
                            u32::MAX / 1_000_000
                        ),
                    ),
                },
                "timeout" => match self.unsigned(n, 0, 0, u64::from(u32::MAX / 1_000_000)) {
                    Some(0) => {
                        self.bad(n, &format!("({}): vrrp script timeout must be greater than 0, setting to 1", s.name));
                        s.timeout = Some(Duration::from_secs(1));
                    }
                    Some(t) => s.timeout = Some(Duration::from_secs(t)),
                    None => self.bad(
                        n,
                        &format!("({}): vrrp script timeout '{}' invalid - ignoring", s.name, n.arg(0).unwrap_or("")),
                    ),
                },
                "weight" => {
                    match self.int(n, 0, -253, 253) {
                        Some(w) => s.weight = w as i32,
                        None => self.bad(
                            n,
                            &format!("vrrp_script {} weight {} must be in [-253, 253]", s.name, n.arg(0).unwrap_or("")),
                        ),
                    }
                    match n.arg(1) {
                        Some("reverse") => s.weight_reverse = true,
                        Some(o) => self.bad(n, &format!("vrrp_script {} unknown weight option {o}", s.name)),
                        None => {}
                    }
                }
                kw @ ("rise" | "fall") => match self.unsigned(n, 0, 1, i32::MAX as u64) {
                    Some(v) if kw == "rise" => s.rise = v as u32,
                    Some(v) => s.fall = v as u32,
                    None => {
                        let m = format!(
                            "({}): vrrp script {kw} value '{}' invalid, defaulting to 1",
                            s.name,
                            n.arg(0).unwrap_or("")
                        );
                        self.bad(n, &m);
                    }
                },
                "user" => {
                    if let Some(u) = self.need(n, 0) {
                        s.user = Some(ScriptUser { user: u.to_string(), group: n.arg(1).map(str::to_string) });
                        s.user_pos = Some(n.pos().clone());
                    }
                }
                "init_fail" => s.init_fail = true,
                _ => self.other(BlockKind::VrrpScript, n),
            }
        }
        if s.script.is_empty() {
            self.diags.push(Diag::error(&s.pos, format!("No script set for vrrp_script {} - removing", s.name)));
            return None;
        }
        Some(s)
    }

    pub(super) fn vrrp_instance(
        &mut self,
        node: &Node,
        g: &GlobalDefs,
        scripts: &[VrrpScript],
    ) -> Option<PendingInstance> {
        let Some(name) = node.arg(0).map(str::to_string) else {
            self.bad(node, "vrrp_instance must have a name");
            return None;
        };
        let children = self.block(node)?;
        let mut v = VrrpInstance {
            name,
            pos: node.pos().clone(),
            state: None,
            interface: None,
            vrid: 0,
            priority: 0,
            advert_int: Duration::ZERO,
            version: None,
            auth: None,
            vips: Vec::new(),
            excluded_vips: Vec::new(),
            unicast_peers: Vec::new(),
            unicast_src_ip: None,
            mcast_src_ip: None,
            mcast_dst_ip: None,
            unicast_ttl: 255,
            check_unicast_src: None,
            skip_check_adv_addr: None,
            native_ipv6: false,
            dont_track_primary: false,
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            accept: None,
            strict_mode: None,
            notify: Notifies::default(),
            notify_priority_changes: None,
            garp: None,
            down_timer_adverts: None,
            lower_prio_no_advert: None,
            higher_prio_send_advert: None,
            debug: 0,
        };
        let iname = v.name.clone();
        let mut auth_pass: Option<[u8; 8]> = None;
        let mut auth_type: Option<bool> = None; // Some(true) = PASS, Some(false) = AH
        let mut garp = g.garp;
        let mut garp_set = false;
        let mut unicast_ttl_set = false;
        // keepalived fixes an instance's family with the first address it
        // reads (VIP, peer, source, multicast group) or native_ipv6.
        let mut family_v6: Option<bool> = None;
        let mut unicast_configured = false;
        let mut fault_no_peer = false;
        for n in children {
            let takes_block = matches!(
                n.keyword(),
                "authentication"
                    | "virtual_ipaddress"
                    | "virtual_ipaddress_excluded"
                    | "unicast_peer"
                    | "track_interface"
                    | "track_script"
            );
            if !takes_block {
                self.no_block(n);
            }
            match n.keyword() {
                "state" => match self.need(n, 0) {
                    Some("MASTER") => v.state = Some(InitialState::Master),
                    Some("BACKUP") => {
                        if v.state == Some(InitialState::Master) {
                            self.bad(n, &format!("({iname}) state previously set as MASTER - ignoring BACKUP"));
                        } else {
                            v.state = Some(InitialState::Backup);
                        }
                    }
                    Some(other) => {
                        self.bad(n, &format!("({iname}) unknown state '{other}', defaulting to BACKUP"));
                        v.state = Some(InitialState::Backup);
                    }
                    None => {}
                },
                "interface" => {
                    if let Some(ifname) = self.need(n, 0) {
                        if ifname.len() >= 16 {
                            self.bad(n, &format!("Interface name '{ifname}' too long - ignoring"));
                        } else if ifname == "lo" {
                            self.bad(
                                n,
                                &format!("({iname}) cannot use a loopback interface ({ifname}) for vrrp - ignoring"),
                            );
                        } else {
                            v.interface = Some((ifname.to_string(), self.arg_pos(n, 0).clone()));
                        }
                    }
                }
                "virtual_router_id" => match self.unsigned(n, 0, 1, 255) {
                    Some(id) => v.vrid = id as u8,
                    None => {
                        if let Some(a) = n.arg(0) {
                            self.bad(n, &format!("({iname}): VRID '{a}' not valid - must be between 1 & 255"));
                        }
                    }
                },
                "priority" => match self.unsigned(n, 0, 1, 255) {
                    Some(p) => v.priority = p as u8,
                    None => {
                        self.bad(
                            n,
                            &format!("({iname}) Priority not valid! must be between 1 & 255. Using default 100"),
                        );
                        v.priority = PRIO_DEFAULT;
                    }
                },
                "advert_int" => match self.timer(n, 0, Duration::from_millis(10), Duration::from_secs(255)) {
                    Some(d) if !d.is_zero() => v.advert_int = d,
                    _ => self.bad(
                        n,
                        &format!(
                            "({iname}) Advert interval ({}) not valid! Must be > 0 - ignoring",
                            n.arg(0).unwrap_or("")
                        ),
                    ),
                },
                "version" => match self.int(n, 0, 2, 3).map(|ver| ver as u8) {
                    Some(ver) if v.version.is_some_and(|old| old != ver) || (ver == 2 && family_v6 == Some(true)) => {
                        let deduced = v.version.unwrap_or(0);
                        let m = format!(
                            "({iname}) vrrp_version {ver} conflicts with configured or deduced version {deduced}; ignoring."
                        );
                        self.bad(n, &m);
                    }
                    Some(ver) => v.version = Some(ver),
                    None => self.bad(n, &format!("({iname}): Version must be either 2 or 3")),
                },
                "authentication" => {
                    if let Some(kids) = self.block(n) {
                        for a in kids {
                            self.no_block(a);
                            match a.keyword() {
                                "auth_type" => match self.need(a, 0) {
                                    Some("PASS") => auth_type = Some(true),
                                    Some("AH") => auth_type = Some(false),
                                    Some(t) => self.bad(a, &format!("({iname}) unknown authentication type '{t}'")),
                                    None => {}
                                },
                                "auth_pass" => {
                                    if let Some(p) = self.need(a, 0) {
                                        if p.len() > 8 {
                                            self.bad(a, "Truncating auth_pass to 8 characters");
                                        }
                                        let mut buf = [0u8; 8];
                                        let b = p.as_bytes();
                                        buf[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
                                        auth_pass = Some(buf);
                                    }
                                }
                                _ => self.other(BlockKind::Authentication, a),
                            }
                        }
                    }
                }
                "virtual_ipaddress" => {
                    if let Some(kids) = self.value_block(n, 0) {
                        v.vips.extend(kids.iter().filter_map(|k| self.vip(k)));
                    }
                    family_v6 = family_v6.or(v.vips.first().map(|a| a.addr.is_ipv6()));
                }
                "virtual_ipaddress_excluded" => {
                    if let Some(kids) = self.value_block(n, 0) {
                        v.excluded_vips.extend(kids.iter().filter_map(|k| self.vip(k)));
                    }
                }
                "unicast_peer" => {
                    if let Some(kids) = self.value_block(n, 0) {
                        for k in kids {
                            if let Some(p) = self.unicast_peer(k, &iname) {
                                v.unicast_peers.push(p);
                            }
                        }
                    }
                    unicast_configured = true;
                    family_v6 = family_v6.or(v.unicast_peers.first().map(|a| a.addr.is_ipv6()));
                }
                kw @ ("unicast_src_ip" | "mcast_src_ip") => match n.arg(0).map(|t| (t, parse_ip(t))) {
                    Some((t, Some(a))) if family_v6.is_some_and(|f| f != a.is_ipv6()) => {
                        unicast_configured |= kw == "unicast_src_ip";
                        let m = format!(
                            "Configuration error: VRRP instance[{iname}] and src address[{t}] MUST be of the same family !!! Skipping..."
                        );
                        self.bad(n, &m);
                    }
                    Some((_, Some(a))) if kw == "unicast_src_ip" => {
                        unicast_configured = true;
                        family_v6 = Some(a.is_ipv6());
                        v.unicast_src_ip = Some(a)
                    }
                    Some((_, Some(a))) => {
                        family_v6 = Some(a.is_ipv6());
                        v.mcast_src_ip = Some(a)
                    }
                    Some((t, None)) => self.bad(
                        n,
                        &format!("Configuration error: VRRP instance[{iname}] malformed src address[{t}]. Skipping..."),
                    ),
                    None => {
                        self.need(n, 0);
                    }
                },
                "mcast_dst_ip" => match n.arg(0).map(|t| (t, parse_ip(t))) {
                    Some((t, Some(a))) if family_v6.is_some_and(|f| f != a.is_ipv6()) => {
                        let m =
                            format!("({iname}) mcast dest address {t} MUST match VRRP instance family. Skipping...");
                        self.bad(n, &m);
                    }
                    Some((t, Some(a))) => {
                        family_v6 = Some(a.is_ipv6());
                        // IPv6 wants a link-local scope group (ff02::/16 and the like).
                        let ok = match a {
                            IpAddr::V4(x) => x.is_multicast(),
                            IpAddr::V6(x) => x.segments()[0] & 0xff0f == 0xff02,
                        };
                        if ok {
                            v.mcast_dst_ip = Some(a);
                        } else {
                            let ll = if a.is_ipv6() { " link-local" } else { "" };
                            self.bad(n, &format!("({iname}) mcast_dst_ip {t} not{ll} multicast. Skipping..."));
                        }
                    }
                    Some((t, None)) => self.bad(n, &format!("({iname}) malformed mcast dest address {t}. Skipping...")),
                    None => {
                        self.need(n, 0);
                    }
                },
                "unicast_ttl" => match self.unsigned(n, 0, 0, 255) {
                    Some(t) => {
                        v.unicast_ttl = t as u8;
                        unicast_ttl_set = true;
                    }
                    None => self.bad(
                        n,
                        &format!("({iname}): TTL '{}' not valid - must be between 0 & 255", n.arg(0).unwrap_or("")),
                    ),
                },
                "check_unicast_src" => {
                    unicast_configured = true;
                    v.check_unicast_src = Some(true)
                }
                kw @ ("unicast_fault_no_peer" | "old_unicast_checksum") => {
                    unicast_configured = true;
                    fault_no_peer |= kw == "unicast_fault_no_peer";
                    self.other(BlockKind::VrrpInstance, n);
                }
                "native_ipv6" => {
                    if family_v6 == Some(false) {
                        self.bad(n, &format!("({iname}) Cannot specify native_ipv6 with IPv4 addresses"));
                    } else {
                        family_v6 = Some(true);
                        v.native_ipv6 = true;
                        v.version = Some(3);
                    }
                }
                "lvs_sync_daemon_interface" => {
                    self.bad(
                        n,
                        &format!("({iname}) Specifying lvs_sync_daemon_interface against a vrrp is deprecated."),
                    );
                    self.bad(n, &format!("    {:width$}Please use global lvs_sync_daemon", "", width = iname.len()));
                    let set = g
                        .lvs_sync_daemon
                        .as_ref()
                        .map(|d| d.interface.clone())
                        .or(self.instance_syncd_interface.clone());
                    match set {
                        Some(i) => self.bad(
                            n,
                            &format!(
                                "({iname}) lvs_sync_daemon_interface has already been specified as {i} - ignoring"
                            ),
                        ),
                        None => self.instance_syncd_interface = n.arg(0).map(str::to_string),
                    }
                    self.other(BlockKind::VrrpInstance, n);
                }
                "dont_track_primary" => v.dont_track_primary = true,
                "linkbeat_use_polling" => {
                    let m = format!(
                        "({iname}) 'linkbeat_use_polling' in vrrp instance deprecated - use linkbeat_interfaces block"
                    );
                    self.bad(n, &m);
                    self.other(BlockKind::VrrpInstance, n);
                }
                "track_interface" => {
                    if let Some(kids) = self.value_block(n, 0) {
                        for k in kids {
                            if let Some(t) = self.track_interface(k, &iname, &v.track_interfaces) {
                                v.track_interfaces.push(t);
                            }
                        }
                    }
                }
                "track_script" => {
                    if let Some(kids) = self.value_block(n, 0) {
                        for k in kids {
                            if let Some(t) = self.track_script(k, &iname, scripts, &v.track_scripts) {
                                v.track_scripts.push(t);
                            }
                        }
                    }
                }
                "preempt" => v.nopreempt = false,
                "nopreempt" => v.nopreempt = true,
                "preempt_delay" => match self.timer(n, 0, Duration::ZERO, Duration::from_secs(1000)) {
                    Some(d) => v.preempt_delay = d,
                    None => self.bad(n, &format!("({iname}) Preempt_delay not valid! must be between 0-1000")),
                },
                "accept" => v.accept = Some(true),
                "no_accept" => v.accept = Some(false),
                kw @ ("strict_mode"
                | "skip_check_adv_addr"
                | "lower_prio_no_advert"
                | "higher_prio_send_advert"
                | "notify_priority_changes") => {
                    let value = match n.arg(0).map(str::to_ascii_lowercase).as_deref() {
                        None | Some("true" | "on" | "yes") => Some(true),
                        Some("false" | "off" | "no") => Some(false),
                        Some(_) => {
                            let t = n.arg(0).unwrap_or("");
                            let m = if kw == "notify_priority_changes" {
                                format!("({iname}) Invalid value '{t}' for notify_priority_changes specified")
                            } else {
                                format!("({iname}) invalid {kw} {t} specified")
                            };
                            self.bad(n, &m);
                            None
                        }
                    };
                    if let Some(b) = value {
                        match kw {
                            "strict_mode" => v.strict_mode = Some(b),
                            "skip_check_adv_addr" => v.skip_check_adv_addr = Some(b),
                            "lower_prio_no_advert" => v.lower_prio_no_advert = Some(b),
                            "higher_prio_send_advert" => v.higher_prio_send_advert = Some(b),
                            _ => v.notify_priority_changes = Some(b),
                        }
                    }
                }
                kw @ ("notify_backup"
                | "notify_master"
                | "notify_fault"
                | "notify_stop"
                | "notify_deleted"
                | "notify"
                | "notify_master_rx_lower_pri") => {
                    let slot = match kw {
                        "notify_backup" => &mut v.notify.backup,
                        "notify_master" => &mut v.notify.master,
                        "notify_fault" => &mut v.notify.fault,
                        "notify_stop" => &mut v.notify.stop,
                        "notify_deleted" => &mut v.notify.deleted,
                        "notify" => &mut v.notify.any,
                        _ => &mut v.notify.master_rx_lower_pri,
                    };
                    if slot.is_some() {
                        let what =
                            if kw == "notify_deleted" { "notify_deleted".to_string() } else { format!("{kw} script") };
                        let m = format!("({iname}) {what} already specified - ignoring {}", n.arg(0).unwrap_or(""));
                        self.bad(n, &m);
                    } else {
                        let s = self.notify(n);
                        match kw {
                            "notify_backup" => v.notify.backup = s,
                            "notify_master" => v.notify.master = s,
                            "notify_fault" => v.notify.fault = s,
                            "notify_stop" => v.notify.stop = s,
                            "notify_deleted" => v.notify.deleted = s,
                            "notify" => v.notify.any = s,
                            _ => v.notify.master_rx_lower_pri = s,
                        }
                    }
                }
                "garp_master_delay" => match self.unsigned(n, 0, 0, u64::from(u32::MAX / 1_000_000)) {
                    Some(d) => {
                        garp.master_delay = Duration::from_secs(d);
                        garp_set = true;
                    }
                    None => self.bad(
                        n,
                        &format!("({iname}): garp_master_delay '{}' invalid - ignoring", n.arg(0).unwrap_or("")),
                    ),
                },
                "garp_master_repeat" => {
                    if let Some(r) = self.unsigned(n, 0, 0, u64::from(u32::MAX)) {
                        garp.master_repeat = r as u32;
                        garp_set = true;
                    }
                }
                "garp_master_refresh" => match self.unsigned(n, 0, 0, u64::from(u32::MAX)) {
                    Some(d) => {
                        garp.master_refresh = Duration::from_secs(d);
                        garp_set = true;
                    }
                    None => self.bad(
                        n,
                        &format!("({iname}): Invalid garp_master_refresh '{}' - ignoring", n.arg(0).unwrap_or("")),
                    ),
                },
                "garp_master_refresh_repeat" => {
                    if let Some(r) = self.unsigned(n, 0, 0, u64::from(u32::MAX)) {
                        garp.master_refresh_repeat = r as u32;
                        garp_set = true;
                    }
                }
                "garp_lower_prio_delay" => match self.unsigned(n, 0, 0, u64::from(u32::MAX / 1_000_000)) {
                    Some(d) => {
                        garp.lower_prio_delay = Some(Duration::from_secs(d));
                        garp_set = true;
                    }
                    None => self.bad(
                        n,
                        &format!("({iname}): garp_lower_prio_delay '{}' invalid - ignoring", n.arg(0).unwrap_or("")),
                    ),
                },
                "garp_lower_prio_repeat" => match self.unsigned(n, 0, 0, i32::MAX as u64) {
                    Some(r) => {
                        garp.lower_prio_repeat = Some(r as u32);
                        garp_set = true;
                    }
                    None => {
                        self.bad(n, &format!("({iname}): Invalid garp_lower_prio_repeat '{}'", n.arg(0).unwrap_or("")))
                    }
                },
                "down_timer_adverts" => match self.unsigned(n, 0, 1, 100) {
                    Some(r) => v.down_timer_adverts = Some(r as u32),
                    None => self
                        .bad(n, &format!("({iname}): Invalid down_timer_adverts [1:100] '{}'", n.arg(0).unwrap_or(""))),
                },
                "debug" => match n.arg(0) {
                    None => v.debug = 1,
                    Some(_) => match self.unsigned(n, 0, 0, 4) {
                        Some(d) => v.debug = d as u32,
                        None => self.bad(
                            n,
                            &format!(
                                "({iname}) Debug value '{}' not valid; must be between 0-4",
                                n.arg(0).unwrap_or("")
                            ),
                        ),
                    },
                },
                _ => self.other(BlockKind::VrrpInstance, n),
            }
        }
        if garp_set {
            v.garp = Some(garp);
        }
        // keepalived's vrrp_end_handler, at the closing brace.
        if unicast_ttl_set && v.unicast_peers.is_empty() {
            let end = node.block.as_ref().and_then(|b| b.close.clone()).unwrap_or_else(|| node.pos().clone());
            self.diags.push(Diag::warning(
                &end,
                format!("({iname}): Cannot use unicast_ttl without unicast peers - resetting"),
            ));
        }
        let unicast_without_peers = unicast_configured && v.unicast_peers.is_empty() && !fault_no_peer;
        let v6 = family_v6.unwrap_or(false);
        // keepalived takes the family of the first address it reads (a
        // VIP, a unicast peer, a source or group address) or native_ipv6, and
        // drops the others of the other family.
        for p in v.unicast_peers.iter().filter(|p| p.addr.is_ipv6() != v6) {
            self.diags.push(Diag::warning(
                &p.pos,
                format!(
                    "Configuration error: VRRP instance[{iname}] and unicast peer address[{}] MUST be of the same family !!! Skipping...",
                    p.addr
                ),
            ));
        }
        v.unicast_peers.retain(|p| p.addr.is_ipv6() == v6);
        let mixed: Vec<Vip> = v.vips.iter().filter(|a| a.addr.is_ipv6() != v6).cloned().collect();
        if !mixed.is_empty() {
            for m in &mixed {
                self.diags.push(Diag::warning(
                    &m.pos,
                    format!("({iname}): address family must match VRRP instance [{}/{}] - ignoring", m.addr, m.prefix),
                ));
            }
            v.vips.retain(|a| a.addr.is_ipv6() == v6);
        }
        let _ = g;
        Some(PendingInstance { v, auth: (auth_type, auth_pass), v6: family_v6.unwrap_or(false), unicast_without_peers })
    }
}
