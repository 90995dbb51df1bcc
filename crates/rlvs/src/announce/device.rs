//! The devices that carry announced VIPs. Each is a TAP device whose only
//! reference is a file descriptor of this process: when rlvs exits, even
//! by SIGKILL, the kernel closes it and deletes the device with its
//! addresses, the BGP daemon's `direct` protocol (FRR: `redistribute
//! connected`) sees the addresses go and withdraws the routes. The
//! announcement cannot outlive the process that forwards the flows.

use rlvs_dataplane::netlink::{AddrSpec, Rtnl};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
/// IPv6 VIPs: no duplicate address detection (nothing else can hold the
/// address on this device, and a tentative address is not exported).
const IFA_F_NODAD: u32 = 0x02;

/// struct ifreq with the flags member of its union.
#[repr(C)]
struct IfReqFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}
const _: () = assert!(std::mem::size_of::<IfReqFlags>() == 40);

pub struct Device {
    pub name: String,
    ifindex: u32,
    /// Holding it keeps the device; dropping it (or dying) deletes it.
    _fd: OwnedFd,
}

fn ifreq(name: &str, flags: libc::c_short) -> IfReqFlags {
    let mut r = IfReqFlags { name: [0; libc::IFNAMSIZ], flags, _pad: [0; 22] };
    r.name[..name.len()].copy_from_slice(name.as_bytes());
    r
}

impl Device {
    /// Creates the TAP device `name` and brings it up. A device of that
    /// name left by someone else is an error: its life is not ours.
    pub fn create(name: &str) -> io::Result<Device> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad device name '{name}'")));
        }
        let cname = std::ffi::CString::new(name)?;
        // SAFETY: a C string.
        if unsafe { libc::if_nametoindex(cname.as_ptr()) } != 0 {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("device {name} exists already (another rlvs, or made by hand)"),
            ));
        }
        // SAFETY: open(2) of a constant path.
        let raw = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = ifreq(name, IFF_TAP | IFF_NO_PI);
        // SAFETY: TUNSETIFF reads and writes an ifreq.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        set_up(name)?;
        // SAFETY: a C string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Device { name: name.to_string(), ifindex, _fd: fd })
    }

    fn spec(&self, vip: IpAddr) -> AddrSpec {
        let (prefix, flags) = if vip.is_ipv4() { (32, 0) } else { (128, IFA_F_NODAD) };
        AddrSpec { ifindex: self.ifindex, addr: vip, prefix, brd: None, peer: None, scope: 0, label: None, flags }
    }

    pub fn add(&self, rtnl: &mut Rtnl, vip: IpAddr) -> io::Result<()> {
        rtnl.addr_add_spec(&self.spec(vip))
    }

    pub fn remove(&self, rtnl: &mut Rtnl, vip: IpAddr) -> io::Result<()> {
        rtnl.addr_del_spec(&self.spec(vip))
    }
}

fn set_up(name: &str) -> io::Result<()> {
    // SAFETY: socket(2); the descriptor is owned right after.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    let s = unsafe { OwnedFd::from_raw_fd(s) };
    let mut req = ifreq(name, 0);
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write an ifreq.
    unsafe {
        if libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
