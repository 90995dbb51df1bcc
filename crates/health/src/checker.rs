//! One checker's schedule and verdicts, as keepalived 2.2.7's checkers
//! decide them after each probe ("epilog"): when to probe next (the delay
//! loop, or the delay before a retry), when retries are exhausted and the
//! checker goes down, and when a success brings it back. The checker kinds
//! differ in small ways keepalived has and rlvs keeps:
//!
//! - TCP_CHECK: a success, or a failure with the retries used up, waits
//!   delay_loop; another failure waits delay_before_retry. A server already
//!   down alternates between the two.
//! - UDP_CHECK and PING_CHECK: as TCP while up; once down every failure
//!   waits delay_before_retry.
//! - DNS_CHECK: retries only while up; down, it probes every delay_loop.
//! - SMTP_CHECK: counts retries past the limit; down, every delay_loop.
//! - MISC_CHECK: as DNS, the next run after delay_before_retry while
//!   retrying.
//! - HTTP_GET / SSL_GET: URL by URL; a URL failing more than `retry` times
//!   takes the checker down and is then retried every
//!   max(delay_before_retry, delay_loop); its first success clears it and
//!   the checker comes up after the next full pass of every URL, one
//!   delay_loop later.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Tcp,
    UdpPing,
    Dns,
    Smtp,
    Misc,
    Http { urls: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub delay_loop: Duration,
    pub retry: u32,
    pub delay_before_retry: Duration,
    pub warmup: Duration,
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail(String),
}

/// What the checker does after a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Probe again after this long.
    pub next_in: Duration,
    /// Some(up) when the checker changed state.
    pub became: Option<bool>,
    /// keepalived's log line for the change, if any.
    pub log: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Checker {
    pub style: Style,
    pub timing: Timing,
    /// `[10.1.1.244]:tcp:80`, as keepalived names the checked service.
    pub name: String,
    retry_it: u32,
    is_up: bool,
    has_run: bool,
    url_it: usize,
    failed_url: Option<usize>,
    fast_recovery: bool,
}

impl Checker {
    /// A checker starts up (its real server in the pool) unless `alpha`.
    pub fn new(style: Style, timing: Timing, name: String, alpha: bool, fast_recovery: bool) -> Checker {
        Checker {
            style,
            timing,
            name,
            retry_it: 0,
            is_up: !alpha,
            has_run: false,
            url_it: 0,
            failed_url: None,
            fast_recovery,
        }
    }

    pub fn is_up(&self) -> bool {
        self.is_up
    }

    /// Whether a probe has completed yet.
    pub fn has_run(&self) -> bool {
        self.has_run
    }

    /// Failures counted towards `retry` (keepalived's retry_it).
    pub fn retries_used(&self) -> u32 {
        self.retry_it
    }

    /// The HTTP URL that took the checker down, until it answers again.
    pub fn failed_url(&self) -> Option<usize> {
        self.failed_url
    }

    /// The URL the next HTTP probe asks for.
    pub fn url(&self) -> usize {
        self.url_it
    }

    fn change(&mut self, up: bool) -> Option<bool> {
        let first = !self.has_run;
        self.has_run = true;
        if self.is_up == up && !first {
            return None;
        }
        let changed = self.is_up != up;
        self.is_up = up;
        changed.then_some(up)
    }

    pub fn result(&mut self, outcome: &Outcome) -> Step {
        match self.style {
            Style::Http { urls } => self.http(outcome, urls),
            _ => self.simple(outcome),
        }
    }

