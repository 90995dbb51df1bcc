//! The few rtnetlink questions the data plane asks the kernel: which way to a
//! real server (route lookup), which MAC it has (neighbour table), and "go
//! find out" when the neighbour table does not know yet.

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub oif: u32,
    /// The next hop when the destination is not on-link.
    pub gateway: Option<IpAddr>,
    /// The source address the kernel would use towards the destination.
    pub prefsrc: Option<IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    pub mac: Option<[u8; 6]>,
    pub state: NeighbourState,
}

impl Neighbour {
    /// Whether the MAC can be used now (the kernel would transmit to it).
    pub fn usable(&self) -> bool {
        self.mac.is_some()
            && matches!(
                self.state,
                NeighbourState::Reachable
                    | NeighbourState::Stale
                    | NeighbourState::Delay
                    | NeighbourState::Probe
                    | NeighbourState::Permanent
                    | NeighbourState::Noarp
            )
    }
}

pub struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

fn family(a: IpAddr) -> AddressFamily {
    if a.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

impl Rtnl {
    pub fn new() -> io::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl { sock, seq: 0, buf: vec![0; 64 * 1024] })
    }

    /// Sends one request and collects the messages answering it, until the
    /// kernel's single reply, its ACK, or its error.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut hdr = NetlinkHeader::default();
        hdr.flags = flags;
        hdr.sequence_number = self.seq;
        let mut req = NetlinkMessage::new(hdr, NetlinkPayload::from(msg));
        req.finalize();
        let mut out = vec![0; req.buffer_len()];
        req.serialize(&mut out);
        self.sock.send(&out, 0)?;
        let mut replies = Vec::new();
        loop {
            let n = self.sock.recv(&mut &mut self.buf[..], 0)?;
            let mut off = 0;
            while off < n {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = m.header.length as usize;
                if len == 0 {
                    return Ok(replies);
                }
                off += (len + 3) & !3;
                if m.header.sequence_number != self.seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::InnerMessage(inner) => {
                        replies.push(inner);
                        if m.header.flags & netlink_packet_core::NLM_F_MULTIPART == 0 && flags & NLM_F_ACK == 0 {
                            return Ok(replies);
                        }
                    }
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    _ => {}
                }
            }
        }
    }

    /// `ip route get ADDR`.
    pub fn route_get(&mut self, dst: IpAddr) -> io::Result<Option<Route>> {
        let mut m = RouteMessage::default();
        m.header.address_family = family(dst);
        m.header.destination_prefix_length = if dst.is_ipv4() { 32 } else { 128 };
        m.attributes.push(RouteAttribute::Destination(RouteAddress::from(dst)));
        let replies = match self.request(RouteNetlinkMessage::GetRoute(m), NLM_F_REQUEST) {
            Ok(r) => r,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENETUNREACH | libc::EHOSTUNREACH)) => return Ok(None),
            Err(e) => return Err(e),
        };
        for r in replies {
            if let RouteNetlinkMessage::NewRoute(rm) = r {
                let mut route = Route { oif: 0, gateway: None, prefsrc: None };
                for a in rm.attributes {
                    match a {
                        RouteAttribute::Oif(i) => route.oif = i,
                        RouteAttribute::Gateway(RouteAddress::Inet(g)) => route.gateway = Some(g.into()),
                        RouteAttribute::Gateway(RouteAddress::Inet6(g)) => route.gateway = Some(g.into()),
                        RouteAttribute::PrefSource(RouteAddress::Inet(a)) => route.prefsrc = Some(a.into()),
                        RouteAttribute::PrefSource(RouteAddress::Inet6(a)) => route.prefsrc = Some(a.into()),
                        _ => {}
                    }
                }
                if route.oif != 0 {
                    return Ok(Some(route));
                }
            }
        }
        Ok(None)
    }

    fn neigh_msg(ifindex: u32, addr: IpAddr) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.family = family(addr);
        m.header.ifindex = ifindex;
        m.attributes.push(NeighbourAttribute::Destination(match addr {
            IpAddr::V4(a) => NeighbourAddress::Inet(a),
            IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        }));
        m
    }

    /// `ip neigh get ADDR dev IF`; None when the kernel has no entry.
    pub fn neigh_get(&mut self, ifindex: u32, addr: IpAddr) -> io::Result<Option<Neighbour>> {
        let replies =
            match self.request(RouteNetlinkMessage::GetNeighbour(Self::neigh_msg(ifindex, addr)), NLM_F_REQUEST) {
                Ok(r) => r,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
                Err(e) => return Err(e),
            };
        for r in replies {
            if let RouteNetlinkMessage::NewNeighbour(n) = r {
                let mac = n.attributes.iter().find_map(|a| match a {
                    NeighbourAttribute::LinkLayerAddress(l) if l.len() == 6 => {
                        Some(<[u8; 6]>::try_from(&l[..]).unwrap())
                    }
                    _ => None,
                });
                return Ok(Some(Neighbour { mac, state: n.header.state }));
            }
        }
        Ok(None)
    }

    /// Asks the kernel to resolve (or re-confirm) a neighbour, creating the
    /// entry if needed (RTM_NEWNEIGH with NTF_USE: neigh_event_send).
    pub fn neigh_use(&mut self, ifindex: u32, addr: IpAddr) -> io::Result<()> {
        let mut m = Self::neigh_msg(ifindex, addr);
        m.header.flags = NeighbourFlags::Use;
        m.header.state = NeighbourState::None;
        self.request(RouteNetlinkMessage::NewNeighbour(m), NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK).map(|_| ())
    }
}

