//! The control protocol between the faces (ipvsadm, keepalived, `rlvs ctl`)
//! and the daemon: one JSON object per line over a Unix socket.
//!
//! The socket lives in the abstract namespace, which Linux scopes per network
//! namespace — exactly as kernel IPVS state is scoped — so `ip netns exec X
//! ipvsadm` reaches the daemon of namespace X and no other.

#![forbid(unsafe_code)]

use rlvs_lvs::director::{ConnInfo, ServiceInfo, TimeoutTriple};
use rlvs_lvs::{DestConfig, IpvsError, ServiceConfig, ServiceKey};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};

/// Called with a request's answer.
pub type Reply = Box<dyn FnOnce(Response) + Send>;

/// A request on its way to the table that answers it.
pub struct ControlMsg {
    pub req: Request,
    pub reply: Reply,
}

/// Called with every table event (services, real servers, local
/// addresses), after the change is in force.
pub type Subscriber = Box<dyn FnMut(&rlvs_lvs::director::Event) + Send>;

/// The backend boundary: whatever holds the table and forwards by it.
/// rlvs's own engines (AF_XDP, AF_PACKET) are one implementation, kernel
/// IPVS over generic netlink the other; the daemon, its control socket and
/// the checkers talk only to this.
pub trait Engine: Send + Sync {
    /// Queues a request; its reply comes once the change is in force, so a
    /// client that sees it can send traffic at once.
    fn send(&self, msg: ControlMsg);
    /// Has `f` called with the table events of every request sent after
    /// this call, before that request's reply.
    fn subscribe(&self, f: Subscriber);
    /// Asks the engine to stop; the caller joins its thread.
    fn stop(&self);
    /// Which backend this is, for logs ("afxdp", "afpacket", "none", "kernel").
    fn name(&self) -> &'static str;
}

/// How the daemon's parts share the one engine.
pub type EngineHandle = std::sync::Arc<dyn Engine>;

/// The abstract socket name (shown by `ss -xl` as `@rlvs/control`).
pub const SOCKET_NAME: &[u8] = b"rlvs/control";

