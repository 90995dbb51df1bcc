//! Weighted round-robin (ip_vs_wrr.c).
//!
//! Makes passes over the destination list with a falling weight bar `cw`:
//! the first pass admits only destinations whose weight reaches the largest
//! weight, each later pass lowers the bar by the weights' greatest common
//! divisor, and after the lowest bar it starts again from the top. A
//! destination of weight w is therefore picked w/gcd times per cycle,
//! interleaved with the heavier ones. The bar's top is reduced by gcd-1 so the
//! last pass admits weight 1 (a weight changed below the gcd still gets
//! picked). Any add, delete or update of a destination sends the walk back to
//! the list head and recomputes gcd and maximum, keeping the current bar when
//! it is still valid — which is why the kernel's picks depend on the order in
//! which destinations were added, and so do ours.

use super::{SchedInput, Scheduler};
use crate::dest::DestList;
use crate::time::Time;

#[derive(Debug)]
pub struct WeightedRoundRobin {
    /// Current position; None is the list head.
    cl: Option<usize>,
    /// Current weight bar.
    cw: i32,
    /// Top of the bar: max weight - (gcd - 1).
    mw: i32,
    /// Step: gcd of the positive weights (1 if none).
    di: i32,
}

fn gcd(mut a: i32, mut b: i32) -> i32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn gcd_weight(dests: DestList<'_>) -> i32 {
    let g = dests.iter().map(|d| d.weight).filter(|&w| w > 0).fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
    if g > 0 {
        g
    } else {
        1
    }
}

fn max_weight(dests: DestList<'_>) -> i32 {
    dests.iter().map(|d| d.weight).fold(0, i32::max)
}

impl WeightedRoundRobin {
    pub fn new(dests: DestList<'_>) -> Self {
        let di = gcd_weight(dests);
        let mw = max_weight(dests) - (di - 1);
        WeightedRoundRobin { cl: None, cw: mw, mw, di }
    }

    fn dest_changed(&mut self, dests: DestList<'_>) {
        self.cl = None;
        self.di = gcd_weight(dests);
        self.mw = max_weight(dests) - (self.di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }
}

impl Scheduler for WeightedRoundRobin {
    fn name(&self) -> &'static str {
        "wrr"
    }

    fn dest_added(&mut self, dests: DestList<'_>, _index: usize) {
        self.dest_changed(dests);
    }

    fn dest_removed(&mut self, dests: DestList<'_>, _index: usize) {
        self.dest_changed(dests);
    }

    fn dest_updated(&mut self, dests: DestList<'_>, _index: usize) {
        self.dest_changed(dests);
    }

    fn schedule(&mut self, dests: DestList<'_>, _input: &SchedInput, _now: Time) -> Option<usize> {
        if self.mw == 0 {
            return None;
        }
        let n = dests.len();
        let last = self.cl;
        let mut pos = self.cl;
        let mut stop: Option<usize> = None;
        let (mut last_pass, mut restarted) = (false, false);
        loop {
            let from = pos.map_or(0, |p| p + 1);
            for i in from..n {
                let d = dests.get(i);
                if !d.overloaded && d.weight >= self.cw {
                    self.cl = Some(i);
                    return Some(i);
                }
                if stop == Some(i) {
                    self.cl = Some(i);
                    return None;
                }
            }
            pos = None;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                // A full pass at the lowest bar found nothing: everyone is
                // overloaded (or the bar started at the lowest level).
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                // The first lowest-bar walk covered only what follows `last`;
                // this one must cover the rest, up to `last` itself.
                stop = last;
            }
        }
    }
}
