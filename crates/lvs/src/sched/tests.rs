//! Scheduler tests that need timers or hand-set connection counts; the
//! pick sequences themselves are checked against the real kernel in
//! tests/kernel_sequences.rs.

use super::*;
use crate::dest::{DestArena, DestId};
use crate::service::SvcId;
use crate::time::Span;
use crate::types::{DestConfig, FwdMethod, ServiceKey};

const HOUR: u64 = 3_600_000;

fn arena(weights: &[i32]) -> (DestArena, Vec<DestId>) {
    let mut arena = DestArena::default();
    let key = ServiceKey::new(Protocol::Tcp, "10.0.0.100".parse().unwrap(), 80);
    let ids = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let cfg = DestConfig::new(format!("10.1.1.{}", i + 1).parse().unwrap(), 80, FwdMethod::DirectRoute, w);
            arena.insert(Dest::new(&cfg, crate::service::SvcId(0), key))
        })
        .collect();
    (arena, ids)
}

fn input(vaddr: &str) -> SchedInput {
    SchedInput {
        protocol: Protocol::Tcp,
        caddr: "10.1.1.10".parse().unwrap(),
        cport: 1234,
        vaddr: vaddr.parse().unwrap(),
        vport: 80,
        svc_flags: 0,
    }
}

#[test]
fn lblc_binding_expires_after_a_day_at_a_half_hour_sweep() {
    let (arena, ids) = arena(&[1, 1]);
    let t0 = Time(1_000);
    let mut s = lblc::LocalityLeastConnection::new(t0);
    let list = DestList::new(&ids, &arena);
    assert!(s.schedule(list, &input("192.0.2.1"), t0).is_some());
    assert_eq!(s.entries(), 1);
    s.tick(t0 + Span(24 * HOUR - 1));
    assert_eq!(s.entries(), 1, "not idle for a day yet");
    s.tick(t0 + Span(24 * HOUR));
    assert_eq!(s.entries(), 0, "the sweep at 24 h drops it");
    // A binding in use is kept: use it every 12 hours.
    let mut s = lblc::LocalityLeastConnection::new(t0);
    for k in 0..5u64 {
        let now = t0 + Span(k * 12 * HOUR);
        s.tick(now);
        s.schedule(list, &input("192.0.2.1"), now);
    }
    assert_eq!(s.entries(), 1);
}

#[test]
fn lblc_sticks_until_overloaded_then_rebinds() {
    let (mut arena, ids) = arena(&[2, 2]);
    let mut s = lblc::LocalityLeastConnection::new(Time::ZERO);
    let first = s.schedule(DestList::new(&ids, &arena), &input("192.0.2.1"), Time::ZERO).unwrap();
    // Same destination address, same server, whatever the load...
    arena.get_mut(ids[first]).activeconns = 2;
    assert_eq!(s.schedule(DestList::new(&ids, &arena), &input("192.0.2.1"), Time::ZERO), Some(first));
    // ...until it has more active connections than weight while another
    // server is under half of its own.
    arena.get_mut(ids[first]).activeconns = 3;
    let other = s.schedule(DestList::new(&ids, &arena), &input("192.0.2.1"), Time::ZERO).unwrap();
    assert_ne!(other, first);
    arena.get_mut(ids[first]).activeconns = 0;
    assert_eq!(s.schedule(DestList::new(&ids, &arena), &input("192.0.2.1"), Time::ZERO), Some(other), "rebound");
}

#[test]
fn lblcr_replicates_under_load_and_sheds_after_a_day() {
    let (mut arena, ids) = arena(&[2, 2, 2]);
    let t0 = Time::ZERO;
    let mut s = lblcr::LocalityReplicated::new(t0);
    let v: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let first = s.schedule(DestList::new(&ids, &arena), &input("192.0.2.7"), t0).unwrap();
    assert_eq!(s.set_size(&v), 1);
    arena.get_mut(ids[first]).activeconns = 3;
    let second = s.schedule(DestList::new(&ids, &arena), &input("192.0.2.7"), t0).unwrap();
    assert_ne!(second, first);
    assert_eq!(s.set_size(&v), 2, "the overloaded set gained a member");
    // The set then serves from its least loaded member.
    assert_eq!(s.schedule(DestList::new(&ids, &arena), &input("192.0.2.7"), t0 + Span(HOUR)), Some(second));
    // A day without change: the most loaded member is shed on the next use.
    s.schedule(DestList::new(&ids, &arena), &input("192.0.2.7"), t0 + Span(25 * HOUR));
    assert_eq!(s.set_size(&v), 1);
}

#[test]
fn dh_table_cycles_through_the_list_and_ignores_weights() {
    let (arena, ids) = arena(&[1, 5, 1]);
    let s = dh::DestinationHashing::new(DestList::new(&ids, &arena));
    let mut picks = [0usize; 3];
    let mut s = s;
    for last in 0..=255u8 {
        let i = s.schedule(DestList::new(&ids, &arena), &input(&format!("192.0.2.{last}")), Time::ZERO).unwrap();
        picks[i] += 1;
    }
    // 256 buckets over 3 servers: 86/85/85, whatever the weights.
    assert!(picks.iter().all(|&n| (80..=92).contains(&n)), "{picks:?}");
}

#[test]
fn twos_splits_by_weight_and_load() {
    let (mut arena, ids) = arena(&[3, 1]);
    let mut s = twos::TwoChoices::with_seed(42);
    let mut counts = [0u32; 2];
    for _ in 0..4000 {
        let i = s.schedule(DestList::new(&ids, &arena), &input("10.0.0.100"), Time::ZERO).unwrap();
        counts[i] += 1;
        // Connections accumulate, so the less loaded per weight wins ties.
        arena.get_mut(ids[i]).inactconns += 1;
    }
    let ratio = f64::from(counts[0]) / f64::from(counts[1]);
    assert!((2.7..=3.3).contains(&ratio), "{counts:?}");
    let _ = SvcId(0);
}