pub fn socket_addr() -> std::io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(SOCKET_NAME)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    Info,
    AddService {
        key: ServiceKey,
        config: ServiceConfig,
    },
    EditService {
        key: ServiceKey,
        config: ServiceConfig,
    },
    DelService {
        key: ServiceKey,
    },
    Flush,
    AddDest {
        service: ServiceKey,
        dest: DestConfig,
    },
    EditDest {
        service: ServiceKey,
        dest: DestConfig,
    },
    DelDest {
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
    },
    Zero {
        service: Option<ServiceKey>,
    },
    SetTimeouts(TimeoutTriple),
    GetTimeouts,
    ListServices,
    GetService {
        key: ServiceKey,
    },
    ListConns,
    /// FULLNAT local addresses (rlvs's --add-laddr / --del-laddr).
    AddLaddr {
        service: ServiceKey,
        laddr: IpAddr,
    },
    DelLaddr {
        service: ServiceKey,
        laddr: IpAddr,
    },
    /// The VRRP instances of the daemon's keepalived.conf (answered by the
    /// daemon, not the engine).
    VrrpStatus,
    /// Connection sync daemons (ipvsadm --start-daemon, --stop-daemon,
    /// -L --daemon).
    StartDaemon(SyncDaemon),
    StopDaemon {
        state: u32,
    },
    ListDaemons,
    /// Reload the daemon's keepalived.conf, as SIGHUP does; answered once
    /// the reload is applied (Ok) or refused (Refused, with why).
    Reload,
    /// An operator's hold on the real servers at `addr` (and `port`, or
    /// every port) of the checkers' virtual servers: answered with what
    /// it matched (Done) or why not (Refused).
    Operator {
        addr: IpAddr,
        port: Option<u16>,
        op: OperatorOp,
    },
    /// Take a VRRP instance down (FAULT: the peer takes over) or return it.
    Maintenance {
        instance: String,
        on: bool,
    },
    /// The checkers' view of every real server they manage.
    Checkers,
    /// What the engine did with packets, and how full its tables are.
    EngineStats,
    /// The connection table's bound and IPVS's defences (net.ipv4.vs's
    /// drop_entry, drop_packet, secure_tcp, amemthresh, am_droprate):
    /// what is set changes, the rest stays. Answered Ok or Refused.
    SetDefence(DefenceChange),
    /// sloppy_tcp for these services alone (rlvs's per-service opt-in;
    /// replaces the previous list): a mid-flow TCP segment of a flow this
    /// director has not seen is scheduled instead of dropped.
    SetSloppy {
        services: Vec<ServiceKey>,
    },
    /// The BGP announcement of this director's VIPs (rlvs's scale-out
    /// settings): show it, drain (GRACEFUL_SHUTDOWN, then withdraw) or
    /// resume. Answered by the daemon.
    Announce(AnnounceOp),
    /// The real server each of these client ports would get from
    /// `service` now (rlvs's extension, for comparing directors): answered
    /// with Done, one `CLIENT:PORT RS:PORT` line per port ("-" for none).
    Pick {
        service: ServiceKey,
        caddr: IpAddr,
        cports: Vec<u16>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnnounceOp {
    Status,
    Drain,
    Resume,
}

/// What `rlvs ctl announce` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceStatus {
    /// The device announced VIPs live on (and `<device>-gs` for draining ones).
    pub device: String,
    pub draining: bool,
    pub drain_time_ms: u64,
    /// "all" or "any" of a VIP's virtual servers must have quorum.
    pub quorum: String,
    /// Whether the data plane answers.
    pub healthy: bool,
    pub vips: Vec<VipAnnounce>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipAnnounce {
    pub vip: IpAddr,
    /// "announced", "draining" or "withdrawn".
    pub place: String,
    /// Each virtual server of the VIP (keepalived's name) and its quorum.
    pub services: Vec<(String, bool)>,
}

/// A change to the defences; None leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefenceChange {
    pub drop_entry: Option<u8>,
    pub drop_packet: Option<u8>,
    pub secure_tcp: Option<u8>,
    pub amemthresh: Option<u64>,
    pub am_droprate: Option<u32>,
    /// Some(None) lifts the bound.
    pub limit: Option<Option<u64>>,
}

impl DefenceChange {
    pub fn apply(&self, cfg: &mut rlvs_lvs::defence::DefenceConfig) {
        let DefenceChange { drop_entry, drop_packet, secure_tcp, amemthresh, am_droprate, limit } = *self;
        cfg.drop_entry = drop_entry.unwrap_or(cfg.drop_entry);
        cfg.drop_packet = drop_packet.unwrap_or(cfg.drop_packet);
        cfg.secure_tcp = secure_tcp.unwrap_or(cfg.secure_tcp);
        cfg.amemthresh = amemthresh.unwrap_or(cfg.amemthresh);
        cfg.am_droprate = am_droprate.unwrap_or(cfg.am_droprate);
        cfg.limit = limit.unwrap_or(cfg.limit);
    }
}

/// The engine's counters since it started (`rlvs_engine_*` metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineCounters {
    /// Frames the engine read itself (the slow path): every frame of
    /// AF_PACKET, what XDP handed over under AF_XDP.
    pub frames: u64,
    /// Slow-path packets sent to real servers, and NAT replies to clients.
    pub forwarded: u64,
    pub replies: u64,
    /// Frames for no virtual service, left to the kernel.
    pub not_ours: u64,
    /// Dropped frames meant for virtual services, by reason.
    pub drops: Vec<(String, u64)>,
    pub icmp_sent: u64,
    /// Frames held while a real server's next hop resolved.
    pub waiting_for_neighbour: u64,
    /// The XDP fast path, when it runs.
    pub fast_path: Option<FastPathCounters>,
    /// Entries in the connection table, and its bound (None: unbounded).
    pub connections: u64,
    pub connection_limit: Option<u64>,
    /// The defences' settings, state and counts (rlvs's own engine).
    pub defence: Option<rlvs_lvs::defence::DefenceStatus>,
    /// Connection sync: messages sent by a master; received, connections
    /// applied and messages rejected (malformed, other syncid) by a backup.
    pub sync_sent: u64,
    pub sync_received: u64,
    pub sync_conns_received: u64,
    pub sync_rejected: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FastPathCounters {
    /// Packets forwarded inside XDP, both directions.
    pub forwarded: u64,
    /// Found in the connection map but left to the engine.
    pub punted: u64,
    /// Owned traffic dropped with no engine socket to take it.
    pub orphaned: u64,
    /// Entries in each pinned connection map (conns4, conns6), and the
    /// capacity of each.
    pub map_entries: Vec<(String, u64)>,
    pub map_capacity: u64,
}

