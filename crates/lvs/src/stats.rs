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
