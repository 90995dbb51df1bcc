//! Typed IPVS requests and answers over the attribute layer: what
//! ipvsadm's libipvs sends, and what the kernel's dumps return.

use crate::attr::{self, cmd, dest as da, info as ia, stats as st, svc as sa, top};
use crate::nla::{self, Attr, Raw, Value};
use netlink_packet_core::{DecodeError, Emitable, ParseableParametrized};
use netlink_packet_generic::{GenlFamily, GenlHeader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// How a virtual service is named: by address, or by firewall mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceId {
    Addr { protocol: u16, addr: IpAddr, port: u16 },
    Fwmark { af: u16, mark: u32 },
}

impl ServiceId {
    pub fn af(&self) -> u16 {
        match self {
            ServiceId::Addr { addr: IpAddr::V4(_), .. } => AF_INET,
            ServiceId::Addr { .. } => AF_INET6,
            ServiceId::Fwmark { af, .. } => *af,
        }
    }

    fn attrs(&self) -> Vec<Attr> {
        let mut a = vec![Attr::new(sa::AF, Value::U16(self.af()))];
        match *self {
            ServiceId::Fwmark { mark, .. } => a.push(Attr::new(sa::FWMARK, Value::U32(mark))),
            ServiceId::Addr { protocol, addr, port } => {
                a.push(Attr::new(sa::PROTOCOL, Value::U16(protocol)));
                a.push(Attr::new(sa::ADDR, Value::Bytes(inet_addr(addr).to_vec())));
                a.push(Attr::new(sa::PORT, Value::Be16(port)));
            }
        }
        a
    }
}

/// union nf_inet_addr: 16 bytes whatever the family.
fn inet_addr(a: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b = v6.octets(),
    }
    b
}

