//! Scale-out: this director's VIPs announced to the router by an existing
//! BGP daemon (BIRD 2 in rlvs's lab and docs/SCALE-OUT.md; FRR reads the
//! same devices). rlvs speaks no BGP. It puts each VIP that should be
//! announced on a device it owns, the daemon exports that device's
//! addresses, and the device dies with the process.
//!
//! - [`settings`]: the separate settings file (`--scale-out`).
//! - [`plan`]: the sans-IO rules: quorum, health, drain.
//! - [`device`]: the TAP devices and their addresses.

pub mod device;
pub mod plan;
pub mod settings;

use plan::{Place, Plan, VipInput};
use rlvs_ctl::{AnnounceOp, AnnounceStatus, Request, Response, VipAnnounce};
use rlvs_lvs::types::{Protocol, ServiceKey};
use settings::{Settings, Sloppy};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How often quorum and the data plane's health are looked at: a check
/// takes seconds to change its verdict, a drain's time is in seconds.
const TICK: Duration = Duration::from_millis(200);
/// A data plane that has not answered in this long is not healthy.
const ENGINE_DEADLINE: Duration = Duration::from_secs(1);

pub type Ask = (AnnounceOp, oneshot::Sender<Response>);

pub struct Handle {
    pub commands: mpsc::UnboundedSender<Ask>,
}

struct Shell {
    settings: Settings,
    plan: Plan,
    announce: device::Device,
    drain: device::Device,
    rtnl: rlvs_dataplane::netlink::Rtnl,
    engine: rlvs_ctl::EngineHandle,
    checkers: Option<mpsc::UnboundedSender<crate::check::Command>>,
    sloppy_sent: Option<Vec<ServiceKey>>,
    last: Vec<crate::check::VsQuorum>,
    healthy: bool,
}

