//! global_defs and the SSL block.

use super::values::parse_ip;
use super::Builder;
use crate::diag::Diag;
use crate::model::{Email, FlushOnStop, GlobalDefs, LvsSyncDaemon, ScriptUser, SslContext};
use crate::schema::BlockKind;
use crate::tree::Node;
use std::net::IpAddr;
use std::time::Duration;

/// UINT_MAX / TIMER_HZ: keepalived's bound on the gratuitous ARP delays.
const GARP_SECS_MAX: u64 = (u32::MAX / 1_000_000) as u64;

impl Builder {
    pub(super) fn global_defs(&mut self, children: &[Node], g: &mut GlobalDefs) {
        for n in children {
            if !matches!(n.keyword(), "notification_email") {
                self.no_block(n);
            }
            match n.keyword() {
                "router_id" => match n.arg(0) {
                    Some(r) => g.router_id = Some(r.to_string()),
                    None => self.bad(n, "routerid name missing - ignoring"),
                },
                "smtp_server"
                | "smtp_helo_name"
                | "smtp_connect_timeout"
                | "notification_email_from"
                | "notification_email" => {
                    self.email(n, &mut g.email);
                    self.other(BlockKind::GlobalDefs, n);
                }
                "vrrp_mcast_group4" => match n.arg(0).map(|t| (t, parse_ip(t))) {
                    Some((_, Some(IpAddr::V4(a)))) if a.is_multicast() => g.mcast_group4 = a,
                    Some((t, Some(IpAddr::V4(_)))) => {
                        self.bad(n, &format!("vrrp_mcast_group4 [{t}] is not multicast. Skipping"))
                    }
                    Some((t, Some(_))) => self.bad(n, &format!("vrrp_mcast_group4 [{t}] is not IPv4. Skipping")),
                    Some((t, None)) => self.bad(n, &format!("Can't parse vrrp_mcast_group4 [{t}]. Skipping")),
                    None => {
                        self.need(n, 0);
                    }
                },
                "vrrp_mcast_group6" => match n.arg(0).map(|t| (t, parse_ip(t))) {
                    Some((t, Some(IpAddr::V6(a)))) if a.is_multicast() => {
                        // ff02::/16: link-local scope, what VRRP adverts need.
                        if a.segments()[0] & 0xff0f != 0xff02 {
                            self.bad(n, &format!("vrrp_mcast_group6 [{t}] should be link-local multicast."));
                        }
                        g.mcast_group6 = a;
                    }
                    Some((t, Some(IpAddr::V6(_)))) => {
                        self.bad(n, &format!("vrrp_mcast_group6 [{t}] is not multicast. Skipping"))
                    }
                    Some((t, Some(_))) => self.bad(n, &format!("vrrp_mcast_group6 [{t}] is not IPv6. Skipping")),
                    Some((t, None)) => self.bad(n, &format!("Can't parse vrrp_mcast_group6 [{t}]. Skipping")),
                    None => {
                        self.need(n, 0);
                    }
                },
                // keepalived reads these as whole numbers (seconds).
                "vrrp_garp_master_delay" => {
                    if let Some(v) =
                        self.garp_number(n, GARP_SECS_MAX, "vrrp_garp_master_delay '{}' invalid - ignoring")
                    {
                        g.garp.master_delay = Duration::from_secs(v);
                    }
                }
                "vrrp_garp_master_repeat" => {
                    if let Some(v) =
                        self.garp_number(n, u64::from(u32::MAX), "vrrp_garp_master_repeat '{}' invalid - ignoring")
                    {
                        g.garp.master_repeat = self.at_least_one(n, v, "vrrp_garp_master_repeat");
                    }
                }
                "vrrp_garp_master_refresh" => {
                    g.garp.master_refresh = self
                        .garp_number(n, u64::from(u32::MAX), "Invalid vrrp_garp_master_refresh '{}' - ignoring")
                        .map_or(Duration::ZERO, Duration::from_secs);
                }
                "vrrp_garp_master_refresh_repeat" => {
                    if let Some(v) = self.garp_number(
                        n,
                        u64::from(u32::MAX),
                        "vrrp_garp_master_refresh_repeat '{}' invalid - ignoring",
                    ) {
                        g.garp.master_refresh_repeat = self.at_least_one(n, v, "vrrp_garp_master_refresh_repeat");
                    }
                }
                "vrrp_garp_lower_prio_delay" => {
                    if let Some(v) =
                        self.garp_number(n, GARP_SECS_MAX, "vrrp_garp_lower_prio_delay '{}' invalid - ignoring")
                    {
                        g.garp.lower_prio_delay = Some(Duration::from_secs(v));
                    }
                }
                "vrrp_garp_lower_prio_repeat" => match self.unsigned(n, 0, 0, i32::MAX as u64) {
                    Some(v) => g.garp.lower_prio_repeat = Some(v as u32),
                    None => self.bad(n, &format!("Invalid vrrp_garp_lower_prio_repeat '{}'", n.arg(0).unwrap_or(""))),
                },
                kw @ ("vrrp_garp_interval" | "vrrp_gna_interval") => {
                    match self.timer(n, 0, Duration::from_micros(1), Duration::from_micros(u64::from(u32::MAX))) {
                        Some(d) if kw == "vrrp_garp_interval" => g.garp_interval = d,
                        Some(d) => g.gna_interval = d,
                        None => self.bad(n, &format!("{kw} '{}' is invalid", n.arg(0).unwrap_or(""))),
                    }
                }
                "vrrp_min_garp" => {
                    // keepalived: one gratuitous ARP at transition, no
                    // repeats or refresh.
                    if self.flag(n, false) {
                        g.garp.master_delay = Duration::ZERO;
                        g.garp.master_repeat = 1;
                        g.garp.master_refresh = Duration::ZERO;
                        g.garp.master_refresh_repeat = 1;
                    }
                }
                "vrrp_down_timer_adverts" => match self.unsigned(n, 0, 1, 100) {
                    Some(v) => g.down_timer_adverts = v as u32,
                    None => {
                        self.bad(n, &format!("Invalid vrrp_down_timer_adverts [1:100] '{}'", n.arg(0).unwrap_or("")))
                    }
                },
                "vrrp_lower_prio_no_advert" => g.lower_prio_no_advert = self.flag(n, g.lower_prio_no_advert),
                "vrrp_higher_prio_send_advert" => g.higher_prio_send_advert = self.flag(n, g.higher_prio_send_advert),
                "vrrp_version" => match self.int(n, 0, 2, 3) {
                    Some(v) => g.version = v as u8,
                    None => self.bad(n, "VRRP Error: Version must be either 2 or 3"),
                },
                "vrrp_check_unicast_src" => g.check_unicast_src = true,
                "vrrp_skip_check_adv_addr" => g.skip_check_adv_addr = true,
                "vrrp_strict" => g.strict = true,
                "vrrp_startup_delay" => {
                    match self.timer(n, 0, Duration::from_millis(1), Duration::from_micros(u64::from(u32::MAX))) {
                        Some(d) => g.startup_delay = d,
                        None => self.bad(n, &format!("vrrp_startup_delay '{}' is invalid", n.arg(0).unwrap_or(""))),
                    }
                }
                "log_unknown_vrids" => g.log_unknown_vrids = true,
                "script_user" => {
                    if n.arg(0).is_none() {
                        self.bad(n, "No script username specified");
                    }
                    if let Some(u) = n.arg(0) {
                        g.script_user = Some(ScriptUser { user: u.to_string(), group: n.arg(1).map(str::to_string) });
                        g.script_user_pos = Some(n.pos().clone());
                    }
                }
                "enable_script_security" => g.enable_script_security = true,
                "lvs_timeouts" => g.lvs_timeouts = self.lvs_timeouts(n),
                "lvs_sync_daemon" => {
                    if let Some(old) = &g.lvs_sync_daemon {
                        let m = format!("lvs_sync_daemon has already been specified as {} - ignoring", old.interface);
                        self.bad(n, &m);
                    } else {
                        g.lvs_sync_daemon = self.lvs_sync_daemon(n);
                    }
                }
                "lvs_flush" => g.lvs_flush = true,
                "lvs_flush_on_stop" | "lvs_flush_onstop" => {
                    g.lvs_flush_on_stop = match n.arg(0) {
                        None => Some(FlushOnStop::All),
                        Some("VS") => Some(FlushOnStop::Vs),
                        Some(v) => {
                            self.bad(n, &format!("Unknown lvs_flush_on_stop type {v}"));
                            None
                        }
                    }
                }
                "checker_log_all_failures" => g.checker_log_all_failures = self.flag(n, g.checker_log_all_failures),
                "default_interface" => match n.arg(0) {
                    Some(i) => g.default_interface = Some(i.to_string()),
                    None => self.bad(n, "default_interface requires interface name"),
                },
                "dynamic_interfaces" => {
                    g.dynamic_interfaces = true;
                    if let Some(o) = n.arg(0).filter(|o| *o != "allow_if_changes") {
                        self.bad(n, &format!("Unknown dynamic_interfaces option '{o}'"));
                    }
                }
                "rs_init_notifies" => g.rs_init_notifies = self.flag(n, g.rs_init_notifies),
                "vrrp_notify_priority_changes" => g.notify_priority_changes = self.flag(n, g.notify_priority_changes),
                // A list of addresses in a block: read only to be ignored.
                _ => self.other(BlockKind::GlobalDefs, n),
            }
        }
    }

