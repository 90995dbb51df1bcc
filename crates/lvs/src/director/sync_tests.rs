//! The director's side of connection sync: when a master announces, what
//! a backup makes of it, and that no message can break its table.

use super::sync::SyncParams;
use super::*;
use crate::types::FwdMethod::DirectRoute;
use rlvs_wire::ipvs_sync::{self, flags, Builder, SyncConn};
use rlvs_wire::{Ipv4Repr, TcpRepr};
use std::net::Ipv4Addr;

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 10);

fn svc() -> ServiceKey {
    ServiceKey::new(Protocol::Tcp, VIP.into(), 80)
}

fn rs(a: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, 1, a))
}

fn director(dests: &[u8]) -> Director {
    let mut d = Director::new();
    d.add_service(svc(), ServiceConfig { scheduler: "rr".into(), ..Default::default() }, Time::ZERO).unwrap();
    for &a in dests {
        d.add_dest(&svc(), DestConfig::new(rs(a), 80, DirectRoute, 1), Time::ZERO).unwrap();
    }
    d
}

fn segment(cport: u16, flags: u8) -> Vec<u8> {
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

const SYN: u8 = TcpFlags::SYN;
const ACK: u8 = TcpFlags::ACK;

/// A handshake and `data` more packets from the client; returns how many
/// connections were announced after each packet.
fn talk(d: &mut Director, cport: u16, data: usize) -> Vec<usize> {
    let mut seen = Vec::new();
    let mut total = 0;
    for (i, f) in std::iter::once(SYN).chain(std::iter::repeat_n(ACK, 1 + data)).enumerate() {
        let v = d.process_ipv4(&segment(cport, f), None, Time::from_millis(i as u64));
        assert!(matches!(v, Verdict::Forward(_)), "{v:?}");
        total += d.take_sync().len();
        seen.push(total);
    }
    seen
}

#[test]
fn seeing_every_packet_the_master_announces_as_the_kernel_does() {
    let mut d = director(&[244]);
    d.set_sync_master(Some(SyncParams::default()), true);
    // pkts 1 SYN, 2 ACK (ESTABLISHED), 3.. data: announced at the third
    // (sync_threshold), then at 53 and 103 (sync_period 50).
    let seen = talk(&mut d, 40000, 110);
    let at: Vec<usize> = seen.windows(2).enumerate().filter(|(_, w)| w[1] > w[0]).map(|(i, _)| i + 2).collect();
    assert_eq!(seen[0], 0);
    assert_eq!(at, vec![3, 53, 103]);
}

#[test]
fn under_the_fast_path_the_master_announces_on_entering_established() {
    let mut d = director(&[244]);
    d.set_sync_master(Some(SyncParams::default()), false);
    let seen = talk(&mut d, 40001, 5);
    assert_eq!(seen[..2], [0, 1], "announced at the ACK that made it ESTABLISHED, the packet before XDP takes it");
    let mut off = director(&[244]);
    assert!(talk(&mut off, 40002, 5).iter().all(|&n| n == 0), "no master role, nothing announced");
}

/// What `master` announced, through the wire, applied on `backup`.
fn replicate(master: &mut Director, backup: &mut Director, now: Time) -> usize {
    let conns = master.take_sync();
    let mut b = Builder::new(1, 1472);
    for c in &conns {
        assert!(b.push(c));
    }
    let m = ipvs_sync::parse(&b.finish()).unwrap();
    for c in &m.conns {
        backup.apply_sync(c, now);
    }
    m.conns.len()
}

#[test]
fn a_backup_forwards_an_announced_connection_to_the_same_server_without_a_syn() {
    let mut master = director(&[244, 245]);
    master.set_sync_master(Some(SyncParams::default()), false);
    let mut backup = director(&[244, 245]);
    let mut picked = Vec::new();
    for cport in 41000..41004 {
        master.process_ipv4(&segment(cport, SYN), None, Time::ZERO);
        match master.process_ipv4(&segment(cport, ACK), None, Time::ZERO) {
            Verdict::Forward(f) => picked.push(f.daddr),
            v => panic!("{v:?}"),
        }
    }
    assert_eq!(replicate(&mut master, &mut backup, Time::from_secs(1)), 4);
    for (i, cport) in (41000..41004).enumerate() {
        match backup.process_ipv4(&segment(cport, ACK), None, Time::from_secs(2)) {
            Verdict::Forward(f) => assert_eq!(f.daddr, picked[i], "connection {cport} kept its real server"),
            v => panic!("connection {cport} was not taken over: {v:?}"),
        }
    }
    let s = backup.service(&svc()).unwrap();
    assert_eq!(s.dests.iter().map(|d| d.activeconns).sum::<u32>(), 4, "counted active as on the master");
    assert_eq!(backup.sync_counters().created, 4);
    // A second announcement updates, it does not duplicate.
    let c = master.sync_conn_of(
        master
            .conns
            .lookup(&ConnKey {
                protocol: Protocol::Tcp,
                caddr: CLIENT.into(),
                cport: 41000,
                vaddr: VIP.into(),
                vport: 80,
            })
            .unwrap(),
    );
    backup.apply_sync(&c, Time::from_secs(3));
    assert_eq!(backup.sync_counters().updated, 1);
    assert_eq!(backup.service(&svc()).unwrap().dests.iter().map(|d| d.activeconns).sum::<u32>(), 4);
}

fn announced(cport: u16, daddr: u8) -> SyncConn {
    SyncConn {
        protocol: 6,
        flags: flags::DROUTE | flags::NOOUTPUT,
        state: 1,
        caddr: CLIENT.into(),
        cport,
        vaddr: VIP.into(),
        vport: 80,
        daddr: rs(daddr),
        dport: 80,
        fwmark: 0,
        timeout: 900,
        seq: None,
        pe_name: None,
        pe_data: None,
        fnat_local: None,
        fnat_offsets: None,
    }
}

#[test]
fn a_connection_for_an_unknown_real_server_waits_and_is_bound_when_it_comes() {
    let mut backup = director(&[244]);
    backup.apply_sync(&announced(42000, 246), Time::ZERO);
    assert_eq!((backup.sync_unbound(), backup.conns.len()), (1, 0));
    backup.add_dest(&svc(), DestConfig::new(rs(246), 80, DirectRoute, 1), Time::from_secs(1)).unwrap();
    assert_eq!((backup.sync_unbound(), backup.conns.len()), (0, 1));
    assert_eq!(backup.sync_counters().bound_later, 1);
    match backup.process_ipv4(&segment(42000, ACK), None, Time::from_secs(2)) {
        Verdict::Forward(f) => assert_eq!(f.daddr, rs(246)),
        v => panic!("{v:?}"),
    }
    // One that waits past its timeout is forgotten.
    let mut late = announced(42001, 247);
    late.timeout = 5;
    backup.apply_sync(&late, Time::from_secs(10));
    backup.expire(Time::from_secs(16));
    assert_eq!(backup.sync_unbound(), 0);
}

#[test]
fn impossible_announcements_are_counted_and_change_nothing() {
    let mut backup = director(&[244]);
    let mut bad_proto = announced(43000, 244);
    bad_proto.protocol = 50;
    let mut bad_state = announced(43001, 244);
    bad_state.state = 42;
    let mut no_svc = announced(43002, 244);
    no_svc.vport = 81;
    let mut mixed = announced(43003, 244);
    mixed.vaddr = "2001:db8::1".parse().unwrap();
    for c in [&bad_proto, &bad_state, &no_svc, &mixed] {
        backup.apply_sync(c, Time::ZERO);
    }
    let k = backup.sync_counters();
    assert_eq!((k.bad_protocol, k.bad_state, k.no_service, k.refused, k.created), (1, 1, 1, 1, 0));
    assert_eq!(backup.conns.len(), 0);
    let s = backup.service(&svc()).unwrap();
    assert_eq!((s.dests[0].activeconns, s.dests[0].inactconns), (0, 0));
}

#[test]
fn arbitrary_announcements_never_corrupt_the_counters() {
    let mut backup = director(&[244, 245]);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..20_000u64 {
        let mut c = announced((next() % 64) as u16, [244, 245, 246][(next() % 3) as usize]);
        c.state = (next() % 12) as u16;
        c.flags = next() as u32 & 0x3fff;
        c.timeout = (next() % 2000) as u32;
        backup.apply_sync(&c, Time::from_millis(i * 10));
        if i % 1000 == 0 {
            backup.expire(Time::from_millis(i * 10));
        }
    }
    // Every entry is counted exactly once, active or inactive.
    let s = backup.service(&svc()).unwrap();
    let counted: u32 = s.dests.iter().map(|d| d.activeconns + d.inactconns).sum();
    assert_eq!(counted as usize, backup.conns.len());
}

#[test]
fn a_flow_the_fast_path_keeps_alive_is_announced_again_before_the_backups_copy_runs_out() {
    let mut master = director(&[244]);
    master.set_sync_master(Some(SyncParams::default()), false);
    master.process_ipv4(&segment(44000, SYN), None, Time::ZERO);
    master.process_ipv4(&segment(44000, ACK), None, Time::ZERO);
    let first = master.take_sync();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].timeout, 900 * 3 / 2, "announced to outlive the next announcement");
    // The fast path keeps seeing it; the director's timer runs out at 900 s.
    let mut announced = Vec::new();
    for s in (60..=2400).step_by(60) {
        let now = Time::from_secs(s);
        master.expire_with(now, |_, _| Some(now));
        if !master.take_sync().is_empty() {
            announced.push(s);
        }
    }
    assert_eq!(master.conn_count(), 1, "still alive");
    // Each announcement keeps the backup's copy (1350 s) alive to the next.
    let mut last = 0;
    for &a in &announced {
        assert!(a - last < 1350, "gap {last} -> {a}: {announced:?}");
        last = a;
    }
    assert!(announced.len() >= 4, "{announced:?}");
}

