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

    /// keepalived's vrrp_complete_init over every instance once all are
    /// read: the minimal checks for all (vrid, interface), then each
    /// instance's completion in order. keepalived stops at the first
    /// instance that fails either; rlvs goes on with the others (they run)
    /// but, as keepalived, says nothing more about them.
    pub(super) fn complete_instances(&mut self, g: &GlobalDefs, pending: Vec<PendingInstance>) -> Vec<VrrpInstance> {
        let mut quiet = false;
        let mut keep = Vec::new();
        let mut ready = Vec::new();
        for p in pending {
            let mark = self.diags.len();
            let pos = p.v.pos.clone();
            let msg = if p.v.vrid == 0 {
                Some(format!("({}) the virtual router id must be set", p.v.name))
            } else if p.v.interface.is_none() {
                Some(format!("({}) Unknown interface!", p.v.name))
            } else {
                None
            };
            match msg {
                Some(m) => {
                    self.diags.push(Diag::error(&pos, m));
                    self.dropped_instances.push(p.v.name.clone());
                    if quiet {
                        self.diags.truncate(mark);
                    }
                    quiet = true;
                }
                None => ready.push(p),
            }
        }
        self.vrrp_min_cfg_failed = quiet;
        self.vrrp_complete_failed = quiet;
        for mut p in ready {
            let mark = self.diags.len();
            let before = self.dropped_instances.len();
            let done = self.complete_instance(&mut p.v, g, p.auth, p.v6, p.unicast_without_peers);
            if quiet {
                self.diags.truncate(mark);
            }
            if self.dropped_instances.len() > before {
                quiet = true;
                self.vrrp_complete_failed = true;
            }
            keep.extend(done);
        }
        keep
    }

    /// vrrp_complete_instance's rules that do not need the host's
    /// interfaces.
    fn complete_instance(
        &mut self,
        v: &mut VrrpInstance,
        g: &GlobalDefs,
        (auth_type, auth_pass): (Option<bool>, Option<[u8; 8]>),
        v6: bool,
        unicast_without_peers: bool,
    ) -> Option<VrrpInstance> {
        let iname = v.name.clone();
        let pos = v.pos.clone();
        let err = |b: &mut Self, msg: String| b.diags.push(Diag::warning(&pos, msg));
        // The instance is dropped: an error (a reload is refused over it).
        let fatal = |b: &mut Self, msg: String| {
            b.diags.push(Diag::error(&pos, msg));
            b.dropped_instances.push(iname.clone());
        };
        // (The virtual router id and the interface were checked first, for
        // every instance: keepalived's chk_min_cfg, which runs before it
        // knows an instance is unicast, so every instance needs an
        // interface and its later unicast checks without one are never
        // reached.)
        let strict = v.strict_mode.unwrap_or(g.strict);
        // keepalived keeps an IPv6 instance at version 2 when told so before
        // its first address (and not strict); its checks below judge it as
        // that. rlvs runs every IPv6 instance as version 3, as RFC 5798 has it.
        let version = match (v6, v.version) {
            (true, Some(2)) if strict => {
                err(self, format!("({iname}) cannot use IPv6 with VRRP version 2; setting version 3"));
                3
            }
            (true, Some(2)) => 2,
            (true, _) => 3,
            (false, Some(ver)) => ver,
            (false, None) => g.version,
        };
        v.version = Some(if v6 { 3 } else { version });
        if v.vips.is_empty() {
            if version == 3 || strict {
                fatal(self, format!("({iname}) No VIP specified; at least one is required"));
                return None;
            }
            err(self, format!("({iname}) No VIP specified; at least one is sensible"));
        }
        if v.priority == 0 {
            v.priority = if v.state == Some(InitialState::Master) { PRIO_OWNER } else { PRIO_DEFAULT };
        }
        if v.state.is_none() {
            v.state = Some(if v.priority == PRIO_OWNER { InitialState::Master } else { InitialState::Backup });
        } else if strict && (v.state == Some(InitialState::Master)) != (v.priority == PRIO_OWNER) {
            err(self, format!("({iname}) State MASTER must match being address owner"));
            v.state = Some(if v.priority == PRIO_OWNER { InitialState::Master } else { InitialState::Backup });
        }
        v.auth = match (auth_type, auth_pass) {
            (None, _) => None,
            (Some(_), _) if strict => {
                err(self, format!("({iname}) Strict mode does not support authentication. Ignoring."));
                None
            }
            (Some(_), _) if version == 3 => {
                err(self, format!("({iname}) VRRP version 3 does not support authentication. Ignoring."));
                None
            }
            (Some(_), None) => {
                err(self, format!("({iname}) Authentication specified but no password given. Ignoring"));
                None
            }
            (Some(_), Some(p)) if p[0] == 0 => {
                err(self, format!("({iname}) Authentication specified but no password given. Ignoring"));
                None
            }
            (Some(true), Some(p)) => Some(Auth::Pass(p)),
            (Some(false), Some(_)) if v6 => {
                err(self, format!("({iname}) Cannot use AH authentication with IPv6. ignoring"));
                None
            }
            (Some(false), Some(_)) if v.state == Some(InitialState::Master) && v.priority != PRIO_OWNER => {
                err(self, format!("({iname}) Initial state master is incompatible with AH authentication - clearing"));
                v.state = Some(InitialState::Backup);
                Some(Auth::Ah)
            }
            (Some(false), Some(_)) => {
                self.diags.push(
                    Diag::warning(&pos, format!("({iname}) AH authentication is not implemented in rlvs"))
                        .with_hint("keepalived itself deprecates AH; adverts will not be authenticated"),
                );
                Some(Auth::Ah)
            }
        };
        let link_local = |a: &IpAddr| matches!(a, IpAddr::V6(x) if x.segments()[0] & 0xffc0 == 0xfe80);
        if unicast_without_peers {
            self.diags.push(Diag::warning(
                &pos,
                format!("({iname}) A unicast keyword has been specified without any unicast peers. Defaulting to multicast. This usage is deprecated - please update your configuration."),
            ));
        }
        if strict && v6 && v.unicast_peers.is_empty() && v.vips.first().is_some_and(|a| !link_local(&a.addr)) {
            err(self, format!("({iname}) the first IPv6 VIP address must be link local"));
        }
        // The count field is 8 bits, and the advert must fit a 1500-byte
        // frame: the rest are kept as excluded addresses, not advertised.
        let max_addr = if v6 {
            (1500 - 14 - 40 - 8) / 16
        } else {
            let auth = if version == 2 { 8 + if matches!(v.auth, Some(Auth::Ah)) { 24 } else { 0 } } else { 0 };
            ((1500 - 14 - 20 - 8 - auth) / 4).min(255)
        };
        if v.vips.len() > max_addr {
            err(
                self,
                format!(
                    "({iname}) Number of VIPs ({}) exceeds maximum/space available in packet (max {max_addr} addresses) - excess moved to eVIPs",
                    v.vips.len()
                ),
            );
            let excess = v.vips.split_off(max_addr);
            v.excluded_vips.splice(0..0, excess);
        }
        if let Some((own, _)) = v.interface.clone() {
            let before = v.track_interfaces.len();
            v.track_interfaces.retain(|t| t.name != own);
            if v.track_interfaces.len() != before {
                err(self, format!("({iname}) Ignoring track_interface {own} since own interface"));
            }
        }
        // An address owner's priority cannot move: weights on its tracked
        // scripts are dropped with the scripts (keepalived).
        if v.priority == PRIO_OWNER {
            let weighted: Vec<String> =
                v.track_scripts.iter().filter(|t| t.weight != 0).map(|t| t.name.clone()).collect();
            for name in &weighted {
                err(self, format!("({iname}) ignoring tracked script {name} with weights due to address_owner"));
            }
            v.track_scripts.retain(|t| t.weight == 0);
        }
        if v.priority == PRIO_OWNER && v.nopreempt {
            err(self, format!("({iname}) nopreempt is incompatible with priority 255. resetting nopreempt"));
            v.nopreempt = false;
        }
        if v.state == Some(InitialState::Master) {
            if v.nopreempt {
                err(self, format!("({iname}) Warning - nopreempt will not work with initial state MASTER - clearing"));
                v.nopreempt = false;
            }
            if !v.preempt_delay.is_zero() {
                err(
                    self,
                    format!("({iname}) Warning - preempt delay will not work with initial state MASTER - clearing"),
                );
                v.preempt_delay = Duration::ZERO;
            }
        }
        if !v.preempt_delay.is_zero() && strict {
            err(self, format!("({iname}) preempt_delay is incompatible with strict mode - resetting"));
            v.preempt_delay = Duration::ZERO;
        }
        if !v.preempt_delay.is_zero() && v.nopreempt {
            err(self, format!("({iname}) preempt_delay is incompatible with nopreempt mode - resetting"));
            v.preempt_delay = Duration::ZERO;
        }
        if v.advert_int.is_zero() {
            v.advert_int = Duration::from_secs(1);
        }
        let us = v.advert_int.as_micros() as u64;
        if version == 2 && !us.is_multiple_of(1_000_000) {
            err(
                self,
                format!("({iname}) VRRPv2 advertisement interval {:.6}s must be an integer. rounding", us as f64 / 1e6),
            );
            v.advert_int = Duration::from_secs(((us + 500_000) / 1_000_000).max(1));
        } else if version == 3 && !us.is_multiple_of(10_000) {
            err(
                self,
                format!(
                    "({iname}) VRRPv3 advertisement interval {:.6}s must be in units of 10ms - rounding",
                    us as f64 / 1e6
                ),
            );
            v.advert_int = Duration::from_micros(((us + 5_000) / 10_000).max(1) * 10_000);
        }
        // Sent in centiseconds in a 12-bit field (v3): 40.95 s at most.
        if version == 3 && v.advert_int > Duration::from_millis(40_950) {
            err(
                self,
                format!(
                    "({iname}) VRRPv3 advertisement interval {:.2}s is out of range. Must be less than 40.96s. Setting to 40.95s",
                    v.advert_int.as_secs_f64()
                ),
            );
            v.advert_int = Duration::from_millis(40_950);
        }
        if strict && v.down_timer_adverts.is_some_and(|d| d != 3) {
            err(self, format!("({iname}) down_timer_adverts is incompatible with strict mode - resetting"));
            v.down_timer_adverts = None;
        }
        if strict && version == 2 && v.priority != PRIO_OWNER && v.accept == Some(true) {
            err(
                self,
                format!("({iname}) warning - accept mode for VRRP version 2 does not comply with RFC3768 - resetting"),
            );
            v.accept = Some(false);
        }
        if v.mcast_dst_ip.is_some() && !v.unicast_peers.is_empty() {
            err(self, format!("({iname}) multicast destination specified with unicast - ignoring"));
            v.mcast_dst_ip = None;
        }
        if strict {
            if let Some(garp) = v.garp.as_mut() {
                if garp.lower_prio_repeat.is_some_and(|r| r != 0) {
                    err(self, format!("({iname}) Strict mode requires no repeat garps. resetting"));
                    garp.lower_prio_repeat = Some(0);
                }
                if garp.lower_prio_delay.is_some_and(|d| !d.is_zero()) {
                    err(self, format!("({iname}) Strict mode requires no repeat garp delay. resetting"));
                    garp.lower_prio_delay = Some(Duration::ZERO);
                }
            }
            if v.lower_prio_no_advert == Some(false) {
                err(self, format!("({iname}) Strict mode requires no lower priority advert. resetting"));
                v.lower_prio_no_advert = Some(true);
            }
            if v.higher_prio_send_advert == Some(true) {
                err(self, format!("({iname}) strict mode requires higher_prio_send_advert to be clear. resetting"));
                v.higher_prio_send_advert = Some(false);
            }
        }
        Some(v.clone())
    }

    /// `ADDR[/PREFIX] [brd A] [dev IF] [scope S] [label L] [peer A] [home]
    /// [-nodad] [noprefixroute] [no_track] ...`.
    fn vip(&mut self, n: &Node) -> Option<Vip> {
        self.no_block(n);
        let text = n.keyword();
        // keepalived keeps an address whose prefix is too long, at the
        // family's longest.
        let (addr_text, prefix_text) = text.split_once('/').map_or((text, None), |(a, p)| (a, Some(p)));
        let clamped = match (parse_ip(addr_text), prefix_text.and_then(|p| p.parse::<u32>().ok())) {
            (Some(a), Some(p)) if p > if a.is_ipv4() { 32 } else { 128 } => {
                let max = if a.is_ipv4() { 32 } else { 128 };
                self.bad(n, &format!("number '{p}' outside range [0, {max}]"));
                self.bad(n, &format!("Invalid address prefix len {p} for address {text} - using {max}"));
                Some((a, max as u8))
            }
            _ => None,
        };
        let Some((addr, prefix)) = clamped.or_else(|| parse_prefixed(text)) else {
            self.bad(n, &format!("VRRP parsed invalid IP {text}. skipping IP..."));
            return None;
        };
        let mut vip = Vip {
            pos: n.pos().clone(),
            addr,
            prefix,
            brd: None,
            dev: None,
            scope: None,
            label: None,
            peer: None,
            home: false,
            nodad: false,
            noprefixroute: false,
            no_track: false,
        };
        let args: Vec<&str> = n.args().iter().map(|w| w.text.as_str()).collect();
        let mut i = 0;
        while i < args.len() {
            let word = args[i];
            let value = args.get(i + 1).copied();
            let takes_value =
                matches!(word, "dev" | "scope" | "broadcast" | "brd" | "label" | "peer" | "preferred_lft");
            if takes_value && value.is_none() {
                self.bad(n, &format!("No {word} parameter specified for {text}"));
                break;
            }
            match (word, value) {
                ("dev", Some(d)) => {
                    if vip.dev.is_some() {
                        self.bad(n, &format!("Cannot specify ipaddress device more than once for {text}"));
                    }
                    vip.dev = Some(d.to_string());
                }
                ("scope", Some(s)) => match parse_scope(s) {
                    Some(sc) => vip.scope = Some(sc),
                    None => self.bad(n, &format!("Invalid scope '{s}' specified for {text} - ignoring")),
                },
                ("broadcast" | "brd", Some(b)) => {
                    if addr.is_ipv6() {
                        self.bad(n, &format!("VRRP is trying to assign a broadcast {b} to the IPv6 address {text} !!?? WTF... skipping VIP..."));
                        return None;
                    }
                    match (b, addr) {
                        ("+", IpAddr::V4(a)) if prefix < 31 => {
                            let host = u32::MAX >> prefix;
                            vip.brd = Some((u32::from(a) | host).into());
                        }
                        ("-", IpAddr::V4(a)) if prefix < 31 => {
                            let host = u32::MAX >> prefix;
                            vip.brd = Some((u32::from(a) & !host).into());
                        }
                        ("+" | "-", _) => {
                            self.bad(n, &format!("Address prefix length {prefix} too long for broadcast"))
                        }
                        _ => match b.parse() {
                            Ok(x) => vip.brd = Some(x),
                            Err(_) => {
                                self.bad(n, &format!("VRRP is trying to assign invalid broadcast {b}. skipping VIP..."))
                            }
                        },
                    }
                }
                ("label", Some(l)) => {
                    if l.len() >= 16 {
                        self.bad(n, &format!("Address label {l} is longer than maximum length 15 - removing address"));
                        return None;
                    }
                    vip.label = Some(l.to_string());
                }
                ("peer", Some(_)) if vip.peer.is_some() => {
                    self.bad(n, &format!("Peer {} - another peer has already been specified", value.unwrap_or("")))
                }
                ("peer", Some(p)) => match parse_ip(p) {
                    Some(pa) if pa.is_ipv6() == addr.is_ipv6() => {
                        let host = if addr.is_ipv4() { 32 } else { 128 };
                        if vip.prefix != host {
                            self.bad(n, "Cannot specify address prefix when specifying peer address - ignoring");
                        }
                        // The peer's own prefix (a host) replaces it.
                        vip.prefix = host;
                        vip.peer = Some(pa);
                    }
                    Some(_) => self.bad(n, &format!("Peer address {p} does not match address family")),
                    None => self.bad(n, &format!("Invalid peer address {p}")),
                },
                ("preferred_lft", Some(_)) => {}
                ("home", _) => vip.home = true,
                ("-nodad", _) => vip.nodad = true,
                ("noprefixroute", _) => vip.noprefixroute = true,
                ("no_track", _) => vip.no_track = true,
                ("mngtmpaddr" | "autojoin", _) => {}
                ("use_vmac", _) => {
                    self.diags.push(Diag::note(
                        n.pos(),
                        "'use_vmac' has no effect in rlvs: rlvs does not create VMAC, ipvlan or VRF interfaces",
                    ));
                }
                (other, _) => self.bad(n, &format!("Unknown configuration entry '{other}' for ip address - ignoring")),
            }
            i += if takes_value { 2 } else { 1 };
        }
        if vip.brd.is_some() && vip.peer.is_some() {
            self.bad(n, "Cannot specify broadcast and peer addresses - ignoring broadcast address");
            vip.brd = None;
        }
        if addr.is_ipv6() {
            if vip.scope.is_some() {
                self.bad(n, &format!("Cannot specify scope for IPv6 addresses ({text}) - ignoring scope"));
                vip.scope = None;
            }
            if vip.label.is_some() {
                self.bad(n, &format!("Cannot specify label for IPv6 addresses ({text}) - ignoring label"));
                vip.label = None;
            }
        }
        Some(vip)
    }

    fn unicast_peer(&mut self, n: &Node, iname: &str) -> Option<UnicastPeer> {
        self.no_block(n);
        let Some(addr) = parse_ip(n.keyword()) else {
            self.bad(
                n,
                &format!(
                    "Configuration error: VRRP instance[{iname}] malformed unicast peer address[{}]. Skipping...",
                    n.keyword()
                ),
            );
            return None;
        };
        let mut p = UnicastPeer { pos: n.pos().clone(), addr, min_ttl: None, max_ttl: None };
        let mut i = 0;
        while i < n.args().len() {
            let opt = n.arg(i).unwrap_or_default();
            let Some(v) = n.arg(i + 1) else {
                self.bad(n, &format!("({iname}) {opt} is missing a value"));
                break;
            };
            let Ok(ttl) = v.parse::<u8>() else {
                self.bad(n, &format!("number '{v}' outside range [0, 255]"));
                break;
            };
            match opt {
                "min_ttl" => p.min_ttl = Some(ttl),
                "max_ttl" => p.max_ttl = Some(ttl),
                _ => {
                    self.bad(n, &format!("({iname}) unknown unicast_peer option {opt}"));
                    break;
                }
            }
            i += 2;
        }
        if p.min_ttl.unwrap_or(0) > p.max_ttl.unwrap_or(255) {
            self.bad(
                n,
                &format!(
                    "({iname}) min_ttl {} > max_ttl {} - all packets will be discarded",
                    p.min_ttl.unwrap_or(0),
                    p.max_ttl.unwrap_or(255)
                ),
            );
        }
        Some(p)
    }

    pub(super) fn track_interface(
        &mut self,
        n: &Node,
        owner: &str,
        existing: &[TrackInterface],
    ) -> Option<TrackInterface> {
        self.no_block(n);
        let name = n.keyword().to_string();
        if existing.iter().any(|t| t.name == name) {
            self.bad(n, &format!("({owner}) duplicate track_interface {name} - ignoring"));
            return None;
        }
        let (weight, reverse) = self.track_weight(n, owner, &name, "track_interface", 0, false)?;
        Some(TrackInterface { pos: n.pos().clone(), name, weight, reverse })
    }

    pub(super) fn track_script(
        &mut self,
        n: &Node,
        owner: &str,
        scripts: &[VrrpScript],
        existing: &[TrackScript],
    ) -> Option<TrackScript> {
        self.no_block(n);
        let name = n.keyword().to_string();
        let Some(script) = scripts.iter().find(|s| s.name == name) else {
            self.bad(n, &format!("({owner}) track script {name} not found, ignoring..."));
            return None;
        };
        if existing.iter().any(|t| t.name == name) {
            self.bad(n, &format!("({owner}) duplicate track_script {name} - ignoring"));
            return None;
        }
        let (weight, reverse) =
            self.track_weight(n, owner, &name, "track_script", script.weight, script.weight_reverse)?;
        Some(TrackScript { pos: n.pos().clone(), name, weight, reverse })
    }

    /// `NAME [weight N [reverse|noreverse]]`.
    fn track_weight(
        &mut self,
        n: &Node,
        owner: &str,
        name: &str,
        what: &str,
        dflt: i32,
        rev: bool,
    ) -> Option<(i32, bool)> {
        let mut weight = dflt;
        let mut reverse = rev;
        // keepalived's words differ between the two (its typo included).
        let script = what == "track_script";
        if let Some(opt) = n.arg(0) {
            if opt != "weight" {
                let m = if script {
                    format!("({owner}) unknown track script option {opt} - ignoring")
                } else {
                    format!("({owner}) unknown track_interface {name} option {opt} - ignoring")
                };
                self.bad(n, &m);
                return None;
            }
            if n.arg(1).is_none() {
                let which = if script { "track script" } else { "track_interface" };
                self.bad(n, &format!("({owner}) weight without value specified for {which} {name} - ignoring"));
                return None;
            }
            match self.int(n, 1, -254, 254) {
                Some(w) if w.abs() == 254 => {
                    self.bad(n, &format!("({owner}) weight for {name} cannot be +/-254. Setting to +/-253"));
                    weight = if w < 0 { -253 } else { 253 };
                }
                Some(w) => weight = w as i32,
                None if script => self.bad(
                    n,
                    &format!(
                        "({owner}) track script {name}: weight must be between [-253..253] inclusive, ignoring..."
                    ),
                ),
                None => {
                    let m = format!(
                        "({owner}) weight {} for {name} must be between [-253..253] inclusive. Ignoring...",
                        n.arg(1).unwrap_or("")
                    );
                    self.bad(n, &m);
                    weight = 0;
                }
            }
            match n.arg(2) {
                Some("reverse") => reverse = true,
                Some("noreverse") if script => reverse = false,
                Some(o) if script => {
                    self.bad(n, &format!("({owner}) unknown track_script {name} weight option {o} - ignoring"))
                }
                Some(o) => {
                    self.bad(n, &format!("({owner}) unknown track_interace {name} weight option {o} - ignoring"))
                }
                None => {}
            }
        }
        Some((weight, reverse))
    }

    pub(super) fn notify(&mut self, n: &Node) -> Option<NotifyScript> {
        let (command, user) = self.script(n)?;
        Some(NotifyScript { pos: n.pos().clone(), command, user })
    }

    pub(super) fn sync_group(&mut self, node: &Node, scripts: &[VrrpScript]) -> Option<SyncGroup> {
        let Some(name) = node.arg(0).map(str::to_string) else {
            self.bad(node, "vrrp_sync_group must have a name - skipping");
            return None;
        };
        let children = self.block(node)?;
        let mut g = SyncGroup {
            name: name.clone(),
            pos: node.pos().clone(),
            members: Vec::new(),
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            notify: Notifies::default(),
            global_tracking: false,
            sync_group_tracking_weight: false,
            notify_priority_changes: false,
        };
        // keepalived 2.2.7 leaves the sync group at a second group list:
        // what follows it is read at the top level, its own closing brace
        // included.
        let mut left = false;
        for n in children {
            if left {
                self.diags.push(
                    Diag::warning(n.pos(), format!("Unknown keyword '{}'", n.keyword()))
                        .with_hint(format!("keepalived stopped reading sync group {name} at its second group list")),
                );
                continue;
            }
            if !matches!(n.keyword(), "group" | "track_interface" | "track_script") {
                self.no_block(n);
            }
            match n.keyword() {
                "group" if !g.members.is_empty() => {
                    self.bad(n, &format!("Group list already specified for sync group {name}"));
                    left = true;
                }
                "group" => {
                    if let Some(kids) = self.block(n) {
                        if kids.is_empty() {
                            let end = n.block.as_ref().and_then(|b| b.close.clone()).unwrap_or_else(|| n.pos().clone());
                            self.diags.push(Diag::warning(
                                &end,
                                format!("Warning - sync group {name} has empty group block"),
                            ));
                        }
                        for k in kids {
                            for w in &k.words {
                                g.members.push((w.text.clone(), w.pos.clone()));
                            }
                        }
                    }
                }
                "track_interface" => {
                    if let Some(kids) = self.value_block(n, 0) {
                        for k in kids {
                            if let Some(t) = self.track_interface(k, &name, &g.track_interfaces) {
                                g.track_interfaces.push(t);
                            }
                        }
                    }
                }
                "track_script" => {
                    if let Some(kids) = self.value_block(n, 0) {
                        for k in kids {
                            if let Some(t) = self.track_script(k, &name, scripts, &g.track_scripts) {
                                g.track_scripts.push(t);
                            }
                        }
                    }
                }
                kw @ ("notify_backup" | "notify_master" | "notify_fault" | "notify_stop") => {
                    let slot = match kw {
                        "notify_backup" => &mut g.notify.backup,
                        "notify_master" => &mut g.notify.master,
                        "notify_fault" => &mut g.notify.fault,
                        _ => &mut g.notify.stop,
                    };
                    if slot.is_some() {
                        let msg = format!(
                            "vrrp group {name}: {kw} script already specified - ignoring {}",
                            n.arg(0).unwrap_or("")
                        );
                        self.bad(n, &msg);
                    } else {
                        let s = self.notify(n);
                        match kw {
                            "notify_backup" => g.notify.backup = s,
                            "notify_master" => g.notify.master = s,
                            "notify_fault" => g.notify.fault = s,
                            _ => g.notify.stop = s,
                        }
                    }
                }
                "notify" if g.notify.any.is_some() => {
                    let m = format!(
                        "vrrp group {name}: notify script already specified - ignoring {}",
                        n.arg(0).unwrap_or("")
                    );
                    self.bad(n, &m);
                }
                "notify" => g.notify.any = self.notify(n),
                "global_tracking" => {
                    self.bad(
                        n,
                        &format!(
                            "({name}) global_tracking is deprecated. Use track_interface/script/file on the sync group"
                        ),
                    );
                    g.global_tracking = true;
                }
                "sync_group_tracking_weight" => g.sync_group_tracking_weight = true,
                "notify_priority_changes" => match n.arg(0).map(str::to_ascii_lowercase).as_deref() {
                    None | Some("true" | "on" | "yes") => g.notify_priority_changes = true,
                    Some("false" | "off" | "no") => g.notify_priority_changes = false,
                    Some(_) => {
                        let m = format!(
                            "({name}) Invalid value '{}' for sync group notify_priority_changes specified",
                            n.arg(0).unwrap_or("")
                        );
                        self.bad(n, &m);
                    }
                },
                _ => self.other(BlockKind::SyncGroup, n),
            }
        }
        if left {
            let end = node.block.as_ref().and_then(|b| b.close.clone()).unwrap_or_else(|| node.pos().clone());
            self.diags.push(Diag::warning(&end, "Unknown keyword '}'"));
        }
        Some(g)
    }

    /// Cross-references: sync group members must be instances, each in at
    /// most one group.
    pub(super) fn check_references(&mut self, c: &mut Config) {
        let mark = self.diags.len();
        self.check_sync_groups(c);
        if self.vrrp_min_cfg_failed {
            self.diags.truncate(mark);
        }
        let mark = self.diags.len();
        // A VRID conflict fails the load before the sync groups' tracking.
        if !self.check_vrids(c) {
            self.sync_group_tracking(c);
        }
        if self.vrrp_complete_failed {
            self.diags.truncate(mark);
        }
        // keepalived -t stops before it resolves lvs_sync_daemon's instance
        // and drops unused scripts (vrrp_complete_init returns early in a
        // config test), so neither is a verdict here.
    }

    fn check_sync_groups(&mut self, c: &mut Config) {
        let mut seen: Vec<String> = Vec::new();
        for g in &mut c.sync_groups {
            let had_members = !g.members.is_empty();
            let mut kept = Vec::new();
            // keepalived's group state as it adds members: an address owner
            // first, then a member that starts as backup, cannot work.
            let mut owner_so_far: Option<bool> = None;
            for (m, pos) in g.members.drain(..) {
                let Some(inst) = c.instances.iter().find(|i| i.name == m) else {
                    self.diags.push(Diag::warning(
                        &pos,
                        format!("Virtual router {m} specified in sync group {} doesn't exist - ignoring", g.name),
                    ));
                    continue;
                };
                if seen.contains(&m) {
                    self.diags.push(Diag::warning(
                        &pos,
                        format!("Virtual router {m} cannot exist in more than one sync group; ignoring {}", g.name),
                    ));
                    continue;
                }
                let owner = inst.priority == PRIO_OWNER && inst.state == Some(InitialState::Master);
                if owner_so_far == Some(true) && !owner {
                    self.diags.push(Diag::warning(
                        &g.pos,
                        format!(
                            "Sync group {} has some member(s) as address owner and some not as address owner. This won't work.",
                            g.name
                        ),
                    ));
                }
                if owner_so_far != Some(false) {
                    owner_so_far = Some(owner);
                }
                seen.push(m.clone());
                kept.push((m, pos));
            }
            g.members = kept;
            if !had_members {
                self.diags
                    .push(Diag::warning(&g.pos, format!("Sync group {} has no virtual router(s). removing", g.name)));
            } else if g.members.is_empty() {
                self.diags.push(Diag::warning(
                    &g.pos,
                    format!("Sync group {}, no matching virtual router found in group declaration - removing", g.name),
                ));
            } else if g.members.len() == 1 {
                self.diags.push(Diag::warning(
                    &g.pos,
                    format!("Sync group {} has only 1 virtual router(s) - this probably isn't what you want", g.name),
                ));
            }
        }
        c.sync_groups.retain(|g| !g.members.is_empty());
    }

    /// keepalived's sync_group_tracking_init, after every instance is
    /// complete: a sync group's tracking added to its members.
    fn sync_group_tracking(&mut self, c: &mut Config) {
        for g in &mut c.sync_groups {
            for inst in c.instances.iter().filter(|i| g.members.iter().any(|(m, _)| m == &i.name)) {
                let own = inst.interface.as_ref().filter(|_| !inst.dont_track_primary).map(|x| x.0.as_str());
                for t in &g.track_interfaces {
                    if own == Some(t.name.as_str()) || inst.track_interfaces.iter().any(|x| x.name == t.name) {
                        let m = format!(
                            "({}) track_interface {} is configured on VRRP instance and sync group. Remove vrrp instance or sync group config",
                            inst.name, t.name
                        );
                        self.diags.push(Diag::warning(&t.pos, m));
                    }
                }
            }
            let has_owner =
                g.members.iter().any(|(m, _)| c.instances.iter().any(|i| &i.name == m && i.priority == PRIO_OWNER));
            if has_owner {
                for t in g.track_scripts.iter_mut().filter(|t| t.weight != 0) {
                    let m = format!(
                        "({}) Cannot have weighted track script '{}' with member having priority {PRIO_OWNER} - clearing weight",
                        g.name, t.name
                    );
                    self.diags.push(Diag::warning(&t.pos, m));
                    t.weight = 0;
                }
                for t in g.track_interfaces.iter_mut().filter(|t| t.weight != 0) {
                    let m = format!(
                        "({}) Cannot have weighted track interface '{}' with member having priority {PRIO_OWNER} - clearing weight",
                        g.name, t.name
                    );
                    self.diags.push(Diag::warning(&t.pos, m));
                    t.weight = 0;
                }
            }
        }
    }

    /// keepalived's check_vrid_conflicts: multicast instances on one link
    /// with one group, and unicast instances with one source that share a
    /// peer, cannot use one VRID.
    fn check_vrids(&mut self, c: &Config) -> bool {
        let mut conflict = false;
        let v6 = |i: &VrrpInstance| {
            i.native_ipv6
                || i.vips.first().map(|a| a.addr.is_ipv6()).or(i.unicast_peers.first().map(|p| p.addr.is_ipv6()))
                    == Some(true)
        };
        let ifname =
            |i: &VrrpInstance| i.interface.as_ref().map(|x| x.0.clone()).or(c.global.default_interface.clone());
        let group = |i: &VrrpInstance| {
            i.mcast_dst_ip.unwrap_or(if v6(i) {
                IpAddr::V6(c.global.mcast_group6)
            } else {
                IpAddr::V4(c.global.mcast_group4)
            })
        };
        for (n, a) in c.instances.iter().enumerate() {
            for b in &c.instances[n + 1..] {
                let unicast = !a.unicast_peers.is_empty();
                if v6(a) != v6(b) || a.vrid != b.vrid || unicast == b.unicast_peers.is_empty() {
                    continue;
                }
                if unicast {
                    let (ia, ib) = (a.interface.as_ref().map(|x| &x.0), b.interface.as_ref().map(|x| &x.0));
                    if ia.is_some() && ib.is_some() && ia != ib {
                        continue;
                    }
                    let (sa, sb) = (a.unicast_src_ip.or(a.mcast_src_ip), b.unicast_src_ip.or(b.mcast_src_ip));
                    let same_source = match (sa, sb) {
                        (Some(x), Some(y)) => x == y,
                        (None, None) => ia.is_some() && ia == ib,
                        _ => false,
                    };
                    let shared_peer = a.unicast_peers.iter().any(|p| b.unicast_peers.iter().any(|q| q.addr == p.addr));
                    if same_source && shared_peer {
                        let m = format!("({}) duplicate VRID conflict with {} VRID {}", a.name, b.name, a.vrid);
                        self.diags.push(Diag::error(&b.pos, m));
                        conflict = true;
                    }
                    continue;
                }
                let (Some(ia), Some(ib)) = (ifname(a), ifname(b)) else { continue };
                if ia != ib || group(a) != group(b) {
                    continue;
                }
                let family = if v6(a) { 6 } else { 4 };
                self.diags.push(
                    Diag::warning(
                        &b.pos,
                        format!(
                            "{} and {} both use VRID {} with IPv{family} on interface {ia}",
                            a.name, b.name, a.vrid
                        ),
                    )
                    .with_hint("two routers with one VRID on one link fight over the same virtual MAC"),
                );
                conflict = true;
            }
        }
        conflict
    }
}