    /// A whole number in [0, max], or keepalived's `message` (with `{}` for
    /// the word) after the number's own complaint.
    fn garp_number(&mut self, n: &Node, max: u64, message: &str) -> Option<u64> {
        let v = self.unsigned(n, 0, 0, max);
        if v.is_none() {
            self.bad(n, &message.replace("{}", n.arg(0).unwrap_or("")));
        }
        v
    }

    /// keepalived takes 0 for backward compatibility, says so, and uses 1.
    fn at_least_one(&mut self, n: &Node, v: u64, what: &str) -> u32 {
        if v == 0 {
            self.bad(n, &format!("{what} must be greater than 0, setting to 1"));
            return 1;
        }
        v as u32
    }

    /// The mail settings rlvs keeps only to show them in the dumps.
    fn email(&mut self, n: &Node, e: &mut Email) {
        match n.keyword() {
            "smtp_server" => {
                if let Some(a) = self.ip(n, 0, "smtp server") {
                    let port = n.arg(1).map_or(Some(25), |_| self.unsigned(n, 1, 1, 65535).map(|p| p as u16));
                    e.smtp_server = port.map(|p| (a, p));
                }
            }
            "smtp_helo_name" => e.helo_name = self.need(n, 0).map(str::to_string),
            "smtp_connect_timeout" => {
                e.connect_timeout = self.unsigned(n, 0, 1, 86400).map(|v| v as u32).or(e.connect_timeout)
            }
            "notification_email_from" => e.from = self.need(n, 0).map(str::to_string),
            "notification_email" => {
                for c in n.children() {
                    e.to.push(c.keyword().to_string());
                    e.to.extend(c.args().iter().map(|w| w.text.clone()));
                }
            }
            _ => {}
        }
    }

