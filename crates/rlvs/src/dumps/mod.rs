//! keepalived's dump files, which its exporters and operators read: on
//! DATA (SIGUSR1) the VRRP side writes keepalived.data and the checker
//! side keepalived_check.data; STATS (SIGUSR2) writes keepalived.stats,
//! STATS_CLEAR the same then zeroes the counters, JSON (SIGRTMIN+2)
//! keepalived.json. Where 2.2.7 writes them: $TMPDIR if it is absolute,
//! else /tmp, mode 0600. The formats are keepalived 2.2.7's, line for
//! line, for what rlvs runs (tests/golden/keepalived/signals holds the
//! real files captured in the lab for the seed's pair).

mod check;
mod global;
mod vrrp;

pub use check::check_data;
pub use global::global_defs;
pub use vrrp::{cmd_str, vrrp_data, vrrp_json};

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// keepalived's tmp_dir.
pub fn dir() -> PathBuf {
    match std::env::var("TMPDIR") {
        Ok(d) if d.starts_with('/') => PathBuf::from(d),
        _ => PathBuf::from("/tmp"),
    }
}

/// Writes a dump as keepalived does (fopen_safe: created 0600, replaced
/// whole), and logs where a failure leaves it.
pub fn write(name: &str, text: &str) {
    let path = dir().join(name);
    let _ = std::fs::remove_file(&path);
    let r = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = r {
        tracing::info!("Can't open dump file {name} ({}: {e})", e.raw_os_error().unwrap_or(0));
    }
}

/// keepalived.stats, from the instances' counters.
pub fn stats(status: &[crate::vrrp::Status]) -> String {
    let mut o = String::new();
    for i in status {
        let s = &i.stats;
        o += &format!("VRRP Instance: {}\n", i.name);
        o += &format!("  Advertisements:\n    Received: {}\n    Sent: {}\n", s.advert_rcvd, s.advert_sent);
        o += &format!("  Became master: {}\n  Released master: {}\n", s.become_master, s.release_master);
        o += &format!(
            "  Packet Errors:\n    Length: {}\n    TTL: {}\n    Invalid Type: {}\n    Advertisement Interval: {}\n    Address List: {}\n",
            s.packet_len_err, s.ip_ttl_err, s.invalid_type_rcvd, s.interval_mismatch, s.addr_list_err
        );
        o += &format!(
            "  Authentication Errors:\n    Invalid Type: {}\n    Type Mismatch: {}\n    Failure: {}\n",
            s.invalid_authtype, s.authtype_mismatch, s.auth_failure
        );
        o += &format!("  Priority Zero:\n    Received: {}\n    Sent: {}\n", s.pri_zero_rcvd, s.pri_zero_sent);
    }
    o
}

/// `Mon Nov 30 15:08:07.694227 2026`: ctime with microseconds, in local
/// time, after `secs.usecs`.
pub fn ctime_us(t: f64) -> String {
    let secs = t.floor() as libc::time_t;
    let us = ((t - t.floor()) * 1e6).round().min(999_999.0) as u64;
    // SAFETY: localtime_r fills the zeroed tm it is given from a valid time_t.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::localtime_r(&secs, &mut tm) };
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{}.{us:06} ({} {} {:2} {:02}:{:02}:{:02}.{us:06} {})",
        secs,
        DAYS[tm.tm_wday.clamp(0, 6) as usize],
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        tm.tm_year + 1900
    )
}

/// The host name keepalived falls back on for router_id and the HELO name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if r != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Data,
    Stats { clear: bool },
    Json,
}

/// Answers a dump signal with the parts this daemon runs.
pub async fn answer(
    ask: Ask,
    vrrp: Option<&crate::vrrp::Handle>,
    checkers: Option<&tokio::sync::mpsc::UnboundedSender<crate::check::Command>>,
) {
    use tokio::sync::oneshot;
    match ask {
        Ask::Data => {
            if let Some(v) = vrrp {
                let (tx, rx) = oneshot::channel();
                if v.commands.send(crate::vrrp::Command::Dump { json: false, reply: tx }).is_ok() {
                    if let Ok(text) = rx.await {
                        write("keepalived.data", &text);
                    }
                }
            }
            if let Some(c) = checkers {
                let (tx, rx) = oneshot::channel();
                if c.send(crate::check::Command::Dump(tx)).is_ok() {
                    if let Ok(text) = rx.await {
                        write("keepalived_check.data", &text);
                    }
                }
            }
        }
        Ask::Stats { clear } => {
            if let Some(v) = vrrp {
                let status = v.status.lock().map(|s| s.clone()).unwrap_or_default();
                write("keepalived.stats", &stats(&status));
                if clear {
                    let _ = v.commands.send(crate::vrrp::Command::ClearStats);
                }
            }
        }
        Ask::Json => {
            if let Some(v) = vrrp {
                let (tx, rx) = oneshot::channel();
                if v.commands.send(crate::vrrp::Command::Dump { json: true, reply: tx }).is_ok() {
                    if let Ok(text) = rx.await {
                        write("keepalived.json", &text);
                    }
                }
            }
        }
    }
}

/// The signals keepalived 2.2.7 answers with dumps (`--signum`).
pub fn signals() -> [(libc::c_int, Ask); 4] {
    [
        (libc::SIGUSR1, Ask::Data),
        (libc::SIGUSR2, Ask::Stats { clear: false }),
        (libc::SIGRTMAX() - 1, Ask::Stats { clear: true }),
        (libc::SIGRTMIN() + 2, Ask::Json),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_keepalived_prints_them() {
        // Local time: the hour depends on the zone, the shape does not.
        let t = ctime_us(1796051287.694227);
        assert!(t.starts_with("1796051287.694227 (") && t.ends_with(".694227 2026)"), "{t}");
        assert_eq!(t.len(), "1796051287.694227 (Mon Nov 30 15:08:07.694227 2026)".len(), "{t}");
        assert!(ctime_us(1796051287.0).starts_with("1796051287.000000 ("));
    }

    #[test]
    fn commands_are_quoted_word_by_word() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(vrrp::cmd_str(&w(&["/usr/bin/killall", "-0", "haproxy"])), "'/usr/bin/killall' '-0' 'haproxy'");
        assert_eq!(vrrp::cmd_str(&w(&["</dev/tcp/127.0.0.1/80"])), "</dev/tcp/127.0.0.1/80");
    }
}
