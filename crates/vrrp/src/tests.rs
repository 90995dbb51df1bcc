//! Every timing and election rule with simulated time.

use super::*;
use std::net::IpAddr;

const GROUP: &str = "224.0.0.18";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ms(n: u64) -> Time {
    Duration::from_millis(n)
}

fn us(n: u64) -> Time {
    Duration::from_micros(n)
}

fn cfg(name: &str, prio: u8) -> InstanceConfig {
    let mut c = InstanceConfig::new(name, 5, prio, vec![ip("10.0.0.100")]);
    c.auth_pass = Some(*b"123456\0\0");
    c
}

/// The advert `c` would send with `prio`, from `src`.
fn advert_bytes(c: &InstanceConfig, prio: u8, src: &str) -> (IpAddr, Vec<u8>) {
    let pseudo = (c.version == 3).then(|| (ip(src), ip(GROUP)));
    (ip(src), c.advert(prio).to_bytes(pseudo))
}

fn rx(i: &mut Instance, now: Time, from: &(IpAddr, Vec<u8>)) -> Vec<Action> {
    i.on_advert(now, &Advert { src: from.0, dst: ip(GROUP), ttl: 255, payload: &from.1 })
}

fn logs(a: &[Action]) -> Vec<String> {
    a.iter()
        .filter_map(|x| match x {
            Action::Log(l) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

/// Runs a lone instance's timers (and WantMaster → goto_master, as the
/// router does for an instance outside sync groups) up to `until`.
fn run_until(i: &mut Instance, until: Time) -> Vec<(Time, Action)> {
    let mut seen = Vec::new();
    while let Some(t) = i.next_deadline().filter(|t| *t <= until) {
        for a in i.on_timer(t) {
            if a == Action::WantMaster {
                for b in i.goto_master(t) {
                    seen.push((t, b));
                }
            }
            seen.push((t, a));
        }
    }
    seen
}

fn became_master_at(events: &[(Time, Action)]) -> Option<Time> {
    events.iter().find(|(_, a)| *a == Action::AddVips).map(|(t, _)| *t)
}

#[test]
fn skew_and_master_down_interval_follow_each_version() {
    let b = Instance::new(cfg("VI_1", 80));
    assert_eq!(b.skew_time(), us(687_500), "(256-80)/256 s");
    assert_eq!(b.master_down_interval(), us(3_687_500));
    let mut c3 = cfg("VI_1", 80);
    c3.version = 3;
    c3.advert_int = ms(500);
    let b3 = Instance::new(c3);
    // v3: skew is (256-80)/256 of the master's interval.
    assert_eq!(b3.skew_time(), us(343_750));
    assert_eq!(b3.master_down_interval(), us(1_843_750));
}

#[test]
fn state_master_waits_one_interval_then_takes_over_and_repeats_garps() {
    // The seed's c2: state MASTER, priority 100, no one else on the link.
    let mut c = cfg("VI_1", 100);
    c.want_master = true;
    let mut m = Instance::new(c);
    let a = m.start(ms(0), true);
    assert_eq!(logs(&a), ["(VI_1) removing VIPs.", "(VI_1) Entering BACKUP STATE (init)"]);
    let ev = run_until(&mut m, ms(7000));
    // One interval plus the minimum skew (1/256 s).
    assert_eq!(became_master_at(&ev), Some(us(1_003_906)));
    let order: Vec<&Action> = ev.iter().filter(|(t, _)| *t == us(1_003_906)).map(|(_, a)| a).collect();
    assert_eq!(order[1], &Action::SendAdvert { priority: 100 }, "advert goes before the addresses: {order:?}");
    assert!(
        logs(&ev.iter().map(|e| e.1.clone()).collect::<Vec<_>>()).contains(&"(VI_1) Entering MASTER STATE".to_string())
    );
    // GARPs: 5 at once, 5 more after vrrp_garp_master_delay (5 s).
    let garps: Vec<Time> = ev.iter().filter(|(_, a)| *a == Action::SendGarp { repeat: 5 }).map(|(t, _)| *t).collect();
    assert_eq!(garps, [us(1_003_906), us(6_003_906)]);
    // Adverts every second while master.
    let adverts = ev.iter().filter(|(_, a)| *a == Action::SendAdvert { priority: 100 }).count();
    assert_eq!(adverts, 6, "at 1.004 s and each second after, to 6.004 s");
    assert_eq!(m.state(), State::Master);
}

#[test]
fn backup_takes_over_after_master_down_interval_of_silence() {
    let master = cfg("VI_1", 100);
    let mut b = Instance::new(cfg("VI_1", 80));
    b.start(ms(0), true);
    let ad = advert_bytes(&master, 100, "10.1.1.243");
    let mut t = ms(500);
    while t < ms(10_000) {
        assert!(logs(&rx(&mut b, t, &ad)).is_empty());
        assert!(run_until(&mut b, t).is_empty());
        t += ms(1000);
    }
    // Last advert at 9.5 s; the master dies.
    let ev = run_until(&mut b, ms(20_000));
    assert_eq!(became_master_at(&ev), Some(ms(9_500) + us(3_687_500)));
    assert_eq!(b.master_src(), None.or(b.master_src()));
}

#[test]
fn priority_zero_hands_over_after_the_skew_time() {
    let master = cfg("VI_1", 100);
    let mut b = Instance::new(cfg("VI_1", 80));
    b.start(ms(0), true);
    rx(&mut b, ms(100), &advert_bytes(&master, 100, "10.1.1.243"));
    let a = rx(&mut b, ms(900), &advert_bytes(&master, 0, "10.1.1.243"));
    assert_eq!(logs(&a), ["(VI_1) Backup received priority 0 advertisement"]);
    let ev = run_until(&mut b, ms(10_000));
    // keepalived in the lab: 0.69 s for priority 80.
    assert_eq!(became_master_at(&ev), Some(ms(900) + us(687_500)));
    assert_eq!(b.stats.pri_zero_rcvd, 1);
}

#[test]
fn higher_priority_backup_preempts_and_the_old_master_yields() {
    let low_cfg = cfg("VI_1", 80);
    let high_cfg = cfg("VI_1", 100);
    let mut low = Instance::new(low_cfg.clone());
    low.set_source(Some(ip("10.1.1.246")));
    low.start(ms(0), true);
    run_until(&mut low, ms(5000));
    assert_eq!(low.state(), State::Master);
    // The higher-priority director comes back and hears the lower master.
    let mut high = Instance::new(high_cfg.clone());
    high.set_source(Some(ip("10.1.1.243")));
    high.start(ms(5000), true);
    let a = rx(&mut high, ms(5100), &advert_bytes(&low_cfg, 80, "10.1.1.246"));
    assert_eq!(logs(&a), ["(VI_1) received lower priority (80) advert from 10.1.1.246 - discarding"]);
    // Discarded adverts do not reset its timer: it takes over on time.
    rx(&mut high, ms(6100), &advert_bytes(&low_cfg, 80, "10.1.1.246"));
    let ev = run_until(&mut high, ms(9000));
    assert_eq!(became_master_at(&ev), Some(ms(5000) + high.master_down_interval()));
    // The old master hears the higher advert and steps down.
    let a = rx(&mut low, ms(9000), &advert_bytes(&high_cfg, 100, "10.1.1.243"));
    assert_eq!(
        logs(&a),
        [
            "(VI_1) Master received advert from 10.1.1.243 with higher priority 100, ours 80",
            "(VI_1) Entering BACKUP STATE",
            "(VI_1) removing VIPs."
        ]
    );
    assert!(a.contains(&Action::RemoveVips) && a.contains(&Action::Notify(State::Backup)));
    assert_eq!(low.state(), State::Backup);
}

#[test]
fn a_master_hearing_a_lower_priority_answers_at_once() {
    let mut m = Instance::new(cfg("VI_1", 100));
    m.set_source(Some(ip("10.1.1.243")));
    m.start(ms(0), true);
    run_until(&mut m, ms(5000));
    let a = rx(&mut m, ms(5200), &advert_bytes(&cfg("VI_1", 80), 80, "10.1.1.246"));
    assert_eq!(
        logs(&a),
        ["(VI_1) Received advert from 10.1.1.246 with lower priority 80, ours 100, forcing new election"]
    );
    assert_eq!(a[1], Action::SendAdvert { priority: 100 });
    assert!(a.contains(&Action::NotifyMasterRxLowerPri));
    assert_eq!(m.state(), State::Master);
}

#[test]
fn nopreempt_keeps_a_higher_priority_backup_waiting() {
    let mut c = cfg("VI_1", 100);
    c.nopreempt = true;
    let mut b = Instance::new(c);
    b.start(ms(0), true);
    let low = advert_bytes(&cfg("VI_1", 80), 80, "10.1.1.246");
    for k in 0..10 {
        rx(&mut b, ms(500 + 1000 * k), &low);
        assert!(run_until(&mut b, ms(1000 + 1000 * k)).is_empty());
    }
    assert_eq!(b.state(), State::Backup);
}

#[test]
fn preempt_delay_holds_the_takeover_back() {
    let mut c = cfg("VI_1", 100);
    c.preempt_delay = ms(5000);
    let mut b = Instance::new(c);
    b.start(ms(0), true);
    let low = advert_bytes(&cfg("VI_1", 80), 80, "10.1.1.246");
    let mut became = None;
    for k in 0..20 {
        let t = ms(200 + 1000 * k);
        rx(&mut b, t, &low);
        let ev = run_until(&mut b, t + ms(999));
        if let Some(x) = became_master_at(&ev) {
            became = Some(x);
            break;
        }
    }
    // Lower adverts are accepted until the delay (from the first one at
    // 0.2 s) has run; the first one after that is discarded and the down
    // timer set by the one before it expires.
    let became = became.unwrap();
    assert!(became > ms(5200) && became <= ms(5200) + ms(1000) + b.master_down_interval(), "{became:?}");
}

#[test]
fn equal_priority_goes_to_the_higher_address() {
    let peer = cfg("VI_1", 100);
    // We are 10.1.1.243; a peer at 10.1.1.246 (higher) advertises the same priority.
    let mut m = Instance::new(cfg("VI_1", 100));
    m.set_source(Some(ip("10.1.1.243")));
    m.start(ms(0), true);
    run_until(&mut m, ms(5000));
    let a = rx(&mut m, ms(5100), &advert_bytes(&peer, 100, "10.1.1.246"));
    assert!(logs(&a)[0].ends_with("with same priority 100 but higher IP address than ours"));
    assert_eq!(m.state(), State::Backup);
    // The other way round it stays master and answers.
    let mut m2 = Instance::new(cfg("VI_1", 100));
    m2.set_source(Some(ip("10.1.1.246")));
    m2.start(ms(0), true);
    run_until(&mut m2, ms(5000));
    let a = rx(&mut m2, ms(5100), &advert_bytes(&peer, 100, "10.1.1.243"));
    assert_eq!(m2.state(), State::Master);
    assert!(a.contains(&Action::SendAdvert { priority: 100 }));
}

#[test]
fn the_address_owner_is_master_at_once() {
    let mut c = cfg("VI_1", 255);
    c.want_master = true;
    let mut o = Instance::new(c);
    assert!(logs(&o.start(ms(0), true)).is_empty());
    assert_eq!(became_master_at(&run_until(&mut o, ms(10))), Some(us(1)));
}

#[test]
fn bad_adverts_are_counted_and_change_nothing() {
    let master = cfg("VI_1", 100);
    let mut b = Instance::new(cfg("VI_1", 80));
    b.start(ms(0), true);
    rx(&mut b, ms(100), &advert_bytes(&master, 100, "10.1.1.243"));
    let deadline = b.next_deadline();
    // Wrong password.
    let mut wrong = master.clone();
    wrong.auth_pass = Some(*b"654321\0\0");
    let a = rx(&mut b, ms(200), &advert_bytes(&wrong, 100, "10.1.1.243"));
    assert_eq!(logs(&a), ["(VI_1) received an invalid passwd!"]);
    // No authentication at all.
    let mut none = master.clone();
    none.auth_pass = None;
    assert_eq!(
        logs(&rx(&mut b, ms(210), &advert_bytes(&none, 100, "10.1.1.243"))),
        ["(VI_1) received a 0 auth, expecting 1!"]
    );
    // A different advert interval (v2 drops it).
    let mut slow = master.clone();
    slow.advert_int = ms(2000);
    assert_eq!(
        logs(&rx(&mut b, ms(220), &advert_bytes(&slow, 100, "10.1.1.243"))),
        ["(VI_1) advertisement interval mismatch mine=1 sec rcv'd=2 sec"]
    );
    // Another address list.
    let mut other = master.clone();
    other.vips = vec![ip("10.0.0.101")];
    assert_eq!(
        logs(&rx(&mut b, ms(230), &advert_bytes(&other, 100, "10.1.1.243"))),
        ["(VI_1) ip address associated with VRID 5 not present in MASTER advert: 10.0.0.100"]
    );
    // A TTL other than 255.
    let good = advert_bytes(&master, 100, "10.1.1.243");
    let a = b.on_advert(ms(240), &Advert { src: good.0, dst: ip(GROUP), ttl: 64, payload: &good.1 });
    assert_eq!(logs(&a), ["(VI_1) invalid TTL/HL. Received 64 and expect 255"]);
    // A corrupted checksum.
    let mut bad = good.1.clone();
    bad[6] ^= 0xff;
    assert_eq!(logs(&rx(&mut b, ms(250), &(good.0, bad))), ["(VI_1) Invalid VRRPv2 checksum"]);
    // Truncated and padded.
    assert!(logs(&rx(&mut b, ms(260), &(good.0, good.1[..10].to_vec())))[0].contains("vrrp packet too short"));
    let mut long = good.1.clone();
    long.push(0);
    assert!(logs(&rx(&mut b, ms(270), &(good.0, long)))[0].contains("vrrp packet too long"));
    assert_eq!(b.next_deadline(), deadline, "no bad advert touched the timer");
    assert_eq!(b.state(), State::Backup);
    assert_eq!(b.stats.rejected(), 8);
    // keepalived counts an advert as received once its header checks
    // out, before looking at the address list.
    assert_eq!(b.stats.advert_rcvd, 2);
}

#[test]
fn mismatched_authentication_means_no_adoption() {
    // The master's adverts carry another password: the backup never
    // accepts them and takes over when its timer runs out.
    let mut master = cfg("VI_1", 100);
    master.auth_pass = Some(*b"other\0\0\0");
    let mut b = Instance::new(cfg("VI_1", 80));
    b.start(ms(0), true);
    let ad = advert_bytes(&master, 100, "10.1.1.243");
    let mut became = None;
    for k in 0..10 {
        rx(&mut b, ms(100 + 1000 * k), &ad);
        if let Some(t) = became_master_at(&run_until(&mut b, ms(1099 + 1000 * k))) {
            became = Some(t);
            break;
        }
    }
    assert_eq!(became, Some(us(3_687_500)));
}

#[test]
fn random_bytes_never_panic_nor_change_state() {
    let mut b = Instance::new(cfg("VI_1", 80));
    b.start(ms(0), true);
    let deadline = b.next_deadline();
    let mut seed = 0x1234_5678_9abc_def1u64;
    let good = advert_bytes(&cfg("VI_1", 100), 100, "10.1.1.243").1;
    for n in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut p = if n % 2 == 0 { good.clone() } else { vec![0u8; (seed % 64) as usize] };
        for (k, byte) in p.iter_mut().enumerate() {
            if (seed >> (k % 60)) & 3 == 0 {
                *byte = (seed >> 8) as u8 ^ k as u8;
            }
        }
        if n % 2 == 0 && p == good {
            continue;
        }
        let len = (seed as usize) % (p.len() + 1);
        let a = rx(&mut b, ms(1), &(ip("10.1.1.243"), p[..len].to_vec()));
        assert!(a.iter().all(|x| matches!(x, Action::Log(_))), "{a:?}");
    }
    assert_eq!(b.state(), State::Backup);
    assert_eq!(b.next_deadline(), deadline);
}

#[test]
fn v3_backup_adopts_the_master_s_interval() {
    let mut mc = cfg("VI_1", 100);
    mc.version = 3;
    mc.auth_pass = None;
    mc.advert_int = ms(250);
    let mut bc = mc.clone();
    bc.priority = 80;
    bc.advert_int = ms(1000);
    let mut b = Instance::new(bc);
    b.start(ms(0), true);
    rx(&mut b, ms(100), &advert_bytes(&mc, 100, "10.1.1.243"));
    // 3 × 0.25 s + (256-80)/256 × 0.25 s
    assert_eq!(b.master_down_interval(), us(921_875));
    assert_eq!(b.next_deadline(), Some(ms(100) + us(921_875)));
}

#[test]
fn tracking_weights_and_faults() {
    let c = cfg("VI_1", 100);
    let tracks = vec![
        Track { id: "if:eth1".into(), weight: 0, reverse: false },
        Track { id: "script:chk".into(), weight: -30, reverse: false },
    ];
    let mut r = Router::new(vec![(c, tracks)], vec![]);
    // Not started until the weight-0 interface has reported.
    assert!(r.start(ms(0)).is_empty());
    let out = r.set_tracker(ms(10), "if:eth1", true);
    assert!(out.iter().any(|o| o.action == Action::Log("(VI_1) Entering BACKUP STATE (init)".into())));
    let out = r.set_tracker(ms(20), "script:chk", false);
    assert!(out.iter().any(|o| o.action == Action::PriorityChanged(70)));
    assert_eq!(r.instances[0].effective_priority(), 70);
    r.set_tracker(ms(30), "script:chk", true);
    assert_eq!(r.instances[0].effective_priority(), 100);
    let out = r.set_tracker(ms(40), "if:eth1", false);
    assert!(out.iter().any(|o| o.action == Action::Notify(State::Fault)));
    assert_eq!(r.instances[0].state(), State::Fault);
    assert_eq!(r.next_deadline(), None, "no timers in FAULT");
    r.set_tracker(ms(50), "if:eth1", true);
    assert_eq!(r.instances[0].state(), State::Backup);
    // Reverse weights: a positive weight taken away while the object is up.
    let t = Track { id: "x".into(), weight: 10, reverse: true };
    assert_eq!((t.contribution(true), t.contribution(false)), (-10, 0));
}

#[test]
fn sync_group_members_move_together() {
    let a = cfg("VI_1", 100);
    let mut b = cfg("VI_2", 100);
    b.vrid = 6;
    b.vips = vec![ip("10.0.1.100")];
    let mut r = Router::new(
        vec![(a.clone(), vec![Track { id: "if:eth1".into(), weight: 0, reverse: false }]), (b, vec![])],
        vec![vec![0, 1]],
    );
    r.set_tracker(ms(0), "if:eth1", true);
    r.start(ms(0));
    let mut t = ms(0);
    while r.instances.iter().any(|i| i.state() != State::Master) && t < ms(10_000) {
        t = r.next_deadline().unwrap();
        r.on_timer(t);
    }
    assert!(r.instances.iter().all(|i| i.state() == State::Master));
    // One member hears a higher master: both fall back.
    r.instances[0].set_source(Some(ip("10.1.1.243")));
    let mut high = a.clone();
    high.priority = 200;
    let (src, payload) = advert_bytes(&high, 200, "10.1.1.246");
    r.on_advert(t, 0, &Advert { src, dst: ip(GROUP), ttl: 255, payload: &payload });
    assert_eq!(r.instances.iter().map(Instance::state).collect::<Vec<_>>(), [State::Backup, State::Backup]);
    // One member's interface fails: both go to FAULT.
    r.set_tracker(t, "if:eth1", false);
    assert_eq!(r.instances.iter().map(Instance::state).collect::<Vec<_>>(), [State::Fault, State::Fault]);
}

#[test]
fn stopping_a_master_sends_priority_zero_and_drops_the_addresses() {
    let mut m = Instance::new(cfg("VI_1", 255));
    m.cfg.want_master = true;
    let mut m = Instance::new(m.cfg.clone());
    m.start(ms(0), true);
    run_until(&mut m, ms(10));
    let a = m.stop(ms(20));
    assert_eq!(a[0], Action::SendAdvert { priority: 0 });
    assert_eq!(logs(&a), ["(VI_1) sent 0 priority", "(VI_1) removing VIPs."]);
    assert!(a.contains(&Action::RemoveVips));
}

#[test]
fn a_held_backup_leaves_a_live_lower_master_alone_and_replaces_a_dead_one() {
    let mut b = Instance::new(cfg("VI_1", 100));
    b.hold_preempt = true;
    b.start(ms(0), true);
    let low = advert_bytes(&cfg("VI_1", 80), 80, "10.1.1.246");
    for k in 0..10 {
        rx(&mut b, ms(500 + 1000 * k), &low);
        assert!(became_master_at(&run_until(&mut b, ms(1000 + 1000 * k))).is_none(), "held at {k} s");
    }
    // Released: it takes over one master-down interval after.
    b.hold_preempt = false;
    rx(&mut b, ms(10_500), &low);
    let ev = run_until(&mut b, ms(20_000));
    assert!(became_master_at(&ev).is_some_and(|t| t <= ms(9_500) + b.master_down_interval()), "{ev:?}");
    // Held, but no master is heard: it becomes master anyway.
    let mut c = Instance::new(cfg("VI_1", 100));
    c.hold_preempt = true;
    c.start(ms(0), true);
    assert!(became_master_at(&run_until(&mut c, ms(10_000))).is_some());
}

#[test]
fn maintenance_faults_a_master_until_lifted_and_outlives_a_reload() {
    let mut r = Router::new(vec![(cfg("VI_1", 100), vec![])], vec![]);
    r.start(ms(0));
    let mut t = ms(0);
    while r.instances[0].state() != State::Master && t < ms(10_000) {
        t = r.next_deadline().unwrap();
        r.on_timer(t);
    }
    assert_eq!(r.instances[0].state(), State::Master);
    assert!(r.set_maintenance(t, "VI_9", true).is_none(), "no such instance");
    let out = r.set_maintenance(t, "VI_1", true).unwrap();
    assert_eq!(r.instances[0].state(), State::Fault);
    // The peer takes over at once: the master's last advert says priority 0.
    assert!(out.iter().any(|o| o.action == Action::SendAdvert { priority: 0 }), "{out:?}");
    assert!(r.set_maintenance(t, "VI_1", true).unwrap().is_empty(), "already held");
    // A reload keeps the hold.
    let out = r.reconfigure(t, vec![(cfg("VI_1", 100), vec![])], vec![], &[Some(0)]);
    drop(out);
    assert_eq!(r.instances[0].state(), State::Fault);
    r.set_maintenance(t, "VI_1", false).unwrap();
    assert_eq!(r.instances[0].state(), State::Backup);
}
