//! Traffic counters as IPVS keeps them per service, per destination and in
//! total (`ipvsadm -L --stats`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

impl Counters {
    pub fn count_in(&mut self, bytes: usize) {
        self.inpkts += 1;
        self.inbytes += bytes as u64;
    }

    pub fn count_out(&mut self, bytes: usize) {
        self.outpkts += 1;
        self.outbytes += bytes as u64;
    }
}

/// Per-second rates from the estimator (`ipvsadm -L --rate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// The kernel's rate estimator (ip_vs_est.c): every 2 seconds the counters'
/// growth since the last tick updates exponentially weighted averages
/// (weight 1/4), kept in fixed point — packet and connection rates scaled
/// by 2^10, byte rates by 2^5 — and rounded when read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimator {
    last: Counters,
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
}

/// Estimator ticks are this far apart.
pub const ESTIMATOR_PERIOD: crate::time::Span = crate::time::Span(2000);

impl Estimator {
    /// One 2-second tick with the counters as they are now.
    pub fn tick(&mut self, now: &Counters) {
        fn avg(avg: &mut i64, new: u64, last: u64, shift: u32) {
            let rate = (new.wrapping_sub(last) << shift) as i64;
            *avg += (rate - *avg) >> 2;
        }
        avg(&mut self.cps, now.conns, self.last.conns, 9);
        avg(&mut self.inpps, now.inpkts, self.last.inpkts, 9);
        avg(&mut self.outpps, now.outpkts, self.last.outpkts, 9);
        avg(&mut self.inbps, now.inbytes, self.last.inbytes, 4);
        avg(&mut self.outbps, now.outbytes, self.last.outbytes, 4);
        self.last = *now;
    }

    /// ip_vs_read_estimator: per-second rates, rounded.
    pub fn read(&self) -> Rates {
        let pps = |v: i64| ((v + 0x1ff) >> 10).max(0) as u64;
        let bps = |v: i64| ((v + 0xf) >> 5).max(0) as u64;
        Rates {
            cps: pps(self.cps),
            inpps: pps(self.inpps),
            outpps: pps(self.outpps),
            inbps: bps(self.inbps),
            outbps: bps(self.outbps),
        }
    }

    /// Zeroing the counters restarts the estimate from the new values.
    /// The counters as the last tick folded them: what the kernel lists
    /// (ip_vs_copy_stats reads kstats, which only its estimator timer
    /// updates, every 2 s), so a connection shows in `-L --stats` at the
    /// first tick after it.
    pub fn folded(&self) -> Counters {
        self.last
    }

    pub fn zero(&mut self, now: &Counters) {
        *self = Estimator { last: *now, ..Default::default() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rate_converges_with_quarter_steps() {
        let mut e = Estimator::default();
        let mut c = Counters::default();
        // 100 connections and 1000 packets of 100 bytes per second.
        let mut seen = Vec::new();
        for _ in 0..80 {
            c.conns += 200;
            c.inpkts += 2000;
            c.inbytes += 200_000;
            e.tick(&c);
            seen.push(e.read().cps);
        }
        assert_eq!(&seen[..4], &[25, 44, 58, 68], "a quarter of the gap closes each tick");
        let r = e.read();
        assert_eq!((r.cps, r.inpps, r.inbps), (100, 1000, 100_000));
        // Traffic stops: the estimate decays by a quarter per tick.
        e.tick(&c);
        assert_eq!(e.read().cps, 75);
        e.zero(&Counters::default());
        assert_eq!(e.read(), Rates::default());
    }
}
