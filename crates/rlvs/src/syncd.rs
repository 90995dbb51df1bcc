//! keepalived's `lvs_sync_daemon`: which connection sync daemons run, as
//! keepalived decides it. With a VRRP instance named, the director is a
//! sync master while that instance is MASTER and a sync backup otherwise
//! (ipvs_syncd_master / ipvs_syncd_backup); without one, both run. The
//! requests go to whichever engine holds the table, so on kernel IPVS they
//! drive the kernel's own sync threads.

use rlvs_conf::model::{Config, LvsSyncDaemon};
use rlvs_ctl::{ControlMsg, EngineHandle, Request, SyncDaemon, SYNC_BACKUP, SYNC_MASTER};

fn send(engine: &EngineHandle, req: Request) {
    let what = format!("{req:?}");
    engine.send(ControlMsg {
        req,
        reply: Box::new(move |r| {
            if let rlvs_ctl::Response::Error(e) = r {
                tracing::error!("IPVS: {what} refused: {e:?}");
            }
        }),
    });
}

fn daemon(c: &LvsSyncDaemon, syncid: u8, state: u32) -> SyncDaemon {
    SyncDaemon {
        state,
        mcast_ifn: c.interface.clone(),
        syncid,
        maxlen: c.maxlen.unwrap_or(0),
        group: c.group,
        port: c.port.unwrap_or(0),
        ttl: c.ttl.unwrap_or(0),
        ready: false,
    }
}

/// Runs until `stop`; then stops the daemons it started (keepalived does
/// on shutdown; the kernel would otherwise keep its threads).
pub async fn run(
    config: Config,
    engine: EngineHandle,
    vrrp: Option<(crate::vrrp::StatusWatch, tokio::sync::mpsc::UnboundedSender<crate::vrrp::Command>)>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    table_installed: Option<tokio::sync::watch::Receiver<bool>>,
) {
    let Some(c) = config.global.lvs_sync_daemon.clone() else { return };
    // Connections a backup learns are bound to their real servers as they
    // arrive: the virtual servers must be in the table first (a director
    // that restarts would otherwise take a bulk resync for services it
    // does not have yet, and lose it).
    if let Some(mut installed) = table_installed {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), installed.wait_for(|done| *done)).await;
    }
    let vrid = c.instance.as_ref().and_then(|n| config.instances.iter().find(|i| &i.name == n)).map(|i| i.vrid);
    let syncid = c.syncid.or(vrid).unwrap_or(0);
    let mut running: Vec<u32> = Vec::new();
    match (&c.instance, vrrp) {
        (Some(name), Some(((status, changed), commands))) if vrid.is_some() => loop {
            let notified = changed.notified();
            let state = status.lock().ok().and_then(|s| s.iter().find(|s| &s.name == name).map(|s| s.state));
            let want = if state == Some("MASTER") { SYNC_MASTER } else { SYNC_BACKUP };
            if state.is_some() && running != [want] {
                for r in running.drain(..) {
                    send(&engine, Request::StopDaemon { state: r });
                }
                let role = if want == SYNC_MASTER { "master" } else { "backup" };
                tracing::info!("({name}) lvs_sync_daemon on {}: {role}, syncid {syncid}", c.interface);
                send(&engine, Request::StartDaemon(daemon(&c, syncid, want)));
                running.push(want);
                if want == SYNC_BACKUP {
                    // A director that comes back (or steps down) loads the
                    // master's table before it may preempt it.
                    let _ = commands.send(crate::vrrp::Command::HoldPreempt { instance: name.clone(), on: true });
                    tokio::spawn(release_when_synced(engine.clone(), commands.clone(), name.clone()));
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = stop.changed() => break,
            }
        },
        (Some(name), _) => {
            tracing::error!("lvs_sync_daemon: VRRP instance {name} is not configured - running both roles");
            running = start_both(&engine, &c, syncid);
            let _ = stop.changed().await;
        }
        (None, _) => {
            running = start_both(&engine, &c, syncid);
            let _ = stop.changed().await;
        }
    }
    for r in running {
        send(&engine, Request::StopDaemon { state: r });
    }
}

/// Lets the instance preempt once the backup daemon has the master's table
/// (or said that no rlvs master answered), at the latest after 10 s.
async fn release_when_synced(
    engine: EngineHandle,
    commands: tokio::sync::mpsc::UnboundedSender<crate::vrrp::Command>,
    instance: String,
) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let (tx, rx) = tokio::sync::oneshot::channel();
        engine.send(ControlMsg {
            req: Request::ListDaemons,
            reply: Box::new(move |r| {
                let _ = tx.send(r);
            }),
        });
        if let Ok(rlvs_ctl::Response::Daemons(l)) = rx.await {
            if l.iter().any(|d| d.state == SYNC_BACKUP && d.ready) {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = commands.send(crate::vrrp::Command::HoldPreempt { instance, on: false });
}

fn start_both(engine: &EngineHandle, c: &LvsSyncDaemon, syncid: u8) -> Vec<u32> {
    tracing::info!("lvs_sync_daemon on {}: master and backup, syncid {syncid}", c.interface);
    for s in [SYNC_MASTER, SYNC_BACKUP] {
        send(engine, Request::StartDaemon(daemon(c, syncid, s)));
    }
    vec![SYNC_MASTER, SYNC_BACKUP]
}
