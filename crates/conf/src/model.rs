//! The typed configuration: what the file says once keepalived's defaults
//! and inheritance are applied, each item with the position it came from.

use crate::diag::Pos;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub global: GlobalDefs,
    pub scripts: Vec<VrrpScript>,
    pub sync_groups: Vec<SyncGroup>,
    pub instances: Vec<VrrpInstance>,
    pub vs_groups: Vec<VirtualServerGroup>,
    pub virtual_servers: Vec<VirtualServer>,
    pub ssl: Option<SslContext>,
    /// rlvs: `local_address_group NAME { ADDR ... }`, FULLNAT's local
    /// addresses (DPVS's keepalived spelling).
    pub laddr_groups: Vec<LaddrGroup>,
    /// `track_file NAME { file PATH weight N [reverse] init_file [V] }`.
    pub track_files: Vec<TrackFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackFile {
    pub name: String,
    pub pos: Pos,
    pub file: String,
    pub weight: i32,
    pub reverse: bool,
    /// init_file: the value written when the file does not exist.
    pub init: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaddrGroup {
    pub name: String,
    pub pos: Pos,
    pub addrs: Vec<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalDefs {
    pub router_id: Option<String>,
    pub mcast_group4: Ipv4Addr,
    pub mcast_group6: Ipv6Addr,
    pub garp: GarpTiming,
    /// Gap between successive gratuitous ARPs / NAs on one interface.
    pub garp_interval: Duration,
    pub gna_interval: Duration,
    pub version: u8,
    pub check_unicast_src: bool,
    pub skip_check_adv_addr: bool,
    pub strict: bool,
    pub startup_delay: Duration,
    pub log_unknown_vrids: bool,
    pub lower_prio_no_advert: bool,
    pub higher_prio_send_advert: bool,
    pub down_timer_adverts: u32,
    pub script_user: Option<ScriptUser>,
    /// Where script_user is set.
    pub script_user_pos: Option<Pos>,
    pub enable_script_security: bool,
    /// lvs_timeouts: tcp, tcpfin, udp (seconds).
    pub lvs_timeouts: Option<(Option<u32>, Option<u32>, Option<u32>)>,
    pub lvs_flush: bool,
    pub lvs_flush_on_stop: Option<FlushOnStop>,
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
    pub checker_log_all_failures: bool,
    pub default_interface: Option<String>,
    pub dynamic_interfaces: bool,
    pub rs_init_notifies: bool,
    pub notify_priority_changes: bool,
    /// Email alerts: rlvs sends none, but keeps them to show in the
    /// dumps as keepalived does.
    pub email: Email,
}

/// notification_email and the smtp_* keywords.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Email {
    pub smtp_server: Option<(IpAddr, u16)>,
    pub helo_name: Option<String>,
    /// Seconds.
    pub connect_timeout: Option<u32>,
    pub from: Option<String>,
    pub to: Vec<String>,
}

/// `lvs_sync_daemon IFACE [[inst] VI_NAME] [id N] [maxlen N] [port N]
/// [ttl N] [group ADDR]`: IPVS connection sync; with an instance, the
/// master role follows that instance's state, without one both run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LvsSyncDaemon {
    pub interface: String,
    pub instance: Option<String>,
    /// None: the instance's virtual_router_id, else 0.
    pub syncid: Option<u8>,
    pub maxlen: Option<u16>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
    pub group: Option<IpAddr>,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        GlobalDefs {
            router_id: None,
            mcast_group4: Ipv4Addr::new(224, 0, 0, 18),
            mcast_group6: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
            garp: GarpTiming::default(),
            garp_interval: Duration::ZERO,
            gna_interval: Duration::ZERO,
            version: 2,
            check_unicast_src: false,
            skip_check_adv_addr: false,
            strict: false,
            startup_delay: Duration::ZERO,
            log_unknown_vrids: false,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            down_timer_adverts: 3,
            script_user: None,
            script_user_pos: None,
            enable_script_security: false,
            lvs_timeouts: None,
            lvs_flush: false,
            lvs_flush_on_stop: None,
            lvs_sync_daemon: None,
            checker_log_all_failures: false,
            default_interface: None,
            dynamic_interfaces: false,
            rs_init_notifies: false,
            email: Email::default(),
            notify_priority_changes: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FlushOnStop {
    All,
    Vs,
}

/// Gratuitous ARP / unsolicited NA behaviour around becoming master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GarpTiming {
    /// After becoming master, a second round is sent after this delay.
    pub master_delay: Duration,
    /// How many per round.
    pub master_repeat: u32,
    /// While master, send again every this often (zero: never).
    pub master_refresh: Duration,
    pub master_refresh_repeat: u32,
    /// On hearing a lower-priority advert while master.
    pub lower_prio_delay: Option<Duration>,
    pub lower_prio_repeat: Option<u32>,
}

impl Default for GarpTiming {
    fn default() -> Self {
        GarpTiming {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: Duration::ZERO,
            master_refresh_repeat: 1,
            lower_prio_delay: None,
            lower_prio_repeat: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptUser {
    pub user: String,
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpScript {
    pub name: String,
    pub pos: Pos,
    /// Where its block closes (keepalived's position for what it finds
    /// when completing the script).
    pub end: Pos,
    /// The command line as keepalived splits it (words, quotes honoured).
    pub script: Vec<String>,
    pub interval: Duration,
    pub timeout: Option<Duration>,
    pub weight: i32,
    /// `weight N reverse`: the weight applies while the script fails.
    pub weight_reverse: bool,
    pub rise: u32,
    pub fall: u32,
    pub user: Option<ScriptUser>,
    /// Where `user` is set.
    pub user_pos: Option<Pos>,
    pub init_fail: bool,
}

/// A notify script: the command and the user to run it as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotifyScript {
    pub pos: Pos,
    pub command: Vec<String>,
    pub user: Option<ScriptUser>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Notifies {
    pub master: Option<NotifyScript>,
    pub backup: Option<NotifyScript>,
    pub fault: Option<NotifyScript>,
    pub stop: Option<NotifyScript>,
    pub deleted: Option<NotifyScript>,
    /// `notify`: called on every change with type, name, state, priority.
    pub any: Option<NotifyScript>,
    pub master_rx_lower_pri: Option<NotifyScript>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackInterface {
    pub pos: Pos,
    pub name: String,
    /// 0: the instance goes to FAULT while the interface is down; otherwise
    /// added to the priority while it is up (subtracted while down if
    /// negative... as keepalived: see the vrrp core).
    pub weight: i32,
    pub reverse: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackScript {
    pub pos: Pos,
    pub name: String,
    /// The script's weight unless the track line overrides it; 0: the
    /// instance goes to FAULT while the script fails.
    pub weight: i32,
    pub reverse: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncGroup {
    pub name: String,
    pub pos: Pos,
    pub members: Vec<(String, Pos)>,
    pub track_interfaces: Vec<TrackInterface>,
    pub track_scripts: Vec<TrackScript>,
    pub notify: Notifies,
    pub global_tracking: bool,
    pub sync_group_tracking_weight: bool,
    pub notify_priority_changes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InitialState {
    Master,
    Backup,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Auth {
    /// Simple text password, compared on its first 8 bytes.
    Pass([u8; 8]),
    /// IPsec AH, VRRPv2 only: recognised but not implemented by rlvs.
    Ah,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Scope {
    Global,
    Site,
    Link,
    Host,
    Nowhere,
    Other(u8),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vip {
    pub pos: Pos,
    pub addr: IpAddr,
    pub prefix: u8,
    pub brd: Option<Ipv4Addr>,
    pub dev: Option<String>,
    pub scope: Option<Scope>,
    pub label: Option<String>,
    pub peer: Option<IpAddr>,
    pub home: bool,
    pub nodad: bool,
    pub noprefixroute: bool,
    pub no_track: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnicastPeer {
    pub pos: Pos,
    pub addr: IpAddr,
    pub min_ttl: Option<u8>,
    pub max_ttl: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpInstance {
    pub name: String,
    pub pos: Pos,
    pub state: Option<InitialState>,
    pub interface: Option<(String, Pos)>,
    pub vrid: u8,
    pub priority: u8,
    pub advert_int: Duration,
    /// None: global_defs vrrp_version.
    pub version: Option<u8>,
    pub auth: Option<Auth>,
    pub vips: Vec<Vip>,
    pub excluded_vips: Vec<Vip>,
    pub unicast_peers: Vec<UnicastPeer>,
    pub unicast_src_ip: Option<IpAddr>,
    pub mcast_src_ip: Option<IpAddr>,
    pub mcast_dst_ip: Option<IpAddr>,
    pub unicast_ttl: u8,
    pub check_unicast_src: Option<bool>,
    pub skip_check_adv_addr: Option<bool>,
    pub native_ipv6: bool,
    pub dont_track_primary: bool,
    pub track_interfaces: Vec<TrackInterface>,
    pub track_scripts: Vec<TrackScript>,
    pub nopreempt: bool,
    pub preempt_delay: Duration,
    pub accept: Option<bool>,
    pub strict_mode: Option<bool>,
    pub notify: Notifies,
    pub notify_priority_changes: Option<bool>,
    pub garp: Option<GarpTiming>,
    pub down_timer_adverts: Option<u32>,
    pub lower_prio_no_advert: Option<bool>,
    pub higher_prio_send_advert: Option<bool>,
    pub debug: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum VsgEntry {
    /// `IP[-LAST_OCTET_OR_GROUP] PORT`: a range of addresses on one port.
    Range {
        first: IpAddr,
        last: IpAddr,
        port: u16,
    },
    Fwmark(u32),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServerGroup {
    pub name: String,
    pub pos: Pos,
    pub entries: Vec<(VsgEntry, Pos)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum VsTarget {
    Addr { addr: IpAddr, port: u16 },
    Fwmark(u32),
    Group(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LbKind {
    Nat,
    Dr,
    Tun,
    /// rlvs extension.
    FullNat,
}

/// `lb_kind TUN type ipip|gue|gre [port N] [nocsum|csum|remcsum]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunOpts {
    pub kind: String,
    pub port: Option<u16>,
    pub csum: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum VsProtocol {
    Tcp,
    Udp,
    Sctp,
}

/// Checker timing, resolved from checker, real server and virtual server
/// as keepalived does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CheckTiming {
    pub delay_loop: Duration,
    pub connect_timeout: Duration,
    pub retry: u32,
    pub delay_before_retry: Duration,
    pub warmup: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServer {
    pub pos: Pos,
    pub target: VsTarget,
    pub protocol: VsProtocol,
    pub lb_algo: String,
    pub lb_kind: LbKind,
    pub tun: Option<TunOpts>,
    pub sched_flags: Vec<String>,
    pub ops: bool,
    pub persistence_timeout: Option<u32>,
    pub persistence_granularity: Option<IpAddr>,
    pub persistence_engine: Option<String>,
    pub ip_family: Option<u8>,
    pub delay_loop: Duration,
    pub ha_suspend: bool,
    pub virtualhost: Option<String>,
    pub alpha: bool,
    pub omega: bool,
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: Option<NotifyScript>,
    pub quorum_down: Option<NotifyScript>,
    pub inhibit_on_failure: bool,
    pub sorry_server: Option<(IpAddr, u16)>,
    pub sorry_server_inhibit: bool,
    pub sorry_server_lvs_method: Option<LbKind>,
    /// rlvs: FULLNAT's local address group.
    pub laddr_group: Option<String>,
    pub real_servers: Vec<RealServer>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealServer {
    pub pos: Pos,
    pub addr: IpAddr,
    pub port: u16,
    pub weight: i32,
    pub lvs_method: LbKind,
    pub tun: Option<TunOpts>,
    pub uthreshold: Option<u32>,
    pub lthreshold: Option<u32>,
    pub inhibit_on_failure: bool,
    pub notify_up: Option<NotifyScript>,
    pub notify_down: Option<NotifyScript>,
    pub alpha: bool,
    pub virtualhost: Option<String>,
    pub checkers: Vec<Checker>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checker {
    pub pos: Pos,
    pub kind: CheckKind,
    pub timing: CheckTiming,
    pub connect_ip: Option<IpAddr>,
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
    pub bind_port: Option<u16>,
    pub bind_if: Option<String>,
    pub fwmark: Option<u32>,
    pub alpha: bool,
    pub log_all_failures: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum CheckKind {
    Http(HttpCheck),
    Tcp,
    Misc(MiscCheck),
    Smtp { helo_name: Option<String> },
    Dns { query_type: String, name: String },
    Udp(UdpCheck),
    Ping,
    File { track_file: String, weight: Option<i32> },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpCheck {
    pub ssl: bool,
    pub urls: Vec<Url>,
    pub virtualhost: Option<String>,
    pub http_protocol: Option<String>,
    pub enable_sni: bool,
    pub fast_recovery: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Url {
    pub pos: Pos,
    pub path: String,
    /// MD5 of the body, lower-case hex.
    pub digest: Option<String>,
    /// Accepted status codes as inclusive ranges; empty: any 2xx.
    pub status_codes: Vec<(u16, u16)>,
    pub virtualhost: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MiscCheck {
    pub path: Vec<String>,
    pub timeout: Option<Duration>,
    pub dynamic: bool,
    pub user: Option<ScriptUser>,
    /// Where `user` is set.
    pub user_pos: Option<Pos>,
    /// The block's closing brace, where keepalived judges the script's user.
    pub end: Option<Pos>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UdpCheck {
    pub payload: Option<Vec<u8>>,
    pub require_reply: Option<Vec<u8>>,
    pub min_reply_length: Option<u32>,
    pub max_reply_length: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SslContext {
    pub password: Option<String>,
    pub ca: Option<String>,
    pub certificate: Option<String>,
    pub key: Option<String>,
}
