//! Virtual addresses and unicast peers, as alloc_ipaddress and
//! alloc_vrrp_unicast_peer read them.

use super::*;

impl Builder {
    /// `ADDR[/PREFIX] [brd A] [dev IF] [scope S] [label L] [peer A] [home]
    /// [-nodad] [noprefixroute] [no_track] ...`.
    pub(super) fn vip(&mut self, n: &Node) -> Option<Vip> {
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

    pub(super) fn unicast_peer(&mut self, n: &Node, iname: &str) -> Option<UnicastPeer> {
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
}
