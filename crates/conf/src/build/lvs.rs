//! virtual_server_group, virtual_server, real_server and the checkers,
//! with keepalived's inheritance of checker timing: checker, else real
//! server, else virtual server, else the checker type's default.

use super::values::parse_ip;
use super::{Builder, IFNAME_MAX};
use crate::diag::Diag;
use crate::model::*;
use crate::schema::BlockKind;
use crate::tree::Node;
use std::net::IpAddr;
use std::time::Duration;

const SCHEDULERS: &[&str] =
    &["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"];
/// IPVS_WEIGHT_LIMIT: the kernel takes any int weight (ipvsadm alone
/// stops at 65535).
const WEIGHT_LIMIT: u64 = i32::MAX as u64;
/// keepalived's TIMER_MAXIMUM, in its range messages; longer than any
/// timer rlvs arms, so values are then held to MAX_TIMER.
const KA_TIMER_MAXIMUM: Duration = Duration::from_micros(u64::MAX - 1);
const MAX_TIMER: Duration = Duration::from_secs(u32::MAX as u64);

/// Where a timing keyword is, for keepalived's message when its value
/// does not read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    VirtualServer,
    RealServer,
    Checker,
}

/// Timing keywords as given at one level, before inheritance.
#[derive(Default, Clone, Copy)]
struct Timing {
    delay_loop: Option<Duration>,
    connect_timeout: Option<Duration>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
    warmup: Option<Duration>,
}

impl Builder {
    /// The five timing keywords shared by every level; true if `n` was one.
    fn timing_keyword(&mut self, n: &Node, t: &mut Timing, level: Level) -> bool {
        let kw = n.keyword();
        let arg = n.arg(0).unwrap_or("").to_string();
        // keepalived's words for a value that does not read, by level.
        let why = |what: &str| -> String {
            match (level, what) {
                (Level::VirtualServer, "connect_timeout") => {
                    format!("virtual server connect_timeout {arg} invalid - ignoring")
                }
                (Level::VirtualServer, "delay_before_retry") => {
                    format!("virtual server delay before retry '{arg}' invalid - ignoring")
                }
                (Level::VirtualServer, "warmup") => format!("virtual server warmup '{arg}' invalid - ignoring"),
                (Level::RealServer, "connect_timeout") => {
                    format!("real server connect_timeout {arg} invalid - ignoring")
                }
                (Level::RealServer, "delay_loop") => format!("real server delay_loop '{arg}' invalid - ignoring"),
                (Level::RealServer, "delay_before_retry") => {
                    format!("real server delay_before_retry '{arg}' invalid - ignoring")
                }
                (Level::RealServer, "warmup") => format!("real server warmup '{arg}' invalid - ignoring"),
                (Level::VirtualServer | Level::RealServer, "retry") => format!("retry value invalid - {arg}"),
                (Level::Checker, "connect_timeout") => format!("connect_timeout {arg} invalid - ignoring"),
                (Level::Checker, "delay_loop") => format!("delay_loop '{arg}' is invalid - ignoring"),
                (Level::Checker, "retry") => format!("Invalid retry connection value '{arg}'"),
                (Level::Checker, "delay_before_retry") => {
                    format!("Invalid delay_before_retry connection value '{arg}'")
                }
                (Level::Checker, "warmup") => format!("Invalid warmup connection value '{arg}'"),
                _ => format!("{what} '{arg}' invalid - ignoring"),
            }
        };
        let got = match kw {
            "delay_loop" => self.timer(n, 0, Duration::from_micros(1), MAX_TIMER).map(|d| t.delay_loop = Some(d)),
            "connect_timeout" => {
                self.timer(n, 0, Duration::from_micros(1), MAX_TIMER).map(|d| t.connect_timeout = Some(d))
            }
            "retry" => {
                let min = if level == Level::Checker { 0 } else { 1 };
                self.unsigned(n, 0, min, u64::from(u32::MAX)).map(|v| t.retry = Some(v as u32))
            }
            "delay_before_retry" => self.timer(n, 0, Duration::ZERO, MAX_TIMER).map(|d| t.delay_before_retry = Some(d)),
            "warmup" => self.timer(n, 0, Duration::ZERO, MAX_TIMER).map(|d| t.warmup = Some(d)),
            _ => return false,
        };
        if got.is_none() && n.arg(0).is_some() {
            // keepalived reads a word that is not a number as 0, after
            // saying so: where 0 is in range it takes it without more.
            let zero_ok = matches!(kw, "delay_before_retry" | "warmup");
            if zero_ok && arg.parse::<f64>().is_err() {
                match kw {
                    "warmup" => t.warmup = Some(Duration::ZERO),
                    _ => t.delay_before_retry = Some(Duration::ZERO),
                }
            } else {
                self.bad(n, &why(kw));
            }
        }
        true
    }

    /// `track_file NAME { file PATH weight N [reverse] init_file [V] }`.
    pub(super) fn track_file(&mut self, node: &Node) -> Option<TrackFile> {
        let name = self.need(node, 0)?.to_string();
        let children = self.block(node)?;
        let mut t =
            TrackFile { name, pos: node.pos().clone(), file: String::new(), weight: 1, reverse: false, init: None };
        for n in children {
            self.no_block(n);
            match n.keyword() {
                "file" => t.file = self.need(n, 0).unwrap_or_default().to_string(),
                "weight" => {
                    t.weight = self.int(n, 0, -254, 254).map_or(t.weight, |w| w as i32);
                    t.reverse = n.arg(1) == Some("reverse");
                }
                "init_file" => t.init = Some(n.arg(0).and_then(|v| v.parse().ok()).unwrap_or(0)),
                _ => self.other(BlockKind::FileCheck, n),
            }
        }
        if t.file.is_empty() {
            self.diags.push(Diag::error(&t.pos, format!("No file set for track_file {} - removing", t.name)));
            return None;
        }
        Some(t)
    }

    /// `local_address_group NAME { ADDR [IFNAME] ... }`.
    pub(super) fn laddr_group(&mut self, node: &Node) -> Option<LaddrGroup> {
        let name = self.need(node, 0)?.to_string();
        let children = self.block(node)?;
        let mut g = LaddrGroup { name, pos: node.pos().clone(), addrs: Vec::new() };
        for n in children {
            self.no_block(n);
            match parse_ip(n.keyword()) {
                Some(a) => g.addrs.push(a),
                None => self.bad(n, &format!("Invalid local address {} - skipping", n.keyword())),
            }
        }
        Some(g)
    }

