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

mod checker;
mod group;
mod validate;

use validate::{proto_name, vs_name};

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
                            // 15 bytes, as the kernel's field, but whole
                            // characters (found by fuzzing: a cut inside one).
                            let cut = (0..=15).rev().find(|&i| pe.is_char_boundary(i)).unwrap_or(0);
                            &pe[..cut]
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
