//! Interfaces of the current network namespace.

use std::ffi::{CStr, CString};
use std::io;

/// (ifindex, name) of every interface but loopback.
pub fn list() -> Vec<(u32, String)> {
    let mut out = Vec::new();
    // SAFETY: if_nameindex returns an array terminated by a zero entry,
    // freed with if_freenameindex.
    unsafe {
        let head = libc::if_nameindex();
        if head.is_null() {
            return out;
        }
        let mut p = head;
        while (*p).if_index != 0 {
            let name = CStr::from_ptr((*p).if_name).to_string_lossy().into_owned();
            if name != "lo" {
                out.push(((*p).if_index, name));
            }
            p = p.add(1);
        }
        libc::if_freenameindex(head);
    }
    out
}

pub fn name_of(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf holds IF_NAMESIZE bytes as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned())
}

pub fn index_of(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: a valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// The interface's MTU (SIOCGIFMTU).
pub fn mtu_of(ifindex: u32) -> io::Result<u32> {
    let name = name_of(ifindex).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such interface"))?;
    // SAFETY: a plain datagram socket used only for the ioctl, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: req is a valid ifreq with the name set.
    let r = unsafe { libc::ioctl(fd, libc::SIOCGIFMTU, &mut req) };
    let err = io::Error::last_os_error();
    // SAFETY: closing our own fd.
    unsafe { libc::close(fd) };
    if r < 0 {
        return Err(err);
    }
    // SAFETY: SIOCGIFMTU filled ifru_mtu.
    Ok(unsafe { req.ifr_ifru.ifru_mtu } as u32)
}

/// The interface's hardware address (SIOCGIFHWADDR).
pub fn mac_of(ifindex: u32) -> io::Result<[u8; 6]> {
    let name = name_of(ifindex).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such interface"))?;
    // SAFETY: a plain datagram socket used only for the ioctl, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: req is a valid ifreq with the name set.
    let r = unsafe { libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut req) };
    let err = io::Error::last_os_error();
    // SAFETY: closing our own fd.
    unsafe { libc::close(fd) };
    if r < 0 {
        return Err(err);
    }
    // SAFETY: SIOCGIFHWADDR filled ifru_hwaddr.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (m, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *m = *s as u8;
    }
    Ok(mac)
}

/// True in the host's own network namespace, where raw-frame engines must
/// not start unless explicitly told to: the namespace PID 1 lives in, or,
/// where PID 1 cannot be inspected (sandboxes), the kernel's initial
/// namespace, whose nsfs inode is fixed (PROC_NET_INIT_INO).
pub fn in_initial_netns() -> bool {
    use std::os::unix::fs::MetadataExt;
    const PROC_NET_INIT_INO: u64 = 0xEFFF_FFF9;
    let Ok(me) = std::fs::metadata("/proc/self/ns/net") else {
        return true;
    };
    match std::fs::metadata("/proc/1/ns/net") {
        Ok(init) => me.ino() == init.ino() && me.dev() == init.dev(),
        Err(_) => me.ino() == PROC_NET_INIT_INO,
    }
}