    pub(super) fn vs_group(&mut self, node: &Node) -> Option<VirtualServerGroup> {
        let name = self.need(node, 0)?.to_string();
        let children = self.value_block(node, 1)?;
        let mut g = VirtualServerGroup { name, pos: node.pos().clone(), entries: Vec::new() };
        let (mut have_v4, mut have_v6, mut fwmark_no_family) = (false, false, false);
        for n in children {
            self.no_block(n);
            let first = n.keyword();
            if first == "fwmark" {
                let Some(m) = self.unsigned(n, 0, 0, u64::from(u32::MAX)) else {
                    let m = format!(
                        "({}): fwmark '{}' must be in [0, {}] - ignoring",
                        g.name,
                        n.arg(0).unwrap_or(""),
                        u32::MAX
                    );
                    self.bad(n, &m);
                    continue;
                };
                match n.arg(1) {
                    None => fwmark_no_family = true,
                    Some("inet") => have_v4 = true,
                    Some("inet6") => have_v6 = true,
                    Some(f) => {
                        self.bad(n, &format!("({}): fwmark '{m}' family {f} unknown - ignoring", g.name));
                        continue;
                    }
                }
                g.entries.push((VsgEntry::Fwmark(m as u32), n.pos().clone()));
                continue;
            }
            // keepalived reads a port of 0 (or 00...) as none, and judges
            // the port (with the number's own complaint) before the address.
            let port_text = n.arg(0).filter(|p| !p.chars().all(|c| c == '0'));
            if let Some(p) = port_text {
                if self.unsigned(n, 0, 1, 65535).is_none() {
                    self.bad(n, &format!("Invalid virtual server group IP address {first} /port/{p} - skipping"));
                    continue;
                }
            }
            match vsg_range(first, port_text) {
                Ok((first, last, port)) => {
                    if first.is_ipv4() {
                        have_v4 = true;
                    } else {
                        have_v6 = true;
                    }
                    g.entries.push((VsgEntry::Range { first, last, port }, n.pos().clone()));
                }
                Err(m) => self.bad(n, &m),
            }
        }
        if have_v4 && have_v6 && fwmark_no_family {
            let m =
                format!("virtual server group {} cannot have IPv4, IPv6 and fwmark without family - removing", g.name);
            let end = node.block.as_ref().and_then(|b| b.close.clone()).unwrap_or_else(|| node.pos().clone());
            self.diags.push(Diag::warning(&end, m));
            return None;
        }
        if g.entries.is_empty() {
            let end = node.block.as_ref().and_then(|b| b.close.clone()).unwrap_or_else(|| node.pos().clone());
            self.diags.push(Diag::warning(&end, format!("virtual server group {} has no entries - removing", g.name)));
            return None;
        }
        Some(g)
    }

