//! Next-hop resolution for real servers, on its own thread so the packet
//! loop never waits for the kernel: the route table gives the egress
//! interface and next hop, the neighbour table its MAC, and an unresolved
//! neighbour is kicked into resolution (ARP) and polled until it answers.
//! Known next hops are re-read every second, and stale ones re-confirmed, so
//! a real server that changes MAC or moves behind another port is followed.

use crate::iface;
use crate::netlink::{NeighbourEvents, Rtnl};
use rlvs_wire::EthernetAddress;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    pub ifindex: i32,
    pub src: EthernetAddress,
    pub dst: EthernetAddress,
    /// The director's address towards the real server (a tunnel's source).
    pub src_ip: Option<IpAddr>,
    pub mtu: u32,
}

/// An eventfd: how other threads wake the packet loop out of poll().
pub struct Waker(OwnedFd);

impl Waker {
    pub fn new() -> std::io::Result<Arc<Waker>> {
        // SAFETY: plain eventfd(2).
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is fresh and ours.
        Ok(Arc::new(Waker(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes to an eventfd.
        unsafe { libc::write(self.0.as_raw_fd(), &one as *const u64 as *const libc::c_void, 8) };
    }

    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reading 8 bytes from a non-blocking eventfd.
        unsafe { libc::read(self.0.as_raw_fd(), &mut v as *mut u64 as *mut libc::c_void, 8) };
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

pub struct Resolver {
    watch: Sender<(Vec<IpAddr>, Vec<IpAddr>)>,
    /// Wakes the resolver thread for a new watch list.
    wake: Arc<Waker>,
    pub updates: Receiver<(IpAddr, Option<NextHop>)>,
}

impl Resolver {
    pub fn spawn(waker: Arc<Waker>) -> std::io::Result<Resolver> {
        let rtnl = Rtnl::new()?;
        let events = NeighbourEvents::new()?;
        let wake = Waker::new()?;
        let (watch_tx, watch_rx) = channel();
        let (upd_tx, upd_rx) = channel();
        let own = wake.clone();
        std::thread::Builder::new()
            .name("rlvs-resolver".into())
            .spawn(move || run(rtnl, events, own, watch_rx, upd_tx, waker))?;
        Ok(Resolver { watch: watch_tx, wake, updates: upd_rx })
    }

    /// Starts keeping `add` resolved and stops for `remove`.
    pub fn watch(&self, add: Vec<IpAddr>, remove: Vec<IpAddr>) {
        if !add.is_empty() || !remove.is_empty() {
            let _ = self.watch.send((add, remove));
            self.wake.wake();
        }
    }
}

struct Entry {
    hop: Option<NextHop>,
    /// The neighbour it resolves through (itself, or its gateway).
    via: Option<IpAddr>,
    /// When resolution was last kicked, while unresolved.
    kicked: Option<Instant>,
    /// When it is looked at next, and how long after that while unresolved.
    due: Instant,
    retry: Duration,
}

const FIRST_RETRY: Duration = Duration::from_millis(10);
/// Resolved next hops are re-read this often; unresolved ones at most this
/// long apart once their retries have backed off.
const REFRESH: Duration = Duration::from_secs(1);

/// Each address is looked at when it is due, not all of them on every
/// turn: a table of thousands of real servers costs the same netlink
/// traffic per second whether one of them is unresolved or all are. An
/// unresolved one is looked at again as soon as the kernel's neighbour
/// table changes for the neighbour it waits for.
fn run(
    mut rtnl: Rtnl,
    mut events: NeighbourEvents,
    wake: Arc<Waker>,
    watch: Receiver<(Vec<IpAddr>, Vec<IpAddr>)>,
    updates: Sender<(IpAddr, Option<NextHop>)>,
    waker: Arc<Waker>,
) {
    let mut entries: HashMap<IpAddr, Entry> = HashMap::new();
    let mut due: BinaryHeap<Reverse<(Instant, IpAddr)>> = BinaryHeap::new();
    loop {
        let wait = due.peek().map_or(REFRESH, |Reverse((t, _))| t.saturating_duration_since(Instant::now()));
        let _ = crate::afpacket::poll_readable(&[wake.fd(), events.fd()], wait.as_millis().min(1000) as i32);
        wake.drain();
        loop {
            match watch.try_recv() {
                Ok((add, remove)) => {
                    for a in remove {
                        entries.remove(&a);
                    }
                    let now = Instant::now();
                    for a in add {
                        entries.insert(a, Entry { hop: None, via: None, kicked: None, due: now, retry: FIRST_RETRY });
                        due.push(Reverse((now, a)));
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        let now = Instant::now();
        let changed_neighbours = events.drain();
        for (addr, e) in entries.iter_mut() {
            let hit = match &changed_neighbours {
                Some(list) => e.hop.is_none() && e.via.is_some_and(|v| list.contains(&v)),
                None => e.hop.is_none(),
            };
            if hit && e.due > now {
                e.due = now;
                due.push(Reverse((now, *addr)));
            }
        }
        let mut changed = false;
        while let Some(&Reverse((t, addr))) = due.peek() {
            if t > now {
                break;
            }
            due.pop();
            // A removed (or re-added) address leaves a stale turn behind.
            let Some(e) = entries.get_mut(&addr).filter(|e| e.due == t) else { continue };
            let hop = resolve(&mut rtnl, addr, e);
            if hop != e.hop {
                tracing::info!(real_server = %addr, next_hop = ?hop, "next hop changed");
                e.hop = hop;
                let _ = updates.send((addr, hop));
                changed = true;
            }
            let after = if hop.is_some() {
                e.retry = FIRST_RETRY;
                REFRESH
            } else {
                let r = e.retry;
                e.retry = (r * 2).min(REFRESH);
                r
            };
            e.due = now + after;
            due.push(Reverse((e.due, addr)));
        }
        if changed {
            waker.wake();
        }
    }
}

fn resolve(rtnl: &mut Rtnl, addr: IpAddr, e: &mut Entry) -> Option<NextHop> {
    let route = rtnl.route_get(addr).ok().flatten()?;
    let via = route.gateway.unwrap_or(addr);
    e.via = Some(via);
    let src = iface::mac_of(route.oif).ok()?;
    let neigh = rtnl.neigh_get(route.oif, via).ok().flatten();
    match neigh {
        Some(n) if n.usable() => {
            if n.state == netlink_packet_route::neighbour::NeighbourState::Stale {
                // The kernel never talks to the real server itself, so its
                // entry goes stale; have it re-probe so a changed MAC is seen.
                let _ = rtnl.neigh_use(route.oif, via);
            }
            e.kicked = None;
            Some(NextHop {
                ifindex: route.oif as i32,
                src: EthernetAddress(src),
                dst: EthernetAddress(n.mac.unwrap()),
                src_ip: route.prefsrc,
                mtu: iface::mtu_of(route.oif).unwrap_or(1500),
            })
        }
        _ => {
            // Kick resolution at most every 500 ms while it is unanswered.
            if e.kicked.is_none_or(|k| k.elapsed() >= Duration::from_millis(500)) {
                if let Err(err) = rtnl.neigh_use(route.oif, via) {
                    tracing::debug!(real_server = %addr, error = %err, "neighbour resolution request failed");
                }
                e.kicked = Some(Instant::now());
            }
            None
        }
    }
}
