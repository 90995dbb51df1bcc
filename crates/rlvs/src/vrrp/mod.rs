//! The VRRP shell: sockets, addresses, announcements, scripts and link
//! state around the sans-IO core in `rlvs_vrrp`. One task owns the
//! [`Router`]; socket readers and script runners feed it over channels.

mod announce;
pub mod scripts;
pub mod setup;
mod sock;

use anyhow::Result;
use rlvs_dataplane::netlink::{AddrSpec, Link, Rtnl};
use rlvs_vrrp::{Action, Advert, Output, Router, State};
use setup::{Runtime, Setup};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};

/// What the outside asks of the VRRP task.
pub enum Command {
    /// SIGHUP with a configuration that loaded.
    /// Apply a configuration; the sender, if any, hears once it is.
    Reload(Box<rlvs_conf::Config>, Option<tokio::sync::oneshot::Sender<()>>),
    /// `rlvs ctl maintenance`: the operator's answer once applied.
    Maintenance { instance: String, on: bool, reply: tokio::sync::oneshot::Sender<rlvs_ctl::Response> },
    /// Do not preempt a live master (connection sync is still loading the
    /// table), or stop holding back.
    HoldPreempt { instance: String, on: bool },
    /// keepalived's DATA and JSON dumps of the VRRP side, as text.
    Dump { json: bool, reply: tokio::sync::oneshot::Sender<String> },
    /// STATS_CLEAR: the counters back to zero (after the stats file).
    ClearStats,
}

/// An instance's state, for the control API and tests.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub name: String,
    pub state: &'static str,
    pub priority: u8,
    pub effective_priority: u8,
    pub stats: rlvs_vrrp::Stats,
    /// `state` as configured (keepalived's wantstate).
    pub wantstate: &'static str,
    /// The master heard last, while BACKUP.
    pub master_src: Option<IpAddr>,
    pub master_priority: u8,
    pub vips_set: bool,
    pub master_down_timer: Duration,
    /// Unix times (seconds) of the last state change and of the instance's
    /// next timer.
    pub last_transition: f64,
    pub read_timeout: f64,
    pub source: Option<IpAddr>,
}

struct Socks {
    tx: sock::TxSocket,
    ifindex: u32,
    src: IpAddr,
}

struct Notify {
    master: Option<scripts::Runnable>,
    backup: Option<scripts::Runnable>,
    fault: Option<scripts::Runnable>,
    stop: Option<scripts::Runnable>,
    any: Option<scripts::Runnable>,
    master_rx_lower_pri: Option<scripts::Runnable>,
}

pub struct Vrrp {
    setup: Setup,
    router: Router,
    epoch: Instant,
    rtnl: Rtnl,
    links: HashMap<String, Link>,
    /// Per instance: its sending socket once the interface has an address.
    tx: Vec<Option<Socks>>,
    /// Receivers running, by (interface, v6).
    rx_open: HashMap<(String, bool), u32>,
    packets: mpsc::UnboundedSender<(String, bool, sock::Received)>,
    announcer: Option<announce::Announcer>,
    notify: Vec<Notify>,
    group_notify: Vec<Notify>,
    status: Arc<std::sync::Mutex<Vec<Status>>>,
    /// Each instance's state when last published, and since when.
    transitions: Vec<(rlvs_vrrp::State, f64)>,
    /// Each vrrp_script's last verdict, for the dumps.
    script_ok: HashMap<String, bool>,
    /// Woken whenever `status` is republished.
    changed: Arc<tokio::sync::Notify>,
}

