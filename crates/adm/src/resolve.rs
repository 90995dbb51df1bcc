//! Address and port parsing and naming as ipvsadm does it, through the C
//! library, so names come from the same /etc/hosts, /etc/services and
//! resolver configuration the real tool consults.

use std::ffi::{CStr, CString};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};

static DNS: AtomicBool = AtomicBool::new(true);

/// Whether host names may be looked up through the system resolver (which
/// can ask DNS servers), or only in /etc/hosts. Tests turn DNS off so that
/// a listing without -n sends nothing to the network.
pub fn set_dns(allowed: bool) {
    DNS.store(allowed, Ordering::SeqCst);
}

/// (address, names) of /etc/hosts.
fn hosts_file() -> Vec<(IpAddr, Vec<String>)> {
    let text = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next()?;
            let mut w = l.split_whitespace();
            let addr: IpAddr = w.next()?.parse().ok()?;
            Some((addr, w.map(String::from).collect()))
        })
        .collect()
}

/// inet_aton: one to four parts, each decimal, octal (leading 0) or hex (0x),
/// the last part filling the remaining bytes; trailing white space allowed.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let s = s.trim_end_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    if s.is_empty() || s.contains(char::is_whitespace) {
        return None;
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut vals = Vec::with_capacity(4);
    for p in &parts {
        vals.push(c_number(p)?);
    }
    let last = *vals.last()?;
    let (head, limit) = (&vals[..vals.len() - 1], [u32::MAX, 0xff_ffff, 0xffff, 0xff][vals.len() - 1]);
    if last > limit || head.iter().any(|&v| v > 0xff) {
        return None;
    }
    let mut addr = last;
    for (i, &v) in head.iter().enumerate() {
        addr |= v << (24 - 8 * i);
    }
    Some(Ipv4Addr::from(addr))
}

fn c_number(p: &str) -> Option<u32> {
    if p.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        (h, 16)
    } else if p.len() > 1 && p.starts_with('0') {
        (&p[1..], 8)
    } else {
        (p, 10)
    };
    if digits.is_empty() && radix == 16 {
        return Some(0);
    }
    u32::from_str_radix(digits, radix).ok()
}

pub fn inet_pton6(s: &str) -> Option<Ipv6Addr> {
    s.parse().ok()
}