/// A real server as the checkers see it (`rlvs ctl status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsState {
    /// keepalived's names: `[10.0.0.100]:tcp:80`, `[10.1.1.244]:tcp:80`.
    pub vs: String,
    pub rs: String,
    /// Its checks pass (or it has none).
    pub up: bool,
    /// An operator's drain or weight on it.
    pub hold: Option<OperatorOp>,
}

/// What `rlvs ctl` does to a real server. A drain or weight outlives
/// reloads and health transitions until `Enable` lifts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperatorOp {
    /// Weight 0: no new connections, established ones kept.
    Drain,
    /// This weight instead of the configured one.
    Weight(u32),
    /// Lift a drain or weight: the configured weight and checker state rule again.
    Enable,
}

/// IP_VS_STATE_MASTER and IP_VS_STATE_BACKUP.
pub const SYNC_MASTER: u32 = 1;
pub const SYNC_BACKUP: u32 = 2;

/// A connection sync daemon as ipvsadm asks for one and lists it. Zero and
/// None mean "the default", which the running daemon reports filled in
/// (maxlen from the interface's MTU, 224.0.0.81, 8848, TTL 1), as the
/// kernel does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDaemon {
    pub state: u32,
    pub mcast_ifn: String,
    pub syncid: u8,
    pub maxlen: u16,
    pub group: Option<IpAddr>,
    pub port: u16,
    pub ttl: u8,
    /// A backup has loaded what the master holds (rlvs's bulk resync), or
    /// no rlvs master answered; always true of a master and of the kernel.
    #[serde(default)]
    pub ready: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Info {
    /// IPVS version code as the kernel reports it (1.2.1).
    pub version: (u8, u8, u8),
    /// Connection hash table size, printed by `ipvsadm -L` as `size=`.
    pub conn_tab_size: u32,
    pub num_services: u32,
    /// Which engine carries packets ("afpacket", "none").
    pub engine: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    Ok,
    Info(Info),
    Services(Vec<ServiceInfo>),
    Service(ServiceInfo),
    Conns(Vec<ConnInfo>),
    Timeouts(TimeoutTriple),
    /// VRRP instances: name, state, priorities, counters.
    Vrrp(Vec<serde_json::Value>),
    Daemons(Vec<SyncDaemon>),
    Error(CtlError),
    /// A request the daemon turned down, and why (a reload whose file
    /// does not load).
    Refused(String),
    /// What an operator request did, one line per real server.
    Done(Vec<String>),
    Checkers(Vec<RsState>),
    EngineStats(EngineCounters),
    Announce(AnnounceStatus),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CtlError {
    Ipvs(IpvsError),
    /// The peer is not root.
    PermissionDenied,
    /// The request could not be decoded.
    BadRequest,
}

impl CtlError {
    pub fn errno(self) -> i32 {
        match self {
            CtlError::Ipvs(e) => e.errno(),
            CtlError::PermissionDenied => 1,
            CtlError::BadRequest => 22,
        }
    }
}

/// A blocking client, for the command-line faces.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to the daemon of the caller's network namespace.
    pub fn connect() -> std::io::Result<Client> {
        let s = UnixStream::connect_addr(&socket_addr()?)?;
        Ok(Client { reader: BufReader::new(s.try_clone()?), writer: s })
    }

    /// Sends a request without waiting for its answer.
    pub fn send(&mut self, req: &Request) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(req).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.writer.write_all(&line)
    }

    pub fn call(&mut self, req: &Request) -> std::io::Result<Response> {
        self.send(req)?;
        let mut buf = String::new();
        if self.reader.read_line(&mut buf)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "daemon closed the connection"));
        }
        serde_json::from_str(&buf).map_err(std::io::Error::other)
    }
}