    pub(super) fn virtual_server(&mut self, node: &Node) -> Option<VirtualServer> {
        let target = match (node.arg(0), node.arg(1)) {
            (Some("group"), Some(name)) => VsTarget::Group(name.to_string()),
            (Some("fwmark"), Some(text)) => match self.unsigned(node, 1, 0, u64::from(u32::MAX)) {
                Some(m) if m > 0 => VsTarget::Fwmark(m as u32),
                None => {
                    let m = format!("virtual server fwmark '{text}' must be in [0, {}] - ignoring", u32::MAX);
                    self.diags.push(Diag::error(node.pos(), m));
                    return None;
                }
                Some(_) => {
                    self.diags.push(
                        Diag::error(node.pos(), "virtual server fwmark must be between 1 and 4294967295 - skipping")
                            .with_hint("a mark of 0 marks nothing; keepalived 2.2.7 reads it as an address service with no address"),
                    );
                    return None;
                }
            },
            (Some(a), port) => {
                let Some(addr) = parse_ip(a) else {
                    self.diags
                        .push(Diag::error(node.pos(), format!("Invalid virtual server IP address {a} - skipping")));
                    return None;
                };
                let port = match port {
                    // keepalived takes 0 (a persistent service of every port).
                    Some("0") => 0,
                    Some(p) => match self.unsigned(node, 1, 1, 65535) {
                        Some(v) => v as u16,
                        None => {
                            self.diags.push(Diag::error(
                                node.pos(),
                                format!("Invalid virtual server IP address/port {a}/{p} - skipping"),
                            ));
                            return None;
                        }
                    },
                    None => 0,
                };
                VsTarget::Addr { addr, port }
            }
            (None, _) => {
                self.need(node, 0);
                return None;
            }
        };
        let children = self.block(node)?;
        let mut vs = VirtualServer {
            pos: node.pos().clone(),
            target,
            protocol: VsProtocol::Tcp,
            lb_algo: "wlc".into(),
            lb_kind: LbKind::Nat,
            tun: None,
            sched_flags: Vec::new(),
            ops: false,
            persistence_timeout: None,
            persistence_granularity: None,
            persistence_engine: None,
            ip_family: None,
            delay_loop: Duration::from_secs(60),
            ha_suspend: false,
            virtualhost: None,
            alpha: false,
            omega: false,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            inhibit_on_failure: false,
            sorry_server: None,
            sorry_server_inhibit: false,
            sorry_server_lvs_method: None,
            laddr_group: None,
            real_servers: Vec::new(),
        };
        let mut timing = Timing { connect_timeout: Some(Duration::from_secs(5)), ..Timing::default() };
        let mut weight = 1;
        let mut kind_set = false;
        let (mut protocol_set, mut sched_set) = (false, false);
        let mut ha_suspend_at = None;
        let mut rs_nodes = Vec::new();
        for n in children {
            if n.keyword() != "real_server" {
                self.no_block(n);
            }
            if n.keyword() == "delay_loop" {
                match self.timer(n, 0, Duration::from_micros(1), KA_TIMER_MAXIMUM) {
                    Some(d) => timing.delay_loop = Some(d.min(MAX_TIMER)),
                    None => self
                        .bad(n, &format!("virtual server delay loop '{}' invalid - ignoring", n.arg(0).unwrap_or(""))),
                }
                continue;
            }
            if self.timing_keyword(n, &mut timing, Level::VirtualServer) {
                continue;
            }
            match n.keyword() {
                "real_server" => rs_nodes.push(n),
                "lb_algo" | "lvs_sched" => match self.need(n, 0) {
                    Some(s) if SCHEDULERS.contains(&s) => {
                        vs.lb_algo = s.to_string();
                        sched_set = true;
                    }
                    Some(s) => self.bad(n, &format!("Invalid lvs_scheduler '{s}' - ignoring")),
                    None => {}
                },
                "lb_kind" | "lvs_method" => {
                    if let Some((k, t)) = self.forwarding(n, "virtual") {
                        vs.lb_kind = k;
                        vs.tun = t;
                        kind_set = true;
                    }
                }
                "protocol" => match self.need(n, 0).map(str::to_ascii_uppercase).as_deref() {
                    Some(p @ ("TCP" | "UDP" | "SCTP")) => {
                        vs.protocol = match p {
                            "TCP" => VsProtocol::Tcp,
                            "UDP" => VsProtocol::Udp,
                            _ => VsProtocol::Sctp,
                        };
                        protocol_set = true;
                    }
                    Some(_) => self.bad(n, &format!("Unknown protocol {} - ignoring", n.arg(0).unwrap_or(""))),
                    None => {}
                },
                "persistence_timeout" => {
                    vs.persistence_timeout = if n.arg(0).is_none() {
                        Some(360)
                    } else {
                        let t = self.unsigned(n, 0, 1, 2_678_400).map(|t| t as u32);
                        if t.is_none() {
                            self.bad(n, "persistence_timeout invalid");
                        }
                        t.or(vs.persistence_timeout)
                    }
                }
                "persistence_granularity" => {
                    let Some(text) = self.need(n, 0) else { continue };
                    // The service's family, else the value's: a dotted mask
                    // is IPv4, a prefix length IPv6.
                    let v6 = match vs.target {
                        VsTarget::Addr { addr, .. } => addr.is_ipv6(),
                        _ => vs.ip_family.map_or(!text.contains('.'), |f| f == 6),
                    };
                    let g = if v6 {
                        self.unsigned(n, 0, 1, 128)
                            .map(|p| IpAddr::from(std::net::Ipv6Addr::from(u128::MAX << (128 - p))))
                    } else {
                        inet_aton(text).map(IpAddr::V4)
                    };
                    match g {
                        Some(m) => {
                            vs.persistence_granularity = Some(m);
                            vs.persistence_timeout.get_or_insert(360);
                        }
                        None => {
                            let fam = if v6 { "IPv6" } else { "IPv4" };
                            self.bad(n, &format!("Invalid {fam} persistence_granularity specified - {text}"))
                        }
                    }
                }
                "persistence_engine" => {
                    if let Some(pe) = self.need(n, 0) {
                        // The kernel's IP_VS_PENAME_MAXLEN, with its NUL.
                        let pe = if pe.len() > 15 {
                            self.bad(n, &format!("persistence_name too long, truncating - {pe}"));
                            &pe[..15]
                        } else {
                            pe
                        };
                        vs.persistence_engine = Some(pe.to_string());
                    }
                }
                "ip_family" => {
                    let family = match n.arg(0) {
                        Some("inet") => 4,
                        Some("inet6") => 6,
                        other => {
                            self.bad(n, &format!("unknown address family {}", other.unwrap_or("")));
                            continue;
                        }
                    };
                    let known = match vs.target {
                        VsTarget::Addr { addr, .. } => Some(if addr.is_ipv4() { 4 } else { 6 }),
                        _ => vs.ip_family,
                    };
                    if known.is_some_and(|k| k != family) {
                        let m = format!(
                            "Virtual server specified family {} conflicts with server family",
                            n.arg(0).unwrap_or("")
                        );
                        self.bad(n, &m);
                    } else {
                        vs.ip_family = Some(family);
                    }
                }
                "ops" => vs.ops = true,
                "flag-1" | "flag-2" | "flag-3" => vs.sched_flags.push(n.keyword().to_string()),
                // keepalived takes these only after `lb_algo sh` (or mh).
                kw @ ("hashed" | "sh-port" | "sh-fallback" | "mh-port" | "mh-fallback") => {
                    match (sched_set, vs.lb_algo.as_str()) {
                        (true, "sh") if kw.starts_with("sh-") => vs.sched_flags.push(kw.to_string()),
                        (true, "mh") if kw.starts_with("mh-") => vs.sched_flags.push(kw.to_string()),
                        (true, "sh" | "mh") => {}
                        _ => self.bad(n, &format!("{kw} only applies to sh scheduler - ignoring")),
                    }
                }
                "inhibit_on_failure" => vs.inhibit_on_failure = self.flag(n, vs.inhibit_on_failure),
                "ha_suspend" => {
                    vs.ha_suspend = true;
                    ha_suspend_at = Some(node.pos().clone());
                }
                "virtualhost" => match n.arg(0) {
                    Some(h) => vs.virtualhost = Some(h.to_string()),
                    None => self.bad(n, "virtual server virtualhost missing"),
                },
                "alpha" => vs.alpha = self.flag(n, vs.alpha),
                "omega" => vs.omega = true,
                "quorum" => match self.unsigned(n, 0, 1, u64::from(u32::MAX)) {
                    Some(q) => vs.quorum = q as u32,
                    None => self.bad(
                        n,
                        &format!("Quorum {} must be in [1, {}]. Setting to 1.", n.arg(0).unwrap_or(""), u32::MAX),
                    ),
                },
                "hysteresis" => match self.unsigned(n, 0, 0, u64::from(u32::MAX)) {
                    Some(h) => vs.hysteresis = h as u32,
                    None => self.bad(
                        n,
                        &format!("Hysteresis {} must be in [0, {}] - ignoring", n.arg(0).unwrap_or(""), u32::MAX),
                    ),
                },
                kw @ ("quorum_up" | "quorum_down") => {
                    let slot = if kw == "quorum_up" { &vs.quorum_up } else { &vs.quorum_down };
                    if slot.is_some() {
                        let name = vs_name(&vs, Some(vs.protocol));
                        self.bad(
                            n,
                            &format!("({name}) {kw} script already specified - ignoring {}", n.arg(0).unwrap_or("")),
                        );
                    } else if kw == "quorum_up" {
                        vs.quorum_up = self.notify(n);
                    } else {
                        vs.quorum_down = self.notify(n);
                    }
                }
                "weight" => match self.unsigned(n, 0, 1, WEIGHT_LIMIT) {
                    Some(w) => weight = w as i32,
                    None => self.bad(
                        n,
                        &format!("Virtual server weight {} is outside range 1-{WEIGHT_LIMIT}", n.arg(0).unwrap_or("")),
                    ),
                },
                "sorry_server" => {
                    let a = self.need(n, 0).and_then(|t| match parse_ip(t) {
                        Some(a) => Some(a),
                        None => {
                            self.bad(n, &format!("Invalid sorry server IP address {t} - skipping"));
                            None
                        }
                    });
                    let p = if n.arg(1).is_some() { self.port(n, 1) } else { Some(0) };
                    if let (Some(a), Some(p)) = (a, p) {
                        vs.sorry_server = Some((a, p));
                    }
                }
                "sorry_server_inhibit" => {
                    if vs.sorry_server.is_none() {
                        self.bad(n, "Ignoring sorry_server inhibit used before or without sorry_server");
                    } else {
                        vs.sorry_server_inhibit = self.flag(n, vs.sorry_server_inhibit);
                    }
                }
                "sorry_server_lvs_method" => {
                    if vs.sorry_server.is_none() {
                        self.bad(n, "sorry_server forwarding used without sorry_server");
                    } else {
                        vs.sorry_server_lvs_method = self.forwarding(n, "sorry").map(|f| f.0);
                    }
                }
                "laddr_group_name" => vs.laddr_group = self.need(n, 0).map(str::to_string),
                _ => self.other(BlockKind::VirtualServer, n),
            }
        }
        if let (Some((a, _)), VsTarget::Addr { addr, .. }) = (vs.sorry_server, &vs.target) {
            if a.is_ipv6() != addr.is_ipv6() {
                let end = node.block.as_ref().and_then(|b| b.close.clone()).unwrap_or_else(|| node.pos().clone());
                self.diags.push(Diag::warning(
                    &end,
                    format!(
                        "Address family of virtual server and sorry server {a} don't match - skipping sorry server."
                    ),
                ));
                vs.sorry_server = None;
            }
        }
        if let VsTarget::Fwmark(_) = vs.target {
            let name = vs_name(&vs, Some(vs.protocol));
            if let Some(at) = ha_suspend_at.take() {
                self.diags.push(Diag::warning(
                    &at,
                    format!("Virtual server {name}: cannot use ha_suspend with fwmarks - clearing ha_suspend"),
                ));
                vs.ha_suspend = false;
            }
            if protocol_set {
                self.diags.push(Diag::warning(
                    node.pos(),
                    format!("Warning: Virtual server {name}: protocol specified for fwmark - protocol will be ignored"),
                ));
            }
        }
        // What keepalived's vs completion fills in, and says so.
        if !protocol_set && !matches!(vs.target, VsTarget::Fwmark(_)) {
            self.diags.push(
                Diag::warning(
                    node.pos(),
                    format!("Virtual server {}: no protocol set - defaulting to UDP", vs_name(&vs, None)),
                )
                .with_hint("add 'protocol TCP' for a TCP service"),
            );
            vs.protocol = VsProtocol::Udp;
        }
        let proto = (protocol_set || !matches!(vs.target, VsTarget::Fwmark(_))).then_some(vs.protocol);
        if !sched_set {
            self.diags.push(Diag::warning(
                node.pos(),
                format!("Virtual server {}: no scheduler set, setting default 'wlc'", vs_name(&vs, proto)),
            ));
        }
        if !kind_set {
            self.diags.push(Diag::warning(
                node.pos(),
                format!("Virtual server {}: no forwarding method set, setting default NAT", vs_name(&vs, proto)),
            ));
        }
        vs.delay_loop = timing.delay_loop.unwrap_or(vs.delay_loop);
        timing.delay_loop = Some(vs.delay_loop);
        for n in rs_nodes {
            if let Some(rs) = self.real_server(n, &vs, kind_set, weight, timing) {
                if vs.real_servers.iter().any(|r| r.addr == rs.addr && r.port == rs.port) {
                    let p = proto_name(proto);
                    self.bad(
                        n,
                        &format!(
                            "VS {}: real server [{}]:{p}:{} is duplicated - removing second rs",
                            vs_name(&vs, proto),
                            rs.addr,
                            rs.port
                        ),
                    );
                    continue;
                }
                vs.real_servers.push(rs);
            }
        }
        self.complete_virtual_server(node, &mut vs, proto);
        if vs.real_servers.is_empty() {
            self.diags.push(
                Diag::warning(
                    node.pos(),
                    format!("Virtual server {} has no real servers - ignoring", vs_name(&vs, proto)),
                )
                .with_hint("keepalived drops a virtual server without real servers"),
            );
            return None;
        }
        Some(vs)
    }