/// Creates the devices (an error stops the daemon before it forwards:
/// an operator who asked for scale-out must not get a silent director)
/// and starts the task that keeps them right.
pub fn start(
    settings: Settings,
    engine: rlvs_ctl::EngineHandle,
    checkers: Option<mpsc::UnboundedSender<crate::check::Command>>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(Handle, tokio::task::JoinHandle<()>)> {
    use anyhow::Context;
    if checkers.is_none() {
        tracing::warn!(
            "scale-out: no virtual servers of a keepalived.conf, so no VIP has quorum: nothing is announced"
        );
    }
    let announce = device::Device::create(&settings.device).with_context(|| format!("creating {}", settings.device))?;
    let drain_name = settings.drain_device();
    let drain = device::Device::create(&drain_name).with_context(|| format!("creating {drain_name}"))?;
    let rtnl = rlvs_dataplane::netlink::Rtnl::new().context("rtnetlink")?;
    let plan = Plan::new(settings.quorum, settings.drain_time);
    let shell = Shell {
        settings,
        plan,
        announce,
        drain,
        rtnl,
        engine,
        checkers,
        sloppy_sent: None,
        last: Vec::new(),
        healthy: false,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    Ok((Handle { commands: tx }, tokio::spawn(shell.run(rx, stop))))
}

impl Shell {
    async fn run(mut self, mut asks: mpsc::UnboundedReceiver<Ask>, mut stop: tokio::sync::watch::Receiver<bool>) {
        tracing::info!(
            device = %self.announce.name, drain_device = %self.drain.name,
            "scale-out: VIPs with quorum are announced on {}", self.announce.name
        );
        let origin = Instant::now();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.refresh(origin.elapsed()).await,
                Some((op, reply)) = asks.recv() => {
                    let now = origin.elapsed();
                    match op {
                        AnnounceOp::Drain => {
                            tracing::info!("scale-out: drain asked: GRACEFUL_SHUTDOWN for {:?}, then withdrawal", self.settings.drain_time);
                            self.plan.drain(now);
                        }
                        AnnounceOp::Resume => {
                            tracing::info!("scale-out: resumed");
                            self.plan.resume();
                        }
                        AnnounceOp::Status => {}
                    }
                    if op != AnnounceOp::Status {
                        self.apply_plan(now);
                    }
                    let _ = reply.send(Response::Announce(self.status()));
                }
                _ = stop.changed() => break,
            }
        }
        // The devices go with self: every VIP is withdrawn before the data
        // plane stops.
        tracing::info!("scale-out: withdrawing every VIP");
    }

    async fn refresh(&mut self, now: Duration) {
        self.healthy = matches!(
            tokio::time::timeout(ENGINE_DEADLINE, crate::systemd::engine_answers(&self.engine)).await,
            Ok(Some(_))
        );
        if let Some(c) = &self.checkers {
            let (tx, rx) = oneshot::channel();
            if c.send(crate::check::Command::Quorum(tx)).is_ok() {
                if let Ok(Ok(q)) = tokio::time::timeout(ENGINE_DEADLINE, rx).await {
                    self.last = q;
                }
            }
        }
        self.apply_plan(now);
        self.update_sloppy();
    }

    /// Each VIP (address services only: a firewall-mark service has no
    /// address to announce) and its virtual servers' quorum.
    fn inputs(&self) -> BTreeMap<IpAddr, Vec<(String, bool)>> {
        let mut by_vip: BTreeMap<IpAddr, Vec<(String, bool)>> = BTreeMap::new();
        for vs in &self.last {
            for k in vs.keys.iter().filter(|k| k.fwmark == 0) {
                if self.settings.vips.as_ref().is_some_and(|l| !l.contains(&k.addr)) {
                    continue;
                }
                let list = by_vip.entry(k.addr).or_default();
                if !list.iter().any(|(n, _)| *n == vs.name) {
                    list.push((vs.name.clone(), vs.up));
                }
            }
        }
        by_vip
    }

    fn apply_plan(&mut self, now: Duration) {
        let inputs: Vec<VipInput> = self
            .inputs()
            .into_iter()
            .map(|(vip, l)| VipInput { vip, quorum: l.iter().map(|(_, q)| *q).collect() })
            .collect();
        for c in self.plan.step(&inputs, self.healthy, now) {
            // Add before removing: the BGP daemon replaces the route (a
            // preference change) instead of withdrawing it in between.
            let r = match c.to {
                Place::Announced => {
                    self.announce.add(&mut self.rtnl, c.vip).and(self.drain.remove(&mut self.rtnl, c.vip))
                }
                Place::Draining => {
                    self.drain.add(&mut self.rtnl, c.vip).and(self.announce.remove(&mut self.rtnl, c.vip))
                }
                Place::Withdrawn => {
                    self.announce.remove(&mut self.rtnl, c.vip).and(self.drain.remove(&mut self.rtnl, c.vip))
                }
            };
            let why = if !self.healthy {
                "the data plane does not answer"
            } else if c.to == Place::Withdrawn && !self.plan.draining() {
                "quorum lost"
            } else {
                "operator"
            };
            match r {
                Ok(()) => tracing::info!(vip = %c.vip, "scale-out: VIP {} {:?} -> {:?} ({why})", c.vip, c.from, c.to),
                Err(e) => tracing::error!(vip = %c.vip, "scale-out: moving VIP {} to {:?}: {e}", c.vip, c.to),
            }
        }
    }

    /// The services that opt in to sloppy TCP, sent when they change (a
    /// reload may add or remove services).
    fn update_sloppy(&mut self) {
        let mut keys: Vec<ServiceKey> = Vec::new();
        for vs in &self.last {
            for k in vs.keys.iter().filter(|k| k.protocol == Protocol::Tcp || k.fwmark != 0) {
                let wanted = match &self.settings.sloppy {
                    Sloppy::All => true,
                    Sloppy::Services(l) => k.fwmark == 0 && l.contains(&(k.addr, k.port)),
                };
                if wanted && !keys.contains(k) {
                    keys.push(*k);
                }
            }
        }
        if self.sloppy_sent.as_ref() == Some(&keys) {
            return;
        }
        tracing::info!("scale-out: sloppy TCP for {} service(s)", keys.len());
        self.engine.send(rlvs_ctl::ControlMsg {
            req: Request::SetSloppy { services: keys.clone() },
            reply: Box::new(|r| {
                if !matches!(r, Response::Ok) {
                    tracing::warn!("scale-out: sloppy TCP refused: {r:?}");
                }
            }),
        });
        self.sloppy_sent = Some(keys);
    }

    fn status(&self) -> AnnounceStatus {
        let inputs = self.inputs();
        let vips = self
            .plan
            .placed()
            .map(|(vip, place)| VipAnnounce {
                vip,
                place: format!("{place:?}").to_lowercase(),
                services: inputs.get(&vip).cloned().unwrap_or_default(),
            })
            .collect();
        AnnounceStatus {
            device: self.announce.name.clone(),
            draining: self.plan.draining(),
            drain_time_ms: self.settings.drain_time.as_millis() as u64,
            quorum: format!("{:?}", self.settings.quorum).to_lowercase(),
            healthy: self.healthy,
            vips,
        }
    }
}
