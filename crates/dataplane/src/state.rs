//! The state file: what a daemon restarted in the same network namespace
//! needs besides the pinned maps to take over where the last one stopped
//! (a crash, a kill, an upgrade): the tables as `ipvsadm -S` would save
//! them plus the local addresses and timeouts, and the numbering the maps'
//! entries use (which hop slot is which real server's next hop, which
//! destination slot is which real server). Written atomically (a new file
//! renamed over the old) at most every 200 ms while the tables change.

use anyhow::{Context, Result};
use rlvs_lvs::director::{ServiceInfo, TimeoutTriple};
use rlvs_lvs::{Director, ServiceKey, Time};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A destination by the number the maps name it by: (number, service,
/// real server address, port).
pub type DestNumber = (u32, ServiceKey, IpAddr, u16);

/// The numbering the maps' entries use: real servers' hop slots, and
/// destination numbers.
pub type Slots = (Vec<(IpAddr, u32)>, Vec<DestNumber>);

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    /// Its layout (bumped with the maps' layout).
    pub layout: u32,
    pub timeouts: Option<TimeoutTriple>,
    /// In the order `ipvsadm -Ln --nosort` lists them, real servers in
    /// their list order.
    pub services: Vec<ServiceInfo>,
    /// Hop slots of real servers' next hops.
    pub rs_slots: Vec<(IpAddr, u32)>,
    pub dest_slots: Vec<DestNumber>,
}

pub struct StateFile {
    path: PathBuf,
    dirty: bool,
    last: Option<std::time::Instant>,
}

impl StateFile {
    /// /run/rlvs/<netns cookie>/state.json.
    pub fn open(cookie: u64) -> Result<StateFile> {
        let dir = Path::new("/run/rlvs").join(cookie.to_string());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(StateFile { path: dir.join("state.json"), dirty: false, last: None })
    }

    pub fn load(&self) -> Option<Saved> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        match serde_json::from_str::<Saved>(&text) {
            Ok(s) if s.layout == crate::maps::LAYOUT_VERSION => Some(s),
            Ok(s) => {
                tracing::warn!(path = %self.path.display(), layout = s.layout, "state file of another layout ignored");
                None
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "unreadable state file ignored");
                None
            }
        }
    }

    pub fn touch(&mut self) {
        self.dirty = true;
    }

    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// Writes the state when it changed and the last write is 200 ms old
    /// (or `now`).
    pub fn save_if_due(
        &mut self,
        d: &Director,
        slots: impl FnOnce() -> (Vec<(IpAddr, u32)>, Vec<(u32, ServiceKey, IpAddr, u16)>),
        force: bool,
    ) {
        if !self.dirty || (!force && self.last.is_some_and(|t| t.elapsed().as_millis() < 200)) {
            return;
        }
        let (rs_slots, dest_slots) = slots();
        let saved = Saved {
            layout: crate::maps::LAYOUT_VERSION,
            timeouts: Some(d.timeouts()),
            services: d.services(),
            rs_slots,
            dest_slots,
        };
        match self.write(&saved) {
            Ok(()) => {
                self.dirty = false;
                self.last = Some(std::time::Instant::now());
            }
            Err(e) => tracing::warn!(error = format!("{e:#}"), "could not write the state file"),
        }
    }

    fn write(&self, s: &Saved) -> Result<()> {
        let tmp = self.path.with_extension("new");
        std::fs::write(&tmp, serde_json::to_vec(s)?)?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Puts saved tables into a fresh director: services in their order, each
/// one's real servers added last first so that they list in the saved
/// order (the kernel puts a new one at the head), local addresses, and
/// the timeouts.
pub fn restore(d: &mut Director, s: &Saved, now: Time) {
    if let Some(t) = s.timeouts {
        d.set_timeouts(t);
    }
    for svc in &s.services {
        if let Err(e) = d.add_service(svc.key, svc.config.clone(), now) {
            tracing::warn!(service = ?svc.key, error = %e, "saved service not restored");
            continue;
        }
        for laddr in &svc.laddrs {
            let _ = d.add_laddr(&svc.key, *laddr);
        }
        for dest in svc.dests.iter().rev() {
            if let Err(e) = d.add_dest(&svc.key, dest.config, now) {
                tracing::warn!(service = ?svc.key, dest = %dest.config.addr, error = %e, "saved real server not restored");
            }
        }
    }
}