    /// `NAT | DR | TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]`.
    fn forwarding(&mut self, n: &Node, s_type: &str) -> Option<(LbKind, Option<TunOpts>)> {
        let kind = match self.need(n, 0)? {
            "NAT" => LbKind::Nat,
            "DR" => LbKind::Dr,
            "TUN" => LbKind::Tun,
            // rlvs, as DPVS spells it.
            "FNAT" | "FULLNAT" => LbKind::FullNat,
            other => {
                self.bad(n, &format!("PARSER : unknown [{other}] routing method for {s_type} server."));
                return None;
            }
        };
        // keepalived reads the options after any method, and stops at the
        // first bad one with the method set and the tunnel left as it was.
        let mut t = TunOpts { kind: "ipip".into(), port: None, csum: None };
        let mut i = 1;
        while i < n.args().len() {
            let word = n.arg(i).unwrap_or_default();
            let err = match (word, n.arg(i + 1)) {
                ("type", Some(k @ ("ipip" | "gue" | "gre"))) => {
                    t.kind = k.to_string();
                    None
                }
                ("type", Some(k)) => Some(format!("Unknown tunnel type {k} for {s_type} server.")),
                ("type", None) => Some(format!("Missing tunnel type for {s_type} server.")),
                ("port", Some(p)) => match self.unsigned(n, i + 1, 1, 65535) {
                    Some(v) => {
                        t.port = Some(v as u16);
                        None
                    }
                    None => Some(format!("Invalid gue tunnel port {p} for {s_type} server.")),
                },
                ("port", None) => Some(format!("Missing port for {s_type} server gue tunnel.")),
                (c @ ("nocsum" | "csum" | "remcsum"), _) => {
                    t.csum = Some(c.to_string());
                    i -= 1;
                    None
                }
                (other, _) => Some(format!("Invalid tunnel option {other} for {s_type} server.")),
            };
            if let Some(m) = err {
                self.bad(n, &m);
                return Some((kind, None));
            }
            i += 2;
        }
        let err = match (t.kind.as_str(), t.csum.as_deref()) {
            (k, _) if (k == "gue") != t.port.is_some() => Some("gue tunnels require port, otherwise cannot have port."),
            ("ipip", Some("csum" | "remcsum")) => Some("ipip tunnels do not support checksum option."),
            ("gre", Some("remcsum")) => Some("gre tunnels do not support remote checksum option."),
            _ => None,
        };
        if let Some(m) = err {
            self.bad(n, m);
            return Some((kind, None));
        }
        let tun = (kind == LbKind::Tun && n.args().len() > 1).then_some(t);
        Some((kind, tun))
    }

    fn real_server(
        &mut self,
        node: &Node,
        vs: &VirtualServer,
        kind_set: bool,
        vs_weight: i32,
        vs_timing: Timing,
    ) -> Option<RealServer> {
        let text = self.need(node, 0)?;
        let port_text = node.arg(1).unwrap_or("");
        let port = if node.arg(1).is_some() { self.unsigned(node, 1, 0, 65535).map(|p| p as u16) } else { Some(0) };
        let (Some(addr), Some(port)) = (parse_ip(text), port) else {
            self.bad(node, &format!("Invalid real server ip address/port {text}/{port_text} - skipping"));
            return None;
        };
        let vs_v6 = match &vs.target {
            VsTarget::Addr { addr, .. } => Some(addr.is_ipv6()),
            _ => vs.ip_family.map(|f| f == 6),
        };
        if vs_v6.is_some_and(|v6| v6 != addr.is_ipv6()) {
            let end = node.block.as_ref().and_then(|b| b.close.clone()).unwrap_or_else(|| node.pos().clone());
            self.diags.push(Diag::warning(
                &end,
                format!("Address family of virtual server and real server {addr} don't match - skipping real server."),
            ));
            return None;
        }
        let children = self.block(node)?;
        let mut rs = RealServer {
            pos: node.pos().clone(),
            addr,
            port,
            weight: vs_weight,
            lvs_method: vs.lb_kind,
            tun: vs.tun.clone(),
            uthreshold: None,
            lthreshold: None,
            inhibit_on_failure: vs.inhibit_on_failure,
            notify_up: None,
            notify_down: None,
            alpha: vs.alpha,
            virtualhost: vs.virtualhost.clone(),
            checkers: Vec::new(),
        };
        let _ = kind_set;
        let mut timing = Timing::default();
        let mut checker_nodes = Vec::new();
        for n in children {
            let is_checker = matches!(
                n.keyword(),
                "HTTP_GET"
                    | "SSL_GET"
                    | "TCP_CHECK"
                    | "MISC_CHECK"
                    | "SMTP_CHECK"
                    | "DNS_CHECK"
                    | "UDP_CHECK"
                    | "PING_CHECK"
                    | "FILE_CHECK"
            );
            if !is_checker && n.keyword() != "BFD_CHECK" {
                self.no_block(n);
            }
            if self.timing_keyword(n, &mut timing, Level::RealServer) {
                continue;
            }
            match n.keyword() {
                _ if is_checker => checker_nodes.push(n),
                "weight" => match self.unsigned(n, 0, 0, WEIGHT_LIMIT) {
                    Some(w) => rs.weight = w as i32,
                    None => self.bad(
                        n,
                        &format!("Real server weight {} is outside range 0-{WEIGHT_LIMIT}", n.arg(0).unwrap_or("")),
                    ),
                },
                "lvs_method" => {
                    if let Some((k, t)) = self.forwarding(n, "real") {
                        rs.lvs_method = k;
                        rs.tun = t;
                    }
                }
                "uthreshold" | "lthreshold" => {
                    let v = self.unsigned(n, 0, 0, u64::from(u32::MAX)).map(|v| v as u32);
                    if v.is_none() {
                        self.bad(
                            n,
                            &format!("Invalid real_server {} '{}' - ignoring", n.keyword(), n.arg(0).unwrap_or("")),
                        );
                    } else if n.keyword() == "uthreshold" {
                        rs.uthreshold = v;
                    } else {
                        rs.lthreshold = v;
                    }
                }
                "inhibit_on_failure" => rs.inhibit_on_failure = self.flag(n, rs.inhibit_on_failure),
                kw @ ("notify_up" | "notify_down")
                    if (if kw == "notify_up" { &rs.notify_up } else { &rs.notify_down }).is_some() =>
                {
                    let name = vs_name(vs, Some(vs.protocol));
                    self.bad(
                        n,
                        &format!("({name}) {kw} script already specified - ignoring {}", n.arg(0).unwrap_or("")),
                    );
                }
                "notify_up" => rs.notify_up = self.notify(n),
                "notify_down" => rs.notify_down = self.notify(n),
                "alpha" => rs.alpha = self.flag(n, rs.alpha),
                "virtualhost" => match n.arg(0) {
                    Some(h) => rs.virtualhost = Some(h.to_string()),
                    None => self.bad(n, "real server virtualhost missing"),
                },
                _ => self.other(BlockKind::RealServer, n),
            }
        }
        // Real server inherits what it did not set from the virtual server.
        let rs_timing = Timing {
            delay_loop: timing.delay_loop.or(vs_timing.delay_loop),
            connect_timeout: timing.connect_timeout.or(vs_timing.connect_timeout),
            retry: timing.retry.or(vs_timing.retry),
            delay_before_retry: timing.delay_before_retry.or(vs_timing.delay_before_retry),
            warmup: timing.warmup.or(vs_timing.warmup),
        };
        for n in checker_nodes {
            if let Some(c) = self.checker(n, rs_timing, addr) {
                rs.checkers.push(c);
            }
        }
        Some(rs)
    }

