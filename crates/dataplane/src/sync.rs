//! The connection sync daemons of rlvs's own engines: the sockets and the
//! backup's receiving thread around the director's sans-IO sync side
//! (rlvs_lvs::director::sync) and the message codec (rlvs_wire::ipvs_sync).
//!
//! Master: the engine thread drains what the director announced and sends
//! it, a message as soon as one is full and the rest within FLUSH (the
//! kernel waits up to 2 s; a backup that takes over sooner than that would
//! miss the connections still in the buffer).
//! Backup: a thread reads the group, drops what is malformed or for
//! another syncid, applies the rest to the director under its lock and
//! wakes the engine, which hands the new entries to the XDP fast path.
//!
//! Sync carries no authentication, as the kernel's does not: anyone who can
//! reach the group can write connections into a backup's table. Run it on
//! a dedicated link or VLAN.

use crate::resolver::Waker;
use crate::worker::Shared;
use rlvs_ctl::{CtlError, Response, SyncDaemon, SYNC_BACKUP, SYNC_MASTER};
use rlvs_lvs::director::sync::SyncParams;
use rlvs_lvs::IpvsError;
use rlvs_wire::ipvs_sync::{self, Builder, Control, Drop as Malformed};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest an announced connection waits in a partial message.
const FLUSH: Duration = Duration::from_millis(50);
/// A starting backup asks for a bulk resync this often, this many times;
/// then it takes it that no rlvs master is there to answer.
const RESYNC_ASK_EVERY: Duration = Duration::from_millis(700);
const RESYNC_ASKS: u32 = 3;
const IP_UDP_V4: u16 = 28;
const IP_UDP_V6: u16 = 48;

/// What the backup dropped, by reason, for logs and metrics.
#[derive(Default)]
pub struct BackupCounters {
    pub messages: AtomicU64,
    pub conns: AtomicU64,
    pub other_syncid: AtomicU64,
    pub malformed: AtomicU64,
    pub skipped_conns: AtomicU64,
}

struct Master {
    cfg: SyncDaemon,
    sock: Socket,
    /// The group as a backup hears it: where bulk resync requests come.
    requests: Option<Socket>,
    pending: Option<(Builder, Instant)>,
    sent: u64,
}

struct Backup {
    cfg: SyncDaemon,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    counters: Arc<BackupCounters>,
    /// The master's table is loaded (or nobody answered the request).
    ready: Arc<AtomicBool>,
}

impl Drop for Backup {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) struct SyncShell {
    shared: Arc<Shared>,
    waker: Arc<Waker>,
    /// The engine passes every input packet through the director
    /// (AF_PACKET), or the XDP fast path takes established flows.
    every_packet_seen: bool,
    master: Option<Master>,
    backup: Option<Backup>,
    /// What daemons stopped since the engine started had counted.
    retired: SyncTotals,
}

/// Sync traffic since the engine started (metrics).
#[derive(Debug, Default, Clone, Copy)]
pub struct SyncTotals {
    pub sent: u64,
    pub received: u64,
    pub conns: u64,
    pub malformed: u64,
    pub other_syncid: u64,
}

impl SyncTotals {
    fn add_backup(&mut self, c: &BackupCounters) {
        self.received += c.messages.load(Ordering::Relaxed);
        self.conns += c.conns.load(Ordering::Relaxed);
        self.malformed += c.malformed.load(Ordering::Relaxed);
        self.other_syncid += c.other_syncid.load(Ordering::Relaxed);
    }
}

fn err(e: IpvsError) -> Response {
    Response::Error(CtlError::Ipvs(e))
}

/// The daemon as the kernel completes it (start_sync_thread): group 224.0.0.81,
/// port 8848, TTL 1, and maxlen from the MTU (a master assumes 1500, a
/// backup takes the link's MTU, at least 1500), or the asked maxlen held to
/// what a datagram can carry.
fn complete(mut d: SyncDaemon, mtu: u32) -> SyncDaemon {
    let group = *d.group.get_or_insert(IpAddr::V4(ipvs_sync::GROUP_V4));
    if d.port == 0 {
        d.port = ipvs_sync::PORT;
    }
    if d.ttl == 0 {
        d.ttl = 1;
    }
    let hlen = if group.is_ipv6() { IP_UDP_V6 } else { IP_UDP_V4 };
    let backup = d.state == SYNC_BACKUP;
    let mtu = if backup { mtu.clamp(1500, 65535) as u16 } else { 1500 };
    let min = if backup { 1024 } else { 1 };
    d.maxlen = if d.maxlen == 0 { mtu - hlen } else { d.maxlen.clamp(min, 65535 - hlen) };
    d
}