    /// `lvs_sync_daemon IFACE [[inst] VI_NAME] [id N] [maxlen N] [port N]
    /// [ttl N] [group ADDR]`, as keepalived reads it: the instance may be
    /// the second word without `inst`.
    fn lvs_sync_daemon(&mut self, n: &Node) -> Option<LvsSyncDaemon> {
        let Some(interface) = n.arg(0).map(str::to_string) else {
            self.bad(n, "lvs_sync_daemon requires interface");
            return None;
        };
        if interface.len() >= 16 {
            self.bad(n, &format!("lvs_sync_daemon interface name '{interface}' too long - ignoring"));
            return None;
        }
        let mut d =
            LvsSyncDaemon { interface, instance: None, syncid: None, maxlen: None, port: None, ttl: None, group: None };
        // A bad value gets the number's own complaint, then keepalived's
        // word on the option; the rest of the line still counts.
        let mut i = 1;
        while i < n.args().len() {
            let word = n.arg(i).unwrap_or_default().to_string();
            let value = n.arg(i + 1);
            let shown = value.unwrap_or("");
            let missing = |b: &mut Self, what: &str| {
                b.bad(n, &format!("No value specified for lvs_sync_daemon {what} - ignoring"));
            };
            match word.as_str() {
                "inst" => match &d.instance {
                    Some(old) => {
                        let m = format!("lvs_sync_daemon vrrp instance has already been specified as {old} - ignoring");
                        self.bad(n, &m);
                    }
                    None => d.instance = value.map(str::to_string),
                },
                "id" if value.is_none() => {
                    self.bad(n, "No value specified for lvs_sync_daemon id, defaulting to vrid");
                    i += 1;
                    continue;
                }
                "id" => match self.unsigned(n, i + 1, 0, 255) {
                    Some(v) => d.syncid = Some(v as u8),
                    None => self.bad(n, &format!("Invalid syncid ({shown}) - defaulting to vrid")),
                },
                kw @ ("maxlen" | "port" | "ttl") if value.is_none() => {
                    missing(self, kw);
                    i += 1;
                    continue;
                }
                kw @ ("maxlen" | "port" | "ttl") => {
                    let max = match kw {
                        "maxlen" => 65535 - 20 - 8,
                        "port" => 65535,
                        _ => 255,
                    };
                    match self.unsigned(n, i + 1, 1, max) {
                        Some(v) if kw == "maxlen" => d.maxlen = Some(v as u16),
                        Some(v) if kw == "port" => d.port = Some(v as u16),
                        Some(v) => d.ttl = Some(v as u8),
                        None => self.bad(n, &format!("Invalid lvs_sync_daemon {kw} ({shown}) - ignoring")),
                    }
                }
                "group" => match value.map(|t| (t, t.parse::<IpAddr>().ok())) {
                    Some((_, Some(a))) if a.is_multicast() => d.group = Some(a),
                    Some((t, Some(_))) => {
                        self.bad(n, &format!("lvs_sync_daemon group address {t} is not multicast - ignoring"))
                    }
                    Some((t, None)) => self.bad(n, &format!("Invalid lvs_sync_daemon group ({t}) - ignoring")),
                    None => {
                        missing(self, "group");
                        i += 1;
                        continue;
                    }
                },
                // The 1.x form: `lvs_sync_daemon IF INSTANCE [SYNCID]`.
                _ if i == 1 => {
                    d.instance = Some(word);
                    i += 1;
                    continue;
                }
                _ if i == 2 => {
                    match self.unsigned(n, i, 0, 255) {
                        Some(v) => {
                            self.bad(n, "Please use keyword \"id\" before lvs_sync_daemon SYNCID");
                            d.syncid = Some(v as u8);
                        }
                        None => self.bad(n, &format!("Invalid syncid ({word}) - defaulting to vrid")),
                    }
                    i += 1;
                    continue;
                }
                other => {
                    self.bad(n, &format!("Unknown option {other} specified for lvs_sync_daemon"));
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        Some(d)
    }

    /// `lvs_timeouts [tcp N] [tcpfin N] [udp N]`.
    fn lvs_timeouts(&mut self, n: &Node) -> Option<(Option<u32>, Option<u32>, Option<u32>)> {
        if n.args().is_empty() {
            self.bad(n, "lvs_timeouts requires at least one option");
            return None;
        }
        let (mut tcp, mut fin, mut udp) = (None, None, None);
        let mut i = 0;
        while i < n.args().len() {
            let which = n.arg(i).unwrap_or_default().to_string();
            let v = match n.arg(i + 1) {
                None => {
                    self.bad(n, &format!("No value specified for lvs_timeout {which} - ignoring"));
                    None
                }
                Some(t) => {
                    let v = self.unsigned(n, i + 1, 0, 86400 * 31).map(|v| v as u32);
                    if v.is_none() && matches!(which.as_str(), "tcp" | "tcpfin" | "udp") {
                        self.bad(n, &format!("Invalid lvs_timeout {which} ({t}) - ignoring"));
                    }
                    v
                }
            };
            match which.as_str() {
                "tcp" => tcp = v,
                "tcpfin" => fin = v,
                "udp" => udp = v,
                other => {
                    self.bad(n, &format!("Unknown option {other} specified for lvs_timeouts"));
                    return None;
                }
            }
            i += 2;
        }
        Some((tcp, fin, udp))
    }

    pub(super) fn ssl(&mut self, children: &[Node]) -> SslContext {
        let mut s = SslContext::default();
        for n in children {
            self.no_block(n);
            // keepalived's names for the files in its messages.
            let (slot, what) = match n.keyword() {
                "password" => (&mut s.password, "password"),
                "ca" => (&mut s.ca, "cafile"),
                "certificate" => (&mut s.certificate, "certfile"),
                "key" => (&mut s.key, "keyfile"),
                _ => {
                    self.other(BlockKind::Ssl, n);
                    continue;
                }
            };
            match n.arg(0) {
                None => {
                    let m = format!("SSL {what} missing");
                    self.diags.push(Diag::warning(n.pos(), m));
                }
                Some(v) => {
                    if slot.is_some() {
                        let m = format!("SSL {what} already specified - replacing");
                        *slot = Some(v.to_string());
                        self.diags.push(Diag::warning(n.pos(), m));
                    } else {
                        *slot = Some(v.to_string());
                    }
                }
            }
        }
        s
    }

    pub(super) fn bad(&mut self, n: &Node, msg: &str) {
        self.diags.push(Diag::warning(n.pos(), msg.to_string()));
    }
}
