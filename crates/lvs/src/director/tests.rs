use super::*;
use crate::types::FwdMethod::DirectRoute;
use rlvs_wire::{Ipv4Repr, TcpRepr, UdpRepr};
use std::net::Ipv4Addr;

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 10);

fn ip(a: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, 1, a))
}

pub(super) fn tcp_svc() -> ServiceKey {
    ServiceKey::new(Protocol::Tcp, VIP.into(), 80)
}

pub(super) fn segment(cport: u16, flags: u8) -> Vec<u8> {
    let ipr = Ipv4Repr {
        src: CLIENT,
        dst: VIP,
        protocol: IpProtocol::Tcp,
        payload_len: 20,
        ttl: 64,
        ident: 1,
        dont_frag: true,
    };
    let mut b = vec![0u8; ipr.buffer_len()];
    ipr.emit(&mut b);
    TcpRepr { src_port: cport, dst_port: 80, seq: 1, ack: 0, flags: TcpFlags(flags), window: 1000 }.emit(&mut b[20..]);
    b
}

fn datagram(cport: u16, dport: u16) -> Vec<u8> {
    let ipr = Ipv4Repr {
        src: CLIENT,
        dst: VIP,
        protocol: IpProtocol::Udp,
        payload_len: 12,
        ttl: 64,
        ident: 1,
        dont_frag: false,
    };
    let mut b = vec![0u8; ipr.buffer_len()];
    ipr.emit(&mut b);
    UdpRepr { src_port: cport, dst_port: dport, payload_len: 4 }.emit(&mut b[20..]);
    b
}

pub(super) const SYN: u8 = TcpFlags::SYN;
pub(super) const ACK: u8 = TcpFlags::ACK;
const FIN: u8 = TcpFlags::FIN | TcpFlags::ACK;

/// Builds the seed's vs.sh table: rr, rs1 then rs2, DR, weight 1.
pub(super) fn seed() -> Director {
    let mut d = Director::new();
    d.add_service(tcp_svc(), ServiceConfig { scheduler: "rr".into(), ..Default::default() }, Time::ZERO).unwrap();
    d.add_dest(&tcp_svc(), DestConfig::new(ip(244), 80, DirectRoute, 1), Time::ZERO).unwrap();
    d.add_dest(&tcp_svc(), DestConfig::new(ip(245), 80, DirectRoute, 1), Time::ZERO).unwrap();
    d
}

fn pick(d: &mut Director, pkt: &[u8], now: Time) -> Option<IpAddr> {
    match d.process_ipv4(pkt, None, now) {
        Verdict::Forward(f) => Some(f.daddr),
        _ => None,
    }
}

fn counters(d: &Director, a: u8) -> (u32, u32) {
    let s = d.service(&tcp_svc()).unwrap();
    let x = s.dests.iter().find(|x| x.config.addr == ip(a)).unwrap();
    (x.activeconns, x.inactconns)
}

#[test]
fn seed_rr_alternates_starting_with_the_last_added() {
    let mut d = seed();
    let got: Vec<IpAddr> = (0..9).map(|i| pick(&mut d, &segment(40000 + i, SYN), Time::ZERO).unwrap()).collect();
    // The seed's transcript: rs2, rs1, rs2, ... (the kernel lists rs2 first).
    let want: Vec<IpAddr> = (0..9).map(|i| if i % 2 == 0 { ip(245) } else { ip(244) }).collect();
    assert_eq!(got, want);
    let listed: Vec<IpAddr> = d.service(&tcp_svc()).unwrap().dests.iter().map(|x| x.config.addr).collect();
    assert_eq!(listed, vec![ip(245), ip(244)], "kernel list order: newest first");
}

#[test]
fn rr_skips_quiesced_and_resumes_after_deleted_dest() {
    let mut d = seed();
    d.add_dest(&tcp_svc(), DestConfig::new(ip(246), 80, DirectRoute, 1), Time::ZERO).unwrap();
    // list: 246, 245, 244
    let next = |d: &mut Director, p: u16| pick(d, &segment(p, SYN), Time::ZERO).unwrap();
    assert_eq!(next(&mut d, 1), ip(246));
    assert_eq!(next(&mut d, 2), ip(245));
    d.edit_dest(&tcp_svc(), DestConfig::new(ip(244), 80, DirectRoute, 0)).unwrap();
    assert_eq!(next(&mut d, 3), ip(246), "weight 0 is quiesced");
    // The last pick (246, index 0) is deleted: the walk steps back to the
    // head and continues with what followed it.
    d.del_dest(&tcp_svc(), ip(246), 80, Time::ZERO).unwrap();
    assert_eq!(next(&mut d, 4), ip(245));
    assert_eq!(next(&mut d, 5), ip(245));
    d.edit_dest(&tcp_svc(), DestConfig::new(ip(245), 80, DirectRoute, 0)).unwrap();
    assert_eq!(d.process_ipv4(&segment(6, SYN), None, Time::ZERO), Verdict::Drop(DropReason::NoDestination));
}

