//! Time as the core sees it: milliseconds on a monotonic clock whose epoch the
//! caller chooses. The I/O shell reads the clock; tests simulate it.

use serde::{Deserialize, Serialize};
use std::ops::{Add, Sub};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Time(pub u64);

impl Time {
    pub const ZERO: Time = Time(0);

    pub fn from_secs(s: u64) -> Time {
        Time(s * 1000)
    }

    pub fn from_millis(ms: u64) -> Time {
        Time(ms)
    }

    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds from `self` until `later`, rounded down, zero if past.
    pub fn secs_until(self, later: Time) -> u64 {
        later.0.saturating_sub(self.0) / 1000
    }
}

/// A span of time in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Span(pub u64);

impl Span {
    pub fn from_secs(s: u64) -> Span {
        Span(s * 1000)
    }
    pub fn as_secs(self) -> u64 {
        self.0 / 1000
    }
}

impl Add<Span> for Time {
    type Output = Time;
    fn add(self, s: Span) -> Time {
        Time(self.0.saturating_add(s.0))
    }
}

impl Sub<Time> for Time {
    type Output = Span;
    fn sub(self, t: Time) -> Span {
        Span(self.0.saturating_sub(t.0))
    }
}