fn make_notify(n: &rlvs_conf::model::Notifies, g: &rlvs_conf::model::GlobalDefs) -> Notify {
    let prep = |s: &Option<rlvs_conf::model::NotifyScript>| {
        let s = s.as_ref()?;
        match scripts::prepare(&s.command, s.user.as_ref(), g.script_user.as_ref(), g.enable_script_security) {
            Ok((r, insecure)) => {
                if insecure {
                    tracing::warn!("Unsafe permissions found for script '{}'.", s.command[0]);
                }
                Some(r)
            }
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        }
    };
    Notify {
        master: prep(&n.master),
        backup: prep(&n.backup),
        fault: prep(&n.fault),
        stop: prep(&n.stop),
        any: prep(&n.any),
        master_rx_lower_pri: prep(&n.master_rx_lower_pri),
    }
}

impl Vrrp {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn new(setup: Setup, packets: mpsc::UnboundedSender<(String, bool, sock::Received)>) -> Result<Vrrp> {
        let router = Router::new(
            setup.instances.iter().map(|r| (r.core.clone(), r.tracks.clone())).collect(),
            setup.groups.iter().map(|g| g.1.clone()).collect(),
        );
        let notify = setup.instances.iter().map(|r| make_notify(&r.notify, &setup.global)).collect();
        let group_notify = setup.groups.iter().map(|g| make_notify(&g.2, &setup.global)).collect();
        let n = setup.instances.len();
        Ok(Vrrp {
            setup,
            router,
            epoch: Instant::now(),
            rtnl: Rtnl::new()?,
            links: HashMap::new(),
            tx: (0..n).map(|_| None).collect(),
            rx_open: HashMap::new(),
            packets,
            announcer: announce::Announcer::new().map_err(|e| tracing::warn!("no gratuitous ARP socket: {e}")).ok(),
            notify,
            group_notify,
            status: Arc::new(std::sync::Mutex::new(Vec::new())),
            transitions: Vec::new(),
            script_ok: HashMap::new(),
            changed: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Interface state, sockets, source addresses, and the trackers that
    /// follow links. Run at start and every poll.
    fn poll_links(&mut self) -> Vec<Output> {
        let links = match self.rtnl.links() {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("netlink link dump failed: {e}");
                return Vec::new();
            }
        };
        let by_name: HashMap<String, Link> = links.into_iter().map(|l| (l.name.clone(), l)).collect();
        let now = self.now();
        let mut out = Vec::new();
        let tracked: Vec<String> = self
            .setup
            .instances
            .iter()
            .flat_map(|r| r.tracks.iter().filter_map(|t| t.id.strip_prefix("if:").map(str::to_string)))
            .collect();
        for name in tracked {
            let up = by_name.get(&name).is_some_and(|l| l.up);
            let was = self.links.get(&name).map(|l| l.up);
            if was != Some(up) {
                if !by_name.contains_key(&name) && was.is_none() {
                    tracing::warn!("WARNING - interface {name} doesn't exist");
                } else if was.is_some() {
                    tracing::info!("Netlink reports {name} {}", if up { "up" } else { "down" });
                }
                out.extend(self.router.set_tracker(now, &setup::link_id(&name), up));
            }
        }
        self.links = by_name;
        for i in 0..self.setup.instances.len() {
            self.ensure_sockets(i);
        }
        out
    }

    fn ensure_sockets(&mut self, i: usize) {
        let r = self.setup.instances[i].clone();
        let r = &r;
        let Some(link) = self.links.get(&r.interface).cloned() else {
            self.tx[i] = None;
            return;
        };
        let key = (r.interface.clone(), r.v6);
        if self.rx_open.get(&key) != Some(&link.ifindex) {
            let mut groups: Vec<IpAddr> = self
                .setup
                .instances
                .iter()
                .filter(|x| x.interface == r.interface && x.v6 == r.v6 && x.core.unicast_peers.is_empty())
                .map(|x| x.mcast_group)
                .collect();
            // One membership per group: joining twice is EADDRINUSE.
            groups.sort();
            groups.dedup();
            match sock::RxSocket::open(&r.interface, link.ifindex, r.v6, &groups) {
                Ok(s) => {
                    self.rx_open.insert(key.clone(), link.ifindex);
                    spawn_reader(s, key.0.clone(), key.1, self.packets.clone());
                }
                Err(e) => {
                    // Once per interface, not at every poll.
                    self.rx_open.insert(key, 0);
                    tracing::warn!("({}) cannot open VRRP socket on {}: {e}", r.core.name, r.interface)
                }
            }
        }
        let src = r.unicast_src.or_else(|| self.primary_address(link.ifindex, r.v6, &r.addresses));
        let current = self.tx[i].as_ref().map(|s| (s.ifindex, s.src));
        match src {
            Some(src) if current != Some((link.ifindex, src)) => {
                match sock::TxSocket::open(&r.interface, link.ifindex, src, r.unicast_ttl) {
                    Ok(tx) => {
                        self.router.instances[i].set_source(Some(src));
                        self.tx[i] = Some(Socks { tx, ifindex: link.ifindex, src });
                    }
                    Err(e) => tracing::warn!("({}) cannot send from {src} on {}: {e}", r.core.name, r.interface),
                }
            }
            Some(_) => {}
            None => {
                if current.is_some() || self.tx[i].is_none() {
                    tracing::debug!("({}) no source address on {} yet", r.core.name, r.interface);
                }
                self.tx[i] = None;
            }
        }
    }

    /// The interface's own address: the first IPv4 one that is not a VIP,
    /// or for IPv6 its link-local address.
    fn primary_address(&mut self, ifindex: u32, v6: bool, vips: &[rlvs_conf::model::Vip]) -> Option<IpAddr> {
        let addrs = self.rtnl.addresses_detail(ifindex).ok()?;
        let ours: Vec<IpAddr> = self
            .setup
            .instances
            .iter()
            .flat_map(|r| r.addresses.iter().map(|v| v.addr))
            .chain(vips.iter().map(|v| v.addr))
            .collect();
        addrs.into_iter().map(|a| a.0).find(|a| {
            !ours.contains(a)
                && match a {
                    IpAddr::V4(_) => !v6,
                    IpAddr::V6(x) => v6 && (x.segments()[0] & 0xffc0) == 0xfe80,
                }
        })
    }

    fn execute(&mut self, outs: Vec<Output>) {
        for o in outs {
            self.act(o.instance, o.action);
        }
        self.publish();
    }

    fn act(&mut self, i: usize, a: Action) {
        let r = self.setup.instances[i].clone();
        match a {
            Action::Log(l) => tracing::info!("{l}"),
            Action::SendAdvert { priority } => self.send_advert(i, &r, priority),
            Action::AddVips => self.vips(&r, true),
            Action::RemoveVips => self.vips(&r, false),
            Action::SendGarp { repeat } => self.garp(&r, repeat),
            Action::Notify(state) => self.run_notify(i, state),
            Action::NotifyMasterRxLowerPri => {
                if let Some(s) = &self.notify[i].master_rx_lower_pri {
                    scripts::notify(s, &[]);
                }
            }
            Action::PriorityChanged(_) | Action::WantMaster => {}
        }
    }

    fn send_advert(&mut self, i: usize, r: &Runtime, priority: u8) {
        let Some(s) = &self.tx[i] else {
            tracing::debug!("({}) no socket to send an advert from", r.core.name);
            return;
        };
        let targets: Vec<IpAddr> = if r.core.unicast_peers.is_empty() {
            vec![r.mcast_group]
        } else {
            r.core.unicast_peers.iter().map(|p| p.addr).collect()
        };
        let repr = r.core.advert(priority);
        for dst in targets {
            // The v3 IPv4 checksum covers the pseudo-header; IPv6's is the kernel's.
            let pseudo = (r.core.version == 3 && !r.v6).then_some((s.src, dst));
            let bytes = repr.to_bytes(pseudo);
            if let Err(e) = s.tx.send(dst, s.ifindex, &bytes) {
                if priority != 0 {
                    tracing::info!("({}): send advert error {} ({e})", r.core.name, e.raw_os_error().unwrap_or(0));
                }
            }
        }
    }

    fn spec(&self, r: &Runtime, v: &rlvs_conf::model::Vip) -> Option<AddrSpec> {
        let dev = v.dev.as_deref().unwrap_or(&r.interface);
        let ifindex = self.links.get(dev).map(|l| l.ifindex)?;
        Some(AddrSpec {
            ifindex,
            addr: v.addr,
            prefix: v.prefix,
            brd: v.brd,
            peer: v.peer,
            scope: setup::scope_number(v.scope),
            label: v.label.clone(),
            flags: setup::addr_flags(v),
        })
    }

    fn vips(&mut self, r: &Runtime, add: bool) {
        for v in &r.addresses {
            let Some(spec) = self.spec(r, v) else {
                tracing::warn!(
                    "({}) interface {} for VIP {} doesn't exist",
                    r.core.name,
                    v.dev.as_deref().unwrap_or(&r.interface),
                    v.addr
                );
                continue;
            };
            let res = if add { self.rtnl.addr_add_spec(&spec) } else { self.rtnl.addr_del_spec(&spec) };
            if let Err(e) = res {
                tracing::warn!(
                    "({}) cannot {} {}/{}: {e}",
                    r.core.name,
                    if add { "add" } else { "remove" },
                    v.addr,
                    v.prefix
                );
            }
        }
    }

    fn garp(&mut self, r: &Runtime, repeat: u32) {
        let Some(ann) = &self.announcer else { return };
        let interval4 = self.setup.global.garp_interval;
        let interval6 = self.setup.global.gna_interval;
        let mut delayed = Vec::new();
        for v in &r.addresses {
            let dev = v.dev.clone().unwrap_or_else(|| r.interface.clone());
            let Some(link) = self.links.get(&dev) else { continue };
            let Ok(mac) = rlvs_dataplane::iface::mac_of(link.ifindex) else { continue };
            let kind = if v.addr.is_ipv4() { "gratuitous ARPs" } else { "Unsolicited Neighbour Adverts" };
            tracing::info!("({}) Sending/queueing {kind} on {dev} for {}", r.core.name, v.addr);
            let interval = if v.addr.is_ipv4() { interval4 } else { interval6 };
            for k in 0..repeat {
                if interval.is_zero() || k == 0 {
                    log_announce(&dev, v.addr);
                    if let Err(e) = ann.announce(link.ifindex, mac, v.addr) {
                        tracing::warn!("sending to {dev} failed: {e}");
                    }
                } else {
                    delayed.push((interval * k, link.ifindex, mac, v.addr, dev.clone()));
                }
            }
        }
        if !delayed.is_empty() {
            tokio::spawn(async move {
                let Ok(ann) = announce::Announcer::new() else { return };
                let start = tokio::time::Instant::now();
                for (at, ifindex, mac, addr, dev) in delayed {
                    tokio::time::sleep_until(start + at).await;
                    log_announce(&dev, addr);
                    let _ = ann.announce(ifindex, mac, addr);
                }
            });
        }
    }

    fn run_notify(&mut self, i: usize, state: State) {
        let name = self.setup.instances[i].core.name.clone();
        let prio = self.router.instances[i].effective_priority();
        let state_name = if state == State::Init { "STOP" } else { state.name() };
        let n = &self.notify[i];
        let specific = match state {
            State::Master => &n.master,
            State::Backup => &n.backup,
            State::Fault => &n.fault,
            State::Init => &n.stop,
        };
        if let Some(s) = specific {
            scripts::notify(s, &[]);
        }
        if let Some(s) = &n.any {
            scripts::notify(s, &["INSTANCE".into(), name, state_name.into(), prio.to_string()]);
        }
        // A group notifies once all its members are in the state.
        for (g, (gname, members, _)) in self.setup.groups.iter().enumerate() {
            if members.contains(&i) && members.iter().all(|&m| self.router.instances[m].state() == state) {
                let n = &self.group_notify[g];
                let specific = match state {
                    State::Master => &n.master,
                    State::Backup => &n.backup,
                    State::Fault => &n.fault,
                    State::Init => &n.stop,
                };
                if let Some(s) = specific {
                    scripts::notify(s, &[]);
                }
                if let Some(s) = &n.any {
                    scripts::notify(s, &["GROUP".into(), gname.clone(), state_name.into(), "0".into()]);
                }
            }
        }
    }

    fn publish(&mut self) {
        let now = self.now();
        let wall = unix_now();
        self.transitions.resize(self.router.instances.len(), (rlvs_vrrp::State::Init, wall));
        let mut st = Vec::new();
        for (n, i) in self.router.instances.iter().enumerate() {
            if self.transitions[n].0 != i.state() {
                self.transitions[n] = (i.state(), wall);
            }
            let due = i.next_deadline().map_or(wall, |t| wall + t.saturating_sub(now).as_secs_f64());
            st.push(Status {
                name: i.name().to_string(),
                state: i.state().name(),
                priority: i.cfg.priority,
                effective_priority: i.effective_priority(),
                stats: i.stats,
                // keepalived's wantstate follows a settled instance; in
                // INIT or FAULT it is what the file asked for.
                wantstate: match i.state() {
                    rlvs_vrrp::State::Master => "MASTER",
                    rlvs_vrrp::State::Backup => "BACKUP",
                    _ if i.cfg.want_master => "MASTER",
                    _ => "BACKUP",
                },
                master_src: i.master_src(),
                master_priority: i.master_priority(),
                vips_set: i.vips_set(),
                master_down_timer: i.master_down_interval(),
                last_transition: self.transitions[n].1,
                read_timeout: due,
                source: i.source(),
            });
        }
        if let Ok(mut s) = self.status.lock() {
            *s = st;
        }
        self.changed.notify_waiters();
    }

    fn on_packet(&mut self, ifname: &str, v6: bool, p: sock::Received) {
        let vrid = p.payload.get(1).copied();
        let idx =
            self.setup.instances.iter().position(|r| r.interface == ifname && r.v6 == v6 && Some(r.core.vrid) == vrid);
        let Some(i) = idx else {
            if self.setup.global.log_unknown_vrids {
                tracing::info!("Unknown VRID {} received on interface {ifname}", vrid.unwrap_or(0));
            }
            return;
        };
        let now = self.now();
        let ad = Advert { src: p.src, dst: p.dst, ttl: p.ttl, payload: &p.payload };
        let outs = self.router.on_advert(now, i, &ad);
        self.execute(outs);
    }

    fn reload(&mut self, config: &rlvs_conf::Config) {
        let new = setup::build(config);
        let now = self.now();
        // Instances that carry on, and those that go.
        let keep: Vec<Option<usize>> =
            new.instances.iter().map(|n| self.setup.instances.iter().position(|o| o.same_router(n))).collect();
        for old in (0..self.setup.instances.len()).rev() {
            if !keep.contains(&Some(old)) {
                tracing::info!("({}) removed by reload", self.setup.instances[old].core.name);
                let outs = self.router.stop_one(now, old);
                self.execute(outs);
            }
        }
        // A kept master whose address list changed swaps the difference.
        for (ni, k) in keep.iter().enumerate() {
            let Some(oi) = *k else { continue };
            if self.router.instances[oi].vips_set() && self.setup.instances[oi].addresses != new.instances[ni].addresses
            {
                let old_r = self.setup.instances[oi].clone();
                let mut gone = old_r.clone();
                gone.addresses.retain(|a| !new.instances[ni].addresses.iter().any(|b| b.addr == a.addr));
                self.vips(&gone, false);
                let mut added = new.instances[ni].clone();
                added.addresses.retain(|a| !old_r.addresses.iter().any(|b| b.addr == a.addr));
                self.vips(&added, true);
            }
        }
        let old_tx = std::mem::take(&mut self.tx);
        let mut old_tx: Vec<Option<Option<Socks>>> = old_tx.into_iter().map(Some).collect();
        self.tx = keep.iter().map(|k| k.and_then(|o| old_tx.get_mut(o).and_then(Option::take).flatten())).collect();
        let outs = self.router.reconfigure(
            now,
            new.instances.iter().map(|r| (r.core.clone(), r.tracks.clone())).collect(),
            new.groups.iter().map(|g| g.1.clone()).collect(),
            &keep,
        );
        self.notify = new.instances.iter().map(|r| make_notify(&r.notify, &new.global)).collect();
        self.group_notify = new.groups.iter().map(|g| make_notify(&g.2, &new.global)).collect();
        self.setup = new;
        self.rx_open.retain(|k, _| self.setup.instances.iter().any(|r| r.interface == k.0 && r.v6 == k.1));
        self.execute(outs);
        let outs = self.poll_links();
        self.execute(outs);
        tracing::info!("Reload finished");
    }
}

fn log_announce(dev: &str, addr: IpAddr) {
    if addr.is_ipv4() {
        tracing::info!("Sending gratuitous ARP on {dev} for {addr}");
    } else {
        tracing::info!("Sending unsolicited Neighbour Advert on {dev} for {addr}");
    }
}

fn spawn_reader(
    s: sock::RxSocket,
    ifname: String,
    v6: bool,
    tx: mpsc::UnboundedSender<(String, bool, sock::Received)>,
) {
    tokio::spawn(async move {
        // SAFETY: RxSocket owns its fd (an OwnedFd) and always returns that
        // same fd; it stays open until the AsyncFd drops it.
        let Ok(fd) = (unsafe { AsyncFd::register(s) }) else { return };
        loop {
            let Ok(mut guard) = fd.readable().await else { return };
            loop {
                match fd.get_ref().recv() {
                    Ok(Some(p)) => {
                        if tx.send((ifname.clone(), v6, p)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => {
                        guard.clear_ready();
                        break;
                    }
                    Err(e) => {
                        tracing::debug!("VRRP receive on {ifname}: {e}");
                        guard.clear_ready();
                        break;
                    }
                }
            }
        }
    });
}

/// The instances' status and the wake-up for its changes.
pub type StatusWatch = (Arc<std::sync::Mutex<Vec<Status>>>, Arc<tokio::sync::Notify>);

/// Handle for the rest of the daemon.
pub struct Handle {
    pub status: Arc<std::sync::Mutex<Vec<Status>>>,
    pub changed: Arc<tokio::sync::Notify>,
    pub commands: mpsc::UnboundedSender<Command>,
    /// Counts the VRRP loop's turns, for the systemd watchdog.
    pub beat: Arc<std::sync::atomic::AtomicU64>,
}

/// Runs VRRP for `config` until `stop` turns true; then hands over
/// (priority 0 from masters), removes the addresses and returns.
pub async fn run(
    config: rlvs_conf::Config,
    mut stop: watch::Receiver<bool>,
    ready: tokio::sync::oneshot::Sender<Handle>,
) -> Result<()> {
    let (ptx, mut prx) = mpsc::unbounded_channel();
    let (stx, mut srx) = mpsc::unbounded_channel::<scripts::ScriptResult>();
    let (ctx, mut crx) = mpsc::unbounded_channel::<Command>();
    let mut v = Vrrp::new(setup::build(&config), ptx)?;
    let beat = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let _ =
        ready.send(Handle { status: v.status.clone(), changed: v.changed.clone(), commands: ctx, beat: beat.clone() });
    let mut running = std::collections::HashSet::new();
    start_scripts(&v.setup, &stx, &mut running);
    let outs = v.poll_links();
    v.execute(outs);
    let outs = v.router.start(v.now());
    v.execute(outs);
    let mut link_poll = tokio::time::interval(Duration::from_millis(100));
    link_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = v.router.next_deadline().map(|d| tokio::time::Instant::from_std(v.epoch + d));
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {
                let outs = v.router.on_timer(v.now());
                v.execute(outs);
            }
            Some((ifname, v6, p)) = prx.recv() => v.on_packet(&ifname, v6, p),
            Some((name, ok)) = srx.recv() => {
                v.script_ok.insert(name.clone(), ok);
                let now = v.now();
                let outs = v.router.set_tracker(now, &setup::script_id(&name), ok);
                v.execute(outs);
            }
            _ = link_poll.tick() => {
                let outs = v.poll_links();
                v.execute(outs);
                beat.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Some(cmd) = crx.recv() => match cmd {
                Command::Reload(c, applied) => {
                    v.reload(&c);
                    start_scripts(&v.setup, &stx, &mut running);
                    if let Some(applied) = applied {
                        let _ = applied.send(());
                    }
                }
                Command::Maintenance { instance, on, reply } => {
                    let now = v.now();
                    let answer = match v.router.set_maintenance(now, &instance, on) {
                        Some(outs) => {
                            let what = if on { "taken down for maintenance (FAULT); the peer takes over" } else { "back from maintenance" };
                            tracing::info!("({instance}) {what} (ctl)");
                            v.execute(outs);
                            rlvs_ctl::Response::Done(vec![format!("({instance}) {what}")])
                        }
                        None => rlvs_ctl::Response::Refused(format!("no vrrp_instance {instance}")),
                    };
                    let _ = reply.send(answer);
                }
                Command::Dump { json, reply } => {
                    v.publish();
                    let status = v.status.lock().map(|s| s.clone()).unwrap_or_default();
                    let text = if json {
                        crate::dumps::vrrp_json(&v.setup, &status)
                    } else {
                        crate::dumps::vrrp_data(&v.setup, &status, &v.script_ok)
                    };
                    let _ = reply.send(text);
                }
                Command::ClearStats => {
                    for i in v.router.instances.iter_mut() {
                        i.stats = Default::default();
                    }
                    v.publish();
                }
                Command::HoldPreempt { instance, on } => {
                    for i in v.router.instances.iter_mut().filter(|i| i.name() == instance) {
                        if i.hold_preempt != on {
                            let what = if on { "holding preemption until the connection table is synced" } else { "connection table synced, preemption allowed" };
                            tracing::info!("({instance}) {what}");
                        }
                        i.hold_preempt = on;
                    }
                }
            },
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    let outs = v.router.stop(v.now());
    v.execute(outs);
    Ok(())
}

/// Starts a runner for every tracked script not already running.
fn start_scripts(
    setup: &Setup,
    tx: &mpsc::UnboundedSender<scripts::ScriptResult>,
    running: &mut std::collections::HashSet<String>,
) {
    let used: Vec<String> = setup
        .instances
        .iter()
        .flat_map(|r| r.tracks.iter().filter_map(|t| t.id.strip_prefix("script:").map(str::to_string)))
        .collect();
    let g = &setup.global;
    for s in &setup.scripts {
        if !used.contains(&s.name) || !running.insert(s.name.clone()) {
            continue;
        }
        match scripts::prepare(&s.script, s.user.as_ref(), g.script_user.as_ref(), g.enable_script_security) {
            Ok((r, insecure)) => {
                if insecure {
                    tracing::warn!("Unsafe permissions found for script '{}'.", s.script[0]);
                }
                scripts::spawn_runner(s.clone(), r, setup::script_timeout(s), tx.clone());
            }
            Err(e) => {
                tracing::warn!("{e}");
                // A script that cannot run counts as failing.
                let _ = tx.send((s.name.clone(), false));
            }
        }
    }
}

/// Seconds since the Unix epoch, as keepalived prints times in its dumps.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}