    fn checker(&mut self, node: &Node, rs: Timing, rs_addr: IpAddr) -> Option<Checker> {
        let children = self.block(node)?;
        let (block_kind, default_retry, default_dbr) = match node.keyword() {
            "HTTP_GET" | "SSL_GET" => (BlockKind::HttpGet, 1, Some(Duration::from_secs(3))),
            "TCP_CHECK" => (BlockKind::TcpCheck, 1, Some(Duration::from_secs(1))),
            "MISC_CHECK" => (BlockKind::MiscCheck, 0, Some(Duration::from_secs(1))),
            "SMTP_CHECK" => (BlockKind::SmtpCheck, 1, Some(Duration::from_secs(1))),
            "DNS_CHECK" => (BlockKind::DnsCheck, 3, None),
            "UDP_CHECK" => (BlockKind::UdpCheck, 1, Some(Duration::from_secs(1))),
            "PING_CHECK" => (BlockKind::PingCheck, 1, Some(Duration::from_secs(1))),
            _ => (BlockKind::FileCheck, 1, Some(Duration::from_secs(1))),
        };
        let mut c = Checker {
            pos: node.pos().clone(),
            kind: CheckKind::Tcp,
            timing: CheckTiming {
                delay_loop: Duration::ZERO,
                connect_timeout: Duration::ZERO,
                retry: 0,
                delay_before_retry: Duration::ZERO,
                warmup: Duration::ZERO,
            },
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
            bind_if: None,
            fwmark: None,
            alpha: false,
            log_all_failures: false,
        };
        let mut t = Timing::default();
        let mut http = HttpCheck {
            ssl: node.keyword() == "SSL_GET",
            urls: Vec::new(),
            virtualhost: None,
            http_protocol: None,
            enable_sni: false,
            fast_recovery: false,
        };
        let end = node.block.as_ref().and_then(|b| b.close.clone());
        let mut misc = MiscCheck { path: Vec::new(), timeout: None, dynamic: false, user: None, user_pos: None, end };
        let mut udp = UdpCheck { payload: None, require_reply: None, min_reply_length: None, max_reply_length: None };
        let (mut helo, mut dns_type, mut dns_name, mut file, mut file_weight) = (None, None, None, None, None);
        for n in children {
            if !matches!(n.keyword(), "url" | "host") {
                self.no_block(n);
            }
            if block_kind != BlockKind::FileCheck && self.timing_keyword(n, &mut t, Level::Checker) {
                if block_kind == BlockKind::MiscCheck && n.keyword() == "connect_timeout" {
                    self.other(block_kind, n);
                }
                continue;
            }
            let connection = !matches!(block_kind, BlockKind::MiscCheck | BlockKind::FileCheck);
            match (block_kind, n.keyword()) {
                (_, "connect_ip") if connection => {
                    let a = self.address(n, |a| format!("Invalid connect_ip address {a} - ignoring"));
                    if a.zip(c.bindto).is_some_and(|(a, b)| a.is_ipv4() != b.is_ipv4()) {
                        let m = format!(
                            "connect_ip address {} does not match address family of bindto - skipping",
                            n.arg(0).unwrap_or("")
                        );
                        self.bad(n, &m);
                        c.connect_ip = None;
                    } else if a.is_some() {
                        c.connect_ip = a;
                    }
                }
                (_, "connect_port") if connection => match self.unsigned(n, 0, 1, 65535) {
                    Some(p) => c.connect_port = Some(p as u16),
                    None => self.bad(n, &format!("Invalid checker connect_port '{}'", n.arg(0).unwrap_or(""))),
                },
                (_, "bindto") if connection => {
                    let a = self.address(n, |a| format!("Invalid bindto address {a} - ignoring"));
                    if a.zip(c.connect_ip).is_some_and(|(a, d)| a.is_ipv4() != d.is_ipv4()) {
                        let m = format!(
                            "bindto address {} does not match address family of connect_ip - skipping",
                            n.arg(0).unwrap_or("")
                        );
                        self.bad(n, &m);
                        c.bindto = None;
                    } else if a.is_some() {
                        c.bindto = a;
                    }
                }
                (_, "bind_port") if connection => match self.unsigned(n, 0, 1, 65535) {
                    Some(p) => c.bind_port = Some(p as u16),
                    None => self.bad(n, &format!("Invalid checker bind_port '{}'", n.arg(0).unwrap_or(""))),
                },
                (_, "bind_if") if connection => match self.need(n, 0) {
                    Some(i) if i.len() > IFNAME_MAX => {
                        self.bad(n, &format!("Interface name {i} is too long - ignoring"))
                    }
                    i => c.bind_if = i.map(str::to_string).or(c.bind_if.take()),
                },
                (_, "fwmark") if connection => match self.unsigned(n, 0, 0, u64::from(u32::MAX)) {
                    Some(m) => c.fwmark = Some(m as u32),
                    None => self.bad(n, &format!("Invalid fwmark connection value '{}'", n.arg(0).unwrap_or(""))),
                },
                (k, "alpha") if k != BlockKind::FileCheck => c.alpha = self.flag(n, c.alpha),
                (k, "log_all_failures") if k != BlockKind::FileCheck => {
                    c.log_all_failures = self.flag(n, c.log_all_failures)
                }
                (BlockKind::HttpGet, "nb_get_retry") => {
                    self.diags.push(
                        Diag::warning(n.pos(), "nb_get_retry is deprecated - please use 'retry'")
                            .with_hint("read as 'retry'"),
                    );
                    match self.unsigned(n, 0, 0, u64::from(u32::MAX)) {
                        Some(v) => t.retry = Some(v as u32),
                        None => self.bad(n, &format!("Invalid nb_get_retry value '{}'", n.arg(0).unwrap_or(""))),
                    }
                }
                (BlockKind::HttpGet, "virtualhost") => match n.arg(0) {
                    Some(h) => http.virtualhost = Some(h.to_string()),
                    None => self.bad(n, "HTTP_GET virtualhost name missing"),
                },
                (BlockKind::HttpGet, "http_protocol") => match n.arg(0) {
                    Some(v @ ("1.0" | "1.1" | "1.0C" | "1.0c")) => http.http_protocol = Some(v.to_string()),
                    Some(v) => self.bad(n, &format!("Invalid http_protocol version {v}")),
                    None => self.bad(n, "Missing http_protocol version"),
                },
                (BlockKind::HttpGet, "enable_sni") => http.enable_sni = self.flag(n, http.enable_sni),
                (BlockKind::HttpGet, "fast_recovery") => http.fast_recovery = self.flag(n, http.fast_recovery),
                (BlockKind::HttpGet, "url") => {
                    if let Some(u) = self.url(n) {
                        http.urls.push(u);
                    }
                }
                (BlockKind::MiscCheck, "misc_path") => {
                    if let Some((argv, _)) = self.script(n) {
                        misc.path = argv;
                    }
                }
                (BlockKind::MiscCheck, "misc_timeout") => match self.unsigned(n, 0, 0, u64::from(u32::MAX / 1_000_000))
                {
                    Some(t) => misc.timeout = Some(Duration::from_secs(t)),
                    None => self.bad(n, &format!("Invalid misc_timeout value '{}'", n.arg(0).unwrap_or(""))),
                },
                (BlockKind::MiscCheck, "misc_dynamic") => misc.dynamic = true,
                (BlockKind::MiscCheck, "user") => match n.arg(0) {
                    Some(u) => {
                        misc.user = Some(ScriptUser { user: u.to_string(), group: n.arg(1).map(str::to_string) });
                        misc.user_pos = Some(n.pos().clone());
                    }
                    None => self.bad(
                        n,
                        &format!(
                            "No user specified for misc checker script {}",
                            misc.path.first().map_or("", |p| p.as_str())
                        ),
                    ),
                },
                (BlockKind::SmtpCheck, "helo_name") => helo = self.need(n, 0).map(str::to_string),
                (BlockKind::SmtpCheck, "host") => {
                    self.diags.push(Diag::warning(
                        n.pos(),
                        "The SMTP_CHECK host block is deprecated. Please define additional checkers.",
                    ));
                }
                (BlockKind::DnsCheck, "type") => match self.need(n, 0).map(str::to_ascii_uppercase) {
                    Some(t) if DNS_TYPES.contains(&t.as_str()) => dns_type = Some(t),
                    Some(_) => self.bad(n, &format!("Unknown DNS check type {} - ignoring", n.arg(0).unwrap_or(""))),
                    None => {}
                },
                (BlockKind::DnsCheck, "name") => match n.arg(0) {
                    _ if dns_name.is_some() => self.bad(n, "DNS_CHECK name already specified - ignoring"),
                    Some(name) if name.trim_end_matches('.').split('.').any(str::is_empty) && name != "." => {
                        self.bad(n, &format!("DNS_CHECK name '{name}' has empty label - ignoring"))
                    }
                    Some(name) => dns_name = Some(name.to_string()),
                    None => {
                        self.need(n, 0);
                    }
                },
                (BlockKind::UdpCheck, "payload") => match n.arg(0) {
                    None => self.bad(n, "UDP_CHECK payload requires a payload"),
                    Some(h) => match hex_bytes(h) {
                        Some(b) => udp.payload = Some(b),
                        None => self.bad(n, "Invalid hex string for UDP_CHECK payload"),
                    },
                },
                (BlockKind::UdpCheck, "require_reply") => match n.arg(0).and_then(hex_bytes) {
                    Some(b) => udp.require_reply = Some(b),
                    None => self.bad(n, "Invalid hex string for UDP_CHECK reply"),
                },
                (BlockKind::UdpCheck, kw @ ("min_reply_length" | "max_reply_length")) => {
                    let v = self.unsigned(n, 0, 0, 65535).map(|v| v as u32);
                    let which = if kw == "min_reply_length" { "min" } else { "max" };
                    if v.is_none() {
                        let m = format!(
                            "UDP_CHECK {which} length {} not valid - must be between 0 & 65535",
                            n.arg(0).unwrap_or("")
                        );
                        self.bad(n, &m);
                    } else if which == "min" {
                        udp.min_reply_length = v;
                    } else {
                        udp.max_reply_length = v;
                    }
                }
                (BlockKind::FileCheck, "track_file") => file = self.need(n, 0).map(str::to_string),
                (BlockKind::FileCheck, "weight") => file_weight = self.int(n, 0, -254, 254).map(|v| v as i32),
                _ => self.other(block_kind, n),
            }
        }
        c.timing = CheckTiming {
            delay_loop: t.delay_loop.or(rs.delay_loop).unwrap_or(Duration::from_secs(60)),
            connect_timeout: t.connect_timeout.or(rs.connect_timeout).unwrap_or(Duration::from_secs(5)),
            retry: t.retry.or(rs.retry).unwrap_or(default_retry),
            delay_before_retry: Duration::ZERO,
            warmup: Duration::ZERO,
        };
        c.timing.warmup = t.warmup.or(rs.warmup).unwrap_or(c.timing.delay_loop);
        c.timing.delay_before_retry =
            t.delay_before_retry.or(rs.delay_before_retry).or(default_dbr).unwrap_or(c.timing.delay_loop);
        c.kind = match block_kind {
            BlockKind::HttpGet => {
                if http.urls.is_empty() {
                    let end = node.block.as_ref().and_then(|b| b.close.clone()).unwrap_or_else(|| node.pos().clone());
                    self.diags.push(
                        Diag::warning(&end, "HTTP/SSL_GET checker has no urls specified - ignoring")
                            .with_hint("the checker would fail every time; give it a url { path / }"),
                    );
                    return None;
                }
                CheckKind::Http(http)
            }
            BlockKind::MiscCheck => {
                if misc.path.is_empty() {
                    let end = node.block.as_ref().and_then(|b| b.close.clone()).unwrap_or_else(|| node.pos().clone());
                    self.diags
                        .push(Diag::warning(&end, "No script path has been specified for MISC_CHECKER - skipping"));
                    return None;
                }
                CheckKind::Misc(misc)
            }
            BlockKind::SmtpCheck => CheckKind::Smtp { helo_name: helo },
            BlockKind::DnsCheck => CheckKind::Dns {
                query_type: dns_type.unwrap_or_else(|| "SOA".into()),
                name: dns_name.unwrap_or_else(|| ".".into()),
            },
            BlockKind::UdpCheck => {
                if let (Some(lo), Some(hi)) = (udp.min_reply_length, udp.max_reply_length) {
                    if lo > hi {
                        let end =
                            node.block.as_ref().and_then(|b| b.close.clone()).unwrap_or_else(|| node.pos().clone());
                        let m = format!("UDP_CHECK min_reply length {lo} > max_reply_length {hi} - will always fail");
                        self.diags.push(Diag::warning(&end, m));
                    }
                }
                CheckKind::Udp(udp)
            }
            BlockKind::PingCheck => CheckKind::Ping,
            BlockKind::FileCheck => match file {
                Some(f) => CheckKind::File { track_file: f, weight: file_weight },
                None => {
                    self.bad(node, "FILE_CHECK has no track_file - ignoring");
                    return None;
                }
            },
            _ => CheckKind::Tcp,
        };
        if !matches!(block_kind, BlockKind::MiscCheck | BlockKind::FileCheck) {
            let dst = c.connect_ip.unwrap_or(rs_addr);
            let link_local = matches!(dst, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80);
            if link_local && c.bind_if.is_none() {
                let end = node.block.as_ref().and_then(|b| b.close.clone()).unwrap_or_else(|| node.pos().clone());
                self.diags.push(
                    Diag::warning(&end, format!("Checker link local address {dst} requires a bind_if"))
                        .with_hint("a link-local address means nothing without its interface; the checker is dropped"),
                );
                return None;
            }
        }
        Some(c)
    }