impl SyncShell {
    pub fn new(shared: Arc<Shared>, waker: Arc<Waker>, every_packet_seen: bool) -> SyncShell {
        SyncShell { shared, waker, every_packet_seen, master: None, backup: None, retired: SyncTotals::default() }
    }

    pub fn start(&mut self, d: SyncDaemon) -> Response {
        let Some(ifindex) = crate::iface::index_of(&d.mcast_ifn) else {
            tracing::error!("Unknown mcast interface: {}", d.mcast_ifn);
            return err(IpvsError::NoDevice);
        };
        let mtu = crate::iface::mtu_of(ifindex).unwrap_or(1500);
        let d = complete(d, mtu);
        let opened = match d.state {
            SYNC_MASTER if self.master.is_some() => return err(IpvsError::Exists),
            SYNC_BACKUP if self.backup.is_some() => return err(IpvsError::Exists),
            SYNC_MASTER => master_socket(&d, ifindex).map(|sock| {
                let params = SyncParams::default();
                self.shared
                    .director
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .set_sync_master(Some(params), self.every_packet_seen);
                let requests = backup_socket(&d, ifindex)
                    .and_then(|s| s.set_nonblocking(true).map(|()| s))
                    .map_err(|e| tracing::warn!(error = %e, "no bulk resync: cannot hear the sync group"))
                    .ok();
                self.master = Some(Master { cfg: d.clone(), sock, requests, pending: None, sent: 0 });
            }),
            SYNC_BACKUP => backup_socket(&d, ifindex).and_then(|sock| {
                let asker = master_socket(&d, ifindex)?;
                let stop = Arc::new(AtomicBool::new(false));
                let counters = Arc::new(BackupCounters::default());
                let ready = Arc::new(AtomicBool::new(false));
                let (shared, waker, s2, c2, r2, cfg) =
                    (self.shared.clone(), self.waker.clone(), stop.clone(), counters.clone(), ready.clone(), d.clone());
                let thread = std::thread::Builder::new()
                    .name("rlvs-sync-backup".into())
                    .spawn(move || receive(sock, asker, cfg, shared, waker, s2, c2, r2))
                    .ok();
                self.backup = Some(Backup { cfg: d.clone(), stop, thread, counters, ready });
                Ok(())
            }),
            _ => return err(IpvsError::Invalid),
        };
        match opened {
            Ok(()) => {
                let role = if d.state == SYNC_MASTER { "MASTER" } else { "BACKUP" };
                tracing::info!(
                    "sync thread started: state = {role}, mcast_ifn = {}, syncid = {}, group = {}:{}, maxlen = {}",
                    d.mcast_ifn,
                    d.syncid,
                    d.group.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                    d.port,
                    d.maxlen
                );
                Response::Ok
            }
            Err(e) => {
                tracing::error!(error = %e, "could not open the sync socket on {}", d.mcast_ifn);
                err(IpvsError::Invalid)
            }
        }
    }

    pub fn stop(&mut self, state: u32) -> Response {
        match state {
            SYNC_MASTER => match self.master.take() {
                Some(m) => {
                    self.shared.director.lock().unwrap_or_else(|e| e.into_inner()).set_sync_master(None, true);
                    tracing::info!(sent = m.sent, "stopping master sync thread");
                    self.retired.sent += m.sent;
                    Response::Ok
                }
                None => err(IpvsError::NoService),
            },
            SYNC_BACKUP => match self.backup.take() {
                Some(b) => {
                    let c = &b.counters;
                    tracing::info!(
                        messages = c.messages.load(Ordering::Relaxed),
                        conns = c.conns.load(Ordering::Relaxed),
                        other_syncid = c.other_syncid.load(Ordering::Relaxed),
                        malformed = c.malformed.load(Ordering::Relaxed),
                        "stopping backup sync thread"
                    );
                    self.retired.add_backup(c);
                    Response::Ok
                }
                None => err(IpvsError::NoService),
            },
            _ => err(IpvsError::Invalid),
        }
    }

    pub fn counters(&self) -> SyncTotals {
        let mut t = self.retired;
        if let Some(m) = &self.master {
            t.sent += m.sent;
        }
        if let Some(b) = &self.backup {
            t.add_backup(&b.counters);
        }
        t
    }

    pub fn list(&self) -> Response {
        let mut l = Vec::new();
        if let Some(m) = &self.master {
            l.push(SyncDaemon { ready: true, ..m.cfg.clone() });
        }
        if let Some(b) = &self.backup {
            l.push(SyncDaemon { ready: b.ready.load(Ordering::SeqCst), ..b.cfg.clone() });
        }
        Response::Daemons(l)
    }

