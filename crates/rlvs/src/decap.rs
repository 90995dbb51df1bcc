//! The userspace tunnel endpoint for real servers whose kernel has no ipip
//! (or fou) support: a raw IPPROTO_IPIP socket (and, for GUE, a UDP socket
//! on the tunnel port) receives what the director wrapped, and the inner
//! packet is written to a TUN device, which hands it to the local stack as
//! if it had arrived unwrapped. The real server's replies then leave
//! directly to the client, as in any TUN setup.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub const DEVICE: &str = "rlvs-decap0";
const IFF_TUN: i16 = 0x0001;
const IFF_NO_PI: i16 = 0x1000;
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// Creates the TUN device (up) and returns its file.
fn open_tun() -> Result<std::fs::File> {
    let file =
        std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun").context("opening /dev/net/tun")?;
    // SAFETY: a plain C struct, for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(DEVICE.bytes()) {
        *d = s as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = IFF_TUN | IFF_NO_PI;
    // SAFETY: TUNSETIFF with a valid ifreq on the tun control file.
    if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req) } < 0 {
        bail!("TUNSETIFF: {}", std::io::Error::last_os_error());
    }
    set_up(DEVICE)?;
    Ok(file)
}

fn set_up(name: &str) -> Result<()> {
    // SAFETY: a datagram socket for SIOC[GS]IFFLAGS, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        bail!("socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: valid ifreq for both ioctls.
    unsafe {
        if libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            bail!("SIOCGIFFLAGS: {}", std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as i16;
        if libc::ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req) < 0 {
            bail!("SIOCSIFFLAGS: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn raw_ipip() -> Result<OwnedFd> {
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::IPPROTO_IPIP) };
    if fd < 0 {
        bail!("raw IPIP socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The inner packet of an IPIP datagram as a raw socket returns it (outer
/// header included).
fn unwrap_ipip(pkt: &[u8]) -> Option<&[u8]> {
    let ihl = usize::from(*pkt.first()? & 0x0f) * 4;
    (pkt.len() > ihl + 20 && pkt[ihl] >> 4 == 4).then(|| &pkt[ihl..])
}

/// The inner packet of a GUE payload (variant 0 carrying IPIP).
fn unwrap_gue(payload: &[u8]) -> Option<&[u8]> {
    let (head, rest) = (payload.get(..4)?, &payload[4..]);
    let (version, hlen, proto) = (head[0] >> 6, usize::from(head[0] & 0x1f) * 4, head[1]);
    if version != 0 || proto != 4 || head[0] & 0x20 != 0 {
        return None;
    }
    rest.get(hlen..).filter(|p| p.len() >= 20 && p[0] >> 4 == 4)
}

/// Runs until killed. `ipip`: also take plain IPIP (when the kernel does
/// not).
pub fn run(gue_port: Option<u16>, ipip: bool) -> Result<()> {
    let mut tun = open_tun()?;
    let _ = std::fs::write(format!("/proc/sys/net/ipv4/conf/{DEVICE}/rp_filter"), "0");
    let raw = if ipip { Some(raw_ipip()?) } else { None };
    let udp = match gue_port {
        Some(p) => Some(std::net::UdpSocket::bind(("0.0.0.0", p)).with_context(|| format!("binding GUE port {p}"))?),
        None => None,
    };
    let mut buf = vec![0u8; 65_536];
    // An fd of -1 is ignored by poll.
    let mut fds = vec![
        libc::pollfd { fd: raw.as_ref().map_or(-1, |r| r.as_raw_fd()), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: udp.as_ref().map_or(-1, |u| u.as_raw_fd()), events: libc::POLLIN, revents: 0 },
    ];
    loop {
        // SAFETY: fds is a valid pollfd array.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as u64, -1) } < 0 {
            continue;
        }
        if let (Some(raw), true) = (&raw, fds[0].revents & libc::POLLIN != 0) {
            // SAFETY: reading into our buffer.
            let n = unsafe { libc::recv(raw.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
            if n > 0 {
                if let Some(inner) = unwrap_ipip(&buf[..n as usize]) {
                    let _ = tun.write(inner);
                }
            }
        }
        if let Some(u) = &udp {
            if fds[1].revents & libc::POLLIN != 0 {
                if let Ok((n, _)) = u.recv_from(&mut buf) {
                    if let Some(inner) = unwrap_gue(&buf[..n]) {
                        let _ = tun.write(inner);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_ipip_and_gue() {
        let mut outer = vec![0x45u8; 20];
        let inner = [0x45u8; 28];
        outer.extend_from_slice(&inner);
        assert_eq!(unwrap_ipip(&outer), Some(&inner[..]));
        let mut gue = vec![0, 4, 0, 0];
        gue.extend_from_slice(&inner);
        assert_eq!(unwrap_gue(&gue), Some(&inner[..]));
        assert_eq!(unwrap_gue(&[0x40, 4, 0, 0]), None, "version 1 is not variant 0");
        assert_eq!(unwrap_gue(&[0, 41, 0, 0, 0x60]), None, "only IPIP inside");
        assert_eq!(unwrap_ipip(&[0x4f]), None);
    }
}