    fn simple(&mut self, outcome: &Outcome) -> Step {
        let t = self.timing;
        let ok = *outcome == Outcome::Ok;
        let up_or_new = self.is_up || !self.has_run;
        let (kind_ok, kind_fail) = match self.style {
            Style::Tcp => (format!("TCP connection to {} success.", self.name), "TCP_CHECK"),
            Style::UdpPing => (format!("UDP/ICMP check of {} success.", self.name), "UDP/ICMP check"),
            Style::Dns => (format!("DNS_CHECK ({}) succeed on service.", self.name), "DNS_CHECK"),
            Style::Smtp => (format!("Remote SMTP server {} succeed on service.", self.name), "SMTP_CHECK"),
            Style::Misc => (format!("Misc check for {} succeeded.", self.name), "Misc check"),
            Style::Http { .. } => unreachable!(),
        };
        let down_msg = |retried: bool, retry: u32, name: &str| {
            if retried && retry > 0 {
                format!("{kind_fail} on service {name} failed after {retry} retries.")
            } else {
                format!("{kind_fail} on service {name} failed.")
            }
        };
        if ok {
            // keepalived logs a success on the first run and on recovery.
            let log = (!self.is_up || !self.has_run).then_some(kind_ok);
            self.retry_it = 0;
            let became = self.change(true);
            return Step { next_in: t.delay_loop, became, log };
        }
        match self.style {
            Style::Tcp => {
                if self.retry_it >= t.retry {
                    let retried = self.has_run;
                    self.retry_it = 0;
                    let became = if up_or_new { self.change(false) } else { None };
                    self.has_run = true;
                    let log = became.map(|_| down_msg(retried, t.retry, &self.name));
                    Step { next_in: t.delay_loop, became, log }
                } else {
                    self.retry_it += 1;
                    self.has_run = true;
                    Step { next_in: t.delay_before_retry, became: None, log: None }
                }
            }
            Style::UdpPing => {
                if up_or_new && self.retry_it >= t.retry {
                    let retried = self.has_run;
                    self.retry_it = 0;
                    let became = self.change(false);
                    let log = became.map(|_| down_msg(retried, t.retry, &self.name));
                    Step { next_in: t.delay_loop, became, log }
                } else {
                    self.retry_it += 1;
                    self.has_run = true;
                    Step { next_in: t.delay_before_retry, became: None, log: None }
                }
            }
            Style::Dns | Style::Misc => {
                if up_or_new && self.retry_it < t.retry {
                    self.retry_it += 1;
                    self.has_run = true;
                    return Step { next_in: t.delay_before_retry, became: None, log: None };
                }
                let retried = self.has_run;
                self.retry_it = 0;
                let became = if up_or_new { self.change(false) } else { None };
                self.has_run = true;
                let log = became.map(|_| down_msg(retried, t.retry, &self.name));
                Step { next_in: t.delay_loop, became, log }
            }
            Style::Smtp => {
                self.retry_it += 1;
                if self.retry_it <= t.retry {
                    return Step { next_in: t.delay_before_retry, became: None, log: None };
                }
                let retried = self.has_run;
                let became = if up_or_new { self.change(false) } else { None };
                self.has_run = true;
                let log = became.map(|_| down_msg(retried, t.retry, &self.name));
                Step { next_in: t.delay_loop, became, log }
            }
            Style::Http { .. } => unreachable!(),
        }
    }

