//! Where the daemon's lines go, and under which name.
//!
//! keepalived runs three processes and logs each under its own syslog
//! identity (`Keepalived`, `Keepalived_vrrp`, `Keepalived_healthcheckers`);
//! operators' alerts match on those names. rlvs is one process, so each
//! line takes the identity of the part of rlvs that wrote it, and goes
//! straight to /dev/log (journald reads the same socket) with the
//! facility `-S` chose. The console copy (`-l`) keeps keepalived's
//! timestamp prefix.

use anyhow::{Context, Result};
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// syslog facilities keepalived accepts for `-S`: `0`..`7` and
/// `local0`..`local7` are LOG_LOCALn, then `daemon` and `user`.
pub fn parse_facility(s: &str) -> Option<u8> {
    const LOCAL0: u8 = 16;
    let digit = |d: &str| d.parse::<u8>().ok().filter(|n| *n <= 7 && d.len() == 1);
    if let Some(n) = digit(s).or_else(|| s.strip_prefix("local").and_then(digit)) {
        return Some(LOCAL0 + n);
    }
    match s {
        "daemon" => Some(3),
        "user" => Some(1),
        _ => None,
    }
}

pub struct Options<'a> {
    /// Level filter, as RUST_LOG.
    pub filter: &'a str,
    /// Lines on stderr.
    pub console: bool,
    /// Console lines as keepalived writes them (time prefix, no level).
    pub keepalived_style: bool,
    /// syslog facility, or None for no syslog.
    pub syslog: Option<u8>,
}

pub fn init(o: Options) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(o.filter).context("--log")?;
    let console = o.console.then(|| {
        let b = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        if o.keepalived_style {
            b.with_timer(KeepalivedTime).with_level(false).with_target(false).with_ansi(false).boxed()
        } else {
            b.boxed()
        }
    });
    let syslog = o.syslog.map(SyslogLayer::new);
    // A second init (tests, or a face that already set one) keeps the first.
    let _ = tracing_subscriber::registry().with(filter).with(console).with(syslog).try_init();
    Ok(())
}

/// The keepalived process a line belongs to, by the module that wrote it.
pub fn identity(target: &str) -> &'static str {
    let is = |p: &str| target == p || target.starts_with(&format!("{p}::"));
    if is("rlvs::vrrp") || is("rlvs::syncd") || is("rlvs_vrrp") || is("rlvs_dataplane::sync") {
        "Keepalived_vrrp"
    } else if is("rlvs::check") || is("rlvs_health") {
        "Keepalived_healthcheckers"
    } else {
        "Keepalived"
    }
}

/// keepalived's log timestamps: `Sat Nov 28 01:32:28 2026:`.
struct KeepalivedTime;

impl tracing_subscriber::fmt::time::FormatTime for KeepalivedTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        w.write_str(&strftime(c"%a %b %e %H:%M:%S %Y:"))
    }
}

fn strftime(format: &std::ffi::CStr) -> String {
    // SAFETY: time, localtime_r and strftime write only into our own
    // zeroed struct and buffer, whose length strftime is given.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        let mut buf = [0u8; 64];
        let n = libc::strftime(buf.as_mut_ptr() as *mut libc::c_char, buf.len(), format.as_ptr(), &tm);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

struct SyslogLayer {
    facility: u8,
    pid: u32,
    sock: Mutex<Option<UnixDatagram>>,
}

impl SyslogLayer {
    fn new(facility: u8) -> Self {
        SyslogLayer { facility, pid: std::process::id(), sock: Mutex::new(None) }
    }

    /// Sends without blocking: a stuck journald must cost lines, never
    /// stall VRRP (and with it the watchdog's pings).
    fn send(&self, line: &[u8]) {
        let Ok(mut g) = self.sock.lock() else { return };
        for _ in 0..2 {
            if g.is_none() {
                *g = UnixDatagram::unbound()
                    .and_then(|s| {
                        s.connect("/dev/log")?;
                        s.set_nonblocking(true)?;
                        Ok(s)
                    })
                    .ok();
            }
            match g.as_ref().map(|s| s.send(line)) {
                Some(Ok(_)) => return,
                // Full: drop this line. Gone (journald restarted): reconnect once.
                Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Some(Err(_)) => *g = None,
                None => return,
            }
        }
    }
}

impl<S: Subscriber> Layer<S> for SyslogLayer {
    fn on_event(&self, event: &Event<'_>, _: LayerContext<'_, S>) {
        let severity = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        let mut text = Text::default();
        event.record(&mut text);
        // A daemon's own pid (after the fork), not the one at start.
        let pid = if self.pid == std::process::id() { self.pid } else { std::process::id() };
        let line = format!(
            "<{}>{} {}[{}]: {}",
            self.facility as u32 * 8 + severity,
            strftime(c"%b %e %H:%M:%S"),
            identity(event.metadata().target()),
            pid,
            text.0
        );
        self.send(line.as_bytes());
    }
}

/// The message, then any other fields as `name=value`, as the console
/// formatter writes them.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            if !rest.is_empty() {
                self.0.push(' ');
                self.0.push_str(&rest);
            }
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities_as_keepalived_reads_them() {
        assert_eq!(parse_facility("0"), Some(16));
        assert_eq!(parse_facility("local7"), Some(23));
        assert_eq!(parse_facility("daemon"), Some(3));
        assert_eq!(parse_facility("user"), Some(1));
        for bad in ["8", "local8", "x", "", "07", "mail"] {
            assert_eq!(parse_facility(bad), None, "{bad}");
        }
    }

    #[test]
    fn identities_follow_keepalived_processes() {
        assert_eq!(identity("rlvs::vrrp"), "Keepalived_vrrp");
        assert_eq!(identity("rlvs::vrrp::sock"), "Keepalived_vrrp");
        assert_eq!(identity("rlvs::check::setup"), "Keepalived_healthcheckers");
        assert_eq!(identity("rlvs::keepalived"), "Keepalived");
        assert_eq!(identity("rlvs::vrrpx"), "Keepalived");
    }

    /// A line through a real datagram socket, as journald would get it.
    #[test]
    fn syslog_lines_carry_identity_and_priority() {
        let dir = std::env::temp_dir().join(format!("rlvs-syslog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let rx = UnixDatagram::bind(&path).unwrap();
        let layer = SyslogLayer::new(3);
        let s = UnixDatagram::unbound().unwrap();
        s.connect(&path).unwrap();
        s.set_nonblocking(true).unwrap();
        *layer.sock.lock().unwrap() = Some(s);
        let sub = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(sub, || {
            tracing::info!(target: "rlvs::vrrp", "(VI_1) Entering MASTER STATE");
            tracing::warn!(target: "rlvs::check", rs = "10.0.0.1", "TCP connection failed");
        });
        let mut buf = [0u8; 512];
        let n = rx.recv(&mut buf).unwrap();
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(line.starts_with("<30>"), "{line}");
        assert!(
            line.ends_with(&format!("Keepalived_vrrp[{}]: (VI_1) Entering MASTER STATE", std::process::id())),
            "{line}"
        );
        let n = rx.recv(&mut buf).unwrap();
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(line.starts_with("<28>"), "{line}");
        assert!(line.contains("Keepalived_healthcheckers["), "{line}");
        assert!(line.ends_with("TCP connection failed rs=\"10.0.0.1\""), "{line}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
