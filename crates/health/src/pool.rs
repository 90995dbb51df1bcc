//! One virtual server's pool as keepalived's ipwrapper keeps it: which real
//! servers are in the table and with which weight, given their checkers;
//! inhibit_on_failure (weight 0 instead of removal); quorum with
//! hysteresis; the sorry server that replaces the pool while the quorum is
//! lost. Everything comes out as table operations, log lines in
//! keepalived's words, and events for notify scripts.

/// A destination of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Rs(usize),
    Sorry,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Add the destination, or change its weight if it is there.
    Set {
        target: Target,
        weight: u32,
    },
    Remove(Target),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    RsUp(usize),
    RsDown(usize),
    QuorumUp,
    QuorumDown,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Out {
    pub ops: Vec<Op>,
    pub logs: Vec<String>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone)]
pub struct RealServer {
    /// `[10.1.1.244]:tcp:80`.
    pub name: String,
    pub weight: i64,
    pub inhibit: bool,
    alive: bool,
    set: bool,
    failed: u32,
}

impl RealServer {
    /// `failed`: its checkers that start down (all of them in alpha mode).
    pub fn new(name: String, weight: i64, inhibit: bool, failed: u32) -> RealServer {
        RealServer { name, weight, inhibit, alive: false, set: false, failed }
    }
    pub fn alive(&self) -> bool {
        self.alive
    }
    /// Its checkers that are down now.
    pub fn failed_checkers(&self) -> u32 {
        self.failed
    }
    /// Whether it is in the table now.
    pub fn in_table(&self) -> bool {
        self.set
    }
    /// A reload keeps a server: its table state carries over.
    pub fn carry_over(&mut self, from: &RealServer) {
        self.alive = from.alive;
        self.set = from.set;
        self.failed = from.failed;
    }
}

#[derive(Debug, Clone)]
struct Sorry {
    name: String,
    inhibit: bool,
    alive: bool,
    set: bool,
}

#[derive(Debug, Clone)]
pub struct Pool {
    /// `[10.0.0.100]:tcp:80`.
    pub name: String,
    pub quorum: u32,
    pub hysteresis: u32,
    pub rs: Vec<RealServer>,
    sorry: Option<Sorry>,
    quorum_up: bool,
}

fn real_weight(w: i64) -> u32 {
    w.clamp(0, 65535) as u32
}

impl Pool {
    pub fn new(name: String, quorum: u32, hysteresis: u32, rs: Vec<RealServer>, sorry: Option<(String, bool)>) -> Pool {
        let sorry = sorry.map(|(name, inhibit)| Sorry { name, inhibit, alive: false, set: false });
        Pool { name, quorum, hysteresis, rs, sorry, quorum_up: true }
    }

    pub fn quorum_up(&self) -> bool {
        self.quorum_up
    }

    fn live_weight(&self) -> i64 {
        self.rs.iter().filter(|r| r.alive).map(|r| i64::from(real_weight(r.weight))).sum()
    }

    /// ipvs_cmd(ADD_DEST): with inhibit_on_failure a dead server is set at
    /// weight 0 rather than left out.
    fn add(&mut self, i: usize, out: &mut Out) {
        let r = &mut self.rs[i];
        // Only a first add of a failing inhibited server goes in at 0; an
        // inhibited server already in the table is edited to its weight.
        let weight = if r.inhibit && !r.set && r.failed > 0 { 0 } else { real_weight(r.weight) };
        r.set = true;
        out.ops.push(Op::Set { target: Target::Rs(i), weight });
    }

    /// ipvs_cmd(DEL_DEST): an inhibited server stays at weight 0.
    fn del(&mut self, i: usize, out: &mut Out) {
        let r = &mut self.rs[i];
        if r.inhibit {
            out.ops.push(Op::Set { target: Target::Rs(i), weight: 0 });
        } else if r.set {
            r.set = false;
            out.ops.push(Op::Remove(Target::Rs(i)));
        }
    }

