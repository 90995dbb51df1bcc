use super::tests::{seed, segment, ACK, SYN};
use super::*;
use crate::defence::{DefenceConfig, PAGE};

fn bounded(limit: u64, drop_entry: u8) -> Director {
    bounded_with(limit, drop_entry, 2)
}

fn bounded_with(limit: u64, drop_entry: u8, amemthresh: u64) -> Director {
    let mut d = seed();
    // A page a connection: amemthresh counts connections.
    let cfg = DefenceConfig { limit: Some(limit), bytes_per_conn: PAGE, amemthresh, drop_entry, ..Default::default() };
    d.set_defence(cfg).unwrap();
    d
}

fn verdict(d: &mut Director, cport: u16, flags: u8, now: Time) -> Verdict {
    d.process_ipv4(&segment(cport, flags), None, now)
}

#[test]
fn at_the_bound_new_connections_are_refused_and_established_ones_kept() {
    let mut d = bounded(4, 0);
    let t = Time::ZERO;
    for p in 1..=2 {
        assert!(matches!(verdict(&mut d, p, SYN, t), Verdict::Forward(_)));
        assert!(matches!(verdict(&mut d, p, ACK, t), Verdict::Forward(_)), "established");
    }
    for p in 3..=4 {
        assert!(matches!(verdict(&mut d, p, SYN, t), Verdict::Forward(_)));
    }
    assert_eq!(verdict(&mut d, 5, SYN, t), Verdict::Drop(DropReason::ConnectionLimit));
    assert_eq!(d.conn_count(), 4);
    assert!(matches!(verdict(&mut d, 1, ACK, t), Verdict::Forward(_)), "an established connection still passes");
    assert_eq!(d.defence_status().refused_at_limit, 1);
    // The entries' own timeouts make room again (SYN_RECV: 60 s).
    d.expire(t + Span::from_secs(61));
    assert_eq!(d.conn_count(), 2);
    assert!(matches!(verdict(&mut d, 5, SYN, t + Span::from_secs(61)), Verdict::Forward(_)));
}

#[test]
fn with_drop_entry_a_new_connection_replaces_a_never_answered_one() {
    let mut d = bounded(64, 1);
    let t = Time::ZERO;
    for p in 1..=32 {
        verdict(&mut d, p, SYN, t);
        verdict(&mut d, p, ACK, t);
    }
    for p in 33..=64 {
        verdict(&mut d, p, SYN, t);
    }
    for p in 100..200 {
        match verdict(&mut d, p, SYN, t) {
            Verdict::Forward(_) | Verdict::Drop(DropReason::ConnectionLimit) => {}
            v => panic!("{v:?}"),
        }
        assert!(d.conn_count() <= 64);
    }
    let s = d.defence_status();
    assert!(s.entries_replaced > 50, "{s:?}");
    for p in 1..=32 {
        assert!(matches!(verdict(&mut d, p, ACK, t), Verdict::Forward(_)), "established {p} kept");
    }
}

#[test]
fn drop_entry_sweeps_syn_recv_entries_when_memory_runs_short() {
    let mut d = bounded_with(100, 1, 50);
    let t = Time::ZERO;
    for p in 1..=99 {
        verdict(&mut d, p, SYN, t);
    }
    verdict(&mut d, 1000, SYN, t);
    verdict(&mut d, 1000, ACK, t);
    d.defend(t);
    assert_eq!(d.defence_status().config.drop_entry, 2, "memory is short: 0 pages left of a threshold of 50");
    for s in 1..=200 {
        d.defend(t + Span::from_secs(s));
    }
    // The sweep stops once 50 pages are free again, as the kernel's does.
    assert!((45..=51).contains(&d.conn_count()), "{}", d.conn_count());
    assert_eq!(d.defence_status().config.drop_entry, 1, "back to waiting once memory is plentiful");
    assert!(matches!(verdict(&mut d, 1000, ACK, t), Verdict::Forward(_)), "the established one kept");
    assert!(d.defence_status().entries_dropped >= 49);
}

#[test]
fn secure_tcp_keeps_a_nat_connection_from_establishing_on_the_clients_ack() {
    let mut d = Director::new();
    let key = tcp_svc();
    d.add_service(key, ServiceConfig { scheduler: "rr".into(), ..Default::default() }, Time::ZERO).unwrap();
    let rs: IpAddr = "10.1.1.244".parse().unwrap();
    d.add_dest(&key, DestConfig::new(rs, 80, FwdMethod::Masq, 1), Time::ZERO).unwrap();
    d.set_defence(DefenceConfig { secure_tcp: 3, ..Default::default() }).unwrap();
    verdict(&mut d, 1, SYN, Time::ZERO);
    verdict(&mut d, 1, ACK, Time::ZERO);
    assert_eq!(d.conns(Time::ZERO)[0].state, "SYN_RECV");
    d.set_defence(DefenceConfig::default()).unwrap();
    verdict(&mut d, 1, ACK, Time::ZERO);
    assert_eq!(d.conns(Time::ZERO)[0].state, "ESTABLISHED");
}

#[test]
fn drop_packet_always_drops_one_new_connection_in_am_droprate() {
    let mut d = seed();
    d.set_defence(DefenceConfig { drop_packet: 3, am_droprate: 5, ..Default::default() }).unwrap();
    let dropped =
        (1..=20).filter(|&p| verdict(&mut d, p, SYN, Time::ZERO) == Verdict::Drop(DropReason::DropPacket)).count();
    assert_eq!(dropped, 4);
    assert_eq!(d.defence_status().packets_dropped, 4);
}

#[test]
fn sloppy_tcp_schedules_a_mid_flow_segment_and_still_drops_a_reset() {
    let mut d = seed();
    assert_eq!(verdict(&mut d, 1, ACK, Time::ZERO), Verdict::Drop(DropReason::NoConnection));
    d.set_sloppy_tcp(true);
    assert!(matches!(verdict(&mut d, 1, ACK, Time::ZERO), Verdict::Forward(_)));
    assert_eq!(d.conns(Time::ZERO)[0].state, "CLOSE", "sNO --ack--> sCL in INPUT_ONLY");
    assert!(matches!(verdict(&mut d, 1, ACK, Time::ZERO + Span::from_secs(9)), Verdict::Forward(_)));
    assert_eq!(d.conns(Time::ZERO + Span::from_secs(9))[0].expires, 10, "each segment renews CLOSE's 10 s");
    let rst = verdict(&mut d, 2, TcpFlags::RST | TcpFlags::ACK, Time::ZERO);
    assert_eq!(rst, Verdict::Drop(DropReason::NoConnection));
}

use super::tests::tcp_svc;

#[test]
fn sloppy_services_opt_in_one_service_at_a_time() {
    let mut d = seed();
    let key = tcp_svc();
    let other = ServiceKey { port: key.port + 1, ..key };
    d.set_sloppy_services([other]);
    assert_eq!(verdict(&mut d, 1, ACK, Time::ZERO), Verdict::Drop(DropReason::NoConnection));
    d.set_sloppy_services([key]);
    assert!(matches!(verdict(&mut d, 1, ACK, Time::ZERO), Verdict::Forward(_)));
    assert_eq!(d.conns(Time::ZERO)[0].state, "CLOSE");
    d.set_sloppy_services([]);
    assert_eq!(verdict(&mut d, 3, ACK, Time::ZERO), Verdict::Drop(DropReason::NoConnection));
}
