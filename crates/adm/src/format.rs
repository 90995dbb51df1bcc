//! ipvsadm's listings, byte for byte: print_title, print_service_entry,
//! list_conn, and the glibc merge sort ipvsadm's qsort call performs.

use crate::resolve;
use rlvs_lvs::director::{ConnInfo, DestInfo, ServiceInfo};
use rlvs_lvs::types::svc_flags;
use rlvs_lvs::{FwdMethod, Protocol};
use std::fmt::Write;
use std::net::IpAddr;

pub const FMT_NUMERIC: u32 = 0x0001;
pub const FMT_RULE: u32 = 0x0002;
pub const FMT_STATS: u32 = 0x0004;
pub const FMT_RATE: u32 = 0x0008;
pub const FMT_THRESHOLDS: u32 = 0x0010;
pub const FMT_PERSISTENTCONN: u32 = 0x0020;
pub const FMT_NOSORT: u32 = 0x0040;
pub const FMT_EXACT: u32 = 0x0080;
pub const FMT_TUN_INFO: u32 = 0x0100;

const TUNNAMES: [&str; 3] = ["ipip", "gue", "gre"];
const TUNFLAGS: [&str; 3] = ["-c", "+c", "r+c"];
const TUN_FLAG_OPTS: [&str; 3] = ["--tun-nocsum", "--tun-csum", "--tun-remcsum"];

/// glibc's qsort for arrays that fit its scratch space: a top-down merge sort
/// that takes from the left run while cmp <= 0. ipvsadm's comparators are
/// not transitive (they subtract addresses in 32-bit arithmetic), so only the
/// same algorithm gives the same order.
pub fn glibc_msort<T: Clone>(v: &mut [T], cmp: &impl Fn(&T, &T) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    glibc_msort(&mut v[..n1], cmp);
    glibc_msort(&mut v[n1..], cmp);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            merged.push(v[i].clone());
            i += 1;
        } else {
            merged.push(v[j].clone());
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..n1]);
    merged.extend_from_slice(&v[j..n]);
    v.clone_from_slice(&merged);
}

fn af(a: &IpAddr) -> i32 {
    if a.is_ipv4() {
        2
    } else {
        10
    }
}

/// `ntohl(a) - ntohl(b)` word by word, as int.
fn addr_diff(a: &IpAddr, b: &IpAddr) -> i32 {
    match (a, b) {
        (IpAddr::V4(x), IpAddr::V4(y)) => u32::from(*x).wrapping_sub(u32::from(*y)) as i32,
        (IpAddr::V6(x), IpAddr::V6(y)) => {
            let (x, y) = (x.octets(), y.octets());
            for i in 0..4 {
                let wx = u32::from_be_bytes(x[i * 4..i * 4 + 4].try_into().unwrap());
                let wy = u32::from_be_bytes(y[i * 4..i * 4 + 4].try_into().unwrap());
                let r = wx.wrapping_sub(wy) as i32;
                if r != 0 {
                    return r;
                }
            }
            0
        }
        _ => af(a) - af(b),
    }
}

pub fn cmp_services(a: &ServiceInfo, b: &ServiceInfo) -> i32 {
    let r = a.key.fwmark.wrapping_sub(b.key.fwmark) as i32;
    if r != 0 {
        return r;
    }
    let r = af(&a.key.addr) - af(&b.key.addr);
    if r != 0 {
        return r;
    }
    let r = i32::from(a.key.protocol.number()) - i32::from(b.key.protocol.number());
    if r != 0 {
        return r;
    }
    let r = addr_diff(&a.key.addr, &b.key.addr);
    if r != 0 {
        return r;
    }
    i32::from(a.key.port) - i32::from(b.key.port)
}

pub fn cmp_dests(a: &DestInfo, b: &DestInfo) -> i32 {
    let r = addr_diff(&a.config.addr, &b.config.addr);
    if r != 0 {
        return r;
    }
    i32::from(a.config.port) - i32::from(b.config.port)
}