fn addr_of(af: u16, r: &Raw, what: &str) -> Result<IpAddr, DecodeError> {
    match af {
        AF_INET if r.bytes.len() >= 4 => Ok(IpAddr::V4(Ipv4Addr::new(r.bytes[0], r.bytes[1], r.bytes[2], r.bytes[3]))),
        AF_INET6 if r.bytes.len() >= 16 => {
            let b: [u8; 16] = r.bytes[..16].try_into().expect("checked length");
            Ok(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => Err(DecodeError::from(format!("{what}: {} bytes for family {af}", r.bytes.len()))),
    }
}

/// Counters and rates of a service or destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

impl Stats {
    /// Reads either nest: every value is taken at the width it came in.
    fn from_nest(r: &Raw) -> Result<Stats, DecodeError> {
        let mut s = Stats::default();
        for a in r.nested()? {
            let v = match a.bytes.len() {
                4 => u64::from(a.u32("stats")?),
                8 => a.u64("stats")?,
                _ => continue,
            };
            match a.kind {
                st::CONNS => s.conns = v,
                st::INPKTS => s.inpkts = v,
                st::OUTPKTS => s.outpkts = v,
                st::INBYTES => s.inbytes = v,
                st::OUTBYTES => s.outbytes = v,
                st::CPS => s.cps = v,
                st::INPPS => s.inpps = v,
                st::OUTPPS => s.outpps = v,
                st::INBPS => s.inbps = v,
                st::OUTBPS => s.outbps = v,
                _ => {}
            }
        }
        Ok(s)
    }

    /// The 64-bit nest, as the kernel writes it.
    pub fn attrs64(&self) -> Vec<Attr> {
        [
            (st::CONNS, self.conns),
            (st::INPKTS, self.inpkts),
            (st::OUTPKTS, self.outpkts),
            (st::INBYTES, self.inbytes),
            (st::OUTBYTES, self.outbytes),
            (st::CPS, self.cps),
            (st::INPPS, self.inpps),
            (st::OUTPPS, self.outpps),
            (st::INBPS, self.inbps),
            (st::OUTBPS, self.outbps),
        ]
        .into_iter()
        .map(|(k, v)| Attr::new(k, Value::U64(v)))
        .collect()
    }
}

/// IP_VS_SVC_F_* as ipvsadm sets them.
pub const SVC_F_PERSISTENT: u32 = 0x0001;
pub const SVC_F_ONEPACKET: u32 = 0x0004;

/// A virtual service as added, edited or listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub id: ServiceId,
    pub sched: String,
    pub pe_name: Option<String>,
    pub flags: u32,
    /// Persistence timeout, seconds.
    pub timeout: u32,
    /// IPv4: the persistence mask (host order, 0xffffff00 for /24);
    /// IPv6: the prefix length.
    pub netmask: u32,
    pub stats: Option<Stats>,
}

impl Service {
    fn attrs(&self) -> Vec<Attr> {
        let mut a = self.id.attrs();
        a.push(Attr::new(sa::SCHED_NAME, Value::Str(self.sched.clone())));
        if let Some(pe) = &self.pe_name {
            a.push(Attr::new(sa::PE_NAME, Value::Str(pe.clone())));
        }
        let mut flags = self.flags.to_ne_bytes().to_vec();
        flags.extend_from_slice(&u32::MAX.to_ne_bytes());
        a.push(Attr::new(sa::FLAGS, Value::Bytes(flags)));
        a.push(Attr::new(sa::TIMEOUT, Value::U32(self.timeout)));
        let mask = if self.id.af() == AF_INET { Value::Be32(self.netmask) } else { Value::U32(self.netmask) };
        a.push(Attr::new(sa::NETMASK, mask));
        a
    }

    pub fn from_nest(bytes: &[u8]) -> Result<Service, DecodeError> {
        let attrs = nla::parse(bytes)?;
        let find = |k| attrs.iter().find(|a| a.kind == k);
        let af = find(sa::AF).ok_or("service without AF")?.u16("AF")?;
        let id = match find(sa::FWMARK) {
            Some(m) => ServiceId::Fwmark { af, mark: m.u32("FWMARK")? },
            None => ServiceId::Addr {
                protocol: find(sa::PROTOCOL).ok_or("service without PROTOCOL")?.u16("PROTOCOL")?,
                addr: addr_of(af, find(sa::ADDR).ok_or("service without ADDR")?, "ADDR")?,
                port: find(sa::PORT).ok_or("service without PORT")?.be16("PORT")?,
            },
        };
        let flags = match find(sa::FLAGS) {
            Some(f) => f.u32("FLAGS")?,
            None => 0,
        };
        let netmask = match find(sa::NETMASK) {
            Some(m) if af == AF_INET => m.be32("NETMASK")?,
            Some(m) => m.u32("NETMASK")?,
            None => 0,
        };
        // The kernel sends both nests; the 64-bit one when there is one.
        let stats = match find(sa::STATS64).or(find(sa::STATS)) {
            Some(s) => Some(Stats::from_nest(s)?),
            None => None,
        };
        Ok(Service {
            id,
            sched: find(sa::SCHED_NAME).map(|s| s.string("SCHED_NAME")).transpose()?.unwrap_or_default(),
            pe_name: find(sa::PE_NAME).map(|s| s.string("PE_NAME")).transpose()?,
            flags,
            timeout: find(sa::TIMEOUT).map(|t| t.u32("TIMEOUT")).transpose()?.unwrap_or(0),
            netmask,
            stats,
        })
    }
}

/// IP_VS_CONN_F_* forwarding methods.
pub mod fwd {
    pub const MASQ: u32 = 0;
    pub const LOCALNODE: u32 = 1;
    pub const TUNNEL: u32 = 2;
    pub const DROUTE: u32 = 3;
    pub const BYPASS: u32 = 4;
}

/// A real server as added, edited or listed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dest {
    pub addr: Option<IpAddr>,
    pub port: u16,
    pub fwd_method: u32,
    pub weight: i32,
    pub u_thresh: u32,
    pub l_thresh: u32,
    pub tun_type: u8,
    pub tun_port: u16,
    pub tun_flags: u16,
    pub active_conns: u32,
    pub inact_conns: u32,
    pub persist_conns: u32,
    pub stats: Option<Stats>,
}

impl Dest {
    fn id_attrs(&self) -> Vec<Attr> {
        let addr = self.addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let af = if addr.is_ipv4() { AF_INET } else { AF_INET6 };
        vec![
            Attr::new(da::ADDR_FAMILY, Value::U16(af)),
            Attr::new(da::ADDR, Value::Bytes(inet_addr(addr).to_vec())),
            Attr::new(da::PORT, Value::Be16(self.port)),
        ]
    }

