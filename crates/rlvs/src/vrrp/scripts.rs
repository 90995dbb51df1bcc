//! vrrp_script runners and notify scripts, with keepalived's security
//! rules: a script, and every directory on its path, must be owned by root
//! and not writable by anyone else (a sticky directory may be); with
//! enable_script_security an insecure script is disabled, without it
//! rlvs only warns.

use rlvs_conf::model::{ScriptUser, VrrpScript};
use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// A script's command line checked and resolved.
#[derive(Debug, Clone)]
pub struct Runnable {
    pub argv: Vec<String>,
    pub uid: u32,
    pub gid: u32,
}

/// Why a script will not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    NotFound(String),
    Insecure(String),
    NotExecutable(String),
    NoUser(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::NotFound(p) => write!(f, "check_script_secure could not find script '{p}' - disabling"),
            Refused::Insecure(p) => write!(f, "Unsafe permissions found for script '{p}' - disabling."),
            Refused::NotExecutable(p) => write!(f, "WARNING - script '{p}' is not executable - disabling."),
            Refused::NoUser(u) => write!(f, "Unable to set script user '{u}' - disabling"),
        }
    }
}

/// getpwnam and getgrnam answer in static storage that another thread's
/// call would overwrite; each call and its read happen under this lock.
static NSS_ENTRY: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let c = CString::new(name).ok()?;
    let _entry = NSS_ENTRY.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: getpwnam returns a pointer into static storage or null; the
    // two ids are copied out under the lock.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    (!pw.is_null()).then(|| unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn lookup_group(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let _entry = NSS_ENTRY.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: as lookup_user.
    let gr = unsafe { libc::getgrnam(c.as_ptr()) };
    (!gr.is_null()).then(|| unsafe { (*gr).gr_gid })
}