/// addrport_to_anyname.
pub fn addrport(addr: IpAddr, port: u16, proto: Protocol, format: u32) -> String {
    let (open, close) = if addr.is_ipv4() { ("", "") } else { ("[", "]") };
    if format & FMT_NUMERIC != 0 {
        format!("{open}{addr}{close}:{port}")
    } else {
        let host = resolve::addr_to_host(addr).unwrap_or_else(|| addr.to_string());
        let svc = resolve::port_to_service(port, proto.number()).unwrap_or_else(|| port.to_string());
        format!("{open}{host}{close}:{svc}")
    }
}

/// C's `buf[n] = '\0'` on a byte string.
fn cut(s: &mut String, n: usize) {
    if s.len() > n {
        let mut k = n;
        while !s.is_char_boundary(k) {
            k -= 1;
        }
        s.truncate(k);
    }
}

fn largenum(out: &mut String, i: u64, format: u32) {
    if format & FMT_EXACT != 0 {
        let len = i.to_string().len();
        let w = if len <= 8 { 9 } else { len + 1 };
        let _ = write!(out, "{i:>w$}");
        return;
    }
    let _ = match i {
        i if i < 100_000_000 => write!(out, "{i:>9}"),
        i if i < 1_000_000_000 => write!(out, "{:>8}K", i / 1000),
        i if i < 100_000_000_000 => write!(out, "{:>8}M", i / 1_000_000),
        i if i < 100_000_000_000_000 => write!(out, "{:>8}G", i / 1_000_000_000),
        i => write!(out, "{:>8}T", i / 1_000_000_000_000),
    };
}

fn fwd_name(f: FwdMethod) -> &'static str {
    match f {
        FwdMethod::Masq => "Masq",
        FwdMethod::Local => "Local",
        FwdMethod::Tunnel => "Tunnel",
        FwdMethod::DirectRoute => "Route",
        FwdMethod::FullNat => "FullNat",
    }
}

fn fwd_switch(f: FwdMethod) -> &'static str {
    match f {
        FwdMethod::Masq => "-m",
        FwdMethod::Tunnel => "-i",
        FwdMethod::Local | FwdMethod::DirectRoute => "-g",
        FwdMethod::FullNat => "--fullnat",
    }
}

fn sched_flags(s: &ServiceInfo) -> String {
    let f = s.config.flags;
    let mut v = Vec::new();
    let named: &[(u32, &str)] = match s.config.scheduler.as_str() {
        "sh" => &[(svc_flags::SCHED1, "sh-fallback"), (svc_flags::SCHED2, "sh-port")],
        "mh" => &[(svc_flags::SCHED1, "mh-fallback"), (svc_flags::SCHED2, "mh-port")],
        _ => &[(svc_flags::SCHED1, "flag-1"), (svc_flags::SCHED2, "flag-2"), (svc_flags::SCHED3, "flag-3")],
    };
    for (bit, name) in named {
        if f & bit != 0 {
            v.push(*name);
        }
    }
    v.join(",")
}

