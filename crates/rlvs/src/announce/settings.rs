//! rlvs's scale-out settings: a file of its own, because keepalived
//! refuses keywords it does not know even in included files, and
//! keepalived.conf must stay a file keepalived accepts.
//!
//! One setting per line, `#` or `!` starts a comment:
//!
//! ```text
//! announce_device rlvs-bgp     # VIPs announced; draining ones on rlvs-bgp-gs
//! quorum all                   # all | any of a VIP's virtual servers
//! drain_time 10                # seconds of GRACEFUL_SHUTDOWN before withdrawal
//! sloppy_tcp 192.0.2.10:80     # or `all`; repeatable
//! vip 192.0.2.10               # announce only these (default: every VIP)
//! ```

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

/// How many of a VIP's virtual servers (one per port and protocol) must
/// have quorum for the VIP to be announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Quorum {
    /// Every one: a director that cannot serve one port of a VIP must not
    /// attract the flows ECMP would hash to it for that port.
    All,
    /// At least one: for VIPs whose ports are independent services.
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sloppy {
    All,
    Services(Vec<(IpAddr, u16)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The device announced VIPs live on; `<device>-gs` holds draining ones.
    pub device: String,
    pub quorum: Quorum,
    pub drain_time: Duration,
    pub sloppy: Sloppy,
    /// None: every address virtual server's VIP.
    pub vips: Option<Vec<IpAddr>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            device: "rlvs-bgp".into(),
            quorum: Quorum::All,
            drain_time: Duration::from_secs(10),
            sloppy: Sloppy::Services(Vec::new()),
            vips: None,
        }
    }
}

impl Settings {
    /// The device of draining VIPs, which the BGP daemon's export filter
    /// tags with GRACEFUL_SHUTDOWN.
    pub fn drain_device(&self) -> String {
        format!("{}-gs", self.device)
    }

    pub fn load(path: &Path) -> Result<Settings, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        parse(&text).map_err(|(line, col, why)| format!("{}:{line}:{col}: {why}", path.display()))
    }
}

type ParseError = (usize, usize, String);

/// Parses the settings; an error is (line, column, why), both from 1.
pub fn parse(text: &str) -> Result<Settings, ParseError> {
    let mut s = Settings::default();
    let mut sloppy_all = false;
    let mut sloppy = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split(['#', '!']).next().unwrap_or("");
        let mut words = Vec::new();
        let mut rest = line;
        while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
            let tail = &rest[start..];
            let len = tail.find(char::is_whitespace).unwrap_or(tail.len());
            let col = line.len() - rest.len() + start + 1;
            words.push((col, &tail[..len]));
            rest = &tail[len..];
        }
        let Some(&(kcol, keyword)) = words.first() else { continue };
        let at = |col: usize, why: String| (n + 1, col, why);
        let args = &words[1..];
        let one = || match args {
            [a] => Ok(*a),
            [] => Err(at(kcol + keyword.len(), format!("{keyword} needs a value"))),
            [_, (c, w), ..] => Err(at(*c, format!("unexpected '{w}': {keyword} takes one value"))),
        };
        match keyword {
            "announce_device" => {
                let (c, d) = one()?;
                // Linux names are at most 15 bytes, and `-gs` is added.
                if d.len() > 12 || d.contains('/') {
                    return Err(at(c, format!("'{d}' is not a device name of at most 12 characters")));
                }
                s.device = d.to_string();
            }
            "quorum" => {
                s.quorum = match one()? {
                    (_, "all") => Quorum::All,
                    (_, "any") => Quorum::Any,
                    (c, w) => return Err(at(c, format!("quorum is all or any, not '{w}'"))),
                }
            }
            "drain_time" => {
                let (c, w) = one()?;
                let secs: f64 = w
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite() && *v >= 0.0 && *v <= 3600.0)
                    .ok_or_else(|| at(c, format!("drain_time is a number of seconds from 0 to 3600, not '{w}'")))?;
                s.drain_time = Duration::from_secs_f64(secs);
            }
            "sloppy_tcp" => {
                if args.is_empty() {
                    return Err(at(kcol + keyword.len(), "sloppy_tcp needs `all` or VIP:PORT...".into()));
                }
                for &(c, w) in args {
                    if w == "all" {
                        sloppy_all = true;
                        continue;
                    }
                    let sa: std::net::SocketAddr =
                        w.parse().map_err(|_| at(c, format!("'{w}' is not VIP:PORT ([VIP]:PORT for IPv6)")))?;
                    sloppy.push((sa.ip(), sa.port()));
                }
            }
            "vip" => {
                if args.is_empty() {
                    return Err(at(kcol + keyword.len(), "vip needs an address".into()));
                }
                for &(c, w) in args {
                    let ip: IpAddr = w.parse().map_err(|_| at(c, format!("'{w}' is not an IP address")))?;
                    s.vips.get_or_insert_with(Vec::new).push(ip);
                }
            }
            other => return Err(at(kcol, format!("unknown keyword '{other}'"))),
        }
    }
    s.sloppy = if sloppy_all { Sloppy::All } else { Sloppy::Services(sloppy) };
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting() {
        let s = parse(
            "# scale-out\nannounce_device bgp0\nquorum any ! comment\ndrain_time 2.5\n\
             sloppy_tcp 10.0.0.1:80 [2001:db8::1]:443\nvip 10.0.0.1 2001:db8::1\n",
        )
        .unwrap();
        assert_eq!(s.device, "bgp0");
        assert_eq!(s.drain_device(), "bgp0-gs");
        assert_eq!(s.quorum, Quorum::Any);
        assert_eq!(s.drain_time, Duration::from_millis(2500));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(s.sloppy, Sloppy::Services(vec![("10.0.0.1".parse().unwrap(), 80), (v6, 443)]));
        assert_eq!(s.vips, Some(vec!["10.0.0.1".parse().unwrap(), v6]));
        assert_eq!(parse("sloppy_tcp all").unwrap().sloppy, Sloppy::All);
        assert_eq!(parse("").unwrap(), Settings::default());
    }

    #[test]
    fn errors_name_line_and_column() {
        assert_eq!(parse("\n  quorum most").unwrap_err(), (2, 10, "quorum is all or any, not 'most'".into()));
        assert_eq!(parse("quorum").unwrap_err().0, 1);
        assert_eq!(parse("drain_time -1").unwrap_err().1, 12);
        assert_eq!(parse("vip 10.0.0.1 nope").unwrap_err(), (1, 14, "'nope' is not an IP address".into()));
        assert_eq!(parse("sloppy_tcp 10.0.0.1").unwrap_err().1, 12);
        assert_eq!(parse(" virtual_server 1").unwrap_err(), (1, 2, "unknown keyword 'virtual_server'".into()));
        assert_eq!(parse("announce_device a-very-long-name").unwrap_err().1, 17);
        assert!(parse("drain_time 1 2").unwrap_err().2.contains("one value"));
    }
}
