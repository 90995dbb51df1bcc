//! The daemon under systemd: READY once VRRP and the tables are up,
//! RELOADING around a reload, STOPPING on the way out, a STATUS line an
//! operator reads in `systemctl status`, and a watchdog that pings only
//! for a daemon that is really working.
//!
//! Outside systemd (no NOTIFY_SOCKET) every notice is a no-op.

use rlvs_ctl::{ControlMsg, EngineHandle, Request, Response};
use sd_notify::NotifyState;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("sd_notify: {e}");
    }
}

pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn reloading() {
    // MONOTONIC_USEC lets a systemd with Type=notify-reload match the
    // READY that ends this reload to it; older ones ignore it.
    match NotifyState::monotonic_usec_now() {
        Ok(t) => notify(&[NotifyState::Reloading, t, NotifyState::Status("Reloading")]),
        Err(_) => notify(&[NotifyState::Reloading, NotifyState::Status("Reloading")]),
    }
}

pub fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("Stopping")]);
}

/// Asks the engine a question and waits for its answer: proof that its
/// thread runs and, since it takes requests in order, that everything
/// sent to it before has been applied. The number of services, if it
/// answered.
pub async fn engine_answers(engine: &EngineHandle) -> Option<u32> {
    match ask(engine, Request::Info).await? {
        Response::Info(i) => Some(i.num_services),
        _ => Some(0),
    }
}

/// A request to the engine and its answer; None when it does not answer
/// within 2 s.
pub async fn ask(engine: &EngineHandle, req: Request) -> Option<Response> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    engine.send(ControlMsg {
        req,
        reply: Box::new(move |r| {
            let _ = tx.send(r);
        }),
    });
    tokio::time::timeout(Duration::from_secs(2), rx).await.ok()?.ok()
}

/// A loop the watchdog vouches for: its name and the counter it bumps on
/// every turn.
pub struct Beat {
    pub name: &'static str,
    pub count: Arc<AtomicU64>,
}

/// Pings systemd's watchdog at half its period, but only when every loop
/// has turned and the engine has answered since the last ping. A hung
/// VRRP loop, checker loop or engine thread therefore stops the pings and
/// systemd replaces the daemon (WatchdogSec=, then Restart=on-failure).
/// `describe` gives the STATUS line, refreshed at each ping.
pub async fn watchdog(period: Duration, beats: Vec<Beat>, engine: EngineHandle, describe: impl Fn(u32) -> String) {
    let tick = (period / 2).max(Duration::from_millis(1500));
    tracing::info!("systemd watchdog every {} ms (WatchdogSec={} s)", tick.as_millis(), period.as_secs_f32());
    let mut last: Vec<u64> = beats.iter().map(|b| b.count.load(Ordering::Relaxed)).collect();
    let mut reported: Option<String> = None;
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        let services = engine_answers(&engine).await;
        let now: Vec<u64> = beats.iter().map(|b| b.count.load(Ordering::Relaxed)).collect();
        let names: Vec<&'static str> = beats.iter().map(|b| b.name).collect();
        let stuck = stalled(&names, &last, &now, services.is_some());
        last = now;
        if stuck.is_empty() {
            if reported.take().is_some() {
                tracing::info!("watchdog: every loop is turning again");
            }
            notify(&[NotifyState::Watchdog, NotifyState::Status(&describe(services.unwrap_or(0)))]);
        } else {
            let what = stuck.join(", ");
            if reported.as_deref() != Some(what.as_str()) {
                tracing::warn!("watchdog: no progress from {what} - not pinging systemd");
                reported = Some(what);
            }
        }
    }
}

/// What has not moved since the last ping: the loops whose turn counters
/// are unchanged, and the engine if it did not answer. Empty: ping.
fn stalled(names: &[&'static str], last: &[u64], now: &[u64], engine_answered: bool) -> Vec<&'static str> {
    let mut stuck: Vec<&'static str> =
        names.iter().zip(last.iter().zip(now)).filter(|(_, (a, b))| a == b).map(|(n, _)| *n).collect();
    if !engine_answered {
        stuck.push("engine");
    }
    stuck
}

#[cfg(test)]
mod tests {
    use super::stalled;

    #[test]
    fn a_ping_needs_every_loop_turned_and_the_engine_answering() {
        let names = ["the VRRP loop", "the checker loop"];
        assert!(stalled(&names, &[1, 5], &[9, 6], true).is_empty());
        assert_eq!(stalled(&names, &[1, 5], &[1, 6], true), ["the VRRP loop"]);
        assert_eq!(stalled(&names, &[1, 5], &[2, 5], true), ["the checker loop"]);
        assert_eq!(stalled(&names, &[1, 5], &[2, 6], false), ["engine"]);
        assert_eq!(stalled(&names, &[1, 5], &[1, 5], false), ["the VRRP loop", "the checker loop", "engine"]);
        // A daemon with neither loop (no configuration) rests on the engine.
        assert!(stalled(&[], &[], &[], true).is_empty());
        assert_eq!(stalled(&[], &[], &[], false), ["engine"]);
    }
}