    fn attrs(&self) -> Vec<Attr> {
        let mut a = self.id_attrs();
        a.push(Attr::new(da::TUN_TYPE, Value::U8(self.tun_type)));
        a.push(Attr::new(da::TUN_PORT, Value::Be16(self.tun_port)));
        a.push(Attr::new(da::TUN_FLAGS, Value::U16(self.tun_flags)));
        a.push(Attr::new(da::FWD_METHOD, Value::U32(self.fwd_method)));
        a.push(Attr::new(da::WEIGHT, Value::U32(self.weight as u32)));
        a.push(Attr::new(da::U_THRESH, Value::U32(self.u_thresh)));
        a.push(Attr::new(da::L_THRESH, Value::U32(self.l_thresh)));
        a
    }

    /// A destination nest; `svc_af` is the family when an old kernel
    /// leaves ADDR_FAMILY out (it then equals the service's).
    pub fn from_nest(bytes: &[u8], svc_af: u16) -> Result<Dest, DecodeError> {
        let attrs = nla::parse(bytes)?;
        let find = |k| attrs.iter().find(|a| a.kind == k);
        let u32_of = |k, what| find(k).map(|a: &Raw| a.u32(what)).transpose().map(Option::unwrap_or_default);
        let af = find(da::ADDR_FAMILY).map(|a| a.u16("ADDR_FAMILY")).transpose()?.unwrap_or(svc_af);
        let stats = match find(da::STATS64).or(find(da::STATS)) {
            Some(s) => Some(Stats::from_nest(s)?),
            None => None,
        };
        Ok(Dest {
            addr: Some(addr_of(af, find(da::ADDR).ok_or("destination without ADDR")?, "ADDR")?),
            port: find(da::PORT).ok_or("destination without PORT")?.be16("PORT")?,
            fwd_method: u32_of(da::FWD_METHOD, "FWD_METHOD")? & 0x7,
            weight: u32_of(da::WEIGHT, "WEIGHT")? as i32,
            u_thresh: u32_of(da::U_THRESH, "U_THRESH")?,
            l_thresh: u32_of(da::L_THRESH, "L_THRESH")?,
            tun_type: find(da::TUN_TYPE).map(|a| a.u8("TUN_TYPE")).transpose()?.unwrap_or(0),
            tun_port: find(da::TUN_PORT).map(|a| a.be16("TUN_PORT")).transpose()?.unwrap_or(0),
            tun_flags: find(da::TUN_FLAGS).map(|a| a.u16("TUN_FLAGS")).transpose()?.unwrap_or(0),
            active_conns: u32_of(da::ACTIVE_CONNS, "ACTIVE_CONNS")?,
            inact_conns: u32_of(da::INACT_CONNS, "INACT_CONNS")?,
            persist_conns: u32_of(da::PERSIST_CONNS, "PERSIST_CONNS")?,
            stats,
        })
    }
}

/// The three timeouts `ipvsadm --set` moves, seconds (0: leave as is).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

/// A connection synchronisation daemon.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Daemon {
    /// attr::STATE_MASTER or attr::STATE_BACKUP.
    pub state: u32,
    pub mcast_ifn: String,
    pub sync_id: u32,
    pub sync_maxlen: Option<u16>,
    pub mcast_group: Option<IpAddr>,
    pub mcast_port: Option<u16>,
    pub mcast_ttl: Option<u8>,
}