pub fn title(out: &mut String, format: u32) {
    let p = "Prot LocalAddress:Port";
    let _ = if format & FMT_STATS != 0 {
        writeln!(
            out,
            "{p:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        )
    } else if format & FMT_RATE != 0 {
        writeln!(
            out,
            "{p:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        )
    } else if format & FMT_THRESHOLDS != 0 {
        writeln!(
            out,
            "{p:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        )
    } else if format & FMT_PERSISTENTCONN != 0 {
        writeln!(
            out,
            "{p:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        )
    } else if format & FMT_TUN_INFO != 0 {
        writeln!(out, "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn")
    } else if format & FMT_RULE == 0 {
        writeln!(out, "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn")
    } else {
        Ok(())
    };
}

fn tun_info(d: &DestInfo) -> Option<String> {
    if d.config.fwd != FwdMethod::Tunnel {
        return None;
    }
    match d.config.tun_type {
        0 => Some("ipip".into()),
        t @ (1 | 2) => Some(format!(
            "{}:{}:{}",
            TUNNAMES[t as usize],
            d.config.tun_port,
            TUNFLAGS.get(d.config.tun_flags as usize).unwrap_or(&"?")
        )),
        _ => None,
    }
}

pub fn service_entry(out: &mut String, se: &ServiceInfo, format: u32) {
    let proto = se.key.protocol;
    let v6 = se.key.addr.is_ipv6();
    let svc_name = if se.key.fwmark != 0 {
        match (format & FMT_RULE != 0, v6) {
            (true, true) => format!("-f {} -6", se.key.fwmark),
            (true, false) => format!("-f {}", se.key.fwmark),
            (false, true) => format!("FWM  {} IPv6", se.key.fwmark),
            (false, false) => format!("FWM  {}", se.key.fwmark),
        }
    } else {
        let vname = addrport(se.key.addr, se.key.port, proto, format);
        if format & FMT_RULE != 0 {
            let opt = match proto {
                Protocol::Tcp => "-t",
                Protocol::Udp => "-u",
                Protocol::Sctp => "--sctp-service",
            };
            format!("{opt} {vname}")
        } else {
            let mut s = format!("{:<4} {vname}", proto.name());
            if !v6 {
                cut(&mut s, 33);
            }
            s
        }
    };
    let c = &se.config;
    let persistent = c.flags & svc_flags::PERSISTENT != 0;
    let has_sched_flags = c.flags & (svc_flags::SCHED1 | svc_flags::SCHED2 | svc_flags::SCHED3) != 0;
    if format & FMT_RULE != 0 {
        let _ = write!(out, "-A {svc_name} -s {}", c.scheduler);
        if persistent {
            let _ = write!(out, " -p {}", c.timeout);
            if !v6 && c.netmask != 0xffff_ffff {
                let _ = write!(out, " -M {}", std::net::Ipv4Addr::from(c.netmask));
            }
            if v6 && c.netmask != 128 {
                let _ = write!(out, " -M {}", c.netmask);
            }
        }
        if !c.pe_name.is_empty() {
            let _ = write!(out, " --pe {}", c.pe_name);
        }
        if c.flags & svc_flags::ONEPACKET != 0 {
            out.push_str(" -o");
        }
        if has_sched_flags {
            let _ = write!(out, " -b {}", sched_flags(se));
        }
    } else if format & (FMT_STATS | FMT_RATE) != 0 {
        let _ = write!(out, "{svc_name:<33}");
        let s = &se.stats;
        let r = &se.rates;
        let vals = if format & FMT_STATS != 0 {
            [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes]
        } else {
            [r.cps, r.inpps, r.outpps, r.inbps, r.outbps]
        };
        for v in vals {
            largenum(out, v, format);
        }
    } else {
        let _ = write!(out, "{svc_name} {}", c.scheduler);
        if has_sched_flags {
            let _ = write!(out, " ({})", sched_flags(se));
        }
        if persistent {
            let _ = write!(out, " persistent {}", c.timeout);
            if !v6 && c.netmask != 0xffff_ffff {
                let _ = write!(out, " mask {}", std::net::Ipv4Addr::from(c.netmask));
            }
            if v6 && c.netmask != 128 {
                let _ = write!(out, " mask {}", c.netmask);
            }
            if !c.pe_name.is_empty() {
                let _ = write!(out, " pe {}", c.pe_name);
            }
        }
        if c.flags & svc_flags::ONEPACKET != 0 {
            out.push_str(" ops");
        }
    }
    out.push('\n');
    if format & FMT_RULE != 0 {
        // rlvs: FULLNAT local addresses, restorable right after the service.
        for l in &se.laddrs {
            let _ = writeln!(out, "--add-laddr {svc_name} -z {l}");
        }
    }

    let mut dests = se.dests.clone();
    if format & FMT_NOSORT == 0 {
        glibc_msort(&mut dests, &cmp_dests);
    }
    for d in &dests {
        let dc = &d.config;
        let mut dname = addrport(dc.addr, dc.port, proto, format);
        if format & FMT_RULE == 0 && dc.addr.is_ipv4() {
            cut(&mut dname, 28);
        }
        let _ = if format & FMT_RULE != 0 {
            let sw = fwd_switch(dc.fwd);
            match (dc.fwd, dc.tun_type) {
                (FwdMethod::Tunnel, 1 | 2) => writeln!(
                    out,
                    "-a {svc_name} -r {dname} {sw} -w {} --tun-type {} --tun-port {} {}",
                    dc.weight,
                    TUNNAMES[dc.tun_type as usize],
                    dc.tun_port,
                    TUN_FLAG_OPTS.get(dc.tun_flags as usize).unwrap_or(&"")
                ),
                (FwdMethod::Tunnel, 0) => {
                    writeln!(out, "-a {svc_name} -r {dname} {sw} -w {} --tun-type ipip", dc.weight)
                }
                _ => writeln!(out, "-a {svc_name} -r {dname} {sw} -w {}", dc.weight),
            }
        } else if format & FMT_STATS != 0 {
            let _ = write!(out, "  -> {dname:<28}");
            let s = &d.stats;
            for v in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                largenum(out, v, format);
            }
            writeln!(out)
        } else if format & FMT_RATE != 0 {
            let r = &d.rates;
            let _ = write!(out, "  -> {dname:<28} {:>8} {:>8} {:>8}", r.cps, r.inpps, r.outpps);
            largenum(out, r.inbps, format);
            largenum(out, r.outbps, format);
            writeln!(out)
        } else if format & FMT_THRESHOLDS != 0 {
            writeln!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                dc.u_threshold, dc.l_threshold, d.activeconns, d.inactconns
            )
        } else if format & FMT_PERSISTENTCONN != 0 {
            writeln!(
                out,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                dc.weight, d.persistconns, d.activeconns, d.inactconns
            )
        } else if format & FMT_TUN_INFO != 0 {
            let ti = tun_info(d).unwrap_or_else(|| "n/a".into());
            writeln!(
                out,
                "  -> {dname:<28} {:<7} {ti:<13} {:<6} {:<10} {:<10}",
                fwd_name(dc.fwd),
                dc.weight,
                d.activeconns,
                d.inactconns
            )
        } else {
            writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                fwd_name(dc.fwd),
                dc.weight,
                d.activeconns,
                d.inactconns
            )
        };
    }
}

pub fn conn_header(out: &mut String, format: u32) {
    out.push_str("IPVS connection entries\n");
    let _ = if format & FMT_PERSISTENTCONN != 0 {
        writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        )
    } else {
        writeln!(out, "pro expire {:<11} {:<18} {:<18} destination", "state", "source", "virtual")
    };
}

