//! Raw IP protocol 112 sockets, one receiver and one sender per interface
//! and family, as keepalived opens them: bound to the interface, joined to
//! the multicast group, TTL/hop limit 255, multicast loop off (our own
//! adverts are not for us), TOS/traffic class 0xc0 (network control).

use std::ffi::CString;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const IPPROTO_VRRP: libc::c_int = 112;
const TOS_NETCONTROL: libc::c_int = 0xc0;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: v points to a live T of the size passed.
    cvt(unsafe {
        libc::setsockopt(fd, level, name, v as *const T as *const libc::c_void, std::mem::size_of::<T>() as u32)
    })
    .map(|_| ())
}

fn raw_socket(domain: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned from here on.
    let fd =
        cvt(unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, IPPROTO_VRRP) })?;
    // SAFETY: fd was just created and is ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind_to_device(fd: RawFd, ifname: &str) -> io::Result<()> {
    let c = CString::new(ifname).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name"))?;
    let b = c.as_bytes_with_nul();
    // SAFETY: b is the NUL-terminated name, its length passed.
    cvt(unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_BINDTODEVICE, b.as_ptr() as *const libc::c_void, b.len() as u32)
    })
    .map(|_| ())
}

/// A received advert: envelope facts and the VRRP message.
pub struct Received {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub payload: Vec<u8>,
}

pub struct RxSocket {
    fd: OwnedFd,
    v6: bool,
}

impl AsRawFd for RxSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl RxSocket {
    /// Receives protocol 112 on `ifname`, joined to `groups`.
    pub fn open(ifname: &str, ifindex: u32, v6: bool, groups: &[IpAddr]) -> io::Result<RxSocket> {
        let fd = raw_socket(if v6 { libc::AF_INET6 } else { libc::AF_INET })?;
        let raw = fd.as_raw_fd();
        bind_to_device(raw, ifname)?;
        for g in groups {
            match g {
                IpAddr::V4(a) if !v6 => {
                    let m = libc::ip_mreqn {
                        imr_multiaddr: libc::in_addr { s_addr: u32::from_ne_bytes(a.octets()) },
                        imr_address: libc::in_addr { s_addr: 0 },
                        imr_ifindex: ifindex as i32,
                    };
                    setsockopt(raw, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &m)?;
                }
                IpAddr::V6(a) if v6 => {
                    let m = libc::ipv6_mreq {
                        ipv6mr_multiaddr: libc::in6_addr { s6_addr: a.octets() },
                        ipv6mr_interface: ifindex,
                    };
                    setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &m)?;
                }
                _ => {}
            }
        }
        if v6 {
            setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &1i32)?;
            setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &1i32)?;
            // The kernel verifies the checksum at offset 6 (with the
            // pseudo-header) and drops bad ones.
            setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_CHECKSUM, &6i32)?;
        }
        let buf = 256 * 1024i32;
        setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, &buf)?;
        Ok(RxSocket { fd, v6 })
    }

    /// One datagram, or None when nothing is waiting.
    pub fn recv(&self) -> io::Result<Option<Received>> {
        let mut buf = vec![0u8; 2048];
        // SAFETY: a plain C struct, for which all-zero bytes are a valid value.
        let mut name: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        let mut ctrl = [0u64; 16];
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
        // SAFETY: msghdr fields point at live buffers of the lengths given.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = &mut name as *mut _ as *mut libc::c_void;
        msg.msg_namelen = std::mem::size_of_val(&name) as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctrl.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&ctrl);
        // SAFETY: msg is fully initialised above.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock { Ok(None) } else { Err(e) };
        }
        buf.truncate(n as usize);
        if !self.v6 {
            // IPv4 raw sockets hand over the IP header.
            let Ok(ip) = rlvs_wire::Ipv4Packet::new_checked(&buf[..]) else { return Ok(Some(Received::bogus())) };
            if usize::from(ip.total_len()) != buf.len() {
                return Ok(Some(Received::bogus()));
            }
            return Ok(Some(Received {
                src: ip.src_addr().into(),
                dst: ip.dst_addr().into(),
                ttl: ip.ttl(),
                payload: ip.payload().to_vec(),
            }));
        }
        let src = IpAddr::V6(Ipv6Addr::from(name.sin6_addr.s6_addr));
        let (mut dst, mut hops) = (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0u8);
        // SAFETY: walking the control messages the kernel wrote into ctrl.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::IPPROTO_IPV6 {
                    let data = libc::CMSG_DATA(c);
                    if (*c).cmsg_type == libc::IPV6_HOPLIMIT {
                        hops = std::ptr::read_unaligned(data as *const i32) as u8;
                    } else if (*c).cmsg_type == libc::IPV6_PKTINFO {
                        let pi = std::ptr::read_unaligned(data as *const libc::in6_pktinfo);
                        dst = IpAddr::V6(Ipv6Addr::from(pi.ipi6_addr.s6_addr));
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Ok(Some(Received { src, dst, ttl: hops, payload: buf }))
    }
}