    /// The master's part of the engine loop: what the director announced
    /// goes out, full messages at once, a partial one after FLUSH.
    pub fn flush(&mut self) {
        let Some(m) = self.master.as_mut() else { return };
        let resync = m.requests.as_ref().is_some_and(|s| asked_to_resync(s, m.cfg.syncid));
        let conns = {
            let mut d = self.shared.director.lock().unwrap_or_else(|e| e.into_inner());
            if resync {
                let n = d.sync_all(self.shared.now());
                tracing::info!(connections = n, "bulk resync asked by a returning director: sending the table");
            }
            d.take_sync()
        };
        for c in &conns {
            let (b, _) = m
                .pending
                .get_or_insert_with(|| (Builder::new(m.cfg.syncid, usize::from(m.cfg.maxlen)), Instant::now()));
            if !b.push(c) {
                let full = std::mem::replace(b, Builder::new(m.cfg.syncid, usize::from(m.cfg.maxlen)));
                send(&m.sock, full, &mut m.sent);
                m.pending.as_mut().expect("just made").1 = Instant::now();
                let (b, _) = m.pending.as_mut().expect("just made");
                b.push(c);
            }
        }
        if m.pending.as_ref().is_some_and(|(b, t)| !b.is_empty() && (resync || t.elapsed() >= FLUSH)) {
            let (b, _) = m.pending.take().expect("checked");
            send(&m.sock, b, &mut m.sent);
        }
        if resync {
            // After the table, in order on the same socket: the asker then
            // knows it has all of it.
            let _ = send_bytes(&m.sock, &ipvs_sync::control(Control::ResyncDone, m.cfg.syncid));
        }
    }
}

/// Whether a resync request for `syncid` waits on the group (the rest of
/// what arrives there is the backups' business).
fn asked_to_resync(sock: &Socket, syncid: u8) -> bool {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 64];
    let mut asked = false;
    while let Ok(n) = sock.recv(&mut buf) {
        // SAFETY: recv initialised the first n bytes.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const u8, n) };
        if let Some((Control::ResyncRequest, id)) = ipvs_sync::control_of(bytes) {
            asked |= id == syncid || syncid == 0 || id == 0;
        }
    }
    asked
}

fn send(sock: &Socket, b: Builder, sent: &mut u64) {
    match send_bytes(sock, &b.finish()) {
        Ok(()) => *sent += 1,
        // A datagram lost here is caught up by the connection's next
        // announcement.
        Err(e) => tracing::debug!(error = %e, "sync message not sent"),
    }
}

/// A full socket (a bulk resync's burst) waits a little, as the kernel's
/// master thread waits for room.
fn send_bytes(sock: &Socket, bytes: &[u8]) -> std::io::Result<()> {
    for _ in 0..100 {
        match sock.send(bytes) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(e),
        }
    }
    Err(std::io::ErrorKind::WouldBlock.into())
}

fn set_int(sock: &Socket, level: i32, name: i32, v: i32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt with an int of the size given, on our socket.
    let r = unsafe { libc::setsockopt(sock.as_raw_fd(), level, name, &v as *const i32 as *const libc::c_void, 4) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// make_send_sock: out of the interface, no loopback, the TTL, from the
/// interface's address, connected to the group.
fn master_socket(d: &SyncDaemon, ifindex: u32) -> std::io::Result<Socket> {
    let group = d.group.expect("completed");
    let to = SocketAddr::new(group, d.port);
    let sock = Socket::new(Domain::for_address(to), Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_nonblocking(true)?;
    match group {
        IpAddr::V4(_) => {
            use std::os::fd::AsRawFd;
            let m = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr { s_addr: 0 },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: ifindex as i32,
            };
            // SAFETY: IP_MULTICAST_IF takes an ip_mreqn of this size.
            let r = unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_MULTICAST_IF,
                    &m as *const libc::ip_mreqn as *const libc::c_void,
                    std::mem::size_of::<libc::ip_mreqn>() as u32,
                )
            };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
            sock.set_multicast_loop_v4(false)?;
            sock.set_multicast_ttl_v4(u32::from(d.ttl))?;
            // Fragment rather than drop when the path's MTU shrinks.
            set_int(&sock, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_DONT)?;
        }
        IpAddr::V6(_) => {
            sock.set_multicast_if_v6(ifindex)?;
            sock.set_multicast_loop_v6(false)?;
            sock.set_multicast_hops_v6(u32::from(d.ttl))?;
        }
    }
    sock.bind_device(Some(d.mcast_ifn.as_bytes()))?;
    let _ = sock.set_send_buffer_size(4 << 20);
    sock.connect(&to.into())?;
    Ok(sock)
}