    /// init_service_rs and the first quorum evaluation.
    pub fn init(&mut self) -> Out {
        let mut out = Out::default();
        for i in 0..self.rs.len() {
            let r = &self.rs[i];
            if (r.failed == 0 && !r.alive) || (r.inhibit && !r.set) {
                self.add(i, &mut out);
                if self.rs[i].failed == 0 {
                    self.rs[i].alive = true;
                }
            }
        }
        self.quorum_up = self.live_weight() >= i64::from(self.quorum + self.hysteresis);
        self.update_quorum(true, &mut out);
        if let Some(s) = &mut self.sorry {
            if s.inhibit && !s.set {
                s.set = true;
                out.ops.push(Op::Set { target: Target::Sorry, weight: 0 });
            }
        }
        out
    }

    /// A checker of real server `i` went up or down.
    pub fn checker_changed(&mut self, i: usize, up: bool) -> Out {
        let mut out = Out::default();
        if up {
            if self.rs[i].failed <= 1 {
                self.perform(i, true, &mut out);
            }
            self.rs[i].failed = self.rs[i].failed.saturating_sub(1);
        } else {
            if self.rs[i].failed == 0 {
                self.perform(i, false, &mut out);
            }
            self.rs[i].failed += 1;
        }
        out
    }

    fn perform(&mut self, i: usize, alive: bool, out: &mut Out) {
        if self.rs[i].alive == alive {
            return;
        }
        let r = &self.rs[i];
        let verb = match (alive, r.inhibit) {
            (true, true) => "Enabl",
            (true, false) => "Add",
            (false, true) => "Disabl",
            (false, false) => "Remov",
        };
        let prep = if r.inhibit {
            "of"
        } else if alive {
            "to"
        } else {
            "from"
        };
        out.logs.push(format!("{verb}ing service {} {prep} VS {}", r.name, self.name));
        let sorry_in = self.sorry.as_ref().is_some_and(|s| s.alive);
        if self.quorum_up || !sorry_in {
            if alive {
                // The weight must be the live one: not yet counted as failed.
                let failed = self.rs[i].failed;
                self.rs[i].failed = 0;
                self.add(i, out);
                self.rs[i].failed = failed;
            } else {
                self.del(i, out);
            }
        }
        self.rs[i].alive = alive;
        out.events.push(if alive { Event::RsUp(i) } else { Event::RsDown(i) });
        self.update_quorum(false, out);
    }

    fn update_quorum(&mut self, init: bool, out: &mut Out) {
        let sum = self.live_weight();
        let (q, h) = (i64::from(self.quorum), i64::from(self.hysteresis));
        let threshold = if self.quorum_up { q - h } else { q + h };
        if !self.quorum_up && sum >= threshold {
            self.quorum_up = true;
            out.logs.push(format!("Gained quorum {q}+{h}={threshold} <= {sum} for VS {}", self.name));
            if let Some(s) = self.sorry.as_mut().filter(|s| s.alive) {
                out.logs.push(format!(
                    "{} sorry server {} from VS {}",
                    if s.inhibit { "Disabling" } else { "Removing" },
                    s.name,
                    self.name
                ));
                if s.inhibit {
                    out.ops.push(Op::Set { target: Target::Sorry, weight: 0 });
                } else {
                    s.set = false;
                    out.ops.push(Op::Remove(Target::Sorry));
                }
                s.alive = false;
                self.quorum_pool(true, out);
            }
            out.events.push(Event::QuorumUp);
        } else if (self.quorum_up && (sum == 0 || sum < threshold))
            || (init && !self.quorum_up && self.sorry.as_ref().is_some_and(|s| !s.alive))
        {
            self.quorum_up = false;
            out.logs.push(format!(
                "{} {q}-{h}={threshold} > {sum} for VS {}",
                if init { "Starting with quorum down" } else { "Lost quorum" },
                self.name
            ));
            if self.sorry.as_ref().is_some_and(|s| !s.alive) {
                let (name, inhibit) = self.sorry.as_ref().map(|s| (s.name.clone(), s.inhibit)).unwrap();
                out.logs.push(format!(
                    "{} sorry server {name} to VS {}",
                    if inhibit { "Enabling" } else { "Adding" },
                    self.name
                ));
                self.quorum_pool(false, out);
                let s = self.sorry.as_mut().unwrap();
                s.set = true;
                s.alive = true;
                out.ops.push(Op::Set { target: Target::Sorry, weight: 1 });
            }
            out.events.push(Event::QuorumDown);
        }
    }