    fn url(&mut self, node: &Node) -> Option<Url> {
        let children = self.block(node)?;
        let mut u = Url {
            pos: node.pos().clone(),
            path: String::new(),
            digest: None,
            status_codes: Vec::new(),
            virtualhost: None,
        };
        for n in children {
            self.no_block(n);
            match n.keyword() {
                "path" => u.path = self.need(n, 0).unwrap_or_default().to_string(),
                "digest" if u.digest.is_some() => {
                    self.bad(n, &format!("Digest '{}' is a duplicate", n.arg(0).unwrap_or("")))
                }
                "digest" => match self.need(n, 0) {
                    Some(d) if d.len() == 32 && d.chars().all(|c| c.is_ascii_hexdigit()) => {
                        u.digest = Some(d.to_ascii_lowercase())
                    }
                    Some(d) if d.len() != 32 => {
                        self.bad(n, &format!("digest '{d}' character length should be 32 rather than {}", d.len()))
                    }
                    Some(d) => {
                        let at = d.chars().position(|c| !c.is_ascii_hexdigit()).unwrap_or(0);
                        self.bad(n, &format!("Unable to interpret hex digit in '{d}' at offset {}/{}", at, d.len()))
                    }
                    None => {}
                },
                "status_code" => {
                    for w in n.args() {
                        let range = match w.text.split_once('-') {
                            Some((a, b)) => a.parse().ok().zip(b.parse().ok()),
                            None => w.text.parse().ok().map(|c| (c, c)),
                        };
                        match range {
                            Some((a, b)) if (100..=999).contains(&a) && a <= b && b <= 999 => {
                                u.status_codes.push((a, b))
                            }
                            _ => self
                                .diags
                                .push(Diag::warning(&w.pos, format!("Invalid HTTP_GET status code '{}'", w.text))),
                        }
                    }
                }
                "virtualhost" => match n.arg(0) {
                    Some(h) => u.virtualhost = Some(h.to_string()),
                    None => self.bad(n, "Missing HTTP_GET virtualhost name"),
                },
                _ => self.other(BlockKind::Url, n),
            }
        }
        if u.path.is_empty() {
            let end = node.block.as_ref().and_then(|b| b.close.clone()).unwrap_or_else(|| node.pos().clone());
            self.diags.push(Diag::warning(&end, "HTTP/SSL_GET checker url has no path - ignoring"));
            return None;
        }
        Some(u)
    }
}

