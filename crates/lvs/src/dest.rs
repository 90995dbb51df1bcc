//! Real servers ("destinations") and the connection counters the schedulers
//! read.

use crate::service::SvcId;
use crate::stats::{Counters, Estimator};
use crate::time::Time;
use crate::types::{DestConfig, FwdMethod, ServiceKey};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A stable handle to a destination in the director's arena. Connections hold
/// it, so a destination moved to the trash keeps its identity; schedulers
/// that cache destinations (lblc, lblcr) may hold one after the destination
/// is gone, so a slot's generation makes stale handles miss instead of
/// aliasing a newer destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DestId {
    pub index: u32,
    pub generation: u32,
}

#[derive(Debug, Clone)]
pub struct Dest {
    pub addr: IpAddr,
    pub port: u16,
    pub fwd: FwdMethod,
    pub weight: i32,
    /// The latest non-zero weight, as the kernel keeps it for quiescing.
    pub last_weight: i32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub tun_type: u8,
    pub tun_port: u16,
    pub tun_flags: u16,
    pub activeconns: u32,
    pub inactconns: u32,
    pub persistconns: u32,
    /// IP_VS_DEST_F_OVERLOAD: the upper threshold was reached.
    pub overloaded: bool,
    /// IP_VS_DEST_F_AVAILABLE: in its service's list, not in the trash.
    pub available: bool,
    pub stats: Counters,
    pub est: Estimator,
    /// The service whose list holds it; None while in the trash.
    pub svc: Option<SvcId>,
    /// The service it was created for, which a re-add must match to revive it.
    pub svc_key: ServiceKey,
    /// Connections bound to it: a trashed destination lives while any remain.
    pub refs: u32,
    /// In the trash with no connections since then (for purging).
    pub idle_since: Option<Time>,
}

impl Dest {
    /// What ipvsadm set (and lists) for it.
    pub fn config(&self) -> DestConfig {
        DestConfig {
            addr: self.addr,
            port: self.port,
            fwd: self.fwd,
            weight: self.weight,
            u_threshold: self.u_threshold,
            l_threshold: self.l_threshold,
            tun_type: self.tun_type,
            tun_port: self.tun_port,
            tun_flags: self.tun_flags,
        }
    }

    pub fn new(cfg: &DestConfig, svc: SvcId, svc_key: ServiceKey) -> Self {
        Dest {
            addr: cfg.addr,
            port: cfg.port,
            fwd: cfg.fwd,
            weight: cfg.weight,
            last_weight: cfg.weight,
            u_threshold: cfg.u_threshold,
            l_threshold: cfg.l_threshold,
            tun_type: cfg.tun_type,
            tun_port: cfg.tun_port,
            tun_flags: cfg.tun_flags,
            activeconns: 0,
            inactconns: 0,
            persistconns: 0,
            overloaded: false,
            available: true,
            stats: Counters::default(),
            est: Estimator::default(),
            svc: Some(svc),
            svc_key,
            refs: 0,
            idle_since: None,
        }
    }

    /// Applies a configuration as `__ip_vs_update_dest` does.
    pub fn update(&mut self, cfg: &DestConfig, add: bool) {
        if add || cfg.weight != 0 {
            self.last_weight = cfg.weight;
        }
        self.weight = cfg.weight;
        self.fwd = cfg.fwd;
        self.tun_type = cfg.tun_type;
        self.tun_port = cfg.tun_port;
        self.tun_flags = cfg.tun_flags;
        // A raised (or cleared) upper threshold lifts the overload mark at once;
        // a lowered one waits for the next connection to set it.
        if cfg.u_threshold == 0 || cfg.u_threshold > self.u_threshold {
            self.overloaded = false;
        }
        self.u_threshold = cfg.u_threshold;
        self.l_threshold = cfg.l_threshold;
        self.available = true;
        self.idle_since = None;
    }

    pub fn total_conns(&self) -> u32 {
        self.activeconns + self.inactconns + self.persistconns
    }

