//! Which VIPs this director announces, and how: the sans-IO core of the
//! scale-out side. Time is an argument (a monotonic offset); the shell
//! moves addresses between devices as the changes say.

use super::settings::Quorum;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// Where a VIP's address lives, and so what the BGP daemon does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Place {
    /// On no device: not announced.
    Withdrawn,
    /// On the announce device: announced at full preference.
    Announced,
    /// On the drain device: announced with GRACEFUL_SHUTDOWN, which the
    /// router turns into the lowest preference, until the drain time ends.
    Draining,
}

/// One VIP's inputs: the quorum state of each of its virtual servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipInput {
    pub vip: IpAddr,
    pub quorum: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub vip: IpAddr,
    pub from: Place,
    pub to: Place,
}

pub struct Plan {
    quorum: Quorum,
    drain_time: Duration,
    /// When an operator's drain started; None when not draining.
    drain_since: Option<Duration>,
    placed: BTreeMap<IpAddr, Place>,
}

impl Plan {
    pub fn new(quorum: Quorum, drain_time: Duration) -> Plan {
        Plan { quorum, drain_time, drain_since: None, placed: BTreeMap::new() }
    }

    pub fn drain(&mut self, now: Duration) {
        self.drain_since.get_or_insert(now);
    }

    pub fn resume(&mut self) {
        self.drain_since = None;
    }

    pub fn draining(&self) -> bool {
        self.drain_since.is_some()
    }

    /// Every VIP known and where it is.
    pub fn placed(&self) -> impl Iterator<Item = (IpAddr, Place)> + '_ {
        self.placed.iter().map(|(v, p)| (*v, *p))
    }

    fn has_quorum(&self, states: &[bool]) -> bool {
        match self.quorum {
            Quorum::All => !states.is_empty() && states.iter().all(|q| *q),
            Quorum::Any => states.iter().any(|q| *q),
        }
    }

    /// Where each VIP belongs now, given its virtual servers' quorum and
    /// whether the data plane answers (`healthy`); returns what moved. A
    /// VIP absent from `vips` is withdrawn and forgotten.
    pub fn step(&mut self, vips: &[VipInput], healthy: bool, now: Duration) -> Vec<Change> {
        let drained = self.drain_since.is_some_and(|t| now.saturating_sub(t) >= self.drain_time);
        let mut wanted = BTreeMap::new();
        for v in vips {
            let place = if !healthy || !self.has_quorum(&v.quorum) || drained {
                Place::Withdrawn
            } else if self.drain_since.is_some() {
                Place::Draining
            } else {
                Place::Announced
            };
            // A VIP listed twice (two inputs): the better place wins.
            let slot = wanted.entry(v.vip).or_insert(place);
            *slot = (*slot).max(place);
        }
        let mut changes = Vec::new();
        for (vip, from) in &self.placed {
            if !wanted.contains_key(vip) && *from != Place::Withdrawn {
                changes.push(Change { vip: *vip, from: *from, to: Place::Withdrawn });
            }
        }
        for (vip, to) in &wanted {
            let from = self.placed.get(vip).copied().unwrap_or(Place::Withdrawn);
            if from != *to {
                changes.push(Change { vip: *vip, from, to: *to });
            }
        }
        self.placed = wanted;
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(n: u8, quorum: &[bool]) -> VipInput {
        VipInput { vip: IpAddr::from([192, 0, 2, n]), quorum: quorum.to_vec() }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn quorum_all_needs_every_port_and_any_needs_one() {
        let mut p = Plan::new(Quorum::All, secs(10));
        let c = p.step(&[vip(1, &[true, true]), vip(2, &[true, false])], true, secs(0));
        assert_eq!(c, vec![Change { vip: vip(1, &[]).vip, from: Place::Withdrawn, to: Place::Announced }]);
        let mut p = Plan::new(Quorum::Any, secs(10));
        assert_eq!(p.step(&[vip(1, &[true, true]), vip(2, &[true, false])], true, secs(0)).len(), 2);
        assert!(p
            .step(&[vip(1, &[false, false]), vip(2, &[true, false])], true, secs(1))
            .iter()
            .all(|c| c.to == Place::Withdrawn && c.vip == vip(1, &[]).vip));
    }

    #[test]
    fn quorum_lost_withdraws_and_regained_announces_again() {
        let mut p = Plan::new(Quorum::All, secs(10));
        p.step(&[vip(1, &[true])], true, secs(0));
        assert_eq!(p.step(&[vip(1, &[false])], true, secs(1))[0].to, Place::Withdrawn);
        assert!(p.step(&[vip(1, &[false])], true, secs(2)).is_empty());
        assert_eq!(p.step(&[vip(1, &[true])], true, secs(3))[0].to, Place::Announced);
    }

    #[test]
    fn an_unhealthy_data_plane_withdraws_everything() {
        let mut p = Plan::new(Quorum::All, secs(10));
        p.step(&[vip(1, &[true]), vip(2, &[true])], true, secs(0));
        let c = p.step(&[vip(1, &[true]), vip(2, &[true])], false, secs(1));
        assert_eq!(c.len(), 2);
        assert!(c.iter().all(|c| c.to == Place::Withdrawn));
    }

    #[test]
    fn a_drain_lowers_preference_then_withdraws_and_resume_announces() {
        let mut p = Plan::new(Quorum::All, secs(10));
        let vips = [vip(1, &[true])];
        p.step(&vips, true, secs(0));
        p.drain(secs(5));
        assert_eq!(p.step(&vips, true, secs(5))[0].to, Place::Draining);
        p.drain(secs(8)); // a second drain does not restart the clock
        assert!(p.step(&vips, true, secs(14)).is_empty());
        assert_eq!(
            p.step(&vips, true, secs(15))[0],
            Change { vip: vips[0].vip, from: Place::Draining, to: Place::Withdrawn }
        );
        p.resume();
        assert_eq!(p.step(&vips, true, secs(16))[0].to, Place::Announced);
        assert!(!p.draining());
    }

    #[test]
    fn a_vip_that_leaves_the_configuration_is_withdrawn() {
        let mut p = Plan::new(Quorum::All, secs(10));
        p.step(&[vip(1, &[true])], true, secs(0));
        assert_eq!(p.step(&[], true, secs(1))[0].to, Place::Withdrawn);
        assert_eq!(p.placed().count(), 0);
    }
}
