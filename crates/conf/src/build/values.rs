//! Argument parsing with keepalived's messages for bad values.

use super::Builder;
use crate::diag::Diag;
use crate::model::{Scope, ScriptUser};
use crate::tree::Node;
use std::net::IpAddr;
use std::time::Duration;

impl Builder {
    /// The `i`th argument, or an error naming what is missing (keepalived
    /// stops at a missing parameter; rlvs drops the line and goes on).
    pub(super) fn need<'n>(&mut self, node: &'n Node, i: usize) -> Option<&'n str> {
        let arg = node.arg(i);
        if arg.is_none() {
            let kw = node.keyword();
            self.diags.push(Diag::error(
                node.pos(),
                format!("*** Configuration line starting `{kw}` is missing a parameter after keyword `{kw}` at word position {}", i + 2),
            ));
        }
        arg
    }

    /// The position of argument `i`, or of the keyword.
    pub(super) fn arg_pos<'n>(&self, node: &'n Node, i: usize) -> &'n crate::Pos {
        node.args().get(i).map_or(node.pos(), |w| &w.pos)
    }

    pub(super) fn unsigned(&mut self, node: &Node, i: usize, min: u64, max: u64) -> Option<u64> {
        let s = self.need(node, i)?;
        let pos = self.arg_pos(node, i).clone();
        let t = s.trim_start();
        let msg = if t.starts_with('-') {
            format!("negative number '{s}'")
        } else {
            match t.parse::<u64>() {
                Ok(v) if v >= min && v <= max => return Some(v),
                // keepalived reads into an unsigned int first.
                Ok(v) if v > u64::from(u32::MAX) && max <= u64::from(u32::MAX) => {
                    format!("number '{s}' outside unsigned integer range")
                }
                Ok(_) => format!("number '{s}' outside range [{min}, {max}]"),
                Err(e) if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) => {
                    format!("number '{s}' outside unsigned integer range")
                }
                Err(_) => format!("invalid number '{s}'"),
            }
        };
        self.diags.push(Diag::warning(&pos, msg));
        None
    }

    pub(super) fn int(&mut self, node: &Node, i: usize, min: i64, max: i64) -> Option<i64> {
        let s = self.need(node, i)?;
        let pos = self.arg_pos(node, i).clone();
        let msg = match s.trim_start().parse::<i64>() {
            Ok(v) if v >= min && v <= max => return Some(v),
            Ok(v) if v < i64::from(i32::MIN) || v > i64::from(i32::MAX) => {
                format!("number '{s}' outside integer range")
            }
            Ok(_) => format!("number '{s}' outside range [{min}, {max}]"),
            Err(_) => format!("invalid number '{s}'"),
        };
        self.diags.push(Diag::warning(&pos, msg));
        None
    }

    /// A time in seconds with up to 6 decimal places (keepalived's timers).
    pub(super) fn timer(&mut self, node: &Node, i: usize, min: Duration, max: Duration) -> Option<Duration> {
        let s = self.need(node, i)?;
        let pos = self.arg_pos(node, i).clone();
        match parse_decimal_us(s) {
            Ok(us) => {
                let d = Duration::from_micros(us);
                if d < min || d > max {
                    let f = |d: Duration| format!("{}.{:06}", d.as_secs(), d.subsec_micros());
                    self.diags
                        .push(Diag::warning(&pos, format!("number '{s}' outside range [{}, {}]", f(min), f(max))));
                    return None;
                }
                Some(d)
            }
            Err(msg) => {
                self.diags.push(Diag::warning(&pos, msg));
                None
            }
        }
    }

    pub(super) fn ip(&mut self, node: &Node, i: usize, what: &str) -> Option<IpAddr> {
        let s = self.need(node, i)?;
        match parse_ip(s) {
            Some(a) => Some(a),
            None => {
                let pos = self.arg_pos(node, i).clone();
                self.diags.push(Diag::warning(&pos, format!("invalid {what} address '{s}'")));
                None
            }
        }
    }

    pub(super) fn port(&mut self, node: &Node, i: usize) -> Option<u16> {
        self.unsigned(node, i, 0, 65535).map(|p| p as u16)
    }

    /// A script line: `keyword "command args" [user [group]]`.
    pub(super) fn script(&mut self, node: &Node) -> Option<(Vec<String>, Option<ScriptUser>)> {
        let cmd = self.need(node, 0)?;
        let argv = split_command(cmd);
        if argv.is_empty() {
            self.diags.push(Diag::warning(node.pos(), format!("Unable to parse script '{cmd}' - ignoring")));
            return None;
        }
        let user = node.arg(1).map(|u| ScriptUser { user: u.to_string(), group: node.arg(2).map(str::to_string) });
        Some((argv, user))
    }

    /// Keywords that take a yes/no/true/false/on/off argument or none; a
    /// value that is none of those leaves the setting as it was.
    pub(super) fn flag(&mut self, node: &Node, current: bool) -> bool {
        match node.arg(0) {
            None => true,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "on" | "yes" => true,
                "false" | "off" | "no" => false,
                _ => {
                    let pos = self.arg_pos(node, 0).clone();
                    self.diags.push(Diag::warning(&pos, flag_message(node.keyword(), v)));
                    current
                }
            },
        }
    }
}