#[test]
fn a_synced_fullnat_connection_forwards_both_ways_from_its_first_client_packet() {
    let lip: IpAddr = "192.168.100.254".parse().unwrap();
    let make = || {
        let mut d = Director::new();
        d.add_service(svc(), ServiceConfig { scheduler: "rr".into(), ..Default::default() }, Time::ZERO).unwrap();
        d.add_laddr(&svc(), lip).unwrap();
        d.add_dest(&svc(), DestConfig::new(rs(1), 80, FwdMethod::FullNat, 1), Time::ZERO).unwrap();
        d
    };
    let (mut master, mut backup) = (make(), make());
    master.set_sync_master(Some(SyncParams::default()), false);
    let hop = crate::conn::Hop {
        ifindex: 2,
        local: rlvs_wire::EthernetAddress([2, 0, 0, 0, 0, 1]),
        peer: rlvs_wire::EthernetAddress([2, 0, 0, 0, 0, 2]),
    };
    master.process_ipv4(&segment(45000, SYN), Some(hop), Time::ZERO);
    let on_master = match master.process_ipv4(&segment(45000, ACK), Some(hop), Time::ZERO) {
        Verdict::Forward(f) => f,
        v => panic!("{v:?}"),
    };
    assert_eq!(replicate(&mut master, &mut backup, Time::from_secs(1)), 1);
    assert_eq!(backup.sync_counters().created, 1, "{:?}", backup.sync_counters());
    let on_backup = match backup.process_ipv4(&segment(45000, ACK), Some(hop), Time::from_secs(2)) {
        Verdict::Forward(f) => f,
        v => panic!("the backup did not forward: {v:?}"),
    };
    assert_eq!(
        (on_backup.snat, on_backup.daddr, on_backup.seq_adjust),
        (on_master.snat, on_master.daddr, on_master.seq_adjust)
    );
    // The real server's reply to the local address goes back to the client.
    let (laddr, lport) = on_backup.snat.unwrap();
    let reply = {
        let IpAddr::V4(src) = rs(1) else { unreachable!() };
        let IpAddr::V4(dst) = laddr else { unreachable!() };
        let ipr = Ipv4Repr { src, dst, protocol: IpProtocol::Tcp, payload_len: 20, ttl: 64, ident: 1, dont_frag: true };
        let mut b = vec![0u8; ipr.buffer_len()];
        ipr.emit(&mut b);
        TcpRepr { src_port: 80, dst_port: lport, seq: 1, ack: 1, flags: TcpFlags(ACK), window: 1000 }
            .emit(&mut b[20..]);
        b
    };
    match backup.process_ipv4(&reply, None, Time::from_secs(2)) {
        Verdict::Reply(r) => assert!(r.hop.is_some() && r.client.is_some(), "{r:?}"),
        v => panic!("the reply was not carried back: {v:?}"),
    }
}