    fn http(&mut self, outcome: &Outcome, urls: usize) -> Step {
        let t = self.timing;
        let urls = urls.max(1);
        let mut became = None;
        let mut log = None;
        let success = *outcome == Outcome::Ok;
        if success {
            // REGISTER_CHECKER_NEW: on to the next URL.
            self.url_it += 1;
            let pass_done = self.url_it >= urls;
            self.retry_it = 0;
            if let Some(_failed) = self.failed_url {
                // The failed URL answers again: start a full pass.
                self.failed_url = None;
                self.url_it = 0;
            } else if pass_done {
                if !self.is_up || !self.has_run {
                    log = Some(format!("Remote Web server {} succeed on service.", self.name));
                    became = self.change(true);
                    self.has_run = true;
                }
                self.url_it = 0;
            }
            if !self.has_run {
                self.retry_it = t.retry;
            }
            let next_in = if self.fast_recovery && !self.is_up && self.failed_url.is_none() {
                Duration::ZERO
            } else {
                t.delay_loop
            };
            return Step { next_in, became, log };
        }
        if self.is_up || !self.has_run {
            // REGISTER_CHECKER_RETRY
            self.has_run = true;
            self.retry_it += 1;
            if self.retry_it > t.retry {
                let msg = if t.retry > 0 {
                    format!("HTTP_CHECK on service {} failed after {} retries.", self.name, self.retry_it - 1)
                } else {
                    format!("HTTP_CHECK on service {} failed.", self.name)
                };
                became = self.change(false);
                log = Some(msg);
                self.failed_url = Some(self.url_it);
            }
        }
        // REGISTER_CHECKER_FAILED (already down): just reschedule.
        let next_in =
            if self.failed_url.is_some() { t.delay_before_retry.max(t.delay_loop) } else { t.delay_before_retry };
        Step { next_in, became, log }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn seed_http() -> Checker {
        // The seed's checker: delay_loop 1, connect_timeout 3,
        // delay_before_retry 3 from the real server, retry 1 (keepalived's
        // default: the seed's nb_get_retry is ignored at real_server level).
        let t = Timing { delay_loop: s(1), retry: 1, delay_before_retry: s(3), warmup: s(1) };
        Checker::new(Style::Http { urls: 1 }, t, "[10.1.1.244]:tcp:80".into(), false, false)
    }

    #[test]
    fn seed_http_get_goes_down_after_one_retry_and_comes_back_after_two_passes() {
        let mut c = seed_http();
        assert_eq!(c.result(&Outcome::Ok).next_in, s(1));
        assert!(c.is_up());
        // web1 stops: first failure retries after delay_before_retry.
        let st = c.result(&Outcome::Fail("refused".into()));
        assert_eq!((st.next_in, st.became), (s(3), None));
        // Second failure: down, and from now on every max(3, 1) = 3 s.
        let st = c.result(&Outcome::Fail("refused".into()));
        assert_eq!(st.became, Some(false));
        assert_eq!(st.log.as_deref(), Some("HTTP_CHECK on service [10.1.1.244]:tcp:80 failed after 1 retries."));
        assert_eq!(st.next_in, s(3));
        assert_eq!(c.result(&Outcome::Fail("refused".into())).next_in, s(3));
        // web1 returns: the first success clears the failed URL (no state
        // change yet), the next full pass one delay_loop later brings it up.
        let st = c.result(&Outcome::Ok);
        assert_eq!((st.next_in, st.became), (s(1), None));
        let st = c.result(&Outcome::Ok);
        assert_eq!(st.became, Some(true));
        assert_eq!(st.log.as_deref(), Some("Remote Web server [10.1.1.244]:tcp:80 succeed on service."));
    }

    #[test]
    fn a_server_down_at_start_is_declared_after_its_retries() {
        let mut c = seed_http();
        assert_eq!(c.result(&Outcome::Fail("x".into())).became, None);
        assert_eq!(c.result(&Outcome::Fail("x".into())).became, Some(false));
    }

    #[test]
    fn tcp_check_alternates_retry_and_loop_when_down() {
        let t = Timing { delay_loop: s(6), retry: 1, delay_before_retry: s(2), warmup: s(6) };
        let mut c = Checker::new(Style::Tcp, t, "[10.1.1.244]:tcp:80".into(), false, false);
        c.result(&Outcome::Ok);
        assert_eq!(c.result(&Outcome::Fail("x".into())).next_in, s(2));
        let st = c.result(&Outcome::Fail("x".into()));
        assert_eq!((st.next_in, st.became), (s(6), Some(false)));
        assert_eq!(st.log.as_deref(), Some("TCP_CHECK on service [10.1.1.244]:tcp:80 failed after 1 retries."));
        assert_eq!(c.result(&Outcome::Fail("x".into())).next_in, s(2));
        assert_eq!(c.result(&Outcome::Fail("x".into())).next_in, s(6));
        let st = c.result(&Outcome::Ok);
        assert_eq!((st.became, st.next_in), (Some(true), s(6)));
        assert_eq!(st.log.as_deref(), Some("TCP connection to [10.1.1.244]:tcp:80 success."));
    }

    #[test]
    fn udp_keeps_retrying_a_down_server_quickly() {
        let t = Timing { delay_loop: s(6), retry: 0, delay_before_retry: s(1), warmup: s(6) };
        let mut c = Checker::new(Style::UdpPing, t, "x".into(), false, false);
        assert_eq!(c.result(&Outcome::Fail("x".into())).became, Some(false));
        assert_eq!(c.result(&Outcome::Fail("x".into())).next_in, s(1));
        assert_eq!(c.result(&Outcome::Fail("x".into())).next_in, s(1));
    }

    #[test]
    fn alpha_starts_down_and_needs_a_success() {
        let t = Timing { delay_loop: s(1), retry: 0, delay_before_retry: s(1), warmup: s(1) };
        let mut c = Checker::new(Style::Tcp, t, "x".into(), true, false);
        assert!(!c.is_up());
        assert_eq!(c.result(&Outcome::Ok).became, Some(true));
    }

    #[test]
    fn several_urls_are_checked_in_turn() {
        let t = Timing { delay_loop: s(2), retry: 0, delay_before_retry: s(1), warmup: s(1) };
        let mut c = Checker::new(Style::Http { urls: 2 }, t, "x".into(), false, false);
        assert_eq!(c.url(), 0);
        c.result(&Outcome::Ok);
        assert_eq!(c.url(), 1);
        c.result(&Outcome::Ok);
        assert_eq!(c.url(), 0);
        // The second URL fails: down at once with retry 0.
        c.result(&Outcome::Ok);
        assert_eq!(c.result(&Outcome::Fail("x".into())).became, Some(false));
    }
}
