//! Kernel IPVS's connection table as `/proc/net/ip_vs_conn` shows it: the
//! IPVS netlink family has no connection dump, and ipvsadm -Lc reads this
//! file too. A line is `Pro FromIP FPrt ToIP TPrt DestIP DPrt State Expires
//! [PEName PEData]`; IPv4 addresses are 8 hex digits in host order, IPv6
//! ones the kernel's `%pI6` (the destination in brackets on newer kernels
//! when its family differs), ports 4 hex digits, expiry in seconds.

use rlvs_lvs::director::ConnInfo;
use rlvs_lvs::Protocol;
use std::net::{IpAddr, Ipv4Addr};

pub const PROC_FILE: &str = "/proc/net/ip_vs_conn";

/// Every entry of the file's text, in the kernel's order. Lines that do not
/// parse (a protocol rlvs does not model, a format from a future kernel)
/// are skipped rather than guessed at.
pub fn parse(text: &str) -> Vec<ConnInfo> {
    text.lines().skip(1).filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<ConnInfo> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 9 {
        return None;
    }
    let protocol = match f[0] {
        "TCP" => Protocol::Tcp,
        "UDP" => Protocol::Udp,
        "SCTP" => Protocol::Sctp,
        _ => return None,
    };
    Some(ConnInfo {
        protocol,
        caddr: addr(f[1])?,
        cport: u16::from_str_radix(f[2], 16).ok()?,
        vaddr: addr(f[3])?,
        vport: u16::from_str_radix(f[4], 16).ok()?,
        daddr: addr(f[5])?,
        dport: u16::from_str_radix(f[6], 16).ok()?,
        state: f[7].to_string(),
        expires: f[8].parse().ok()?,
    })
}

fn addr(s: &str) -> Option<IpAddr> {
    let s = s.trim_start_matches('[').trim_end_matches(']');
    if s.len() == 8 && !s.contains(':') {
        return u32::from_str_radix(s, 16).ok().map(|v| IpAddr::V4(Ipv4Addr::from(v)));
    }
    s.parse().ok()
}

/// The table now, or the error opening the file gives (no ip_vs loaded).
pub fn read() -> std::io::Result<Vec<ConnInfo>> {
    std::fs::read_to_string(PROC_FILE).map(|t| parse(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_families_and_the_bracketed_destination() {
        let text = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n\
TCP 0A01010A C350 0A000064 0050 0A0101F4 0050 ESTABLISHED     899\n\
UDP 2001:0db8:0000:0000:0000:0000:0000:0001 0035 2001:0db8:0000:0000:0000:0000:0000:0064 0035 [2001:0db8:0000:0000:0000:0000:0000:00f4] 0035 UDP             298\n\
ESP 0A01010A 0000 0A000064 0000 0A0101F4 0000 NONE             10\n\
TCP 0A01010A C351 0A000064 0050 0A0101F5 0050 NONE            359 sip 3130\n";
        let c = parse(text);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].caddr.to_string(), "10.1.1.10");
        assert_eq!(c[0].cport, 50000);
        assert_eq!(c[0].vaddr.to_string(), "10.0.0.100");
        assert_eq!(c[0].daddr.to_string(), "10.1.1.244");
        assert_eq!((c[0].state.as_str(), c[0].expires), ("ESTABLISHED", 899));
        assert_eq!(c[1].protocol, Protocol::Udp);
        assert_eq!(c[1].daddr.to_string(), "2001:db8::f4");
        assert_eq!(c[2].state, "NONE");
        assert_eq!(c[2].dport, 80);
    }

    #[test]
    fn short_or_garbled_lines_are_skipped() {
        let text = "header\nTCP 0A01010A\nTCP ZZZZZZZZ C350 0A000064 0050 0A0101F4 0050 ESTABLISHED 1\n\n";
        assert!(parse(text).is_empty());
    }
}
