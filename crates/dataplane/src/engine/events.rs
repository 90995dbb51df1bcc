//! The engine's side of the director's events: table events to the
//! traffic filter's follower, the subscribers and the fast path's view of
//! which real servers are in service; connection events to the XDP fast
//! path; and taking over from an earlier daemon's pinned state.

use super::{Ctl, Engine, Filter};
use crate::state::Loaded;
use anyhow::Result;
use rlvs_lvs::conn::tcp::TcpState;
use rlvs_lvs::conn::ConnState;
use rlvs_lvs::director::Event;
use rlvs_lvs::{Director, Protocol};

const ESTABLISHED: ConnState = ConnState::Tcp(TcpState::Established);

impl Engine {
    /// One event from the director: table events to the filter's
    /// follower, the subscribers and the fast path's view of which real
    /// servers are in service; connection events to the fast path.
    pub(super) fn event(&mut self, d: &Director, e: Event) {
        let fast = self.ctl.as_mut().and_then(|c| c.fast.as_mut());
        match &e {
            // Only what moves a connection on or off the fast path costs
            // anything here: a SYN flood's connections never reach it.
            Event::ConnAdded(k) => {
                if let (Some(fast), Protocol::Udp) = (fast, k.protocol) {
                    let hops = self.shared.hops.read().unwrap_or_else(|e| e.into_inner());
                    fast.follow(d, &hops, k);
                }
                return;
            }
            Event::ConnChanged { key, from, to } => {
                if let Some(fast) = fast {
                    if *to == ESTABLISHED {
                        let hops = self.shared.hops.read().unwrap_or_else(|e| e.into_inner());
                        fast.follow(d, &hops, key);
                    } else if *from == ESTABLISHED {
                        fast.remove(key, d.out_key_of(key).as_ref());
                    }
                }
                return;
            }
            Event::ConnRemoved { key, out, state } => {
                if let (Some(fast), ESTABLISHED | ConnState::Udp) = (fast, *state) {
                    fast.remove(key, out.as_ref());
                }
                return;
            }
            Event::DestAdded { service, dest } => {
                if let Some(fast) = fast {
                    fast.dest_available(d, service, dest.addr, dest.port, true);
                }
            }
            Event::DestRemoved { service, dest } => {
                if let Some(fast) = fast {
                    fast.dest_available(d, service, dest.addr, dest.port, false);
                }
            }
            _ => {}
        }
        self.follower.event(&e);
        for s in &mut self.subscribers {
            s(&e);
        }
    }

    /// Connection events the workers' packets caused, and the FINs and
    /// RSTs the fast path forwarded, applied to the fast path.
    pub(super) fn follow_connections(&mut self) {
        let shared = self.shared.clone();
        let mut d = shared.director.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fast) = self.ctl.as_mut().and_then(|c| c.fast.as_mut()) {
            // The state changes they cause come back as events, below.
            fast.tcp_events(&mut d, self.shared.now());
        }
        while let Some(e) = d.poll_event() {
            self.event(&d, e);
        }
        let wanted = d.take_wanted_hops();
        drop(d);
        if let (false, Some(ctl)) = (wanted.is_empty(), self.ctl.as_ref()) {
            self.client_hops.extend(wanted.iter().copied());
            ctl.resolver.watch(wanted, Vec::new());
        }
    }

    /// Folds the journal into a new snapshot when it is due (or `now`).
    pub(super) fn snapshot(&mut self, now: bool) {
        let Some(st) = self.state.as_mut() else { return };
        if now || st.snapshot_due() {
            let d = self.shared.director.lock().unwrap_or_else(|e| e.into_inner());
            st.snapshot(&d);
        }
    }

    /// Takes over from a daemon that stopped without removing its pins:
    /// its tables from the state file, its connections from the pinned
    /// map (forwarded all along by the program), the filter pruned to
    /// what the restored tables need.
    pub(super) fn adopt(&mut self, saved: Loaded) -> Result<()> {
        let shared = self.shared.clone();
        let now = self.shared.now();
        let mut d = shared.director.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fast) = self.ctl.as_mut().and_then(|c| c.fast.as_mut()) {
            fast.recover_rs_slots();
        }
        crate::state::restore(&mut d, &saved, now);
        while let Some(e) = d.poll_event() {
            self.event(&d, e);
        }
        let keys = match self.ctl.as_mut().and_then(|c| c.fast.as_mut()) {
            Some(fast) => fast.adopt(&mut d, now),
            None => Vec::new(),
        };
        drop(d);
        self.catch_up();
        let rules = self.follower.rules();
        if let Some(Ctl { filter: Filter::Xdp(prog), fast: Some(fast), .. }) = self.ctl.as_mut() {
            prog.prune(&rules)?;
            let d = shared.director.lock().unwrap_or_else(|e| e.into_inner());
            let hops = shared.hops.read().unwrap_or_else(|e| e.into_inner());
            for k in &keys {
                fast.follow(&d, &hops, k);
            }
        }
        let services = shared.director.lock().unwrap_or_else(|e| e.into_inner()).service_count();
        tracing::info!(services, connections = keys.len(), "took over from the earlier daemon's pinned state");
        // A fresh snapshot of what was restored; the journal starts empty.
        self.snapshot(true);
        Ok(())
    }
}
