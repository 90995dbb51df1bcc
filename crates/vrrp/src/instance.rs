//! One VRRP instance as keepalived 2.2 runs it: INIT, BACKUP, MASTER and
//! FAULT, the master-down timer (down_timer_adverts × interval + skew),
//! preemption with its delay, priority-0 hand-over, and the gratuitous ARP
//! schedule of a new master. Time comes in as an argument; what to do
//! comes out as [`Action`]s.

use crate::check::{check, Checked, Stats};
use crate::{Action, Advert, InstanceConfig, State, Time};
use std::cmp::Ordering;
use std::net::IpAddr;
use std::time::Duration;

const PRIO_OWNER: u8 = 255;

pub struct Instance {
    pub cfg: InstanceConfig,
    state: State,
    /// What the instance would be in without a sync group holding it.
    want_master: bool,
    effective_priority: u8,
    /// v3: the interval the current master advertises; v2: ours.
    master_adver_int: Duration,
    ms_down_timer: Duration,
    /// When the current timer (advert or master-down) fires.
    sands: Option<Time>,
    preempt_time: Option<Time>,
    master_src: Option<IpAddr>,
    master_priority: u8,
    /// Our own address for tie-breaks and as the adverts' source.
    source: Option<IpAddr>,
    /// Pending gratuitous ARP rounds: (when, how many).
    garp_rounds: Vec<(Time, u32)>,
    garp_refresh_at: Option<Time>,
    vips_set: bool,
    /// A live master is not preempted while set (rlvs: until connection
    /// sync has loaded its table); a dead one is still replaced.
    pub hold_preempt: bool,
    pub stats: Stats,
}

impl Instance {
    pub fn new(cfg: InstanceConfig) -> Instance {
        let prio = cfg.priority;
        let adv = cfg.advert_int;
        let want_master = cfg.want_master;
        let mut i = Instance {
            cfg,
            state: State::Init,
            want_master,
            effective_priority: prio,
            master_adver_int: adv,
            ms_down_timer: Duration::ZERO,
            sands: None,
            preempt_time: None,
            master_src: None,
            master_priority: 0,
            source: None,
            garp_rounds: Vec::new(),
            garp_refresh_at: None,
            vips_set: false,
            hold_preempt: false,
            stats: Stats::default(),
        };
        i.ms_down_timer = i.down_timer();
        i
    }