fn resolve(cmd: &str) -> Option<PathBuf> {
    if cmd.contains('/') {
        return Some(PathBuf::from(cmd));
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    path.split(':').map(|d| Path::new(d).join(cmd)).find(|p| p.is_file())
}

/// The path keepalived runs a script by (check_script_secure): the real
/// path, without symbolic links, `.` or `..`, but under its own file name
/// when the link's name differs (programs that look at their name, such
/// as busybox, keep working).
pub fn real_path(path: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(path).ok()?;
    match (path.file_name(), real.file_name(), real.parent()) {
        (Some(asked), Some(found), Some(dir)) if asked != found => Some(dir.join(asked)),
        _ => Some(real),
    }
}

/// Whether the file and each directory above it are safe to execute
/// from, checked on its real path as keepalived's check_security does:
/// every part owned by root; no directory without the sticky bit and no
/// file writable by a non-root group or by others. A symbolic link's own
/// mode (always 0777) does not count.
fn secure(path: &Path) -> bool {
    let mut p = Some(path);
    while let Some(cur) = p {
        let Ok(md) = std::fs::symlink_metadata(cur) else { return false };
        let mode = md.mode();
        let judged = (md.is_dir() && mode & libc::S_ISVTX == 0) || md.is_file();
        let group_w = md.gid() != 0 && mode & libc::S_IWGRP != 0;
        let other_w = mode & libc::S_IWOTH != 0;
        if md.uid() != 0 || (judged && (group_w || other_w)) {
            return false;
        }
        p = cur.parent().filter(|x| !x.as_os_str().is_empty());
    }
    true
}

/// Checks a script as keepalived does at load time. `Err` for one that
/// must not run; `Ok((runnable, insecure))` otherwise.
pub fn prepare(
    argv: &[String],
    user: Option<&ScriptUser>,
    default_user: Option<&ScriptUser>,
    security: bool,
) -> Result<(Runnable, bool), Refused> {
    let cmd = argv.first().cloned().unwrap_or_default();
    let Some(path) = resolve(&cmd).and_then(|p| real_path(&p)) else { return Err(Refused::NotFound(cmd)) };
    let Ok(md) = std::fs::metadata(&path) else { return Err(Refused::NotFound(cmd)) };
    if md.mode() & 0o111 == 0 {
        return Err(Refused::NotExecutable(cmd));
    }
    let insecure = !secure(&path);
    if insecure && security {
        return Err(Refused::Insecure(cmd));
    }
    let (uid, gid) = match user.or(default_user) {
        None => (0, 0),
        Some(u) => {
            let Some((uid, gid)) = lookup_user(&u.user) else { return Err(Refused::NoUser(u.user.clone())) };
            let gid = match &u.group {
                Some(g) => lookup_group(g).ok_or_else(|| Refused::NoUser(g.clone()))?,
                None => gid,
            };
            (uid, gid)
        }
    };
    let mut argv = argv.to_vec();
    argv[0] = path.to_string_lossy().into_owned();
    Ok((Runnable { argv, uid, gid }, insecure))
}

fn command(r: &Runnable, extra: &[String]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(&r.argv[0]);
    c.args(&r.argv[1..]).args(extra);
    c.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    if r.uid != 0 || r.gid != 0 {
        c.uid(r.uid).gid(r.gid);
    }
    // Its own process group, so a timeout can kill what it started too.
    c.process_group(0);
    c
}

/// Runs a notify script without waiting for it.
pub fn notify(r: &Runnable, extra: &[String]) {
    match command(r, extra).spawn() {
        Ok(mut child) => {
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        Err(e) => tracing::warn!("notify script {} failed to start: {e}", r.argv[0]),
    }
}

/// A notifier run while the daemon stops (keepalived's omega): waited for,
/// but killed after `limit` so that stopping stays bounded.
pub async fn notify_before_exit(r: &Runnable, limit: Duration) {
    match command(r, &[]).kill_on_drop(true).spawn() {
        Ok(mut child) => {
            if tokio::time::timeout(limit, child.wait()).await.is_err() {
                tracing::warn!("notify script {} still running at exit, killed", r.argv[0]);
            }
        }
        Err(e) => tracing::warn!("notify script {} failed to start: {e}", r.argv[0]),
    }
}

/// A tracked script's result changed: (script name, ok).
pub type ScriptResult = (String, bool);

/// Runs `s` every interval forever, sending its state whenever the
/// rise/fall counts change it, and logging as keepalived does.
pub fn spawn_runner(s: VrrpScript, r: Runnable, timeout: Duration, tx: mpsc::UnboundedSender<ScriptResult>) {
    tokio::spawn(async move {
        let mut state: Option<bool> = if s.init_fail { Some(false) } else { None };
        if state.is_some() {
            let _ = tx.send((s.name.clone(), false));
        }
        let (mut ok_run, mut fail_run) = (0u32, 0u32);
        let mut last_status: Option<i32> = None;
        loop {
            let ok = run_once(&s.name, &r, timeout, &mut last_status).await;
            if ok {
                ok_run += 1;
                fail_run = 0;
            } else {
                fail_run += 1;
                ok_run = 0;
            }
            let new = if ok && ok_run >= s.rise {
                Some(true)
            } else if !ok && fail_run >= s.fall {
                Some(false)
            } else {
                state
            };
            if new != state {
                if let Some(v) = new {
                    tracing::info!("VRRP_Script({}) {}", s.name, if v { "succeeded" } else { "failed" });
                    if tx.send((s.name.clone(), v)).is_err() {
                        return;
                    }
                }
                state = new;
            }
            tokio::time::sleep(s.interval).await;
        }
    });
}

async fn run_once(name: &str, r: &Runnable, timeout: Duration, last: &mut Option<i32>) -> bool {
    // A tracked script still running when rlvs stops is killed with it.
    let mut child = match command(r, &[]).kill_on_drop(true).spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("Script `{name}` failed to start: {e}");
            return false;
        }
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(st)) => {
            let code = st.code().unwrap_or(-1);
            if *last != Some(code) {
                tracing::info!("Script `{name}` now returning {code}");
                *last = Some(code);
            }
            st.success()
        }
        Ok(Err(e)) => {
            tracing::warn!("Script `{name}` wait failed: {e}");
            false
        }
        Err(_) => {
            if let Some(pid) = child.id() {
                // SAFETY: signalling the script's own process group.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
            let _ = child.wait().await;
            tracing::info!("VRRP_Script({name}) timed_out");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_writable_scripts_are_refused_under_script_security() {
        let dir = std::env::temp_dir().join(format!("rlvs-sec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("chk.sh");
        std::fs::write(&f, "#!/bin/sh\nexit 0\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o777)).unwrap();
        let argv = vec![f.to_string_lossy().into_owned()];
        assert!(matches!(prepare(&argv, None, None, true), Err(Refused::Insecure(_))));
        let (_, insecure) = prepare(&argv, None, None, false).unwrap();
        assert!(insecure, "without script security it runs, flagged");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        // temp_dir itself is sticky; ours is root's and not writable by others.
        assert!(prepare(&argv, None, None, true).is_ok());
        assert!(matches!(prepare(&["/nonexistent/x".into()], None, None, true), Err(Refused::NotFound(_))));
        // Reached through a symbolic link (as /bin/true is on Debian 12):
        // the link's 0777 is no reason to refuse, and the real path runs.
        let link = dir.join("true-link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let (r, insecure) = prepare(&[link.to_string_lossy().into_owned()], None, None, true).unwrap();
        assert!(!insecure);
        assert_eq!(r.argv[0], dir.join("true-link").to_string_lossy(), "the link's name is kept");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(prepare(&argv, None, None, true), Err(Refused::NotExecutable(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