/// gethostbyname for IPv4, as host_to_addr.
pub fn host_to_addr(name: &str) -> Option<Ipv4Addr> {
    if !DNS.load(Ordering::SeqCst) {
        return hosts_file().into_iter().find_map(|(a, names)| match a {
            IpAddr::V4(v4) if names.iter().any(|n| n == name) => Some(v4),
            _ => None,
        });
    }
    let c = CString::new(name).ok()?;
    // SAFETY: a plain C struct, for which all-zero bytes are a valid value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_INET;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C strings and hints; the result list is freed below.
    let rc = unsafe { libc::getaddrinfo(c.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: getaddrinfo succeeded with AF_INET, so ai_addr is a sockaddr_in.
    let addr = unsafe {
        let sin = (*res).ai_addr as *const libc::sockaddr_in;
        let a = Ipv4Addr::from(u32::from_be((*sin).sin_addr.s_addr));
        libc::freeaddrinfo(res);
        a
    };
    Some(addr)
}

/// gethostbyaddr: the host's name, if the resolver knows one.
pub fn addr_to_host(addr: IpAddr) -> Option<String> {
    if !DNS.load(Ordering::SeqCst) {
        return hosts_file().into_iter().find(|(a, _)| *a == addr).and_then(|(_, n)| n.into_iter().next());
    }
    let mut host = [0 as libc::c_char; 1025];
    let rc = match addr {
        IpAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: 0,
                sin_addr: libc::in_addr { s_addr: u32::from(a).to_be() },
                sin_zero: [0; 8],
            };
            // SAFETY: a valid sockaddr_in and output buffer.
            unsafe {
                libc::getnameinfo(
                    &sin as *const _ as *const libc::sockaddr,
                    std::mem::size_of_val(&sin) as u32,
                    host.as_mut_ptr(),
                    host.len() as u32,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
        IpAddr::V6(a) => {
            // SAFETY: a plain C struct, for which all-zero bytes are a valid value.
            let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as u16;
            sin6.sin6_addr.s6_addr = a.octets();
            // SAFETY: a valid sockaddr_in6 and output buffer.
            unsafe {
                libc::getnameinfo(
                    &sin6 as *const _ as *const libc::sockaddr,
                    std::mem::size_of_val(&sin6) as u32,
                    host.as_mut_ptr(),
                    host.len() as u32,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: getnameinfo wrote a NUL-terminated string.
    Some(unsafe { CStr::from_ptr(host.as_ptr()) }.to_string_lossy().into_owned())
}

fn proto_name(proto: u8) -> Option<&'static CStr> {
    match proto {
        6 => Some(c"tcp"),
        17 => Some(c"udp"),
        132 => Some(c"sctp"),
        _ => None,
    }
}

/// getservbyname and getservbyport return one static entry that the next
/// call overwrites; the daemon and the test harness call them from several
/// threads, so every call and its read happen under this lock.
static SERVENT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// getservbyname, as service_to_port.
pub fn service_to_port(name: &str, proto: u8) -> Option<u16> {
    let p = proto_name(proto)?;
    let n = CString::new(name).ok()?;
    let _entry = SERVENT.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: valid C strings; the static entry is read under the lock.
    unsafe {
        let e = libc::getservbyname(n.as_ptr(), p.as_ptr());
        (!e.is_null()).then(|| u16::from_be((*e).s_port as u16))
    }
}

/// getservbyport, as port_to_service.
pub fn port_to_service(port: u16, proto: u8) -> Option<String> {
    let p = proto_name(proto)?;
    let _entry = SERVENT.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: a valid C string; the static entry is read under the lock.
    unsafe {
        let e = libc::getservbyport(i32::from(port.to_be()), p.as_ptr());
        (!e.is_null()).then(|| CStr::from_ptr((*e).s_name).to_string_lossy().into_owned())
    }
}

/// strtol-based string_to_number: the whole string must be a base-10 number
/// (optional sign, leading white space) within [min, max].
pub fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = digits.parse().ok()?;
    let v = if neg { -v } else { v };
    (min..=max).contains(&v).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_aton_forms() {
        assert_eq!(inet_aton("10.0.0.100"), Some(Ipv4Addr::new(10, 0, 0, 100)));
        assert_eq!(inet_aton("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("0x0a.0.0.012"), Some(Ipv4Addr::new(10, 0, 0, 10)));
        assert_eq!(inet_aton("167772260"), Some(Ipv4Addr::new(10, 0, 0, 100)));
        assert_eq!(inet_aton("300.0.0.1"), None);
        assert_eq!(inet_aton("1.2.3.4.5"), None);
        assert_eq!(inet_aton("a.b.c.d"), None);
        assert_eq!(inet_aton(""), None);
    }

    #[test]
    fn numbers_as_strtol() {
        assert_eq!(string_to_number("70000", 0, i64::from(i32::MAX)), Some(70000));
        assert_eq!(string_to_number("-1", 0, 65535), None);
        assert_eq!(string_to_number("12x", 0, 65535), None);
        assert_eq!(string_to_number("", 0, 65535), None);
        assert_eq!(string_to_number("+5", 0, 65535), Some(5));
    }

    /// The CI once listed port 80 as "doma": another thread's lookup of 53
    /// overwrote the static entry while it was read.
    #[test]
    fn service_names_stay_right_when_threads_look_them_up_together() {
        let Some(http) = port_to_service(80, 6) else { return };
        let Some(domain) = port_to_service(53, 17) else { return };
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let (port, proto, want) = if i % 2 == 0 { (80, 6, http.clone()) } else { (53, 17, domain.clone()) };
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        assert_eq!(port_to_service(port, proto).as_deref(), Some(want.as_str()));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a lookup returned another thread's name");
        }
    }
}