impl Rtnl {
    fn addr_msg(
        ifindex: u32,
        addr: IpAddr,
        prefix: u8,
        label: Option<&str>,
    ) -> netlink_packet_route::address::AddressMessage {
        use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
        let mut m = AddressMessage::default();
        m.header.family = family(addr);
        m.header.prefix_len = prefix;
        m.header.index = ifindex;
        m.header.scope = AddressScope::Universe;
        m.attributes.push(AddressAttribute::Local(addr));
        m.attributes.push(AddressAttribute::Address(addr));
        if let Some(l) = label {
            m.attributes.push(AddressAttribute::Label(l.to_string()));
        }
        m
    }

    /// `ip addr add ADDR/PREFIX dev IF [label L]`; an existing address is
    /// not an error.
    pub fn addr_add(&mut self, ifindex: u32, addr: IpAddr, prefix: u8, label: Option<&str>) -> io::Result<()> {
        let m = Self::addr_msg(ifindex, addr, prefix, label);
        match self.request(RouteNetlinkMessage::NewAddress(m), NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// `ip addr del ADDR/PREFIX dev IF`; a missing address is not an error.
    pub fn addr_del(&mut self, ifindex: u32, addr: IpAddr, prefix: u8) -> io::Result<()> {
        let m = Self::addr_msg(ifindex, addr, prefix, None);
        match self.request(RouteNetlinkMessage::DelAddress(m), NLM_F_REQUEST | NLM_F_ACK) {
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(()),
            r => r.map(|_| ()),
        }
    }
}

impl Rtnl {
    /// Every address of every interface of the namespace.
    pub fn all_addresses(&mut self) -> io::Result<Vec<IpAddr>> {
        self.addresses_where(|_| true)
    }

    /// The addresses configured on an interface (`ip addr show dev IF`).
    pub fn addresses(&mut self, ifindex: u32) -> io::Result<Vec<IpAddr>> {
        self.addresses_where(|i| i == ifindex)
    }

    fn addresses_where(&mut self, keep: impl Fn(u32) -> bool) -> io::Result<Vec<IpAddr>> {
        use netlink_packet_route::address::{AddressAttribute, AddressMessage};
        let replies = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_REQUEST | netlink_packet_core::NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for r in replies {
            if let RouteNetlinkMessage::NewAddress(a) = r {
                if !keep(a.header.index) {
                    continue;
                }
                for attr in a.attributes {
                    if let AddressAttribute::Local(ip) | AddressAttribute::Address(ip) = attr {
                        if !out.contains(&ip) {
                            out.push(ip);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// An address as keepalived adds a VIP: `ip addr add ADDR/PREFIX [brd B]
/// [peer P] [scope S] [label L] dev IF` with address flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrSpec {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    pub brd: Option<std::net::Ipv4Addr>,
    pub peer: Option<IpAddr>,
    /// rtnetlink scope number (0 universe, 200 site, 253 link, 254 host).
    pub scope: u8,
    pub label: Option<String>,
    /// IFA_F_* bits (NODAD for IPv6 VIPs, HOMEADDRESS, NOPREFIXROUTE).
    pub flags: u32,
}

/// An interface's link state and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    pub name: String,
    /// Administratively up and with carrier (IFF_UP and IFF_RUNNING).
    pub up: bool,
    pub multicast: bool,
}

impl Rtnl {
    fn spec_msg(s: &AddrSpec) -> netlink_packet_route::address::AddressMessage {
        use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
        let mut m = AddressMessage::default();
        m.header.family = family(s.addr);
        m.header.prefix_len = s.prefix;
        m.header.index = s.ifindex;
        m.header.scope = AddressScope::from(s.scope);
        m.attributes.push(AddressAttribute::Local(s.addr));
        m.attributes.push(AddressAttribute::Address(s.peer.unwrap_or(s.addr)));
        if let Some(b) = s.brd {
            m.attributes.push(AddressAttribute::Broadcast(b));
        }
        if let Some(l) = &s.label {
            m.attributes.push(AddressAttribute::Label(l.clone()));
        }
        if s.flags != 0 {
            m.attributes.push(AddressAttribute::Flags(AddressFlags::from_bits_retain(s.flags)));
        }
        m
    }

    /// Adds a VIP; an address already there is not an error.
    pub fn addr_add_spec(&mut self, s: &AddrSpec) -> io::Result<()> {
        let m = Self::spec_msg(s);
        match self.request(RouteNetlinkMessage::NewAddress(m), NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Removes a VIP; an address already gone is not an error.
    pub fn addr_del_spec(&mut self, s: &AddrSpec) -> io::Result<()> {
        let mut m = Self::spec_msg(s);
        m.attributes.retain(|a| {
            matches!(
                a,
                netlink_packet_route::address::AddressAttribute::Local(_)
                    | netlink_packet_route::address::AddressAttribute::Address(_)
            )
        });
        match self.request(RouteNetlinkMessage::DelAddress(m), NLM_F_REQUEST | NLM_F_ACK) {
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Every interface with its state (`ip link show`).
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_REQUEST | netlink_packet_core::NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for r in replies {
            if let RouteNetlinkMessage::NewLink(l) = r {
                let name = l.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                });
                let f = l.header.flags;
                out.push(Link {
                    ifindex: l.header.index,
                    name: name.unwrap_or_default(),
                    up: f.contains(LinkFlags::Up) && f.contains(LinkFlags::Running),
                    multicast: f.contains(LinkFlags::Multicast),
                });
            }
        }
        Ok(out)
    }

    /// The addresses of an interface with their prefix and flags, in the
    /// kernel's order (primary first): (address, prefix, IFA_F_* flags).
    pub fn addresses_detail(&mut self, ifindex: u32) -> io::Result<Vec<(IpAddr, u8, u32)>> {
        use netlink_packet_route::address::{AddressAttribute, AddressMessage};
        let replies = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_REQUEST | netlink_packet_core::NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for r in replies {
            if let RouteNetlinkMessage::NewAddress(a) = r {
                if a.header.index != ifindex {
                    continue;
                }
                let mut flags = u32::from(a.header.flags.bits());
                let mut local = None;
                let mut address = None;
                for attr in &a.attributes {
                    match attr {
                        AddressAttribute::Local(ip) => local = Some(*ip),
                        AddressAttribute::Address(ip) => address = Some(*ip),
                        AddressAttribute::Flags(f) => flags = f.bits(),
                        _ => {}
                    }
                }
                if let Some(ip) = local.or(address) {
                    out.push((ip, a.header.prefix_len, flags));
                }
            }
        }
        Ok(out)
    }
}

/// The kernel's neighbour-table changes as they happen (RTNLGRP_NEIGH), so
/// a resolution is noticed when the ARP or ND answer lands rather than at
/// the next poll.
pub struct NeighbourEvents {
    sock: Socket,
    buf: Vec<u8>,
}

impl NeighbourEvents {
    pub fn new() -> io::Result<NeighbourEvents> {
        const RTMGRP_NEIGH: u32 = 4;
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, RTMGRP_NEIGH))?;
        sock.set_non_blocking(true)?;
        Ok(NeighbourEvents { sock, buf: vec![0; 64 * 1024] })
    }

    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.sock.as_raw_fd()
    }

    /// The addresses whose entries changed since the last call. After an
    /// overflow (ENOBUFS) the answer is `None`: anything may have changed.
    pub fn drain(&mut self) -> Option<Vec<IpAddr>> {
        let mut changed = Vec::new();
        loop {
            let n = match self.sock.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(changed),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return None,
                Err(_) => return Some(changed),
            };
            let mut off = 0;
            while off < n {
                let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n]) else { break };
                let len = m.header.length as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(nm)) = m.payload {
                    for a in nm.attributes {
                        match a {
                            NeighbourAttribute::Destination(NeighbourAddress::Inet(v)) => changed.push(v.into()),
                            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v)) => changed.push(v.into()),
                            _ => {}
                        }
                    }
                }
            }
        }
    }
}