    pub fn state(&self) -> State {
        self.state
    }
    pub fn name(&self) -> &str {
        &self.cfg.name
    }
    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }
    pub fn master_src(&self) -> Option<IpAddr> {
        self.master_src
    }
    pub fn master_priority(&self) -> u8 {
        self.master_priority
    }
    pub fn vips_set(&self) -> bool {
        self.vips_set
    }
    pub fn set_source(&mut self, source: Option<IpAddr>) {
        self.source = source;
    }
    pub fn source(&self) -> Option<IpAddr> {
        self.source
    }

    /// (256 - priority) / 256 of a second (v2) or of the master's
    /// interval (v3), in keepalived's integer arithmetic.
    fn skew(&self, prio_val: u32) -> Duration {
        let us = if self.cfg.version == 3 {
            let cs = self.master_adver_int.as_micros() as u64 / 10_000;
            u64::from(prio_val) * cs * 625 / 16
        } else {
            u64::from(prio_val) * 1_000_000 / 256
        };
        Duration::from_micros(us)
    }
    pub fn skew_time(&self) -> Duration {
        self.skew(256 - u32::from(self.effective_priority))
    }
    fn down_timer(&self) -> Duration {
        self.master_adver_int * self.cfg.down_timer_adverts + self.skew_time()
    }
    /// Master_Down_Interval for the current master interval and priority.
    pub fn master_down_interval(&self) -> Duration {
        self.down_timer()
    }

    /// The earliest time something is due.
    pub fn next_deadline(&self) -> Option<Time> {
        let garp = self.garp_rounds.iter().map(|g| g.0).min();
        [self.sands, garp, self.garp_refresh_at].into_iter().flatten().min()
    }

    fn log(&self, out: &mut Vec<Action>, msg: String) {
        out.push(Action::Log(format!("({}) {msg}", self.cfg.name)));
    }

    /// vrrp_init_state: the first state, once the shell has sockets.
    /// `up`: every tracked interface/script allows it to run.
    pub fn start(&mut self, now: Time, up: bool) -> Vec<Action> {
        let mut out = Vec::new();
        if up && self.want_master && self.cfg.priority == PRIO_OWNER {
            // The simplest way to become master is to time out of BACKUP
            // at once.
            self.state = State::Backup;
            self.ms_down_timer = Duration::from_micros(1);
        } else {
            self.ms_down_timer = if self.want_master {
                // One interval to hear whether another master is there.
                self.master_adver_int + self.skew(1)
            } else {
                self.down_timer()
            };
            // Whatever an earlier run left on the interface goes.
            self.log(&mut out, "removing VIPs.".into());
            out.push(Action::RemoveVips);
            if up {
                self.log(&mut out, "Entering BACKUP STATE (init)".into());
                self.state = State::Backup;
                out.push(Action::Notify(State::Backup));
            } else {
                self.log(&mut out, "Entering FAULT STATE (init)".into());
                self.state = State::Fault;
                out.push(Action::Notify(State::Fault));
            }
        }
        self.init_sands(now);
        out
    }

    fn init_sands(&mut self, now: Time) {
        self.sands = match self.state {
            State::Master => Some(now + self.cfg.advert_int),
            State::Backup => Some(now + self.ms_down_timer),
            State::Fault | State::Init => None,
        };
    }

    /// An advert for this instance's VRID arrived.
    pub fn on_advert(&mut self, now: Time, ad: &Advert<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::Backup => self.backup_rx(now, ad, &mut out),
            State::Master => {
                if self.master_rx(now, ad, &mut out) {
                    self.init_sands(now);
                }
            }
            State::Fault | State::Init => {}
        }
        out
    }

    fn backup_rx(&mut self, now: Time, ad: &Advert<'_>, out: &mut Vec<Action>) {
        // skip_check_adv_addr: only a new master's address list is checked.
        let check_vips = !self.cfg.skip_check_adv_addr || self.master_src != Some(ad.src);
        let c = match check(&self.cfg, &mut self.stats, ad, check_vips) {
            Ok(c) => c,
            Err(r) => {
                // Ignored: the master-down timer runs on.
                out.push(Action::Log(r.0));
                return;
            }
        };
        if c.priority == 0 {
            self.ms_down_timer = self.skew_time();
            self.sands = Some(now + self.ms_down_timer);
            self.log(out, "Backup received priority 0 advertisement".into());
            return;
        }
        let preempt_waiting = !self.cfg.preempt_delay.is_zero() && self.preempt_time.is_none_or(|t| t > now);
        if self.cfg.nopreempt || c.priority >= self.effective_priority || preempt_waiting || self.hold_preempt {
            if self.cfg.version == 3 {
                let adv = Duration::from_millis(u64::from(c.advert_int_cs) * 10);
                if adv != self.master_adver_int && !adv.is_zero() {
                    self.master_adver_int = adv;
                }
            }
            self.ms_down_timer = self.down_timer();
            self.master_src = Some(c.src);
            self.master_priority = c.priority;
            if !self.cfg.preempt_delay.is_zero() {
                if c.priority >= self.effective_priority {
                    self.preempt_time = None;
                } else if self.preempt_time.is_none() {
                    self.log(out, format!("start preempt delay ({:.6})", self.cfg.preempt_delay.as_secs_f64()));
                    self.preempt_time = Some(now + self.cfg.preempt_delay);
                }
            }
            self.want_master = false;
            self.sands = Some(now + self.ms_down_timer);
        } else {
            self.log(out, format!("received lower priority ({}) advert from {} - discarding", c.priority, c.src));
            self.master_src = Some(c.src);
        }
    }

    /// Master receiving: true if it left MASTER.
    fn master_rx(&mut self, now: Time, ad: &Advert<'_>, out: &mut Vec<Action>) -> bool {
        let c: Checked = match check(&self.cfg, &mut self.stats, ad, true) {
            Ok(c) => c,
            Err(r) => {
                out.push(Action::Log(r.0));
                return false;
            }
        };
        let addr_cmp = self.compare_source(c.src);
        let eff = self.effective_priority;
        if c.priority == 0
            || (self.cfg.higher_prio_send_advert
                && (c.priority > eff || (c.priority == eff && addr_cmp == Ordering::Greater)))
        {
            self.send_advert(eff, out);
            if c.priority == 0 {
                self.log(out, "Master received priority 0 message".into());
                return false;
            }
        }
        if c.priority == eff {
            if addr_cmp == Ordering::Equal {
                self.log(out, "WARNING - equal priority advert received from remote host with our IP address.".into());
            } else if eff == PRIO_OWNER {
                self.log(out, "CONFIGURATION ERROR: local instance and a remote instance are both configured as address owner, please fix - reducing local priority".into());
                self.effective_priority = PRIO_OWNER - 1;
                self.cfg.priority = PRIO_OWNER - 1;
            }
        }
        let eff = self.effective_priority;
        if c.priority < eff || (c.priority == eff && addr_cmp == Ordering::Less) {
            let force = if self.cfg.lower_prio_no_advert { "" } else { ", forcing new election" };
            self.log(
                out,
                format!("Received advert from {} with lower priority {}, ours {eff}{force}", c.src, c.priority),
            );
            if !self.cfg.lower_prio_no_advert {
                self.send_advert(eff, out);
            }
            if let Some(rep) = self.cfg.garp.lower_prio_repeat.filter(|r| *r > 0) {
                out.push(Action::SendGarp { repeat: rep });
                if let Some(d) = self.cfg.garp.lower_prio_delay.filter(|d| !d.is_zero()) {
                    self.garp_rounds.push((now + d, rep));
                }
            }
            out.push(Action::NotifyMasterRxLowerPri);
            return false;
        }
        if c.priority > eff {
            self.log(
                out,
                format!("Master received advert from {} with higher priority {}, ours {eff}", c.src, c.priority),
            );
        } else {
            self.log(
                out,
                format!(
                    "Master received advert from {} with same priority {} but higher IP address than ours",
                    c.src, c.priority
                ),
            );
        }
        if self.cfg.version == 3 {
            self.master_adver_int = Duration::from_millis(u64::from(c.advert_int_cs) * 10);
        }
        self.ms_down_timer = self.down_timer();
        self.master_priority = c.priority;
        self.master_src = Some(c.src);
        self.want_master = false;
        self.leave_master(now, State::Backup, out);
        true
    }

    /// How a peer's address compares with ours (RFC: the higher primary
    /// address wins a tie).
    fn compare_source(&self, src: IpAddr) -> Ordering {
        match self.source {
            Some(own) => match (src, own) {
                (IpAddr::V4(a), IpAddr::V4(b)) => a.cmp(&b),
                (IpAddr::V6(a), IpAddr::V6(b)) => a.cmp(&b),
                _ => Ordering::Equal,
            },
            None => Ordering::Equal,
        }
    }

    fn send_advert(&mut self, priority: u8, out: &mut Vec<Action>) {
        out.push(Action::SendAdvert { priority });
        self.stats.advert_sent += 1;
        if priority == 0 {
            self.stats.pri_zero_sent += 1;
        }
    }

    /// Timers: master-down expiry in BACKUP, advert time in MASTER, and
    /// gratuitous ARP rounds.
    pub fn on_timer(&mut self, now: Time) -> Vec<Action> {
        let mut out = Vec::new();
        let due: Vec<u32> = self.garp_rounds.iter().filter(|g| g.0 <= now).map(|g| g.1).collect();
        self.garp_rounds.retain(|g| g.0 > now);
        if self.state == State::Master {
            for rep in due {
                out.push(Action::SendGarp { repeat: rep });
            }
        }
        if self.garp_refresh_at.is_some_and(|t| t <= now) {
            if self.state == State::Master {
                out.push(Action::SendGarp { repeat: self.cfg.garp.refresh_repeat });
                self.garp_refresh_at = Some(now + self.cfg.garp.refresh);
            } else {
                self.garp_refresh_at = None;
            }
        }
        if self.sands.is_some_and(|t| t <= now) {
            match self.state {
                State::Backup => {
                    self.log(&mut out, "Receive advertisement timeout".into());
                    self.want_master = true;
                    out.push(Action::WantMaster);
                }
                State::Master => self.send_advert(self.effective_priority, &mut out),
                _ => {}
            }
            self.init_sands(now);
        }
        out
    }

    /// Whether the instance's timer has said it should be master (a sync
    /// group may still hold it in BACKUP).
    pub fn wants_master(&self) -> bool {
        self.want_master
    }

    /// vrrp_state_goto_master: advert first (so the old master drops the
    /// addresses before our gratuitous ARPs), then the addresses.
    pub fn goto_master(&mut self, now: Time) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Master {
            return out;
        }
        self.state = State::Master;
        self.init_sands(now);
        self.send_advert(self.effective_priority, &mut out);
        self.log(&mut out, "Entering MASTER STATE".into());
        self.stats.become_master += 1;
        self.master_adver_int = self.cfg.advert_int;
        self.ms_down_timer = self.down_timer();
        self.master_src = self.source;
        self.master_priority = self.effective_priority;
        self.log(&mut out, "setting VIPs.".into());
        out.push(Action::AddVips);
        self.vips_set = true;
        out.push(Action::SendGarp { repeat: self.cfg.garp.repeat });
        if !self.cfg.garp.delay.is_zero() {
            self.garp_rounds.push((now + self.cfg.garp.delay, self.cfg.garp.repeat));
        }
        if !self.cfg.garp.refresh.is_zero() {
            self.garp_refresh_at = Some(now + self.cfg.garp.refresh);
        }
        out.push(Action::Notify(State::Master));
        out
    }

    /// A sync group sends a member to BACKUP.
    pub fn goto_backup(&mut self, now: Time) -> Vec<Action> {
        let mut out = Vec::new();
        self.want_master = false;
        match self.state {
            State::Master => self.leave_master(now, State::Backup, &mut out),
            State::Backup => {
                self.ms_down_timer = self.down_timer();
                self.init_sands(now);
            }
            _ => {}
        }
        out
    }

    fn leave_master(&mut self, now: Time, to: State, out: &mut Vec<Action>) {
        match to {
            State::Backup => {
                self.log(out, "Entering BACKUP STATE".into());
                self.preempt_time = None;
            }
            _ => {
                self.log(out, "Entering FAULT STATE".into());
                self.send_advert(0, out);
            }
        }
        self.remove_vips(out);
        self.state = to;
        out.push(Action::Notify(to));
        self.ms_down_timer = self.down_timer();
        self.init_sands(now);
        self.stats.release_master += 1;
    }

    fn remove_vips(&mut self, out: &mut Vec<Action>) {
        if self.vips_set {
            self.log(out, "removing VIPs.".into());
            out.push(Action::RemoveVips);
            self.vips_set = false;
        }
        self.garp_rounds.clear();
        self.garp_refresh_at = None;
    }

    /// Tracking says the instance can (`up`) or cannot run.
    pub fn set_up(&mut self, now: Time, up: bool) -> Vec<Action> {
        let mut out = Vec::new();
        match (self.state, up) {
            (State::Fault, true) => {
                self.log(&mut out, "Entering BACKUP STATE".into());
                self.state = State::Backup;
                self.ms_down_timer = self.down_timer();
                self.init_sands(now);
                out.push(Action::Notify(State::Backup));
            }
            (State::Master, false) => self.leave_master(now, State::Fault, &mut out),
            (State::Backup | State::Init, false) => {
                self.log(&mut out, "Entering FAULT STATE".into());
                self.state = State::Fault;
                self.init_sands(now);
                out.push(Action::Notify(State::Fault));
            }
            _ => {}
        }
        out
    }

    /// A new total priority from the tracked objects' weights. The owner
    /// (255) never changes; others stay within 1..=254.
    pub fn set_total_priority(&mut self, now: Time, total: i32) -> Vec<Action> {
        let mut out = Vec::new();
        if self.cfg.priority == PRIO_OWNER {
            return out;
        }
        let new = total.clamp(1, 254) as u8;
        if new == self.effective_priority {
            return out;
        }
        self.log(&mut out, format!("Changing effective priority from {} to {new}", self.effective_priority));
        self.effective_priority = new;
        let old = self.ms_down_timer;
        self.ms_down_timer = self.down_timer();
        if self.state == State::Backup {
            if let Some(s) = self.sands {
                self.sands = Some(if self.ms_down_timer > old {
                    s + (self.ms_down_timer - old)
                } else {
                    s.saturating_sub(old - self.ms_down_timer).max(now)
                });
            }
        }
        out.push(Action::PriorityChanged(new));
        out
    }

    /// A reload changed the configuration of this running instance: the
    /// state carries on; timers follow the new interval and priority.
    pub fn update_config(&mut self, cfg: InstanceConfig) {
        let prio_changed = cfg.priority != self.cfg.priority;
        if self.state != State::Backup || self.cfg.version == 2 {
            self.master_adver_int = cfg.advert_int;
        }
        if prio_changed {
            self.effective_priority = cfg.priority;
        }
        self.cfg = cfg;
        self.ms_down_timer = self.down_timer();
    }

    /// Stopping (SIGTERM): a master hands over at once with priority 0.
    pub fn stop(&mut self, _now: Time) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Master {
            self.send_advert(0, &mut out);
            self.log(&mut out, "sent 0 priority".into());
        }
        self.remove_vips(&mut out);
        self.state = State::Init;
        self.sands = None;
        out.push(Action::Notify(State::Init));
        out
    }
}