impl Received {
    /// A datagram whose IP header did not parse: it reaches the core as an
    /// empty message so it is counted and dropped there.
    fn bogus() -> Received {
        Received {
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ttl: 0,
            payload: Vec::new(),
        }
    }
}

pub struct TxSocket {
    fd: OwnedFd,
}

impl TxSocket {
    /// Sends from `src` out of `ifname` (the kernel builds the IP header).
    pub fn open(ifname: &str, ifindex: u32, src: IpAddr, unicast_ttl: u8) -> io::Result<TxSocket> {
        let v6 = src.is_ipv6();
        let fd = raw_socket(if v6 { libc::AF_INET6 } else { libc::AF_INET })?;
        let raw = fd.as_raw_fd();
        bind_to_device(raw, ifname)?;
        if v6 {
            setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &255i32)?;
            setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &i32::from(unicast_ttl))?;
            setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &0i32)?;
            setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &(ifindex as i32))?;
            setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, &TOS_NETCONTROL)?;
            setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_CHECKSUM, &6i32)?;
        } else {
            setsockopt(raw, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, &255i32)?;
            setsockopt(raw, libc::IPPROTO_IP, libc::IP_TTL, &i32::from(unicast_ttl))?;
            setsockopt(raw, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &0i32)?;
            setsockopt(raw, libc::IPPROTO_IP, libc::IP_TOS, &TOS_NETCONTROL)?;
            let m = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr { s_addr: 0 },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: ifindex as i32,
            };
            setsockopt(raw, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &m)?;
        }
        let sa = sockaddr(SocketAddr::new(src, 0), ifindex);
        // SAFETY: sa is a valid sockaddr of the length passed.
        cvt(unsafe { libc::bind(raw, &sa.0 as *const _ as *const libc::sockaddr, sa.1) })?;
        Ok(TxSocket { fd })
    }

    pub fn send(&self, dst: IpAddr, ifindex: u32, payload: &[u8]) -> io::Result<()> {
        let sa = sockaddr(SocketAddr::new(dst, 0), ifindex);
        // SAFETY: payload and sa are live for the call.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                payload.as_ptr() as *const libc::c_void,
                payload.len(),
                0,
                &sa.0 as *const _ as *const libc::sockaddr,
                sa.1,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// A sockaddr_in/in6 in storage, with its length; IPv6 link-local and
/// multicast addresses get the interface as scope.
fn sockaddr(a: SocketAddr, ifindex: u32) -> (libc::sockaddr_storage, u32) {
    // SAFETY: zeroed sockaddr_storage is a valid initial value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match a {
        SocketAddr::V4(v) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: 0,
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in, sin) };
            (ss, std::mem::size_of::<libc::sockaddr_in>() as u32)
        }
        SocketAddr::V6(v) => {
            let ip = *v.ip();
            let scoped = ip.is_multicast() || (ip.segments()[0] & 0xffc0) == 0xfe80;
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as u16,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr { s6_addr: ip.octets() },
                sin6_scope_id: if scoped { ifindex } else { 0 },
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in6, sin6) };
            (ss, std::mem::size_of::<libc::sockaddr_in6>() as u32)
        }
    }
}