/// A virtual_server_group entry, read as keepalived's alloc_vsg_entry reads
/// it, with its message for each way it can be wrong.
fn vsg_range(s: &str, port_text: Option<&str>) -> Result<(IpAddr, IpAddr, u16), String> {
    let v6 = s.contains(':');
    let parse = |t: &str| -> Option<IpAddr> {
        if v6 {
            t.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
        } else {
            t.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
        }
    };
    let cut = s.find('-').or_else(|| s.find('/')).unwrap_or(s.len());
    let port = match port_text {
        None => Some(0),
        Some(p) => p.parse::<u16>().ok().filter(|&p| p >= 1),
    };
    let (Some(first), Some(port)) = (parse(&s[..cut]), port) else {
        let p = port_text.map(|p| format!("/port/{p}")).unwrap_or_default();
        return Err(format!("Invalid virtual server group IP address {s} {p} - skipping"));
    };
    let bits = if v6 { 128 } else { 32 };
    let as_int = |a: IpAddr| match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    };
    let from_int = |v: u128| -> IpAddr {
        if v6 {
            IpAddr::from(std::net::Ipv6Addr::from(v))
        } else {
            IpAddr::from(std::net::Ipv4Addr::from(v as u32))
        }
    };
    if let Some((_, mask)) = s.split_once('/') {
        let mask: u32 = mask
            .parse()
            .ok()
            .filter(|&m| m >= 1 && m <= bits)
            .ok_or_else(|| format!("Invalid netmask - {s} - skipping"))?;
        if mask == bits {
            return Ok((first, first, port));
        }
        let host = (1u128 << (bits - mask)) - 1;
        if as_int(first) & host != 0 {
            return Err(format!("Address mask bits not empty - {s} - skipping"));
        }
        return Ok((first, from_int(as_int(first) | host), port));
    }
    let Some((_, end)) = s.split_once('-') else {
        return Ok((first, first, port));
    };
    if end.contains(if v6 { ':' } else { '.' }) {
        let last = match (end.contains(':'), end) {
            (true, e) => e.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6),
            (false, e) => e.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
        }
        .ok_or_else(|| format!("Invalid range end {s} - skipping"))?;
        if last.is_ipv4() != first.is_ipv4() {
            return Err(format!("Range address families do not match {s} - skipping"));
        }
        if as_int(last) < as_int(first) {
            return Err(format!("Address range end is less than address range start - {s} - skipping"));
        }
        return Ok((first, last, port));
    }
    // keepalived's inet_stor: the last octet (decimal) or group (hex).
    let digits_end = end.find(|c: char| !c.is_ascii_hexdigit() || (!v6 && !c.is_ascii_digit())).unwrap_or(end.len());
    if digits_end < end.len() {
        return Err(format!("Virtual server group range '{s}' has extra characters at end '{}'", &end[digits_end..]));
    }
    let range = if end.is_empty() { Some(0) } else { u64::from_str_radix(end, if v6 { 16 } else { 10 }).ok() };
    let low_max: u64 = if v6 { 0xffff } else { 0xff };
    let range = range
        .filter(|&r| r <= low_max)
        .ok_or_else(|| format!("Virtual server group range '{s}' end '{end}' too large"))?;
    let start = as_int(first) & u128::from(low_max);
    if start >= u128::from(range) {
        return Err(format!("Address range end is not greater than address range start - {s} - skipping"));
    }
    Ok((first, from_int((as_int(first) & !u128::from(low_max)) | u128::from(range)), port))
}

/// A hex string as keepalived's read_hex_str reads it: pairs of digits
/// (spaces between bytes allowed, a lone digit a byte of its own), None
/// for anything else. It also refuses a string whose last byte is 0xff
/// (its end-of-input test and its 0xff error marker are one value); rlvs
/// refuses the same, so a file means the same to both.
fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i == b.len() {
            break;
        }
        let mut v = digit(b[i])?;
        i += 1;
        if i < b.len() && b[i] != b' ' {
            v = (v << 4) | digit(b[i])?;
            i += 1;
        }
        out.push(v);
    }
    (!out.is_empty() && out.last() != Some(&0xff)).then_some(out)
}

/// An IPv4 address as inet_aton reads it (and so getaddrinfo with
/// AI_NUMERICHOST): one to four parts, each decimal, octal (0…) or hex
/// (0x…), the last filling the remaining bytes.
fn inet_aton(s: &str) -> Option<std::net::Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut vals = Vec::with_capacity(parts.len());
    for p in &parts {
        let v = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            u32::from_str_radix(h, 16).ok()?
        } else if p.len() > 1 && p.starts_with('0') {
            u32::from_str_radix(&p[1..], 8).ok()?
        } else {
            p.parse::<u32>().ok()?
        };
        vals.push(v);
    }
    let (last, head) = vals.split_last()?;
    if head.iter().any(|&v| v > 255) {
        return None;
    }
    let room = 8 * (4 - head.len()) as u32;
    if room < 32 && *last >= 1u32 << room {
        return None;
    }
    let mut v: u32 = 0;
    for (i, h) in head.iter().enumerate() {
        v |= h << (24 - 8 * i);
    }
    Some(std::net::Ipv4Addr::from(v | last))
}

/// DNS_CHECK's query types (check_dns.c).
const DNS_TYPES: &[&str] = &["A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"];