    /// perform_quorum_state: the alive servers in or out, for the sorry server.
    fn quorum_pool(&mut self, add: bool, out: &mut Out) {
        out.logs.push(format!(
            "{} the pool for VS {}",
            if add { "Adding alive servers to" } else { "Removing alive servers from" },
            self.name
        ));
        for i in 0..self.rs.len() {
            if self.rs[i].alive {
                if add {
                    self.add(i, out);
                } else {
                    self.del(i, out);
                }
            }
        }
    }

    /// update_svr_wgt: a new weight (MISC_CHECK's dynamic weight, a reload).
    pub fn set_weight(&mut self, i: usize, weight: i64) -> Out {
        let mut out = Out::default();
        let (old, new) = (real_weight(self.rs[i].weight), real_weight(weight));
        self.rs[i].weight = weight;
        if old == new {
            return out;
        }
        let r = &self.rs[i];
        out.logs.push(format!(
            "Changing weight from {old} to {new} for {}active service {} of VS {}",
            if r.alive { "" } else { "in" },
            r.name,
            self.name
        ));
        let sorry_in = self.sorry.as_ref().is_some_and(|s| s.alive);
        if r.set && r.alive && (self.quorum_up || !sorry_in) {
            out.ops.push(Op::Set { target: Target::Rs(i), weight: new });
        }
        self.update_quorum(false, &mut out);
        out
    }