#[test]
fn a_backup_keeps_a_clients_later_connections_where_the_masters_template_put_it() {
    let make = || {
        let mut d = Director::new();
        let config = ServiceConfig {
            scheduler: "rr".into(),
            flags: crate::types::svc_flags::PERSISTENT,
            timeout: 300,
            netmask: 0xffff_ffff,
            ..Default::default()
        };
        d.add_service(svc(), config, Time::ZERO).unwrap();
        for a in [244, 245] {
            d.add_dest(&svc(), DestConfig::new(rs(a), 80, DirectRoute, 1), Time::ZERO).unwrap();
        }
        d
    };
    let (mut master, mut backup) = (make(), make());
    master.set_sync_master(Some(SyncParams::default()), false);
    // Another client takes the scheduler's first pick on the master; ours
    // gets the second, through its template.
    let other = |cport: u16, flags: u8| {
        let mut b = segment(cport, flags);
        b[12..16].copy_from_slice(&[10, 1, 1, 99]);
        rlvs_wire::Ipv4Packet::new_checked(&mut b[..]).unwrap().fill_checksum();
        b
    };
    master.process_ipv4(&other(46000, SYN), None, Time::ZERO);
    master.process_ipv4(&segment(46001, SYN), None, Time::ZERO);
    let ours = match master.process_ipv4(&segment(46001, ACK), None, Time::ZERO) {
        Verdict::Forward(f) => f.daddr,
        v => panic!("{v:?}"),
    };
    let n = replicate(&mut master, &mut backup, Time::from_secs(1));
    assert!(n >= 2, "the connection and its template: {n}");
    assert_eq!(backup.sync_counters().templates, 1);
    // A new connection of the same client on the backup follows the
    // template, not the backup's own scheduler (whose first pick differs).
    match backup.process_ipv4(&segment(46002, SYN), None, Time::from_secs(2)) {
        Verdict::Forward(f) => assert_eq!(f.daddr, ours),
        v => panic!("{v:?}"),
    }
    let mut fresh = make();
    let first_pick = match fresh.process_ipv4(&segment(46003, SYN), None, Time::ZERO) {
        Verdict::Forward(f) => f.daddr,
        v => panic!("{v:?}"),
    };
    assert_ne!(first_pick, ours, "the test must be able to fail");
}

#[test]
fn a_connection_for_a_service_not_yet_installed_waits_for_it() {
    // A restarting director takes a bulk resync while its checkers are
    // still installing the table.
    let mut backup = Director::new();
    backup.apply_sync(&announced(42000, 244), Time::ZERO);
    assert_eq!((backup.sync_unbound(), backup.conns.len()), (1, 0));
    backup.add_service(svc(), ServiceConfig { scheduler: "rr".into(), ..Default::default() }, Time::ZERO).unwrap();
    backup.add_dest(&svc(), DestConfig::new(rs(244), 80, DirectRoute, 1), Time::from_secs(1)).unwrap();
    assert_eq!((backup.sync_unbound(), backup.conns.len()), (0, 1));
    match backup.process_ipv4(&segment(42000, ACK), None, Time::from_secs(2)) {
        Verdict::Forward(f) => assert_eq!(f.daddr, rs(244)),
        v => panic!("{v:?}"),
    }
}