/// Decimal seconds to microseconds: "1", "0.5", "3.000001".
pub fn parse_decimal_us(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.starts_with('-') {
        return Err(format!("negative number '{s}'"));
    }
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if frac.len() > 6 {
        return Err(format!("number '{s}' has too many decimal places"));
    }
    let ok = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !ok(int) || !ok(frac) {
        return Err(format!("invalid number '{s}'"));
    }
    let whole: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| format!("number '{s}' outside unsigned decimal range"))?
    };
    let frac_us: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<6}").parse().unwrap() };
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(frac_us))
        .ok_or_else(|| format!("number '{s}' outside unsigned decimal range"))
}

pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(s);
    s.parse().ok()
}

/// `ADDR[/PREFIX]`; the prefix defaults to the full length.
pub fn parse_prefixed(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr = parse_ip(a)?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        Some(p) => p.parse::<u8>().ok().filter(|&p| p <= max)?,
        None => max,
    };
    Some((addr, prefix))
}

pub fn parse_scope(s: &str) -> Option<Scope> {
    Some(match s {
        "global" | "universe" => Scope::Global,
        "site" => Scope::Site,
        "link" => Scope::Link,
        "host" => Scope::Host,
        "nowhere" => Scope::Nowhere,
        n => Scope::Other(n.parse().ok()?),
    })
}

/// A command line as keepalived splits scripts: whitespace-separated words,
/// single and double quotes group, backslash escapes the next character.
pub fn split_command(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(match n {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                }
                in_word = true;
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// keepalived's words for a yes/no keyword given something else.
fn flag_message(kw: &str, v: &str) -> String {
    match kw {
        "inhibit_on_failure" | "alpha" | "enable_sni" | "fast_recovery" | "log_all_failures" => {
            format!("Invalid {kw} parameter {v}")
        }
        "checker_log_all_failures" | "vrrp_min_garp" | "vrrp_lower_prio_no_advert" | "vrrp_higher_prio_send_advert" => {
            format!("Invalid value for {kw} specified")
        }
        "vrrp_notify_priority_changes" | "rs_init_notifies" => format!("Invalid value '{v}' for global {kw} specified"),
        _ => format!("invalid value '{v}' for {kw}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal_us("1"), Ok(1_000_000));
        assert_eq!(parse_decimal_us("0.01"), Ok(10_000));
        assert_eq!(parse_decimal_us("3.000001"), Ok(3_000_001));
        assert!(parse_decimal_us("1.0000001").unwrap_err().contains("too many decimal places"));
        assert!(parse_decimal_us("-1").unwrap_err().contains("negative"));
        assert!(parse_decimal_us("x").unwrap_err().contains("invalid number 'x'"));
        assert!(parse_decimal_us(".").is_err());
    }

    #[test]
    fn commands_split_like_a_shell() {
        assert_eq!(split_command("/bin/chk 'a b' \"c d\" e\\ f"), ["/bin/chk", "a b", "c d", "e f"]);
        assert_eq!(split_command("  "), Vec::<String>::new());
    }

    #[test]
    fn prefixes() {
        assert_eq!(parse_prefixed("10.0.0.100/24"), Some(("10.0.0.100".parse().unwrap(), 24)));
        assert_eq!(parse_prefixed("fe80::1"), Some(("fe80::1".parse().unwrap(), 128)));
        assert_eq!(parse_prefixed("10.0.0.1/33"), None);
    }
}