pub fn conn_entry(out: &mut String, c: &ConnInfo, format: u32) {
    let cname = addrport(c.caddr, c.cport, c.protocol, format);
    let vname = addrport(c.vaddr, c.vport, c.protocol, format);
    let dname = addrport(c.daddr, c.dport, c.protocol, format);
    let expire = format!("{:02}:{:02}", c.expires / 60, c.expires % 60);
    let _ = writeln!(out, "{:<3} {expire:<6} {:<11} {cname:<18} {vname:<18} {dname}", c.protocol.name(), c.state);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msort_is_stable_and_sorts() {
        let mut v = vec![5, 3, 9, 1, 3, 7];
        glibc_msort(&mut v, &|a: &i32, b: &i32| a - b);
        assert_eq!(v, vec![1, 3, 3, 5, 7, 9]);
    }

    #[test]
    fn largenum_units() {
        let mut s = String::new();
        for v in [0, 99_999_999, 100_000_000, 1_234_567_890, 123_456_789_012_345] {
            largenum(&mut s, v, 0);
        }
        assert_eq!(s, "        0 99999999  100000K    1234M     123T");
        let mut e = String::new();
        largenum(&mut e, 1_234_567_890, FMT_EXACT);
        assert_eq!(e, " 1234567890");
    }
}