impl Daemon {
    fn attrs(&self) -> Vec<Attr> {
        use attr::daemon as d;
        let mut a = vec![
            Attr::new(d::STATE, Value::U32(self.state)),
            Attr::new(d::MCAST_IFN, Value::Str(self.mcast_ifn.clone())),
            Attr::new(d::SYNC_ID, Value::U32(self.sync_id)),
        ];
        if let Some(m) = self.sync_maxlen {
            a.push(Attr::new(d::SYNC_MAXLEN, Value::U16(m)));
        }
        match self.mcast_group {
            Some(IpAddr::V4(g)) => a.push(Attr::new(d::MCAST_GROUP, Value::Be32(u32::from(g)))),
            Some(IpAddr::V6(g)) => a.push(Attr::new(d::MCAST_GROUP6, Value::Bytes(g.octets().to_vec()))),
            None => {}
        }
        if let Some(p) = self.mcast_port {
            a.push(Attr::new(d::MCAST_PORT, Value::U16(p)));
        }
        if let Some(t) = self.mcast_ttl {
            a.push(Attr::new(d::MCAST_TTL, Value::U8(t)));
        }
        a
    }

    pub fn from_nest(bytes: &[u8]) -> Result<Daemon, DecodeError> {
        use attr::daemon as d;
        let attrs = nla::parse(bytes)?;
        let find = |k| attrs.iter().find(|a| a.kind == k);
        let group = match (find(d::MCAST_GROUP), find(d::MCAST_GROUP6)) {
            (_, Some(g6)) => Some(addr_of(AF_INET6, g6, "MCAST_GROUP6")?),
            (Some(g), None) => Some(addr_of(AF_INET, g, "MCAST_GROUP")?),
            (None, None) => None,
        };
        Ok(Daemon {
            state: find(d::STATE).ok_or("daemon without STATE")?.u32("STATE")?,
            mcast_ifn: find(d::MCAST_IFN).map(|a| a.string("MCAST_IFN")).transpose()?.unwrap_or_default(),
            sync_id: find(d::SYNC_ID).map(|a| a.u32("SYNC_ID")).transpose()?.unwrap_or(0),
            sync_maxlen: find(d::SYNC_MAXLEN).map(|a| a.u16("SYNC_MAXLEN")).transpose()?,
            mcast_group: group,
            mcast_port: find(d::MCAST_PORT).map(|a| a.u16("MCAST_PORT")).transpose()?,
            mcast_ttl: find(d::MCAST_TTL).map(|a| a.u8("MCAST_TTL")).transpose()?,
        })
    }
}

/// One IPVS generic netlink message: a command and its attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpvsMessage {
    pub cmd: u8,
    pub attrs: Vec<Attr>,
}

impl IpvsMessage {
    fn bare(cmd: u8) -> Self {
        IpvsMessage { cmd, attrs: Vec::new() }
    }

    /// NEW_SERVICE or SET_SERVICE carry the whole service; DEL_SERVICE,
    /// GET_SERVICE and ZERO only its name.
    pub fn service(cmd: u8, s: &Service) -> Self {
        let nest = match cmd {
            cmd::NEW_SERVICE | cmd::SET_SERVICE => s.attrs(),
            _ => s.id.attrs(),
        };
        IpvsMessage { cmd, attrs: vec![Attr::new(top::SERVICE, Value::Nested(nest))] }
    }

    /// NEW_DEST and SET_DEST carry the whole destination; DEL_DEST its name.
    pub fn dest(cmd: u8, svc: &ServiceId, d: &Dest) -> Self {
        let nest = if cmd == cmd::DEL_DEST { d.id_attrs() } else { d.attrs() };
        IpvsMessage {
            cmd,
            attrs: vec![Attr::new(top::SERVICE, Value::Nested(svc.attrs())), Attr::new(top::DEST, Value::Nested(nest))],
        }
    }

    /// GET_DEST for every destination of `svc` (a dump).
    pub fn dests_of(svc: &ServiceId) -> Self {
        IpvsMessage { cmd: cmd::GET_DEST, attrs: vec![Attr::new(top::SERVICE, Value::Nested(svc.attrs()))] }
    }

    /// GET_SERVICE with nothing: a dump of every service.
    pub fn services() -> Self {
        Self::bare(cmd::GET_SERVICE)
    }

    pub fn info() -> Self {
        Self::bare(cmd::GET_INFO)
    }

    pub fn get_config() -> Self {
        Self::bare(cmd::GET_CONFIG)
    }