    /// clear_service_vs: every destination out, with keepalived's log, when
    /// the daemon stops (`stopping`) or a reload drops the virtual server.
    /// A reload runs the down notifiers as any failure would; at stop they
    /// run only with `omega`.
    pub fn clear(&mut self, stopping: bool, omega: bool) -> Out {
        let mut out = Out::default();
        let notify = omega || !stopping;
        for i in 0..self.rs.len() {
            let r = &mut self.rs[i];
            if r.set || stopping {
                let verb = if stopping { "Shutting down" } else { "Removing" };
                let inhibited = if r.inhibit && !r.alive { "(inhibited) " } else { "" };
                out.logs.push(format!("{verb} {inhibited}service {} from VS {}", r.name, self.name));
            }
            if !r.set {
                continue;
            }
            r.set = false;
            out.ops.push(Op::Remove(Target::Rs(i)));
            if r.alive {
                r.alive = false;
                if notify {
                    out.events.push(Event::RsDown(i));
                }
            }
        }
        if let Some(s) = self.sorry.as_mut().filter(|s| s.set) {
            s.set = false;
            s.alive = false;
            out.ops.push(Op::Remove(Target::Sorry));
        }
        let was_up = std::mem::replace(&mut self.quorum_up, false);
        if (stopping && omega) || (!stopping && was_up) {
            out.events.push(Event::QuorumDown);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize, quorum: u32, hysteresis: u32, sorry: bool, inhibit: bool) -> Pool {
        let rs = (0..n).map(|i| RealServer::new(format!("[10.1.1.{}]:tcp:80", 244 + i), 1, inhibit, 0)).collect();
        Pool::new(
            "[10.0.0.100]:tcp:80".into(),
            quorum,
            hysteresis,
            rs,
            sorry.then(|| ("[10.1.1.9]:tcp:80".into(), false)),
        )
    }

    #[test]
    fn servers_leave_and_rejoin_with_keepalived_s_words() {
        let mut p = pool(2, 1, 0, false, false);
        let o = p.init();
        assert_eq!(o.ops, [Op::Set { target: Target::Rs(0), weight: 1 }, Op::Set { target: Target::Rs(1), weight: 1 }]);
        let o = p.checker_changed(0, false);
        assert_eq!(o.logs, ["Removing service [10.1.1.244]:tcp:80 from VS [10.0.0.100]:tcp:80"]);
        assert_eq!(o.ops, [Op::Remove(Target::Rs(0))]);
        assert_eq!(o.events, [Event::RsDown(0)]);
        let o = p.checker_changed(0, true);
        assert_eq!(o.logs, ["Adding service [10.1.1.244]:tcp:80 to VS [10.0.0.100]:tcp:80"]);
        assert_eq!(o.ops, [Op::Set { target: Target::Rs(0), weight: 1 }]);
    }

    #[test]
    fn inhibit_on_failure_sets_weight_zero() {
        let mut p = pool(1, 1, 0, false, true);
        p.init();
        let o = p.checker_changed(0, false);
        assert_eq!(o.logs[0], "Disabling service [10.1.1.244]:tcp:80 of VS [10.0.0.100]:tcp:80");
        assert_eq!(o.ops, [Op::Set { target: Target::Rs(0), weight: 0 }]);
        let o = p.checker_changed(0, true);
        assert_eq!(o.logs[0], "Enabling service [10.1.1.244]:tcp:80 of VS [10.0.0.100]:tcp:80");
        assert_eq!(o.ops, [Op::Set { target: Target::Rs(0), weight: 1 }]);
    }

    #[test]
    fn losing_the_quorum_brings_in_the_sorry_server() {
        let mut p = pool(2, 2, 0, true, false);
        let o = p.init();
        assert!(p.quorum_up(), "{o:?}");
        let o = p.checker_changed(1, false);
        assert_eq!(
            o.logs,
            [
                "Removing service [10.1.1.245]:tcp:80 from VS [10.0.0.100]:tcp:80",
                "Lost quorum 2-0=2 > 1 for VS [10.0.0.100]:tcp:80",
                "Adding sorry server [10.1.1.9]:tcp:80 to VS [10.0.0.100]:tcp:80",
                "Removing alive servers from the pool for VS [10.0.0.100]:tcp:80",
            ]
        );
        assert_eq!(
            o.ops,
            [Op::Remove(Target::Rs(1)), Op::Remove(Target::Rs(0)), Op::Set { target: Target::Sorry, weight: 1 }]
        );
        // Back: the sorry server goes, the alive servers return.
        let o = p.checker_changed(1, true);
        assert_eq!(o.logs[1], "Gained quorum 2+0=2 <= 2 for VS [10.0.0.100]:tcp:80");
        assert!(o.ops.contains(&Op::Remove(Target::Sorry)));
        assert!(o.ops.contains(&Op::Set { target: Target::Rs(0), weight: 1 }));
        assert!(o.ops.contains(&Op::Set { target: Target::Rs(1), weight: 1 }));
    }

    #[test]
    fn hysteresis_delays_both_ways() {
        let mut p = pool(3, 2, 1, false, false);
        p.init();
        // 3 live, quorum 2-1 = 1 needed to keep it.
        assert!(p.checker_changed(0, false).events.iter().all(|e| *e != Event::QuorumDown));
        assert!(p.checker_changed(1, false).events.iter().all(|e| *e != Event::QuorumDown));
        assert!(p.checker_changed(2, false).events.contains(&Event::QuorumDown));
        // Back needs 2+1 = 3.
        assert!(!p.checker_changed(0, true).events.contains(&Event::QuorumUp));
        assert!(!p.checker_changed(1, true).events.contains(&Event::QuorumUp));
        assert!(p.checker_changed(2, true).events.contains(&Event::QuorumUp));
    }

    #[test]
    fn two_checkers_both_must_pass() {
        let mut p = Pool::new("vs".into(), 1, 0, vec![RealServer::new("rs".into(), 3, false, 0)], None);
        p.init();
        assert_eq!(p.checker_changed(0, false).ops, [Op::Remove(Target::Rs(0))]);
        assert!(p.checker_changed(0, false).ops.is_empty(), "second checker down: already out");
        assert!(p.checker_changed(0, true).ops.is_empty(), "one still failing");
        assert_eq!(p.checker_changed(0, true).ops, [Op::Set { target: Target::Rs(0), weight: 3 }]);
    }

    #[test]
    fn weight_changes_are_edits_and_shutdown_removes_all() {
        let mut p = pool(2, 1, 0, false, false);
        p.init();
        let o = p.set_weight(0, 5);
        assert_eq!(
            o.logs,
            ["Changing weight from 1 to 5 for active service [10.1.1.244]:tcp:80 of VS [10.0.0.100]:tcp:80"]
        );
        assert_eq!(o.ops, [Op::Set { target: Target::Rs(0), weight: 5 }]);
        let o = p.clear(true, false);
        assert_eq!(o.ops, [Op::Remove(Target::Rs(0)), Op::Remove(Target::Rs(1))]);
        assert_eq!(o.logs[0], "Shutting down service [10.1.1.244]:tcp:80 from VS [10.0.0.100]:tcp:80");
        assert!(o.events.is_empty(), "notifiers at stop only with omega");
    }

    #[test]
    fn omega_runs_the_down_notifiers_of_live_servers_and_the_quorum_at_stop() {
        let mut p = pool(3, 1, 0, false, true);
        p.init();
        p.checker_changed(1, false);
        let o = p.clear(true, true);
        assert_eq!(o.events, [Event::RsDown(0), Event::RsDown(2), Event::QuorumDown]);
        assert_eq!(o.logs[1], "Shutting down (inhibited) service [10.1.1.245]:tcp:80 from VS [10.0.0.100]:tcp:80");
        assert_eq!(o.ops.len(), 3, "inhibited servers are removed too: {:?}", o.ops);
    }

    #[test]
    fn an_inhibited_server_held_at_zero_for_the_sorry_server_gets_its_weight_back() {
        let mut p = pool(2, 2, 0, true, true);
        p.init();
        let o = p.checker_changed(1, false);
        assert!(o.ops.contains(&Op::Set { target: Target::Rs(0), weight: 0 }), "{:?}", o.ops);
        let o = p.checker_changed(1, true);
        assert!(o.ops.contains(&Op::Set { target: Target::Rs(0), weight: 1 }), "{:?}", o.ops);
        assert!(o.ops.contains(&Op::Set { target: Target::Rs(1), weight: 1 }), "{:?}", o.ops);
    }

    #[test]
    fn a_reload_that_drops_the_virtual_server_notifies_like_a_failure() {
        let mut p = pool(2, 1, 0, false, false);
        p.init();
        let o = p.clear(false, false);
        assert_eq!(o.events, [Event::RsDown(0), Event::RsDown(1), Event::QuorumDown]);
        assert_eq!(o.logs[0], "Removing service [10.1.1.244]:tcp:80 from VS [10.0.0.100]:tcp:80");
    }

    #[test]
    fn alpha_servers_start_outside_the_pool() {
        let mut p = Pool::new("vs".into(), 1, 0, vec![RealServer::new("rs".into(), 1, false, 1)], None);
        let o = p.init();
        assert!(o.ops.is_empty());
        assert!(!p.rs[0].alive());
        assert_eq!(p.checker_changed(0, true).ops, [Op::Set { target: Target::Rs(0), weight: 1 }]);
    }
}
