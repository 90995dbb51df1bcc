//! All instances together: the objects they track (interfaces, scripts)
//! and how those set priority or fault, and sync groups whose members move
//! together (one becomes master: all do; one falls back: all do; one
//! faults: all do).

use crate::{Action, Advert, Instance, InstanceConfig, State, Time};
use std::collections::HashMap;

/// One tracked object of an instance, with keepalived's weight rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// The shell's name for it ("if:eth1", "script:chk_nginx").
    pub id: String,
    /// 0: the instance faults while the object is down.
    pub weight: i32,
    pub reverse: bool,
}

impl Track {
    /// The priority this object adds: a positive weight while it is up, a
    /// negative one while it is down; `reverse` flips both.
    pub fn contribution(&self, ok: bool) -> i32 {
        let m = if self.reverse { -1 } else { 1 };
        let c = if self.weight > 0 {
            if ok {
                self.weight
            } else {
                0
            }
        } else if ok {
            0
        } else {
            self.weight
        };
        c * m
    }

    /// Whether it lets the instance run (weight-0 objects only).
    fn allows(&self, ok: bool) -> bool {
        self.weight != 0 || ok != self.reverse
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub instance: usize,
    pub action: Action,
}

pub struct Router {
    pub instances: Vec<Instance>,
    tracks: Vec<Vec<Track>>,
    /// Group index per instance.
    group_of: Vec<Option<usize>>,
    groups: Vec<Vec<usize>>,
    /// Tracker results; absent: not known yet.
    trackers: HashMap<String, bool>,
    started: Vec<bool>,
    /// Whether each instance was last told it may run.
    up: Vec<bool>,
    /// Instances an operator took down (`rlvs ctl maintenance`), by name:
    /// in FAULT, so the peer takes over, until returned.
    maintenance: std::collections::HashSet<String>,
}

impl Router {
    pub fn new(instances: Vec<(InstanceConfig, Vec<Track>)>, groups: Vec<Vec<usize>>) -> Router {
        let n = instances.len();
        let mut group_of = vec![None; n];
        for (g, members) in groups.iter().enumerate() {
            for &m in members {
                if m < n {
                    group_of[m] = Some(g);
                }
            }
        }
        let (inst, tracks): (Vec<_>, Vec<_>) = instances.into_iter().map(|(c, t)| (Instance::new(c), t)).unzip();
        Router {
            instances: inst,
            tracks,
            group_of,
            groups,
            trackers: HashMap::new(),
            started: vec![false; n],
            up: vec![false; n],
            maintenance: Default::default(),
        }
    }

    /// Whether every weight-0 object the instance tracks has reported.
    fn ready(&self, i: usize) -> bool {
        self.tracks[i].iter().all(|t| t.weight != 0 || self.trackers.contains_key(&t.id))
    }

    fn own_up(&self, i: usize) -> bool {
        !self.maintenance.contains(self.instances[i].name())
            && self.tracks[i].iter().all(|t| self.trackers.get(&t.id).is_none_or(|&ok| t.allows(ok)))
    }

    /// Takes the instance `name` down for maintenance (FAULT: a master
    /// hands over with priority 0) or returns it; None when no instance
    /// has that name. The hold outlives reloads until lifted.
    pub fn set_maintenance(&mut self, now: Time, name: &str, on: bool) -> Option<Vec<Output>> {
        if !self.instances.iter().any(|i| i.name() == name) {
            return None;
        }
        let changed = if on { self.maintenance.insert(name.to_string()) } else { self.maintenance.remove(name) };
        if !changed {
            return Some(Vec::new());
        }
        let mut out = Vec::new();
        self.refresh_up(now, &mut out);
        Some(self.settle(now, out))
    }

    /// Up when it and every member of its sync group are.
    fn effective_up(&self, i: usize) -> bool {
        match self.group_of[i] {
            Some(g) => self.groups[g].iter().all(|&m| self.own_up(m)),
            None => self.own_up(i),
        }
    }

    fn total_priority(&self, i: usize) -> i32 {
        let base = i32::from(self.instances[i].cfg.priority);
        base + self.tracks[i]
            .iter()
            .filter(|t| t.weight != 0)
            .filter_map(|t| self.trackers.get(&t.id).map(|&ok| t.contribution(ok)))
            .sum::<i32>()
    }

    pub fn start(&mut self, now: Time) -> Vec<Output> {
        let mut out = Vec::new();
        for i in 0..self.instances.len() {
            self.start_one(now, i, &mut out);
        }
        self.settle(now, out)
    }

    fn start_one(&mut self, now: Time, i: usize, out: &mut Vec<Output>) {
        if self.started[i] || !self.ready(i) {
            return;
        }
        self.started[i] = true;
        let total = self.total_priority(i);
        push(out, i, self.instances[i].set_total_priority(now, total));
        let up = self.effective_up(i);
        self.up[i] = up;
        push(out, i, self.instances[i].start(now, up));
    }

    pub fn on_advert(&mut self, now: Time, i: usize, ad: &Advert<'_>) -> Vec<Output> {
        let mut out = Vec::new();
        if i < self.instances.len() && self.started[i] {
            push(&mut out, i, self.instances[i].on_advert(now, ad));
        }
        self.settle(now, out)
    }

    pub fn on_timer(&mut self, now: Time) -> Vec<Output> {
        let mut out = Vec::new();
        for i in 0..self.instances.len() {
            if self.instances[i].next_deadline().is_some_and(|t| t <= now) {
                push(&mut out, i, self.instances[i].on_timer(now));
            }
        }
        self.settle(now, out)
    }