    pub fn set_config(t: &Timeouts) -> Self {
        let attrs = [(top::TIMEOUT_TCP, t.tcp), (top::TIMEOUT_TCP_FIN, t.tcp_fin), (top::TIMEOUT_UDP, t.udp)]
            .into_iter()
            .map(|(k, v)| Attr::new(k, Value::U32(v)))
            .collect();
        IpvsMessage { cmd: cmd::SET_CONFIG, attrs }
    }

    /// ZERO of one service's counters, or of all when `svc` is None.
    pub fn zero(svc: Option<&ServiceId>) -> Self {
        let attrs = svc.map(|s| vec![Attr::new(top::SERVICE, Value::Nested(s.attrs()))]).unwrap_or_default();
        IpvsMessage { cmd: cmd::ZERO, attrs }
    }

    pub fn flush() -> Self {
        Self::bare(cmd::FLUSH)
    }

    pub fn new_daemon(d: &Daemon) -> Self {
        IpvsMessage { cmd: cmd::NEW_DAEMON, attrs: vec![Attr::new(top::DAEMON, Value::Nested(d.attrs()))] }
    }

    pub fn del_daemon(state: u32) -> Self {
        let nest = vec![Attr::new(attr::daemon::STATE, Value::U32(state))];
        IpvsMessage { cmd: cmd::DEL_DAEMON, attrs: vec![Attr::new(top::DAEMON, Value::Nested(nest))] }
    }

    pub fn get_daemon() -> Self {
        Self::bare(cmd::GET_DAEMON)
    }

    fn top(&self, kind: u16) -> Option<&[u8]> {
        self.attrs.iter().find(|a| a.kind == kind).and_then(|a| match &a.value {
            Value::Bytes(b) => Some(b.as_slice()),
            _ => None,
        })
    }

    /// The service in an answer (a GET_SERVICE dump entry).
    pub fn service_of(&self) -> Result<Service, DecodeError> {
        Service::from_nest(self.top(top::SERVICE).ok_or("no service in the message")?)
    }

    /// The destination in an answer (a GET_DEST dump entry).
    pub fn dest_of(&self, svc_af: u16) -> Result<Dest, DecodeError> {
        Dest::from_nest(self.top(top::DEST).ok_or("no destination in the message")?, svc_af)
    }

    /// Every daemon nest in an answer to GET_DAEMON.
    pub fn daemons_of(&self) -> Result<Vec<Daemon>, DecodeError> {
        self.attrs
            .iter()
            .filter(|a| a.kind == top::DAEMON)
            .map(|a| match &a.value {
                Value::Bytes(b) => Daemon::from_nest(b),
                _ => Err(DecodeError::from("daemon nest not parsed")),
            })
            .collect()
    }

    /// (version, connection table size) from an answer to GET_INFO.
    pub fn info_of(&self) -> Result<(u32, u32), DecodeError> {
        let one = |k, what| -> Result<u32, DecodeError> {
            let b = self.top(k).ok_or_else(|| DecodeError::from(format!("no {what}")))?;
            Raw { kind: k, bytes: b }.u32(what)
        };
        Ok((one(ia::VERSION, "VERSION")?, one(ia::CONN_TAB_SIZE, "CONN_TAB_SIZE")?))
    }

    /// The timeouts in an answer to GET_CONFIG.
    pub fn timeouts_of(&self) -> Result<Timeouts, DecodeError> {
        let one = |k| -> Result<u32, DecodeError> {
            self.top(k).map(|b| Raw { kind: k, bytes: b }.u32("timeout")).transpose().map(Option::unwrap_or_default)
        };
        Ok(Timeouts { tcp: one(top::TIMEOUT_TCP)?, tcp_fin: one(top::TIMEOUT_TCP_FIN)?, udp: one(top::TIMEOUT_UDP)? })
    }
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        attr::FAMILY_NAME
    }
    fn command(&self) -> u8 {
        self.cmd
    }
    fn version(&self) -> u8 {
        attr::FAMILY_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }
    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

/// Received attributes are kept as bytes (nests too) and read by the
/// typed accessors above, which know each nest's layout.
impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let attrs = nla::parse(buf)?.into_iter().map(|r| Attr::new(r.kind, Value::Bytes(r.bytes.to_vec()))).collect();
        Ok(IpvsMessage { cmd: header.cmd, attrs })
    }
}
