//! Health checkers: HTTP_GET/SSL_GET, TCP, MISC, SMTP, DNS, UDP, PING and
//! FILE, with their connection options and timing.

use super::*;

impl Builder {
    pub(super) fn checker(&mut self, node: &Node, rs: Timing, rs_addr: IpAddr) -> Option<Checker> {
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

    pub(super) fn url(&mut self, node: &Node) -> Option<Url> {
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

/// A hex string as keepalived's read_hex_str reads it: pairs of digits
/// (spaces between bytes allowed, a lone digit a byte of its own), None
/// for anything else. It also refuses a string whose last byte is 0xff
/// (its end-of-input test and its 0xff error marker are one value); rlvs
/// refuses the same, so a file means the same to both.
pub(super) fn hex_bytes(s: &str) -> Option<Vec<u8>> {
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

/// DNS_CHECK's query types (check_dns.c).
pub(super) const DNS_TYPES: &[&str] = &["A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"];
