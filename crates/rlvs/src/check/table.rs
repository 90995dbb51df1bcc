//! The checkers' side of the engine's table: the weight they want for
//! each real server they manage (or its absence), and what the engine's
//! events say the table holds. A request goes out only when the two
//! differ and no request for that server is in flight, so the choice of
//! add, edit or delete is made on the table as it is, not on what the
//! checkers believe they sent: a server an operator deleted with ipvsadm
//! is added again at its next transition rather than edited (which would
//! fail with "No such destination"), and a refused request is not taken
//! for done.

use rlvs_ctl::{ControlMsg, EngineHandle as Handle};
use rlvs_ctl::{OperatorOp, Request, Response};
use rlvs_lvs::director::Event;
use rlvs_lvs::{DestConfig, ServiceKey};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use tokio::sync::mpsc;

/// A real server of a service, as the table knows it.
pub type DestKey = (ServiceKey, IpAddr, u16);

/// What the engine tells the checkers, in the order it happened: a
/// request's events always come before its answer.
pub enum TableMsg {
    Event(Event),
    Done { key: DestKey, ok: bool },
}

pub struct Table {
    engine: Handle,
    /// What the table holds, from the engine's events.
    actual: HashMap<DestKey, DestConfig>,
    /// What the checkers want: Some(config with weight), or None (absent).
    wanted: HashMap<DestKey, Option<DestConfig>>,
    in_flight: HashSet<DestKey>,
    /// Operators' holds (`rlvs ctl drain|weight`), by address and port
    /// (None: every port), the latest first. They apply on top of what
    /// the checkers want, whatever reloads and health transitions do,
    /// until lifted: a server that fails its check still leaves the
    /// table, and comes back drained.
    holds: Vec<(IpAddr, Option<u16>, OperatorOp)>,
    tx: mpsc::UnboundedSender<TableMsg>,
}

impl Table {
    /// Subscribes to the engine's table events; feed what the receiver
    /// yields to [`Table::message`].
    pub fn new(engine: Handle) -> (Table, mpsc::UnboundedReceiver<TableMsg>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let events = tx.clone();
        engine.subscribe(Box::new(move |e: &Event| {
            if matches!(e, Event::DestAdded { .. } | Event::DestChanged { .. } | Event::DestRemoved { .. }) {
                let _ = events.send(TableMsg::Event(e.clone()));
            }
        }));
        let t = Table {
            engine,
            actual: HashMap::new(),
            wanted: HashMap::new(),
            in_flight: HashSet::new(),
            holds: Vec::new(),
            tx,
        };
        (t, rx)
    }

    /// The checkers want `dest` in `service` with its weight, or (`present`
    /// false) not at all.
    pub fn want(&mut self, service: ServiceKey, dest: DestConfig, present: bool) {
        let k = (service, dest.addr, dest.port);
        self.wanted.insert(k, present.then_some(dest));
        self.reconcile(k);
    }

    /// The service is gone (deleted with its real servers): nothing more
    /// is wanted of them.
    pub fn forget_service(&mut self, service: &ServiceKey) {
        self.wanted.retain(|k, _| k.0 != *service);
    }

    pub fn message(&mut self, m: TableMsg) {
        match m {
            TableMsg::Event(Event::DestAdded { service, dest })
            | TableMsg::Event(Event::DestChanged { service, new: dest, .. }) => {
                self.actual.insert((service, dest.addr, dest.port), dest);
            }
            TableMsg::Event(Event::DestRemoved { service, dest }) => {
                self.actual.remove(&(service, dest.addr, dest.port));
            }
            TableMsg::Event(_) => {}
            TableMsg::Done { key, ok } => {
                self.in_flight.remove(&key);
                // Wanted again meanwhile: catch up. A refusal was logged and
                // waits for the next change rather than being retried in a loop.
                if ok {
                    self.reconcile(key);
                }
            }
        }
    }

    /// Puts an operator's hold on (or, `Enable`, lifts it from) the real
    /// servers the checkers manage at `addr` and `port`; the servers it
    /// matched, or Err when none.
    pub fn hold(&mut self, addr: IpAddr, port: Option<u16>, op: OperatorOp) -> Result<Vec<DestKey>, String> {
        let matches = |k: &DestKey| k.1 == addr && port.is_none_or(|p| k.2 == p);
        let mut keys: Vec<DestKey> = self.wanted.keys().filter(|k| matches(k)).copied().collect();
        keys.sort_by_key(|k| format!("{k:?}"));
        if keys.is_empty() {
            let what = port.map_or(addr.to_string(), |p| format!("{addr}:{p}"));
            return Err(format!("no real server {what} among the checkers' virtual servers"));
        }
        // A new hold replaces the older ones it covers. Enabling one port
        // of a server held on every port shadows that hold for the port.
        self.holds.retain(|(a, p, _)| !(*a == addr && (port.is_none() || *p == port)));
        let shadows = self.holds.iter().any(|(a, p, _)| *a == addr && p.is_none());
        if op != OperatorOp::Enable || shadows {
            self.holds.insert(0, (addr, port, op));
        }
        for k in &keys {
            self.reconcile(*k);
        }
        Ok(keys)
    }

    /// The operator's hold on one real server, if any.
    pub fn hold_of(&self, addr: IpAddr, port: u16) -> Option<OperatorOp> {
        let h = self.holds.iter().find(|(a, p, _)| *a == addr && p.is_none_or(|p| p == port))?;
        (h.2 != OperatorOp::Enable).then_some(h.2)
    }

    /// What the table should hold for `k`: the checkers' wish under the
    /// operators' holds.
    fn effective(&self, k: &DestKey) -> Option<Option<DestConfig>> {
        let wanted = *self.wanted.get(k)?;
        let hold = self.holds.iter().find(|(a, p, _)| *a == k.1 && p.is_none_or(|p| p == k.2));
        Some(wanted.map(|mut d| {
            match hold.map(|h| h.2) {
                Some(OperatorOp::Drain) => d.weight = 0,
                Some(OperatorOp::Weight(w)) => d.weight = w as i32,
                _ => {}
            }
            d
        }))
    }

    fn reconcile(&mut self, k: DestKey) {
        if self.in_flight.contains(&k) {
            return;
        }
        let (service, addr, port) = k;
        let effective = self.effective(&k);
        let req = match (effective.as_ref(), self.actual.get(&k)) {
            (Some(Some(w)), None) => Request::AddDest { service, dest: *w },
            (Some(Some(w)), Some(a)) if a.weight != w.weight => Request::EditDest { service, dest: *w },
            (Some(None), Some(_)) => Request::DelDest { service, addr, port },
            (Some(None), None) => {
                self.wanted.remove(&k);
                return;
            }
            _ => return,
        };
        self.in_flight.insert(k);
        let what = format!("{req:?}");
        let tx = self.tx.clone();
        self.engine.send(ControlMsg {
            req,
            reply: Box::new(move |r| {
                let ok = !matches!(r, Response::Error(_));
                if let Response::Error(e) = r {
                    tracing::warn!("IPVS: {what} refused: {e:?}");
                }
                let _ = tx.send(TableMsg::Done { key: k, ok });
            }),
        });
    }
}