fn wrr_with(weights: &[(u8, i32)]) -> Director {
    let mut d = Director::new();
    d.add_service(tcp_svc(), ServiceConfig { scheduler: "wrr".into(), ..Default::default() }, Time::ZERO).unwrap();
    for &(a, w) in weights {
        d.add_dest(&tcp_svc(), DestConfig::new(ip(a), 80, DirectRoute, w), Time::ZERO).unwrap();
    }
    d
}

/// Opens `n` new connections (fresh client ports) and names the real server
/// each went to: 10.1.1.1 is A, 10.1.1.2 is B, ...; '-' for none.
fn sequence(d: &mut Director, n: u16) -> String {
    static NEXT_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(1000);
    (0..n)
        .map(|_| NEXT_PORT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
        .map(|port| match pick(d, &segment(port, SYN), Time::ZERO) {
            Some(IpAddr::V4(a)) => char::from(b'A' + a.octets()[3] - 1),
            _ => '-',
        })
        .collect()
}

#[test]
fn wrr_432_added_one_at_a_time() {
    // A=4, B=3, C=2 added in that order; the kernel keeps C, B, A and the
    // first pass runs at the bar left by the adds (1), so the first three
    // picks are one of each before the weighted cycle A B A C B A C B A.
    let mut d = wrr_with(&[(1, 4), (2, 3), (3, 2)]);
    assert_eq!(sequence(&mut d, 21), "CBAABACBACBAABACBACBA");
}

#[test]
fn wrr_equal_weights_and_gcd() {
    let mut d = wrr_with(&[(1, 2), (2, 4)]);
    // gcd 2: mw = 4 - 1 = 3; list B, A.
    assert_eq!(sequence(&mut d, 9), "BABBABBAB");
    let mut d = wrr_with(&[(1, 1), (2, 1)]);
    assert_eq!(sequence(&mut d, 6), "BABABA");
}

#[test]
fn wrr_weight_change_resets_position() {
    let mut d = wrr_with(&[(1, 4), (2, 3), (3, 2)]);
    assert_eq!(sequence(&mut d, 4), "CBAA");
    d.edit_dest(&tcp_svc(), DestConfig::new(ip(3), 80, DirectRoute, 0)).unwrap();
    // cw was 4; mw stays 4: the walk restarts from the head at bar 4.
    assert_eq!(sequence(&mut d, 7), "ABABABA");
    d.edit_dest(&tcp_svc(), DestConfig::new(ip(1), 80, DirectRoute, 0)).unwrap();
    d.edit_dest(&tcp_svc(), DestConfig::new(ip(2), 80, DirectRoute, 0)).unwrap();
    assert_eq!(sequence(&mut d, 2), "--");
}

#[test]
fn dr_counters_follow_the_input_only_table() {
    let mut d = seed();
    let t0 = Time::from_secs(1000);
    assert_eq!(pick(&mut d, &segment(5000, SYN), t0), Some(ip(245)));
    assert_eq!(counters(&d, 245), (0, 1), "SYN_RECV is inactive");
    assert_eq!(d.conns(t0)[0].state, "SYN_RECV");
    assert_eq!(d.conns(t0)[0].expires, 60);
    pick(&mut d, &segment(5000, ACK), t0);
    assert_eq!(counters(&d, 245), (1, 0), "ESTABLISHED is active");
    assert_eq!(d.conns(t0)[0].expires, 900);
    pick(&mut d, &segment(5000, FIN), t0);
    assert_eq!(counters(&d, 245), (0, 1));
    assert_eq!(d.conns(t0)[0].state, "FIN_WAIT");
    assert_eq!(d.conns(t0)[0].expires, 120);
    // FIN_WAIT lasts 120 s from the last packet.
    assert_eq!(d.expire(t0 + Span::from_secs(119)), 0);
    assert_eq!(d.expire(t0 + Span::from_secs(120)), 1);
    assert_eq!(counters(&d, 245), (0, 0));
    fold(&mut d, t0 + Span::from_secs(120));
    let s = d.service(&tcp_svc()).unwrap();
    assert_eq!(s.stats.conns, 1);
    assert_eq!(s.stats.inpkts, 3);
    assert_eq!(s.stats.inbytes, 120);
    assert_eq!(s.stats.outpkts, 0, "DR never sees replies");
}

#[test]
fn every_timeout_is_honoured_with_simulated_time() {
    for (flags, state, secs) in [
        (vec![SYN], "SYN_RECV", 60),
        (vec![SYN, ACK], "ESTABLISHED", 900),
        (vec![SYN, ACK, FIN], "FIN_WAIT", 120),
        (vec![SYN, FIN], "TIME_WAIT", 120),
        (vec![SYN, ACK, TcpFlags::RST], "CLOSE", 10),
        (vec![SYN, ACK, FIN, TcpFlags::RST], "CLOSE", 10),
    ] {
        let mut d = seed();
        let t0 = Time::from_secs(50);
        for f in &flags {
            d.process_ipv4(&segment(7000, *f), None, t0);
        }
        assert_eq!(d.conns(t0)[0].state, state);
        assert_eq!(d.expire(t0 + Span(secs * 1000 - 1)), 0, "{state}");
        assert_eq!(d.expire(t0 + Span::from_secs(secs)), 1, "{state}");
    }
    // UDP: 300 s, counted inactive.
    let mut d = Director::new();
    let svc = ServiceKey::new(Protocol::Udp, VIP.into(), 53);
    d.add_service(svc, ServiceConfig { scheduler: "rr".into(), ..Default::default() }, Time::ZERO).unwrap();
    d.add_dest(&svc, DestConfig::new(ip(244), 53, DirectRoute, 1), Time::ZERO).unwrap();
    assert!(matches!(d.process_ipv4(&datagram(999, 53), None, Time::ZERO), Verdict::Forward(_)));
    let s = d.service(&svc).unwrap();
    assert_eq!((s.dests[0].activeconns, s.dests[0].inactconns), (0, 1));
    assert_eq!(d.conns(Time::ZERO)[0].state, "UDP");
    assert_eq!(d.expire(Time::from_secs(299)), 0);
    assert_eq!(d.expire(Time::from_secs(300)), 1);
}

#[test]
fn set_timeouts_changes_established_fin_and_udp() {
    let mut d = seed();
    d.set_timeouts(TimeoutTriple { tcp: 30, tcp_fin: 0, udp: 7 });
    assert_eq!(d.timeouts(), TimeoutTriple { tcp: 30, tcp_fin: 120, udp: 7 });
    d.process_ipv4(&segment(1, SYN), None, Time::ZERO);
    d.process_ipv4(&segment(1, ACK), None, Time::ZERO);
    assert_eq!(d.conns(Time::ZERO)[0].expires, 30);
}

#[test]
fn non_syn_without_connection_is_dropped_and_strangers_pass() {
    let mut d = seed();
    assert_eq!(d.process_ipv4(&segment(1, ACK), None, Time::ZERO), Verdict::Drop(DropReason::NoConnection));
    assert_eq!(d.process_ipv4(&datagram(1, 53), None, Time::ZERO), Verdict::NotOurs);
    assert_eq!(d.process_ipv4(&[0x45, 0, 0], None, Time::ZERO), Verdict::NotOurs);
    let mut short = segment(1, SYN);
    short.truncate(30);
    short[2..4].copy_from_slice(&30u16.to_be_bytes());
    assert_eq!(d.process_ipv4(&short, None, Time::ZERO), Verdict::Drop(DropReason::Malformed));
    assert_eq!(d.conn_count(), 0);
}

#[test]
fn time_wait_syn_is_rescheduled() {
    let mut d = seed();
    assert_eq!(pick(&mut d, &segment(9, SYN), Time::ZERO), Some(ip(245)));
    pick(&mut d, &segment(9, FIN), Time::ZERO);
    assert_eq!(d.conns(Time::ZERO)[0].state, "TIME_WAIT");
    assert_eq!(pick(&mut d, &segment(9, SYN), Time::ZERO), Some(ip(244)), "a new connection, scheduled anew");
    assert_eq!(d.conn_count(), 1);
    // FIN_WAIT is not reused (conn_reuse_mode 1): same real server.
    pick(&mut d, &segment(9, ACK), Time::ZERO);
    pick(&mut d, &segment(9, FIN), Time::ZERO);
    assert_eq!(pick(&mut d, &segment(9, SYN), Time::ZERO), Some(ip(244)));
}

#[test]
fn deleted_dest_goes_to_trash_and_revives_with_its_stats() {
    let mut d = seed();
    assert_eq!(pick(&mut d, &segment(1, SYN), Time::ZERO), Some(ip(245)));
    d.del_dest(&tcp_svc(), ip(245), 80, Time::ZERO).unwrap();
    assert_eq!(d.process_ipv4(&segment(1, ACK), None, Time::ZERO), Verdict::Drop(DropReason::DestUnavailable));
    assert_eq!(pick(&mut d, &segment(2, SYN), Time::ZERO), Some(ip(244)));
    d.add_dest(&tcp_svc(), DestConfig::new(ip(245), 80, DirectRoute, 1), Time::ZERO).unwrap();
    assert_eq!(counters(&d, 245), (0, 1), "the old connection is back");
    fold(&mut d, Time::ZERO);
    let s = d.service(&tcp_svc()).unwrap();
    assert_eq!(s.dests[0].stats.conns, 1);
    assert_eq!(pick(&mut d, &segment(1, ACK), Time::ZERO), Some(ip(245)));
    assert_eq!(counters(&d, 245), (1, 0));
}

#[test]
fn trash_is_purged_after_the_period() {
    let mut d = seed();
    d.del_dest(&tcp_svc(), ip(245), 80, Time::ZERO).unwrap();
    d.expire(Time::from_secs(119));
    assert_eq!(d.trash.len(), 1);
    d.expire(Time::from_secs(120));
    assert!(d.trash.is_empty());
    d.add_dest(&tcp_svc(), DestConfig::new(ip(245), 80, DirectRoute, 1), Time::from_secs(121)).unwrap();
    assert_eq!(d.service(&tcp_svc()).unwrap().dests[0].stats.conns, 0);
}

#[test]
fn table_errors_carry_the_kernels_errno() {
    let mut d = seed();
    let rr = ServiceConfig { scheduler: "rr".into(), ..Default::default() };
    assert_eq!(d.add_service(tcp_svc(), rr.clone(), Time::ZERO), Err(IpvsError::Exists));
    let other = ServiceKey::new(Protocol::Tcp, VIP.into(), 81);
    assert_eq!(
        d.add_service(other, ServiceConfig { scheduler: "nosuch".into(), ..Default::default() }, Time::ZERO),
        Err(IpvsError::NotFound)
    );
    assert_eq!(d.edit_service(&other, rr.clone(), Time::ZERO), Err(IpvsError::NoService));
    assert_eq!(d.del_service(&other, Time::ZERO), Err(IpvsError::NoService));
    let rs1 = DestConfig::new(ip(244), 80, DirectRoute, 1);
    assert_eq!(d.add_dest(&tcp_svc(), rs1, Time::ZERO), Err(IpvsError::Exists));
    assert_eq!(d.add_dest(&other, rs1, Time::ZERO), Err(IpvsError::NoService));
    assert_eq!(d.edit_dest(&tcp_svc(), DestConfig::new(ip(9), 80, DirectRoute, 1)), Err(IpvsError::NotFound));
    assert_eq!(d.del_dest(&tcp_svc(), ip(9), 80, Time::ZERO), Err(IpvsError::NotFound));
    let mut bad = DestConfig::new(ip(9), 80, DirectRoute, 1);
    bad.l_threshold = 10;
    bad.u_threshold = 5;
    assert_eq!(d.add_dest(&tcp_svc(), bad, Time::ZERO), Err(IpvsError::Range));
    assert_eq!(d.services().len(), 1);
    assert_eq!(d.service(&tcp_svc()).unwrap().dests.len(), 2, "failed commands change nothing");
}

#[test]
fn upper_threshold_marks_overload() {
    let mut d = Director::new();
    d.add_service(tcp_svc(), ServiceConfig { scheduler: "rr".into(), ..Default::default() }, Time::ZERO).unwrap();
    let mut a = DestConfig::new(ip(1), 80, DirectRoute, 1);
    a.u_threshold = 1;
    d.add_dest(&tcp_svc(), a, Time::ZERO).unwrap();
    d.add_dest(&tcp_svc(), DestConfig::new(ip(2), 80, DirectRoute, 1), Time::ZERO).unwrap();
    // list: 2, 1
    assert_eq!(sequence(&mut d, 4), "BABB", "1 is overloaded after one connection");
    d.expire(Time::from_secs(60));
    assert_eq!(sequence(&mut d, 2), "AB");
}

#[test]
fn edit_service_rebinds_scheduler_and_flush_empties() {
    let mut d = seed();
    d.edit_service(&tcp_svc(), ServiceConfig { scheduler: "wrr".into(), ..Default::default() }, Time::ZERO).unwrap();
    assert_eq!(d.service(&tcp_svc()).unwrap().config.scheduler, "wrr");
    assert!(pick(&mut d, &segment(1, SYN), Time::ZERO).is_some());
    d.flush(Time::ZERO);
    assert!(d.services().is_empty());
    assert_eq!(d.process_ipv4(&segment(1, ACK), None, Time::ZERO), Verdict::Drop(DropReason::DestUnavailable));
    assert_eq!(d.process_ipv4(&segment(2, SYN), None, Time::ZERO), Verdict::NotOurs);
}

#[test]
fn wlc_prefers_fewer_connections_per_weight() {
    let mut d = Director::new();
    d.add_service(tcp_svc(), ServiceConfig::default(), Time::ZERO).unwrap();
    assert_eq!(d.service(&tcp_svc()).unwrap().config.scheduler, "wlc");
    d.add_dest(&tcp_svc(), DestConfig::new(ip(1), 80, DirectRoute, 1), Time::ZERO).unwrap();
    d.add_dest(&tcp_svc(), DestConfig::new(ip(2), 80, DirectRoute, 3), Time::ZERO).unwrap();
    // list: B(3), A(1). Each SYN leaves an inactive connection (overhead 1).
    // B takes connections until B's overhead/3 exceeds A's/1.
    assert_eq!(sequence(&mut d, 8), "BABBBABB");
}

#[test]
fn lc_ignores_weight_but_not_zero() {
    let mut d = Director::new();
    d.add_service(tcp_svc(), ServiceConfig { scheduler: "lc".into(), ..Default::default() }, Time::ZERO).unwrap();
    d.add_dest(&tcp_svc(), DestConfig::new(ip(1), 80, DirectRoute, 1), Time::ZERO).unwrap();
    d.add_dest(&tcp_svc(), DestConfig::new(ip(2), 80, DirectRoute, 9), Time::ZERO).unwrap();
    assert_eq!(sequence(&mut d, 4), "BABA");
    d.edit_dest(&tcp_svc(), DestConfig::new(ip(2), 80, DirectRoute, 0)).unwrap();
    assert_eq!(sequence(&mut d, 2), "AA");
}

/// Packets from the network are arbitrary bytes: none may panic the core,
/// whatever the table holds.
#[test]
fn arbitrary_bytes_never_panic() {
    let mut d = seed();
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let base = segment(4242, SYN);
    for i in 0..200_000u32 {
        let mut buf = if i % 2 == 0 {
            let n = (rnd() % 80) as usize;
            (0..n).map(|_| rnd() as u8).collect::<Vec<u8>>()
        } else {
            // Mutations of a valid SYN to the VIP: headers half right.
            let mut b = base.clone();
            for _ in 0..(rnd() % 4 + 1) {
                let at = (rnd() as usize) % b.len();
                b[at] = rnd() as u8;
            }
            b.truncate((rnd() as usize) % (b.len() + 1));
            b
        };
        if i % 3 == 0 && buf.len() > 20 {
            buf[0] = 0x45;
        }
        let _ = d.process_ipv4(&buf, None, Time(u64::from(i)));
    }
    d.expire(Time::from_secs(10_000));
    assert_eq!(d.conn_count(), 0);
    let s = d.service(&tcp_svc()).unwrap();
    assert!(s.dests.iter().all(|x| x.activeconns == 0 && x.inactconns == 0), "counters return to zero");
}

fn segment_from(src: Ipv4Addr, cport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let ipr =
        Ipv4Repr { src, dst: VIP, protocol: IpProtocol::Tcp, payload_len: 20, ttl: 64, ident: 1, dont_frag: true };
    let mut b = vec![0u8; ipr.buffer_len()];
    ipr.emit(&mut b);
    TcpRepr { src_port: cport, dst_port: dport, seq: 1, ack: 0, flags: TcpFlags(flags), window: 1000 }
        .emit(&mut b[20..]);
    b
}

fn persistent(timeout: u32, netmask: u32, port: u16) -> Director {
    let mut d = Director::new();
    let key = ServiceKey::new(Protocol::Tcp, VIP.into(), port);
    let cfg = ServiceConfig {
        scheduler: "rr".into(),
        flags: crate::types::svc_flags::PERSISTENT,
        timeout,
        netmask,
        ..Default::default()
    };
    d.add_service(key, cfg, Time::ZERO).unwrap();
    for a in [244, 245] {
        d.add_dest(&key, DestConfig::new(ip(a), port, FwdMethod::Masq, 1), Time::ZERO).unwrap();
    }
    d
}

#[test]
fn persistence_keeps_a_client_on_its_real_server() {
    let mut d = persistent(300, 0xffff_ffff, 80);
    let a = Ipv4Addr::new(10, 1, 1, 10);
    let b = Ipv4Addr::new(10, 1, 1, 11);
    let first = pick(&mut d, &segment_from(a, 30000, 80, SYN), Time::ZERO).unwrap();
    for p in 1..20 {
        assert_eq!(pick(&mut d, &segment_from(a, 30000 + p, 80, SYN), Time::ZERO), Some(first));
    }
    // Another client gets its own template, from the scheduler.
    assert_ne!(pick(&mut d, &segment_from(b, 40000, 80, SYN), Time::ZERO), Some(first));
    assert_eq!(d.template_count(), 2);
    fold(&mut d, Time::ZERO);
    let s = d.service(&ServiceKey::new(Protocol::Tcp, VIP.into(), 80)).unwrap();
    assert_eq!(s.dests.iter().map(|x| x.persistconns).sum::<u32>(), 2);
    assert_eq!(s.stats.conns, 21, "templates are not connections");
    let listed = d.conns(Time::ZERO);
    let t: Vec<_> = listed.iter().filter(|c| c.cport == 0).collect();
    assert_eq!(t.len(), 2);
    assert!(t.iter().all(|c| c.state == "NONE" && c.expires == 300 && c.vport == 80));
}

#[test]
fn netmask_groups_clients_and_templates_expire() {
    let mut d = persistent(60, 0xffff_ff00, 80);
    let a = Ipv4Addr::new(10, 1, 1, 10);
    let b = Ipv4Addr::new(10, 1, 1, 200);
    let first = pick(&mut d, &segment_from(a, 1, 80, SYN), Time::ZERO).unwrap();
    assert_eq!(pick(&mut d, &segment_from(b, 2, 80, SYN), Time::ZERO), Some(first), "same /24, same server");
    assert_eq!(d.template_count(), 1);
    // SYN_RECV connections live 60 s; the template (60 s, refreshed by the
    // second connection) outlives them only until they are gone.
    d.expire(Time::from_secs(59));
    assert_eq!(d.template_count(), 1);
    d.expire(Time::from_secs(60));
    assert_eq!(d.conn_count(), 0);
    assert_eq!(d.template_count(), 0);
    let s = d.service(&ServiceKey::new(Protocol::Tcp, VIP.into(), 80)).unwrap();
    assert!(s.dests.iter().all(|x| x.persistconns == 0));
    // A fresh template comes from the scheduler, which moved on.
    assert_ne!(pick(&mut d, &segment_from(a, 3, 80, SYN), Time::from_secs(61)), Some(first));
}

#[test]
fn template_lives_while_it_controls_connections() {
    let mut d = persistent(10, 0xffff_ffff, 80);
    let a = Ipv4Addr::new(10, 1, 1, 10);
    let first = pick(&mut d, &segment_from(a, 1, 80, SYN), Time::ZERO).unwrap();
    pick(&mut d, &segment_from(a, 1, 80, ACK), Time::ZERO);
    // The template's 10 s pass, but its ESTABLISHED connection lives 900 s.
    d.expire(Time::from_secs(30));
    assert_eq!(d.template_count(), 1);
    assert_eq!(pick(&mut d, &segment_from(a, 2, 80, SYN), Time::from_secs(31)), Some(first));
}

#[test]
fn deleted_server_gets_its_clients_rescheduled() {
    let mut d = persistent(300, 0xffff_ffff, 80);
    let a = Ipv4Addr::new(10, 1, 1, 10);
    let first = pick(&mut d, &segment_from(a, 1, 80, SYN), Time::ZERO).unwrap();
    let key = ServiceKey::new(Protocol::Tcp, VIP.into(), 80);
    d.del_dest(&key, first, 80, Time::ZERO).unwrap();
    let next = pick(&mut d, &segment_from(a, 2, 80, SYN), Time::ZERO).unwrap();
    assert_ne!(next, first);
    assert_eq!(pick(&mut d, &segment_from(a, 3, 80, SYN), Time::ZERO), Some(next));
    // Quiescing does not break persistence (expire_quiescent_template = 0).
    d.edit_dest(&key, DestConfig::new(next, 80, FwdMethod::Masq, 0)).unwrap();
    assert_eq!(pick(&mut d, &segment_from(a, 4, 80, SYN), Time::ZERO), Some(next));
}

#[test]
fn port_zero_service_takes_every_port_and_keeps_it() {
    let mut d = persistent(300, 0xffff_ffff, 0);
    let a = Ipv4Addr::new(10, 1, 1, 10);
    let first = d.process_ipv4(&segment_from(a, 1, 443, SYN), None, Time::ZERO);
    let Verdict::Forward(f) = first else { panic!("{first:?}") };
    assert_eq!(f.dport, 443, "the client's port is kept");
    let Verdict::Forward(g) = d.process_ipv4(&segment_from(a, 2, 22, SYN), None, Time::ZERO) else { panic!() };
    assert_eq!((g.daddr, g.dport), (f.daddr, 22), "same template for every port");
    let t = d.conns(Time::ZERO).into_iter().find(|c| c.cport == 0).unwrap();
    assert_eq!((t.vport, t.dport), (0, 0));
}

#[test]
fn one_packet_scheduling_schedules_every_datagram() {
    let mut d = Director::new();
    let svc = ServiceKey::new(Protocol::Udp, VIP.into(), 53);
    let cfg = ServiceConfig { scheduler: "rr".into(), flags: crate::types::svc_flags::ONEPACKET, ..Default::default() };
    d.add_service(svc, cfg, Time::ZERO).unwrap();
    for a in [244, 245] {
        d.add_dest(&svc, DestConfig::new(ip(a), 53, DirectRoute, 1), Time::ZERO).unwrap();
    }
    let picks: Vec<_> = (0..4).map(|_| pick(&mut d, &datagram(5353, 53), Time::ZERO).unwrap()).collect();
    assert_eq!(picks, vec![ip(245), ip(244), ip(245), ip(244)]);
    assert_eq!(d.conn_count(), 0);
    fold(&mut d, Time::ZERO);
    assert_eq!(d.service(&svc).unwrap().stats.conns, 4);
}

/// Runs the estimator past its next tick after `at`, as 2 s of the
/// engine's loop would: listings show counters as the tick folds them.
fn fold(d: &mut Director, at: Time) {
    d.estimate(at);
    d.estimate(at + Span::from_secs(2));
}

#[test]
fn listings_show_counters_as_the_estimator_last_folded_them() {
    let mut d = seed();
    let listed = |d: &Director| d.service(&tcp_svc()).unwrap().stats.conns;
    // The estimator's phase: it starts at the first call (here, t = 1 s)
    // and ticks every 2 s after.
    d.estimate(Time::from_secs(1));
    pick(&mut d, &segment(1, SYN), Time::from_secs(2));
    assert_eq!(listed(&d), 0, "not folded yet: the kernel would not show it either");
    d.estimate(Time(2999));
    assert_eq!(listed(&d), 0, "the tick is at 3 s");
    d.estimate(Time::from_secs(3));
    assert_eq!(listed(&d), 1, "folded at the tick");
    assert_eq!(d.total_stats().conns, 1);
    // Whatever the phase, 2.1 s after the traffic the listing has it.
    pick(&mut d, &segment(2, SYN), Time(3001));
    d.estimate(Time(3001 + 2100));
    assert_eq!(listed(&d), 2);
    // Zeroing shows zero at once, as the kernel's kstats0 does.
    d.zero(None).unwrap();
    assert_eq!(listed(&d), 0);
}

fn drain(d: &mut Director) -> Vec<Event> {
    std::iter::from_fn(|| d.poll_event()).collect()
}

#[test]
fn table_changes_are_reported_once_each_in_order() {
    let mut d = seed();
    let rs1 = DestConfig::new(ip(244), 80, DirectRoute, 1);
    let rs2 = DestConfig::new(ip(245), 80, DirectRoute, 1);
    assert_eq!(
        drain(&mut d),
        [
            Event::ServiceAdded(tcp_svc()),
            Event::DestAdded { service: tcp_svc(), dest: rs1 },
            Event::DestAdded { service: tcp_svc(), dest: rs2 },
        ]
    );
    // An edit that changes nothing says nothing; one that does carries
    // the old and the new configuration (a filter keyed by method needs both).
    d.edit_dest(&tcp_svc(), rs1).unwrap();
    d.edit_service(&tcp_svc(), ServiceConfig { scheduler: "rr".into(), ..Default::default() }, Time::ZERO).unwrap();
    assert_eq!(drain(&mut d), []);
    let nat = DestConfig::new(ip(244), 80, FwdMethod::Masq, 3);
    d.edit_dest(&tcp_svc(), nat).unwrap();
    d.edit_service(&tcp_svc(), ServiceConfig { scheduler: "wlc".into(), ..Default::default() }, Time::ZERO).unwrap();
    assert_eq!(
        drain(&mut d),
        [Event::DestChanged { service: tcp_svc(), old: rs1, new: nat }, Event::ServiceChanged(tcp_svc()),]
    );
    let lip: IpAddr = "10.1.1.254".parse().unwrap();
    d.add_laddr(&tcp_svc(), lip).unwrap();
    assert!(d.add_laddr(&tcp_svc(), lip).is_err());
    assert!(d.del_dest(&tcp_svc(), ip(9), 80, Time::ZERO).is_err());
    assert_eq!(drain(&mut d), [Event::LaddrAdded { service: tcp_svc(), laddr: lip }]);
    // Deleting the service reports its real servers and local addresses
    // leaving first, so a follower never holds an orphan.
    d.del_service(&tcp_svc(), Time::ZERO).unwrap();
    assert_eq!(
        drain(&mut d),
        [
            Event::DestRemoved { service: tcp_svc(), dest: rs2 },
            Event::DestRemoved { service: tcp_svc(), dest: nat },
            Event::LaddrRemoved { service: tcp_svc(), laddr: lip },
            Event::ServiceRemoved(tcp_svc()),
        ]
    );
}

#[test]
fn a_real_server_revived_from_the_trash_is_added_again_and_flush_removes_everything() {
    let mut d = seed();
    let rs1 = DestConfig::new(ip(244), 80, DirectRoute, 1);
    d.del_dest(&tcp_svc(), ip(244), 80, Time::ZERO).unwrap();
    d.add_dest(&tcp_svc(), rs1, Time::ZERO).unwrap();
    let events = drain(&mut d);
    assert_eq!(
        events[3..],
        [Event::DestRemoved { service: tcp_svc(), dest: rs1 }, Event::DestAdded { service: tcp_svc(), dest: rs1 },]
    );
    d.flush(Time::ZERO);
    let events = drain(&mut d);
    assert_eq!(events.len(), 3);
    assert_eq!(events.last(), Some(&Event::ServiceRemoved(tcp_svc())));
    // A freed service slot is taken again.
    d.add_service(tcp_svc(), ServiceConfig { scheduler: "rr".into(), ..Default::default() }, Time::ZERO).unwrap();
    assert_eq!(d.service_count(), 1);
}

#[test]
fn connection_events_only_when_followed() {
    let mut d = seed();
    drain(&mut d);
    let t0 = Time::ZERO;
    assert!(pick(&mut d, &segment(1000, SYN), t0).is_some());
    assert_eq!(drain(&mut d), [], "not followed: nothing per packet");
    d.follow_conns(true);
    let key = ConnKey { protocol: Protocol::Tcp, caddr: CLIENT.into(), cport: 2000, vaddr: VIP.into(), vport: 80 };
    assert!(pick(&mut d, &segment(2000, SYN), t0).is_some());
    assert!(pick(&mut d, &segment(2000, ACK), t0).is_some());
    // A second ACK moves nothing.
    assert!(pick(&mut d, &segment(2000, ACK), t0).is_some());
    assert!(pick(&mut d, &segment(2000, FIN), t0).is_some());
    assert_eq!(
        drain(&mut d),
        [
            Event::ConnAdded(key),
            Event::ConnChanged { key, from: ConnState::Tcp(TcpState::None), to: ConnState::Tcp(TcpState::SynRecv) },
            Event::ConnChanged {
                key,
                from: ConnState::Tcp(TcpState::SynRecv),
                to: ConnState::Tcp(TcpState::Established)
            },
            Event::ConnChanged {
                key,
                from: ConnState::Tcp(TcpState::Established),
                to: ConnState::Tcp(TcpState::FinWait)
            },
        ]
    );
    let later = t0 + Span::from_secs(3600);
    assert_eq!(d.expire(later), 2);
    let removed: Vec<Event> = drain(&mut d);
    assert!(
        removed.contains(&Event::ConnRemoved { key, out: None, state: ConnState::Tcp(TcpState::FinWait) }),
        "{removed:?}"
    );
    assert_eq!(removed.len(), 2);
}