/// The daemon side: applies one request to the director. Kept here, beside
/// the protocol, so every transport (the socket server, in-process tests)
/// answers the same way.
pub fn handle(director: &mut rlvs_lvs::Director, req: Request, now: rlvs_lvs::Time, engine: &str) -> Response {
    let unit = |r: Result<(), IpvsError>| match r {
        Ok(()) => Response::Ok,
        Err(e) => Response::Error(CtlError::Ipvs(e)),
    };
    match req {
        Request::Info => Response::Info(Info {
            version: (1, 2, 1),
            conn_tab_size: 4096,
            num_services: director.service_count() as u32,
            engine: engine.to_string(),
        }),
        Request::AddService { key, config } => unit(director.add_service(key, config, now)),
        Request::EditService { key, config } => unit(director.edit_service(&key, config, now)),
        Request::DelService { key } => unit(director.del_service(&key, now)),
        Request::Flush => {
            director.flush(now);
            Response::Ok
        }
        Request::AddDest { service, dest } => unit(director.add_dest(&service, dest, now)),
        Request::EditDest { service, dest } => unit(director.edit_dest(&service, dest)),
        Request::DelDest { service, addr, port } => unit(director.del_dest(&service, addr, port, now)),
        Request::Zero { service } => unit(director.zero(service.as_ref())),
        Request::SetTimeouts(t) => {
            director.set_timeouts(t);
            Response::Ok
        }
        Request::GetTimeouts => Response::Timeouts(director.timeouts()),
        Request::ListServices => Response::Services(director.services()),
        Request::GetService { key } => match director.service(&key) {
            Ok(s) => Response::Service(s),
            Err(e) => Response::Error(CtlError::Ipvs(e)),
        },
        Request::ListConns => Response::Conns(director.conns(now)),
        Request::AddLaddr { service, laddr } => unit(director.add_laddr(&service, laddr)),
        Request::DelLaddr { service, laddr } => unit(director.del_laddr(&service, laddr)),
        // Without a VRRP side (an engine alone) there are no instances.
        Request::VrrpStatus => Response::Vrrp(Vec::new()),
        // Sync daemons are the engine's (sockets and threads), not the
        // director's: an engine that has none says so.
        Request::StartDaemon(_) | Request::StopDaemon { .. } => {
            Response::Error(CtlError::Ipvs(IpvsError::NotSupported))
        }
        Request::ListDaemons => Response::Daemons(Vec::new()),
        // Reloads are the daemon's; an engine alone has no file to reload.
        Request::Reload => Response::Refused("no configuration file to reload".into()),
        Request::Operator { .. } => {
            Response::Refused("no checkers: the daemon runs no virtual servers of a keepalived.conf".into())
        }
        Request::Maintenance { .. } => Response::Refused("no VRRP instances in this daemon".into()),
        Request::Pick { service, caddr, cports } => Response::Done(
            cports
                .iter()
                .map(|&p| {
                    let rs = director.pick(service.protocol, caddr, p, service.addr, service.port, now);
                    let rs = rs.map_or("-".to_string(), |(a, p)| std::net::SocketAddr::new(a, p).to_string());
                    format!("{} {rs}", std::net::SocketAddr::new(caddr, p))
                })
                .collect(),
        ),
        Request::Announce(_) => Response::Refused("this daemon announces nothing (no --scale-out settings)".into()),
        Request::Checkers => Response::Checkers(Vec::new()),
        Request::EngineStats => {
            let defence = director.defence_status();
            Response::EngineStats(EngineCounters {
                connections: director.conn_count() as u64,
                connection_limit: defence.config.limit,
                defence: Some(defence),
                ..Default::default()
            })
        }
        Request::SetSloppy { services } => {
            director.set_sloppy_services(services);
            Response::Ok
        }
        Request::SetDefence(change) => {
            let mut cfg = director.defence_config();
            change.apply(&mut cfg);
            match director.set_defence(cfg) {
                Ok(()) => Response::Ok,
                Err(why) => Response::Refused(why),
            }
        }
    }
}
