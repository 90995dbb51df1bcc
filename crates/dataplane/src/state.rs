//! The state file: the tables a daemon restarted in the same network
//! namespace needs besides the pinned maps to take over where the last one
//! stopped (a crash, a kill, an upgrade): a snapshot of the services
//! (`ipvsadm -S` and more: local addresses, timeouts) and a journal of the
//! requests applied since, one per line. A request is in the journal
//! before it is answered, so a daemon killed right after `ipvsadm -a`
//! returned is restored with that real server; the journal costs a line per
//! change (no rewrite of a whole table per change), and is folded into a
//! new snapshot every 30 s or 10,000 lines. In /run/rlvs/<netns cookie>/.

use anyhow::{Context, Result};
use rlvs_ctl::Request;
use rlvs_lvs::director::{ServiceInfo, TimeoutTriple};
use rlvs_lvs::{Director, Time};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    /// Its layout (bumped with the maps' layout).
    pub layout: u32,
    pub timeouts: Option<TimeoutTriple>,
    /// In the order `ipvsadm -Ln --nosort` lists them, real servers in
    /// their list order.
    pub services: Vec<ServiceInfo>,
}

/// The snapshot and the requests journalled after it.
pub struct Loaded {
    pub snapshot: Saved,
    pub journal: Vec<Request>,
}

pub struct StateFile {
    dir: PathBuf,
    journal: Option<std::fs::File>,
    /// Journal lines not yet written.
    pending: Vec<u8>,
    lines: usize,
    last_snapshot: Instant,
}

const SNAPSHOT_EVERY: Duration = Duration::from_secs(30);
const SNAPSHOT_LINES: usize = 10_000;

/// Whether `r` changes the tables (and so goes into the journal).
fn changes_tables(r: &Request) -> bool {
    matches!(
        r,
        Request::AddService { .. }
            | Request::EditService { .. }
            | Request::DelService { .. }
            | Request::Flush
            | Request::AddDest { .. }
            | Request::EditDest { .. }
            | Request::DelDest { .. }
            | Request::SetTimeouts(_)
            | Request::AddLaddr { .. }
            | Request::DelLaddr { .. }
            | Request::SetSloppy { .. }
    )
}

impl StateFile {
    /// /run/rlvs/<netns cookie>/.
    pub fn open(cookie: u64) -> Result<StateFile> {
        let dir = Path::new("/run/rlvs").join(cookie.to_string());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(StateFile { dir, journal: None, pending: Vec::new(), lines: 0, last_snapshot: Instant::now() })
    }

    fn snapshot_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }

    pub fn load(&self) -> Option<Loaded> {
        let text = std::fs::read_to_string(self.snapshot_path()).ok()?;
        let snapshot = match serde_json::from_str::<Saved>(&text) {
            Ok(s) if s.layout == crate::maps::LAYOUT_VERSION => s,
            Ok(s) => {
                tracing::warn!(dir = %self.dir.display(), layout = s.layout, "state file of another layout ignored");
                return None;
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "unreadable state file ignored");
                return None;
            }
        };
        // A line cut short by the kill is the last one; it was never
        // answered, so dropping it loses nothing a client was told of.
        let journal = std::fs::read_to_string(self.journal_path())
            .unwrap_or_default()
            .lines()
            .map_while(|l| serde_json::from_str::<Request>(l).ok())
            .collect();
        Some(Loaded { snapshot, journal })
    }

    /// Journals `req` if it changed the tables (written by [`flush`]).
    pub fn record(&mut self, req: &Request) {
        if !changes_tables(req) {
            return;
        }
        if serde_json::to_writer(&mut self.pending, req).is_ok() {
            self.pending.push(b'\n');
            self.lines += 1;
        }
    }

    /// Writes what was journalled since the last call: before the answers
    /// go out.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if self.journal.is_none() {
            let f = std::fs::OpenOptions::new().create(true).append(true).open(self.journal_path());
            match f {
                Ok(f) => self.journal = Some(f),
                Err(e) => {
                    tracing::warn!(error = %e, "could not open the state journal");
                    return;
                }
            }
        }
        if let Some(f) = self.journal.as_mut() {
            if let Err(e) = f.write_all(&self.pending) {
                tracing::warn!(error = %e, "could not write the state journal");
            }
        }
        self.pending.clear();
    }

    /// Whether the journal should be folded into a new snapshot.
    pub fn snapshot_due(&self) -> bool {
        self.lines >= SNAPSHOT_LINES || (self.lines > 0 && self.last_snapshot.elapsed() >= SNAPSHOT_EVERY)
    }

    /// Writes the tables as they are (atomically: a new file renamed over
    /// the old) and empties the journal.
    pub fn snapshot(&mut self, d: &Director) {
        self.flush();
        let saved = Saved { layout: crate::maps::LAYOUT_VERSION, timeouts: Some(d.timeouts()), services: d.services() };
        let tmp = self.dir.join("state.new");
        let written = serde_json::to_vec(&saved)
            .map_err(anyhow::Error::from)
            .and_then(|b| std::fs::write(&tmp, b).map_err(Into::into))
            .and_then(|_| std::fs::rename(&tmp, self.snapshot_path()).map_err(Into::into));
        match written {
            Ok(()) => {
                self.journal = None;
                let _ = std::fs::remove_file(self.journal_path());
                self.lines = 0;
                self.last_snapshot = Instant::now();
            }
            Err(e) => tracing::warn!(error = format!("{e:#}"), "could not write the state snapshot"),
        }
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_file(self.snapshot_path());
        let _ = std::fs::remove_file(self.journal_path());
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Puts saved tables into a fresh director: the snapshot's services in
/// their order, each one's real servers added last first so that they
/// list in the saved order (the kernel puts a new one at the head), local
/// addresses and timeouts; then the journal's requests, in order.
pub fn restore(d: &mut Director, l: &Loaded, now: Time) {
    let s = &l.snapshot;
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
    for r in &l.journal {
        let _ = rlvs_ctl::handle(d, r.clone(), now, "afxdp");
    }
}