/// make_receive_sock: shared port, bound to the interface and the group,
/// member of the group on that interface.
fn backup_socket(d: &SyncDaemon, ifindex: u32) -> std::io::Result<Socket> {
    let group = d.group.expect("completed");
    let at = SocketAddr::new(group, d.port);
    let sock = Socket::new(Domain::for_address(at), Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_reuse_address(true)?;
    sock.bind_device(Some(d.mcast_ifn.as_bytes()))?;
    sock.bind(&at.into())?;
    match group {
        IpAddr::V4(g) => sock.join_multicast_v4_n(&g, &socket2::InterfaceIndexOrAddress::Index(ifindex))?,
        IpAddr::V6(g) => sock.join_multicast_v6(&g, ifindex)?,
    }
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(sock)
}

#[allow(clippy::too_many_arguments)]
fn receive(
    sock: Socket,
    asker: Socket,
    cfg: SyncDaemon,
    shared: Arc<Shared>,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    counters: Arc<BackupCounters>,
    ready: Arc<AtomicBool>,
) {
    let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); usize::from(cfg.maxlen).max(1024)];
    // Large enough for a bulk resync's burst.
    let _ = sock.set_recv_buffer_size(8 << 20);
    let (mut asks, mut asked_at) = (0u32, Instant::now() - RESYNC_ASK_EVERY);
    while !stop.load(Ordering::SeqCst) {
        if !ready.load(Ordering::SeqCst) && asked_at.elapsed() >= RESYNC_ASK_EVERY {
            if asks == RESYNC_ASKS {
                tracing::info!("no rlvs master answered the bulk resync request; going on without");
                ready.store(true, Ordering::SeqCst);
            } else {
                let _ = send_bytes(&asker, &ipvs_sync::control(Control::ResyncRequest, cfg.syncid));
                asks += 1;
                asked_at = Instant::now();
            }
        }
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => {
                tracing::error!(error = %e, "receiving a sync message");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        // SAFETY: recv initialised the first n bytes.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const u8, n) };
        match ipvs_sync::control_of(bytes) {
            Some((Control::ResyncDone, id)) if cfg.syncid == 0 || id == cfg.syncid => {
                if !ready.swap(true, Ordering::SeqCst) {
                    tracing::info!(connections = counters.conns.load(Ordering::Relaxed), "bulk resync complete");
                }
                continue;
            }
            Some(_) => continue,
            None => {}
        }
        counters.messages.fetch_add(1, Ordering::Relaxed);
        let m = match ipvs_sync::parse(bytes) {
            Ok(m) => m,
            Err(why) => {
                counters.malformed.fetch_add(1, Ordering::Relaxed);
                log_drop(why);
                continue;
            }
        };
        if cfg.syncid != 0 && m.syncid != cfg.syncid {
            counters.other_syncid.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        counters.skipped_conns.fetch_add(m.skipped.len() as u64, Ordering::Relaxed);
        counters.conns.fetch_add(m.conns.len() as u64, Ordering::Relaxed);
        {
            let now = shared.now();
            let mut d = shared.director.lock().unwrap_or_else(|e| e.into_inner());
            for c in &m.conns {
                d.apply_sync(c, now);
            }
        }
        waker.wake();
    }
}

fn log_drop(why: Malformed) {
    tracing::debug!("BACKUP, dropping sync message: {why}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(state: u32) -> SyncDaemon {
        SyncDaemon { state, mcast_ifn: "d0".into(), ..Default::default() }
    }

    #[test]
    fn defaults_are_completed_as_the_kernel_completes_them() {
        let m = complete(asked(SYNC_MASTER), 9000);
        assert_eq!((m.maxlen, m.port, m.ttl), (1472, 8848, 1), "a master assumes 1500 whatever the MTU");
        assert_eq!(m.group, Some(IpAddr::V4(ipvs_sync::GROUP_V4)));
        assert_eq!(complete(asked(SYNC_BACKUP), 9000).maxlen, 8972);
        assert_eq!(complete(asked(SYNC_BACKUP), 1400).maxlen, 1472);
        let small = SyncDaemon { maxlen: 100, ..asked(SYNC_BACKUP) };
        assert_eq!(complete(small.clone(), 1500).maxlen, 1024);
        assert_eq!(complete(SyncDaemon { state: SYNC_MASTER, ..small }, 1500).maxlen, 100);
        let v6 = SyncDaemon { group: Some("ff02::1:2".parse().unwrap()), ..asked(SYNC_MASTER) };
        assert_eq!(complete(v6, 1500).maxlen, 1452);
    }
}