    /// The overhead the least-connection family compares (ip_vs_dest_conn_overhead):
    /// an active connection costs 256 times an inactive one.
    pub fn conn_overhead(&self) -> u64 {
        (u64::from(self.activeconns) << 8) + u64::from(self.inactconns)
    }

    /// Called after a connection was bound, as in ip_vs_bind_dest.
    pub(crate) fn check_overload_after_bind(&mut self) {
        if self.u_threshold != 0 && self.total_conns() >= self.u_threshold {
            self.overloaded = true;
        }
    }

    /// Called after a connection was unbound, as in ip_vs_unbind_dest.
    pub(crate) fn check_overload_after_unbind(&mut self) {
        if self.l_threshold != 0 {
            if self.total_conns() < self.l_threshold {
                self.overloaded = false;
            }
        } else if self.u_threshold != 0 {
            if u64::from(self.total_conns()) * 4 < u64::from(self.u_threshold) * 3 {
                self.overloaded = false;
            }
        } else {
            self.overloaded = false;
        }
    }
}

/// Destination storage shared by all services of a director. Slots are
/// reused only after a destination has left the trash for good.
#[derive(Debug, Default)]
pub struct DestArena {
    slots: Vec<(u32, Option<Dest>)>,
    free: Vec<u32>,
}

impl DestArena {
    pub fn insert(&mut self, d: Dest) -> DestId {
        match self.free.pop() {
            Some(i) => {
                let slot = &mut self.slots[i as usize];
                slot.0 = slot.0.wrapping_add(1);
                slot.1 = Some(d);
                DestId { index: i, generation: slot.0 }
            }
            None => {
                self.slots.push((0, Some(d)));
                DestId { index: self.slots.len() as u32 - 1, generation: 0 }
            }
        }
    }

    pub fn remove(&mut self, id: DestId) -> Option<Dest> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.0 != id.generation {
            return None;
        }
        let d = slot.1.take();
        if d.is_some() {
            self.free.push(id.index);
        }
        d
    }

    /// The destination, or None when the handle is stale.
    pub fn try_get(&self, id: DestId) -> Option<&Dest> {
        let (generation, d) = self.slots.get(id.index as usize)?;
        if *generation == id.generation {
            d.as_ref()
        } else {
            None
        }
    }

    pub fn try_get_mut(&mut self, id: DestId) -> Option<&mut Dest> {
        let (generation, d) = self.slots.get_mut(id.index as usize)?;
        if *generation == id.generation {
            d.as_mut()
        } else {
            None
        }
    }

    pub fn get(&self, id: DestId) -> &Dest {
        self.try_get(id).expect("live destination id")
    }

    pub fn get_mut(&mut self, id: DestId) -> &mut Dest {
        let (generation, d) = &mut self.slots[id.index as usize];
        assert_eq!(*generation, id.generation, "live destination id");
        d.as_mut().expect("live destination id")
    }
}

/// A service's destinations in the kernel's list order, as schedulers see them.
#[derive(Clone, Copy)]
pub struct DestList<'a> {
    ids: &'a [DestId],
    arena: &'a DestArena,
}

impl<'a> DestList<'a> {
    pub fn new(ids: &'a [DestId], arena: &'a DestArena) -> Self {
        DestList { ids, arena }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn get(&self, i: usize) -> &'a Dest {
        self.arena.get(self.ids[i])
    }

    pub fn id(&self, i: usize) -> DestId {
        self.ids[i]
    }

    /// Where a destination sits in the list; None once it left the service.
    pub fn position(&self, id: DestId) -> Option<usize> {
        self.ids.iter().position(|&x| x == id)
    }

    /// Any destination the director still knows, in the list or in the trash.
    pub fn by_id(&self, id: DestId) -> Option<&'a Dest> {
        self.arena.try_get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a Dest> + 'a {
        let arena = self.arena;
        self.ids.iter().map(move |&id| arena.get(id))
    }
}
