//! virtual_server_group and local_address_group entries, as
//! alloc_vsg_entry reads them.

use super::*;

impl Builder {
    /// `local_address_group NAME { ADDR [IFNAME] ... }`.
    pub(in crate::build) fn laddr_group(&mut self, node: &Node) -> Option<LaddrGroup> {
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

    pub(in crate::build) fn vs_group(&mut self, node: &Node) -> Option<VirtualServerGroup> {
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
}

/// A virtual_server_group entry, read as keepalived's alloc_vsg_entry reads
/// it, with its message for each way it can be wrong.
pub(super) fn vsg_range(s: &str, port_text: Option<&str>) -> Result<(IpAddr, IpAddr, u16), String> {
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