    /// A tracked object changed (or reported for the first time).
    pub fn set_tracker(&mut self, now: Time, id: &str, ok: bool) -> Vec<Output> {
        if self.trackers.get(id) == Some(&ok) {
            return Vec::new();
        }
        self.trackers.insert(id.to_string(), ok);
        let mut out = Vec::new();
        for i in 0..self.instances.len() {
            if !self.tracks[i].iter().any(|t| t.id == id) {
                continue;
            }
            if !self.started[i] {
                self.start_one(now, i, &mut out);
                continue;
            }
            let total = self.total_priority(i);
            push(&mut out, i, self.instances[i].set_total_priority(now, total));
        }
        self.refresh_up(now, &mut out);
        self.settle(now, out)
    }

    fn refresh_up(&mut self, now: Time, out: &mut Vec<Output>) {
        for i in 0..self.instances.len() {
            if !self.started[i] {
                continue;
            }
            let up = self.effective_up(i);
            if up != self.up[i] {
                self.up[i] = up;
                push(out, i, self.instances[i].set_up(now, up));
            }
        }
    }

    pub fn stop(&mut self, now: Time) -> Vec<Output> {
        let mut out = Vec::new();
        for i in 0..self.instances.len() {
            push(&mut out, i, self.instances[i].stop(now));
        }
        out
    }

    pub fn next_deadline(&self) -> Option<Time> {
        self.instances.iter().filter_map(Instance::next_deadline).min()
    }

    /// Applies what the actions imply for the others: an instance whose
    /// timer expired becomes master (with its whole sync group, if no
    /// member is in fault); a group member that falls back to BACKUP takes
    /// the group with it.
    fn settle(&mut self, now: Time, mut out: Vec<Output>) -> Vec<Output> {
        let mut i = 0;
        while i < out.len() {
            let o = out[i].clone();
            match o.action {
                Action::WantMaster => {
                    let members = match self.group_of[o.instance] {
                        Some(g) => self.groups[g].clone(),
                        None => vec![o.instance],
                    };
                    let blocked =
                        members.iter().any(|&m| matches!(self.instances[m].state(), State::Fault | State::Init));
                    if !blocked {
                        for m in members {
                            let a = self.instances[m].goto_master(now);
                            push(&mut out, m, a);
                        }
                    }
                }
                Action::Notify(State::Backup) if self.instances[o.instance].state() == State::Backup => {
                    if let Some(g) = self.group_of[o.instance] {
                        for m in self.groups[g].clone() {
                            if m != o.instance && self.instances[m].state() == State::Master {
                                let a = self.instances[m].goto_backup(now);
                                push(&mut out, m, a);
                            }
                        }
                    }
                }
                _ => {}
            }
            i += 1;
        }
        out
    }
}

fn push(out: &mut Vec<Output>, instance: usize, actions: Vec<Action>) {
    out.extend(actions.into_iter().map(|action| Output { instance, action }));
}

impl Router {
    /// Stops one instance (a reload removed it); its outputs carry its
    /// current index.
    pub fn stop_one(&mut self, now: Time, i: usize) -> Vec<Output> {
        let mut out = Vec::new();
        if i < self.instances.len() {
            push(&mut out, i, self.instances[i].stop(now));
        }
        out
    }

    /// A reload: the new instance list, where `keep[i]` names the old
    /// instance that carries on as new instance `i` (same router on the
    /// same link) with its state, under the new configuration. New ones
    /// start; instances not kept must have been stopped already.
    pub fn reconfigure(
        &mut self,
        now: Time,
        new: Vec<(InstanceConfig, Vec<Track>)>,
        groups: Vec<Vec<usize>>,
        keep: &[Option<usize>],
    ) -> Vec<Output> {
        let mut old: Vec<Option<Instance>> = std::mem::take(&mut self.instances).into_iter().map(Some).collect();
        let old_started = std::mem::take(&mut self.started);
        let old_up = std::mem::take(&mut self.up);
        let mut fresh = Router::new(Vec::new(), Vec::new());
        let n = new.len();
        fresh.group_of = vec![None; n];
        for (g, members) in groups.iter().enumerate() {
            for &m in members {
                if m < n {
                    fresh.group_of[m] = Some(g);
                }
            }
        }
        fresh.groups = groups;
        fresh.trackers = std::mem::take(&mut self.trackers);
        fresh.maintenance = std::mem::take(&mut self.maintenance);
        for (i, (cfg, tracks)) in new.into_iter().enumerate() {
            let kept = keep
                .get(i)
                .copied()
                .flatten()
                .and_then(|k| old.get_mut(k).and_then(Option::take).map(|inst| (k, inst)));
            match kept {
                Some((k, mut inst)) => {
                    inst.update_config(cfg);
                    fresh.instances.push(inst);
                    fresh.started.push(old_started.get(k).copied().unwrap_or(false));
                    fresh.up.push(old_up.get(k).copied().unwrap_or(false));
                }
                None => {
                    fresh.instances.push(Instance::new(cfg));
                    fresh.started.push(false);
                    fresh.up.push(false);
                }
            }
            fresh.tracks.push(tracks);
        }
        *self = fresh;
        let mut out = Vec::new();
        for i in 0..self.instances.len() {
            if self.started[i] {
                let total = self.total_priority(i);
                push(&mut out, i, self.instances[i].set_total_priority(now, total));
            } else {
                self.start_one(now, i, &mut out);
            }
        }
        self.refresh_up(now, &mut out);
        self.settle(now, out)
    }
}