impl Builder {
    /// keepalived's validate_check_config for one virtual server: one-packet
    /// scheduling, port 0, quorum and hysteresis, and real and sorry server
    /// ports that DR and TUN cannot change (reset to the service's).
    fn complete_virtual_server(&mut self, node: &Node, vs: &mut VirtualServer, proto: Option<VsProtocol>) {
        let name = vs_name(vs, proto);
        let warn = |b: &mut Self, m: String| b.diags.push(Diag::warning(node.pos(), m));
        let vport = match vs.target {
            VsTarget::Addr { port, .. } => Some(port),
            _ => None,
        };
        if vport.is_some() {
            if vs.ops && vs.protocol != VsProtocol::Udp {
                warn(self, format!("Virtual server {name}: one packet scheduling requires UDP - resetting"));
                vs.ops = false;
            }
            if vport == Some(0) && vs.persistence_timeout.is_none() {
                warn(self, format!("Virtual server {name}: zero port only valid for persistent services - setting"));
                vs.persistence_timeout = Some(360);
            }
        }
        if let Some((sa, sp)) = vs.sorry_server {
            let p = proto_name(proto);
            if let Some(rs) = vs.real_servers.iter().find(|r| r.addr == sa && r.port == sp) {
                if rs.inhibit_on_failure != vs.sorry_server_inhibit {
                    let verb = if rs.inhibit_on_failure { "sett" } else { "clear" };
                    let m = format!(
                        "Virtual server {name}: real server [{}]:{p}:{} matches sorry server, but inhibit setting differs, {verb}ing on sorry server",
                        rs.addr, rs.port
                    );
                    warn(self, m);
                    vs.sorry_server_inhibit = rs.inhibit_on_failure;
                }
            }
        }
        let weight_sum: u64 = vs.real_servers.iter().map(|r| r.weight.max(0) as u64).sum();
        if u64::from(vs.quorum) > weight_sum && !vs.real_servers.is_empty() {
            warn(
                self,
                format!(
                    "Warning - quorum {} for {name} exceeds total weight of real servers {weight_sum}, reducing quorum to {weight_sum}",
                    vs.quorum
                ),
            );
            vs.quorum = weight_sum as u32;
        }
        if vs.hysteresis >= vs.quorum && !vs.real_servers.is_empty() {
            let h = vs.quorum.saturating_sub(1);
            warn(
                self,
                format!(
                    "Virtual server {name}: hysteresis {} >= quorum {}; setting hysteresis to {h}",
                    vs.hysteresis, vs.quorum
                ),
            );
            vs.hysteresis = h;
        }
        if let Some(vp) = vport {
            let p = proto_name(proto);
            // NAT and rlvs's FULLNAT map ports; DR and TUN cannot.
            for rs in vs.real_servers.iter_mut().filter(|r| matches!(r.lvs_method, LbKind::Dr | LbKind::Tun)) {
                if rs.port == 0 {
                    rs.port = vp;
                } else if rs.port != vp {
                    let m = format!(
                        "WARNING - virtual server {name} and real server [{}]:{p}:{} ports don't match - resetting",
                        rs.addr, rs.port
                    );
                    self.diags.push(Diag::warning(&rs.pos, m));
                    rs.port = vp;
                }
            }
            let sorry_nat = !matches!(vs.sorry_server_lvs_method.unwrap_or(vs.lb_kind), LbKind::Dr | LbKind::Tun);
            if let Some((a, sp)) = vs.sorry_server.filter(|_| !sorry_nat) {
                if sp == 0 {
                    vs.sorry_server = Some((a, vp));
                } else if sp != vp {
                    warn(
                        self,
                        format!("WARNING - virtual server {name} and sorry server ports don't match - resetting"),
                    );
                    vs.sorry_server = Some((a, vp));
                }
            }
        }
    }

    /// An address argument, or keepalived's message for one that does not
    /// read.
    fn address(&mut self, n: &Node, message: impl Fn(&str) -> String) -> Option<IpAddr> {
        let text = self.need(n, 0)?;
        let a = parse_ip(text);
        if a.is_none() {
            self.bad(n, &message(text));
        }
        a
    }

    /// Once every group is read: a fwmark service balances by mark, so a
    /// real server's port means nothing there (keepalived warns and drops
    /// it).
    pub(super) fn check_fwmark_ports(&mut self, c: &mut Config) {
        for vs in &mut c.virtual_servers {
            let name = vs_name(vs, Some(vs.protocol));
            let p = proto_name(Some(vs.protocol));
            let sorry_port = vs
                .sorry_server
                .filter(|_| matches!(vs.sorry_server_lvs_method.unwrap_or(vs.lb_kind), LbKind::Dr | LbKind::Tun))
                .map(|(_, port)| port)
                .filter(|&port| port != 0);
            // A fwmark service has no protocol of its own (keepalived: none).
            let rs_proto = if matches!(vs.target, VsTarget::Fwmark(_)) { "none" } else { p };
            let rs_name = |rs: &RealServer| format!("[{}]:{rs_proto}:{}", rs.addr, rs.port);
            let fixed_port = |rs: &&mut RealServer| rs.port != 0 && matches!(rs.lvs_method, LbKind::Dr | LbKind::Tun);
            match &vs.target {
                VsTarget::Fwmark(_) => {
                    for rs in vs.real_servers.iter_mut().filter(fixed_port) {
                        let m = format!(
                            "WARNING - fwmark virtual server {name}, real server {} has port specified - clearing",
                            rs_name(rs)
                        );
                        self.diags.push(Diag::warning(&rs.pos, m));
                        rs.port = 0;
                    }
                    if sorry_port.is_some() {
                        let m = format!("WARNING - virtual server {name}, sorry server has port specified - clearing");
                        self.diags.push(Diag::warning(&vs.pos, m));
                        if let Some(s) = vs.sorry_server.as_mut() {
                            s.1 = 0;
                        }
                    }
                }
                VsTarget::Group(g) => {
                    let Some(group) = c.vs_groups.iter().find(|x| &x.name == g) else { continue };
                    if group.entries.iter().any(|(e, _)| matches!(e, VsgEntry::Fwmark(_))) {
                        for rs in vs.real_servers.iter_mut().filter(fixed_port) {
                            let m = format!(
                                "WARNING - fwmark virtual server {name}, real server {} has port specified - port will be ignored",
                                rs_name(rs)
                            );
                            self.diags.push(Diag::warning(&rs.pos, m));
                        }
                        if sorry_port.is_some() {
                            let m = format!(
                                "WARNING - fwmark virtual server {name}, sorry server has port specified - port will be ignored"
                            );
                            self.diags.push(Diag::warning(&vs.pos, m));
                        }
                    }
                    for (e, _) in &group.entries {
                        let VsgEntry::Range { first, last, port } = e else { continue };
                        let entry =
                            if first == last { format!("{first},{port}") } else { format!("{first}-{last},{port}") };
                        for rs in vs.real_servers.iter_mut().filter(fixed_port).filter(|r| r.port != *port) {
                            let m = format!(
                                "virtual server {name}:[{entry}] and real server {} ports don't match",
                                rs_name(rs)
                            );
                            self.diags.push(Diag::warning(&rs.pos, m));
                        }
                        if sorry_port.is_some_and(|sp| sp != *port) {
                            let m = format!("WARNING - virtual server {name}, sorry server has port specified - port will be ignored");
                            self.diags.push(Diag::warning(&vs.pos, m));
                        }
                    }
                }
                VsTarget::Addr { .. } => {}
            }
        }
    }
}

fn proto_name(p: Option<VsProtocol>) -> &'static str {
    match p {
        Some(VsProtocol::Tcp) => "tcp",
        Some(VsProtocol::Udp) => "udp",
        Some(VsProtocol::Sctp) => "sctp",
        None => "none",
    }
}

/// keepalived's FMT_VS: `[10.1.1.100]:tcp:80`, `FWM 12`, `[GROUP]:0`.
pub(super) fn vs_name(vs: &VirtualServer, proto: Option<VsProtocol>) -> String {
    match &vs.target {
        VsTarget::Addr { addr, port } => format!("[{addr}]:{}:{port}", proto_name(proto)),
        VsTarget::Fwmark(m) => format!("FWM {m}"),
        VsTarget::Group(g) => format!("[{g}]:0"),
    }
}
